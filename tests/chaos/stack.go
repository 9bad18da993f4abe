package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/workflows"
)

// Binaries the suite runs, each built from the package of the same name.
var binaries = []string{"dev", "worker", "webhookbridge", "sandbox"}

// rootModule is the module that holds the binaries and the deploy scripts the suite runs.
const rootModule = "github.com/connectflow/connectflow"

const (
	namespace = "default"
	// answerBound is the longest a bridge request can wait on a Temporal that is down: one call under the bridge's
	// default BRIDGE_TEMPORAL_TIMEOUT fails, and the request is answered 503, with a second of slack.
	answerBound = bridge.DefaultTemporalTimeout + time.Second
	// startTimeout bounds how long a part may take to say it is ready.
	startTimeout = 90 * time.Second
	// stopGrace is how long a SIGTERM'd part may take to exit before it is killed.
	stopGrace = 40 * time.Second
)

// secrets are this run's credentials, fresh each run so the log scan looks for values that exist nowhere else.
type secrets struct {
	clientID, clientSecret        string
	apiKey, apiSecret, passphrase string
	webhookSecret                 string
	codecKeys                     string // CONNECTFLOW_CODEC_KEYS of every child and of the run's own client
}

func newSecrets() secrets {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails
	codecKey := make([]byte, 32)
	_, _ = rand.Read(codecKey)
	return secrets{
		codecKeys:     "chaos1:" + base64.StdEncoding.EncodeToString(codecKey),
		clientID:      "chaos-client-" + strings.ToLower(rand.Text()[:8]),
		clientSecret:  "cs-" + rand.Text(),
		apiKey:        "ak-" + rand.Text(),
		apiSecret:     base64.StdEncoding.EncodeToString(raw),
		passphrase:    "pp-" + rand.Text(),
		webhookSecret: "whs-" + rand.Text(),
	}
}

// stack is every process of the run and what it needs to restart each one the same way.
type stack struct {
	dir, binDir, logDir, confDir, dataDir string
	secrets                               secrets

	temporalAddr string
	bridgeAddr   string
	sandboxURL   string
	sandboxEnv   map[string]string // the env lines the sandbox printed
	platformEnv  []string          // PLATFORM_WEBHOOK_* of the chaos platform, for every worker

	cfg     config
	cluster *cluster // the cluster topology's parts; nil for one server

	mu       sync.Mutex
	runs     map[string]int // runs per binary, for log file names
	temporal *proc
	bridge   *proc
	sandbox  *proc
	workers  []*proc
	all      []*proc // every process ever started, for the exit audit
}

func newStack(dir string, cfg config) (*stack, error) {
	s := &stack{dir: dir, cfg: cfg, binDir: filepath.Join(dir, "bin"), logDir: filepath.Join(dir, "logs"),
		confDir: filepath.Join(dir, "config"), dataDir: filepath.Join(dir, "temporal-data"),
		secrets: newSecrets(), runs: map[string]int{}}
	if cfg.topology == topologyCluster {
		s.cluster = &cluster{}
	}
	for _, d := range []string{s.binDir, s.logDir, s.confDir, s.dataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// build compiles the binaries into binDir, or checks the prebuilt ones in prebuilt.
func (s *stack) build(ctx context.Context, prebuilt string) error {
	if prebuilt != "" {
		for _, b := range binaries {
			if _, err := os.Stat(filepath.Join(prebuilt, b)); err != nil {
				return fmt.Errorf("-bin: %w", err)
			}
		}
		s.binDir = prebuilt
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	args := []string{"build", "-o", s.binDir + string(filepath.Separator)}
	for _, b := range binaries {
		args = append(args, "./"+b)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// moduleRoot is the folder of connectflow's root module (the binaries it builds live there). The suite is in the
// tests module; the root's go.work joins both, so `go build ./dev ./worker ...` in that folder builds every binary.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", rootModule).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
		}
		return "", fmt.Errorf("go list -m %s (run the suite from the connectflow checkout: go run ./tests/chaos): %w", rootModule, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: no folder; run the suite from the connectflow checkout (go run ./tests/chaos)", rootModule)
	}
	return dir, nil
}

// freeAddr reserves nothing: it finds a loopback port free now. The suite keeps each port for its part's restarts.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// baseEnv is what every child gets: a PATH, and a HOME inside the run so no user's Temporal profile is read.
func (s *stack) baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.confDir}
}

func (s *stack) temporalEnv() []string {
	return []string{"TEMPORAL_ADDRESS=" + s.temporalAddr, "TEMPORAL_NAMESPACE=" + namespace,
		"TEMPORAL_TASK_QUEUE=" + workflows.DefaultTaskQueue, "CONNECTFLOW_CODEC_KEYS=" + s.secrets.codecKeys}
}

// start launches one more run of bin; stdout of the sandbox goes to the config folder (it prints credentials by
// design), every other stream to the logs the scan reads.
func (s *stack) start(bin string, args, env []string) (*proc, error) {
	s.mu.Lock()
	s.runs[bin]++
	name := fmt.Sprintf("%s-%d", bin, s.runs[bin])
	s.mu.Unlock()
	stdoutDir := s.logDir
	if bin == "sandbox" {
		stdoutDir = s.confDir
	}
	p, err := launch(name, filepath.Join(s.binDir, bin), args, append(s.baseEnv(), env...), stdoutDir, s.logDir)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.all = append(s.all, p)
	s.mu.Unlock()
	return p, nil
}

// startTemporal runs the dev command's embedded Temporal on the run's data folder and port, and waits for it.
func (s *stack) startTemporal(ctx context.Context) error {
	if s.cluster != nil {
		return s.startCluster(ctx)
	}
	if s.temporalAddr == "" {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		s.temporalAddr = addr
	}
	_, port, _ := net.SplitHostPort(s.temporalAddr)
	p, err := s.start("dev", []string{"-server-only", "-data", s.dataDir, "-ip", "127.0.0.1",
		"-temporal-port", port, "-ui-port", "0", "-codec-port", "0", "-server-log-level", "warn", "-log-level", "info"},
		[]string{"CONNECTFLOW_CODEC_KEYS=" + s.secrets.codecKeys}) // the UI decrypts what the children write
	if err != nil {
		return err
	}
	if _, err := p.waitLine(ctx, "Ready.", startTimeout); err != nil {
		_ = p.stop(syscall.SIGKILL, stopGrace)
		return err
	}
	s.mu.Lock()
	s.temporal = p
	s.mu.Unlock()
	return nil
}

// startSandbox runs the Connect sandbox with this run's credentials, webhooks aimed at the bridge's fixed port.
func (s *stack) startSandbox(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s.bridgeAddr = addr
	if s.cluster != nil {
		if err := s.startBridgeBalancer(); err != nil {
			return err
		}
	}
	hooks := "http://" + s.bridgeAddr
	sec := s.secrets
	p, err := s.start("sandbox", []string{"-addr", "127.0.0.1:0", "-log-level", "info",
		"-client-id", sec.clientID, "-client-secret", sec.clientSecret,
		"-api-key", sec.apiKey, "-api-secret", sec.apiSecret, "-passphrase", sec.passphrase,
		"-webhook-secret", sec.webhookSecret,
		"-deposit-webhook-url", hooks + bridge.PathConnectDeposits,
		"-withdrawal-webhook-url", hooks + bridge.PathConnectWithdrawals,
		"-balance-webhook-url", hooks + bridge.PathZeroHashBalances}, nil)
	if err != nil {
		return err
	}
	s.sandbox = p
	if _, err := p.waitLine(ctx, "# Control API", startTimeout); err != nil {
		return err
	}
	s.sandboxEnv = map[string]string{}
	for _, l := range p.watch.snapshot() {
		if rest, ok := strings.CutPrefix(l, "Connect sandbox listening on "); ok {
			s.sandboxURL, _, _ = strings.Cut(rest, " ")
		}
		if k, v, ok := strings.Cut(l, "="); ok && isEnvName(k) {
			s.sandboxEnv[k] = v
		}
	}
	if s.sandboxURL == "" || s.sandboxEnv["CONNECT_JWKS_URL"] == "" || s.sandboxEnv["CONNECT_API_URL"] == "" {
		return errors.New("sandbox banner lacks its URL or environment lines")
	}
	return nil
}

func isEnvName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (s *stack) sandboxVars(names ...string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, n+"="+s.sandboxEnv[n])
	}
	return out
}

// startBridge runs the webhook bridge on its fixed port and waits until /readyz says it reaches Temporal. In the
// cluster topology it starts every bridge behind the bridges' balancer that is not running.
func (s *stack) startBridge(ctx context.Context) error {
	if s.cluster != nil {
		return s.startBridges(ctx)
	}
	p, err := s.launchBridge(ctx, s.bridgeAddr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.bridge = p
	s.mu.Unlock()
	return nil
}

// launchBridge runs one bridge listening on listen, its public URL the address Connect posts to, and waits until
// /readyz says it reaches Temporal.
func (s *stack) launchBridge(ctx context.Context, listen string) (*proc, error) {
	adminAddr, err := freeAddr() // /readyz is on the admin port only
	if err != nil {
		return nil, err
	}
	env := append(s.temporalEnv(), "BRIDGE_ADDR="+listen, "BRIDGE_PUBLIC_URL=http://"+s.bridgeAddr,
		"BRIDGE_ADMIN_ADDR="+adminAddr)
	env = append(env, s.sandboxVars("CONNECT_JWKS_URL", "ZEROHASH_WEBHOOK_SECRET")...)
	p, err := s.start("webhookbridge", nil, env)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, p, "http://"+adminAddr+bridge.PathReadyz); err != nil {
		_ = p.stop(syscall.SIGKILL, stopGrace)
		return nil, err
	}
	return p, nil
}

// waitReady polls a readiness URL until it answers 200.
func waitReady(ctx context.Context, p *proc, url string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before it was ready", p.name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within %v", p.name, url, startTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startWorker runs one more worker against the sandbox and waits until it says it is starting to poll.
func (s *stack) startWorker(ctx context.Context) (*proc, error) {
	env := append(s.temporalEnv(), "LOG_LEVEL=debug") // the most a worker ever logs is what the scan reads
	env = append(env, "WORKER_RECONCILE_EVERY=2s")    // dropped balance webhooks are read back within seconds
	env = append(env, s.sandboxVars("CONNECT_API_URL", "CONNECT_CLIENT_ID", "CONNECT_CLIENT_SECRET",
		"CONNECT_ORGANIZATION_ID", "ZEROHASH_API_URL", "ZEROHASH_API_KEY", "ZEROHASH_API_SECRET", "ZEROHASH_PASSPHRASE")...)
	// The worker reaches the sandbox through the tap, so the audience it would derive from CONNECT_API_URL is the
	// tap's: name the sandbox's own, as an organization behind a proxy would.
	env = append(env, "CONNECT_AUDIENCE="+s.sandboxURL)
	env = append(env, s.platformEnv...) // notifications to the chaos platform (platform.go)
	p, err := s.start("worker", nil, env)
	if err != nil {
		return nil, err
	}
	if _, err := p.waitLine(ctx, "worker starting", startTimeout); err != nil {
		_ = p.stop(syscall.SIGKILL, stopGrace)
		return nil, err
	}
	return p, nil
}

// stopAll stops every running part, bridge and workers before the sandbox and Temporal.
func (s *stack) stopAll() error {
	s.mu.Lock()
	parts := append([]*proc{s.bridge}, s.workers...)
	if s.cluster != nil {
		parts = append(parts, s.cluster.bridges...)
	}
	parts = append(parts, s.sandbox)
	s.mu.Unlock()
	parts = append(parts, s.temporalProcs()...)
	var problems []error
	for _, p := range parts {
		if p == nil {
			continue
		}
		if err := p.stop(syscall.SIGTERM, stopGrace); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// crashes lists every process that exited without the suite signalling it.
func (s *stack) crashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.all {
		if p.exited() && !p.expected.Load() {
			out = append(out, fmt.Sprintf("%s exited by itself: %v", p.name, p.err))
		}
	}
	return out
}
