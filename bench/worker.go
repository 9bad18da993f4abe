package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/bench/report"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/workerapp"
)

// The worker runs in a child process of this binary, so its memory is measured without the Temporal server, the
// sandbox, the bridge and the load generator that share the parent.
const (
	// envRole makes this binary the worker child; the parent sets it, nobody else should.
	envRole    = "CONNECTFLOW_BENCH_ROLE"
	roleWorker = "worker"
	// envCPUProfile names the file the worker child writes its CPU profile to.
	envCPUProfile = "CONNECTFLOW_BENCH_CPUPROFILE"
	// readyPrefix starts the one line the child prints on stdout: its stats URL.
	readyPrefix = "bench-worker-stats "
	// memoryPath answers the child's report.Memory after a forced GC.
	memoryPath = "/memory"
	// cpuPath answers the child's CPU time so far, in nanoseconds.
	cpuPath = "/cpu"
	// workerStartTimeout bounds the child's start: dial, worker start, stats listener.
	workerStartTimeout = 30 * time.Second
	// workerStopTimeout bounds the child's exit once told to stop.
	workerStopTimeout = 30 * time.Second
)

// runWorker is the child: connectflow's worker wired exactly as `go run ./worker` wires it from the environment,
// plus the ceiling's workflow and activity, plus a loopback endpoint reporting its memory. It runs until stdin
// closes, which happens when the parent stops it or dies.
func runWorker(stdin io.Reader, stdout, stderr io.Writer) int {
	st, err := workerapp.LoadSettings(nil, settings.OSEnv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench worker: settings: %v\n", err)
		return exitUsage
	}
	opts, err := st.Temporal.ClientOptions()
	if err != nil {
		fmt.Fprintf(stderr, "bench worker: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: st.LogLevel})).With("part", "worker")
	if path := os.Getenv(envCPUProfile); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "bench worker: CPU profile: %v\n", err)
			return exitFailure
		}
		defer stopProfile()
	}
	if err := serveWorker(st, opts, logger, stdin, stdout); err != nil {
		logger.Error("bench worker stopped", "err", err)
		return exitFailure
	}
	return 0
}

func serveWorker(st *workerapp.Settings, opts client.Options, logger *slog.Logger, stdin io.Reader, stdout io.Writer) error {
	opts.Logger = sdklog.NewStructuredLogger(logger)
	// SDK metrics on, as a deployed worker has them; the parent reads the sticky cache's size from them.
	metrics := workerapp.NewMetrics(logger)
	defer metrics.Close()
	opts.MetricsHandler = metrics.Handler
	ctx, cancel := context.WithTimeout(context.Background(), workerStartTimeout)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("reach Temporal at %s: %w", settings.HostPort(opts), err)
	}
	defer c.Close()
	w, err := workerapp.New(c, st.Worker, logger)
	if err != nil {
		return err
	}
	registerCeiling(w)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("stats listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+memoryPath, func(rw http.ResponseWriter, _ *http.Request) {
		m, err := memoryNow()
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(rw).Encode(m); err != nil {
			logger.Warn("write memory answer", "err", err)
		}
	})
	mux.HandleFunc("GET "+cpuPath, func(rw http.ResponseWriter, _ *http.Request) {
		cpu, err := processCPU()
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := fmt.Fprint(rw, cpu.Nanoseconds()); err != nil {
			logger.Warn("write CPU answer", "err", err)
		}
	})
	mux.Handle("GET "+workerapp.MetricsPath, metrics.HTTP)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("stats server stopped", "err", err)
		}
	}()
	defer srv.Close()
	if _, err := fmt.Fprintf(stdout, "%shttp://%s\n", readyPrefix, ln.Addr()); err != nil {
		return fmt.Errorf("announce stats URL: %w", err)
	}
	_, err = io.Copy(io.Discard, stdin) // returns when the parent closes stdin or exits
	if err != nil {
		logger.Warn("stdin", "err", err)
	}
	return nil
}

// memoryNow is this process's footprint after a GC that also returns freed pages to the OS, so RSS and heap
// describe live memory rather than how lately the collector ran.
func memoryNow() (report.Memory, error) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := residentBytes()
	return report.Memory{RSSBytes: rss, HeapBytes: ms.HeapAlloc, StackBytes: ms.StackInuse,
		Goroutines: runtime.NumGoroutine()}, err
}

// residentBytes reads VmRSS from /proc/self/status (Linux).
func residentBytes() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("VmRSS: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", strings.TrimSpace(rest), err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("VmRSS: not in /proc/self/status")
}

// workerProcess is the parent's handle on the worker child.
type workerProcess struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	statsURL string
	started  time.Time
	exited   chan error
	http     *http.Client
}

// startWorkerProcess runs this binary as the worker with env and waits for its stats URL.
func startWorkerProcess(ctx context.Context, env []string, stderr io.Writer) (*workerProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("worker process: find this binary: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(env, envRole+"="+roleWorker)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("worker process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker process: %w", err)
	}
	p := &workerProcess{cmd: cmd, stdin: stdin, started: time.Now(), exited: make(chan error, 1),
		http: &http.Client{Timeout: time.Minute}} // a GC over a large heap takes a while
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("worker process: start: %w", err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout) // the child says nothing more; keep its pipe from filling regardless
	}()
	go func() { p.exited <- cmd.Wait() }()

	timer := time.NewTimer(workerStartTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		url, found := strings.CutPrefix(line, readyPrefix)
		if ok && found {
			p.statsURL = url
			return p, nil
		}
		_ = p.Stop() // it failed to start; its stderr says why
		return nil, errors.New("worker process exited before it was ready (its log is above)")
	case <-timer.C:
		_ = p.Stop()
		return nil, fmt.Errorf("worker process not ready after %v", workerStartTimeout)
	case <-ctx.Done():
		_ = p.Stop()
		return nil, ctx.Err()
	}
}

// Memory asks the child for its footprint.
func (p *workerProcess) Memory(ctx context.Context) (report.Memory, error) {
	body, err := p.get(ctx, memoryPath, 1<<16)
	if err != nil {
		return report.Memory{}, err
	}
	var m report.Memory
	if err := json.Unmarshal(body, &m); err != nil {
		return report.Memory{}, fmt.Errorf("worker memory: %w", err)
	}
	return m, nil
}

// CPU is the CPU time the child has used so far.
func (p *workerProcess) CPU(ctx context.Context) (time.Duration, error) {
	body, err := p.get(ctx, cpuPath, 64)
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(string(body), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("worker CPU %q: %w", body, err)
	}
	return time.Duration(ns), nil
}

// stickyCacheMetric is the SDK's gauge of workflows held in the worker's sticky cache. The SDK sets it, tagged
// with the workflow type, whenever it looks a workflow up, so the transfer workflow's series is the current one.
const (
	stickyCacheMetric = "temporal_sticky_cache_size"
	transferTypeLabel = `workflow_type="TransferWorkflow"`
)

// StickyCached reads the child's sticky cache gauge, waiting out one metrics report so it is current.
func (p *workerProcess) StickyCached(ctx context.Context) (int, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(2 * workerapp.MetricsReportInterval):
	}
	body, err := p.get(ctx, workerapp.MetricsPath, 16<<20)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && strings.HasPrefix(name, stickyCacheMetric+"{") && strings.Contains(name, transferTypeLabel) {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return 0, fmt.Errorf("worker metrics: %s %q: %w", stickyCacheMetric, value, err)
			}
			return int(v), nil
		}
	}
	return 0, fmt.Errorf("worker metrics: no %s{%s}", stickyCacheMetric, transferTypeLabel)
}

// get fetches a path of the child's stats server, up to limit bytes.
func (p *workerProcess) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.statsURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("worker %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// Uptime is how long the worker has been running.
func (p *workerProcess) Uptime() time.Duration { return time.Since(p.started) }

// Stop closes the child's stdin, which stops it, and kills it if it has not exited in workerStopTimeout.
func (p *workerProcess) Stop() error {
	_ = p.stdin.Close() // closing twice is harmless; the child may have closed its end already
	select {
	case err := <-p.exited:
		p.exited <- err // a second Stop sees the same exit
		return exitError(err)
	case <-time.After(workerStopTimeout):
		if err := p.cmd.Process.Kill(); err != nil {
			return fmt.Errorf("worker process: kill: %w", err)
		}
		return fmt.Errorf("worker process: killed after not stopping in %v", workerStopTimeout)
	}
}

func exitError(err error) error {
	if err != nil {
		return fmt.Errorf("worker process: %w", err)
	}
	return nil
}
