package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the dev command's life in a test; generous, since the machine may be busy building.
const (
	devStartTimeout = 3 * time.Minute
	devStopTimeout  = time.Minute
	devDemoTimeout  = 2 * time.Minute
)

// freePorts are the dev command's flags that put every part on a free port.
var freePorts = []string{"-temporal-port", "0", "-ui-port", "0", "-sandbox-port", "0", "-bridge-port", "0", "-metrics-port", "0",
	"-codec-port", "0", "-platform-port", "0", "-api-port", "0"}

// devProcess is a running `dev` binary, its output, and what its start banner says.
type devProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	lines  chan string   // every stdout line, in order
	exited chan struct{} // closed once the process has ended; then err holds its Wait error
	err    error
	banner []string          // every line up to the ready line
	rows   map[string]string // banner rows: "Temporal UI" -> "http://localhost:41234"
	env    []devEnvGroup
}

// devEnvGroup is one "# title" block of KEY=value lines in the banner.
type devEnvGroup struct {
	title string
	vars  map[string]string
}

// envMap merges every printed variable.
func (p *devProcess) envMap() map[string]string {
	all := map[string]string{}
	for _, g := range p.env {
		for k, v := range g.vars {
			all[k] = v
		}
	}
	return all
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDev runs the dev binary and waits for its ready line; the test's end kills it if it still runs.
func startDev(t *testing.T, bin string, args ...string) *devProcess {
	t.Helper()
	return startDevEnv(t, bin, nil, args...)
}

// startDevEnv is startDev with extra KEY=value environment entries.
func startDevEnv(t *testing.T, bin string, env []string, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{t: t, cmd: exec.Command(bin, args...), lines: make(chan string, 1024), exited: make(chan struct{})}
	// A profile, a config file or keys of the developer's must not steer the stack under test.
	p.cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start dev: %v", err)
	}
	go func() {
		scanner := bufio.NewScanner(io.TeeReader(out, &p.stdout))
		for scanner.Scan() {
			p.lines <- scanner.Text()
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill() // the test failed before stopping it
			<-p.exited
		}
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", p.stdout.String(), p.stderr.String())
		}
	})
	p.banner = p.waitLine(regexp.MustCompile(`^Ready\. Press Ctrl-C to stop\.$`), devStartTimeout)
	p.parseBanner(p.banner)
	return p
}

var (
	bannerRow = regexp.MustCompile(`^  (\S.*?)\s{2,}(\S+)`)
	envLine   = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(.*)$`)
)

func (p *devProcess) parseBanner(lines []string) {
	p.rows = map[string]string{}
	for _, line := range lines {
		if m := bannerRow.FindStringSubmatch(line); m != nil {
			p.rows[m[1]] = m[2]
		}
		if title, ok := strings.CutPrefix(line, "# "); ok {
			p.env = append(p.env, devEnvGroup{title: title, vars: map[string]string{}})
		}
		if m := envLine.FindStringSubmatch(line); m != nil {
			if len(p.env) == 0 {
				p.t.Fatalf("env line %s before any group title", m[1])
			}
			p.env[len(p.env)-1].vars[m[1]] = m[2]
		}
	}
}

// waitLine reads stdout until a line matches re and returns every line read, that one last.
func (p *devProcess) waitLine(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.exited
				p.t.Fatalf("dev ended (%v) before printing a line matching %s", p.err, re)
			}
			seen = append(seen, line)
			if re.MatchString(line) {
				return seen
			}
		case <-deadline:
			p.t.Fatalf("no line matching %s within %v", re, timeout)
		}
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and returns the exit code; it fails the test if the process hangs.
func (p *devProcess) interrupt() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatalf("SIGINT: %v", err)
	}
	go func() { // drain stdout so the process never blocks on a full pipe
		for range p.lines {
		}
	}()
	select {
	case <-p.exited:
	case <-time.After(devStopTimeout):
		p.t.Fatalf("dev did not stop within %v of SIGINT", devStopTimeout)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait for dev: %v", p.err)
	}
	return 0
}

// uiWorkflow is one execution as the UI server's HTTP API lists it.
type uiWorkflow struct {
	Execution struct {
		WorkflowID string `json:"workflowId"`
	} `json:"execution"`
	Status           string `json:"status"`
	SearchAttributes struct {
		IndexedFields map[string]struct {
			Data string `json:"data"`
		} `json:"indexedFields"`
	} `json:"searchAttributes"`
}

// attr decodes a Keyword search attribute: base64 of a JSON string.
func (w uiWorkflow) attr(name string) string {
	raw, err := base64.StdEncoding.DecodeString(w.SearchAttributes.IndexedFields[name].Data)
	if err != nil {
		return "<bad base64>"
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "<not a JSON string: " + string(raw) + ">"
	}
	return s
}

// listWorkflows asks the UI server's HTTP API, as the UI does, for the executions matching a visibility query.
func listWorkflows(t *testing.T, uiURL, namespace, query string) ([]uiWorkflow, error) {
	t.Helper()
	u := uiURL + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/workflows?query=" + url.QueryEscape(query)
	body, err := httpGet(u)
	if err != nil {
		return nil, err
	}
	var list struct {
		Executions []uiWorkflow `json:"executions"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("list workflows: %w in %.300s", err, body)
	}
	return list.Executions, nil
}

// httpGet returns the body of a 200 answer.
func httpGet(u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, body)
	}
	return body, nil
}
