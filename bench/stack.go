package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/bench/config"
	"github.com/connectflow/connectflow/bench/report"
	"github.com/connectflow/connectflow/bench/webhook"
	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/dev/embedded"
	"github.com/connectflow/connectflow/internal/bridgeapp"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

const (
	// connectKeyBits is the size of the sandbox's (Connect's) signing key.
	connectKeyBits = 2048
	// readyTimeout bounds the wait for the bridge to hold the sandbox's keys and reach Temporal.
	readyTimeout = 30 * time.Second
)

// stack is everything a run measures: Temporal, the Connect sandbox, the webhook bridge over loopback HTTP, the
// worker in its own process, and the clients that put load on them.
type stack struct {
	cfg       config.Config
	log       *slog.Logger
	runID     string // keeps this run's workflow ids and task queue apart from any other run's
	taskQueue string
	temporal  string // how the report names the server
	cpuScope  string // which processes CPU per operation covers: "" all of them (report.CPUScope)
	client    client.Client
	sandbox   *connecttest.Server
	signer    *webhook.Signer
	bridgeURL string
	http      *http.Client // posts webhooks to the bridge, like Connect's delivery client
	// redelivered counts webhooks sent again after the bridge answered 503.
	redelivered atomic.Int64
	worker      *workerProcess
	moreWorkers []*workerProcess // -workers beyond the first, on the same task queue
	starter     *transfer.Client
	stops       []func() error
	// temporalEnv and stderr start further worker processes (notify.go).
	temporalEnv []string
	stderr      io.Writer
	// extraWorkers counts worker processes beyond the first (each holds its own access token).
	extraWorkers int
}

// startStack brings the parts up in the order they need each other; on failure it stops what was started.
func startStack(ctx context.Context, cfg config.Config, log *slog.Logger, stderr io.Writer) (*stack, error) {
	s := &stack{cfg: cfg, log: log, runID: strings.ToLower(rand.Text()[:8])}
	s.taskQueue = "connectflow-bench-" + s.runID
	if err := s.start(ctx, stderr); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	return s, nil
}

func (s *stack) start(ctx context.Context, stderr io.Writer) error {
	temporalEnv, err := s.startTemporal(ctx)
	if err != nil {
		return err
	}
	s.temporalEnv, s.stderr = temporalEnv, stderr
	key, err := rsa.GenerateKey(rand.Reader, connectKeyBits)
	if err != nil {
		return fmt.Errorf("Connect signing key: %w", err)
	}
	sb, err := connecttest.New(connecttest.Options{SigningKey: key, TokenTTL: s.cfg.TokenTTL})
	if err != nil {
		return fmt.Errorf("Connect sandbox: %w", err)
	}
	s.sandbox = sb
	s.stops = append(s.stops, func() error { sb.Close(); return nil })
	if s.signer, err = webhook.NewSigner(key, sb.CurrentKeyID(), nil); err != nil {
		return err
	}
	if err := s.startBridge(ctx); err != nil {
		return err
	}
	if err := sb.SetWebhookURLs(s.bridgeURL+bridge.PathConnectDeposits, s.bridgeURL+bridge.PathConnectWithdrawals,
		s.bridgeURL+bridge.PathZeroHashBalances); err != nil {
		return err
	}
	s.starter = transfer.NewClient(s.client, transfer.Options{TaskQueue: s.taskQueue})
	if !s.cfg.NeedsWorker() {
		return nil
	}
	s.log.Info("starting the worker process")
	w, err := startWorkerProcess(ctx, s.workerEnv(temporalEnv), stderr)
	if err != nil {
		return err
	}
	s.worker = w
	s.stops = append(s.stops, w.Stop)
	for range s.cfg.Workers - 1 {
		more, err := startWorkerProcess(ctx, s.workerEnv(temporalEnv), stderr)
		if err != nil {
			return err
		}
		s.moreWorkers = append(s.moreWorkers, more)
		s.stops = append(s.stops, more.Stop)
	}
	return nil
}

// startTemporal dials TEMPORAL_ADDRESS with the worker's Temporal settings when it is set, else starts an
// embedded server. It returns the TEMPORAL_* environment the worker process needs to reach the same namespace.
func (s *stack) startTemporal(ctx context.Context) ([]string, error) {
	sdkLog := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	var opts client.Options
	if addr := os.Getenv(settings.EnvTemporalAddress); addr != "" {
		set := settings.New("bench", settings.Options{Env: settings.OSEnv, Output: io.Discard})
		t := settings.BindTemporal(set, s.taskQueue)
		if err := set.Parse(nil); err != nil {
			return nil, fmt.Errorf("Temporal settings: %w", err)
		}
		var err error
		if opts, err = t.ClientOptions(); err != nil {
			return nil, err
		}
		s.temporal = "external, " + settings.HostPort(opts) + " namespace " + opts.Namespace
		s.cpuScope = report.CPUScopeWithServer
		if len(s.cfg.ServerPIDs) == 0 {
			s.cpuScope = report.CPUScopeWithoutServer
		}
	} else {
		s.log.Info("starting the embedded Temporal server")
		attrs := map[string]enumspb.IndexedValueType{}
		for _, name := range workflows.SearchAttributeNames {
			attrs[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
		srv, err := embedded.Start(ctx, embedded.Options{SearchAttributes: attrs})
		if err != nil {
			return nil, err
		}
		s.stops = append(s.stops, srv.Stop)
		opts = client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace()}
		s.temporal = "embedded (dev/embedded, SQLite in memory, 1 history shard)"
	}
	opts.Logger = sdkLog
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("reach Temporal at %s: %w", settings.HostPort(opts), err)
	}
	s.client = c
	s.stops = append(s.stops, func() error { c.Close(); return nil })
	if err := workerapp.RegisterSearchAttributes(ctx, c, opts.Namespace); err != nil {
		return nil, err
	}
	if err := searchAttributesUsable(ctx, c); err != nil {
		return nil, err
	}
	return []string{
		settings.EnvTemporalAddress + "=" + settings.HostPort(opts),
		settings.EnvTemporalNamespace + "=" + opts.Namespace,
		settings.EnvTemporalTaskQueue + "=" + s.taskQueue,
	}, nil
}

// workerEnv is the worker's environment: this process's, minus every setting the worker reads, plus the ones this
// run gives it. With an external Temporal its TEMPORAL_* and codec settings (API key, TLS, payload keys) carry over.
func (s *stack) workerEnv(temporalEnv []string) []string {
	external := os.Getenv(settings.EnvTemporalAddress) != ""
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		ours := strings.HasPrefix(name, "CONNECT_") || strings.HasPrefix(name, "ZEROHASH_") ||
			strings.HasPrefix(name, "TEMPORAL_") || strings.HasPrefix(name, "CONNECTFLOW_") ||
			strings.HasPrefix(name, "WORKER_") || // unversioned: nothing would make a bench version current
			name == workerapp.EnvLogLevel || workerapp.Aliases[name] != "" // WORKER_* above, and their old names
		keep := external && (strings.HasPrefix(name, "TEMPORAL_") || strings.HasPrefix(name, "CONNECTFLOW_CODEC_"))
		if !ours || keep {
			env = append(env, kv)
		}
	}
	if s.cfg.CPUProfile != "" {
		env = append(env, envCPUProfile+"="+filepath.Join(s.cfg.CPUProfile, "worker.pprof"))
	}
	env = append(env, temporalEnv...)
	if !external {
		// The embedded server's client here has no codec: the worker runs plaintext too, and says so.
		env = append(env, settings.EnvCodecPlaintext+"=true")
	}
	env = append(env, s.sandbox.Env()...)
	return append(env,
		workerapp.EnvRegisterSearchAttributes+"=false", // done once above
		workerapp.EnvLogLevel+"=warn",
	)
}

// startBridge serves the webhook bridge on loopback assembled by bridgeapp as `go run ./webhookbridge` assembles
// it, verifying signature and JWT against the sandbox's JWKS and logging one JSON line per request (formatted,
// then dropped). It has no admin port: the run waits for its readiness here.
func (s *stack) startBridge(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("webhook bridge: %w", err)
	}
	s.bridgeURL = "http://" + ln.Addr().String()
	st, err := bridgeapp.LoadSettings(nil, settings.MapEnv{
		bridgeapp.EnvPublicURL:             s.bridgeURL,
		bridgeapp.EnvConnectJWKSURL:        s.sandbox.URL + "/api/v1/jwks",
		bridgeapp.EnvZeroHashWebhookSecret: connecttest.DefaultWebhookSecret,
		settings.EnvTemporalTaskQueue:      s.taskQueue,
	}, io.Discard)
	if err != nil {
		_ = ln.Close() // never served
		return fmt.Errorf("webhook bridge settings: %w", err)
	}
	app, err := bridgeapp.New(context.Background(), st, bridgeapp.Options{Temporal: s.client,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		_ = ln.Close() // never served
		return err
	}
	s.stops = append(s.stops, cmdmain.Background(func(ctx context.Context) error { return app.Serve(ctx, ln, nil) },
		func(err error) { s.log.Error("webhook bridge stopped serving", "err", err) }))
	// One pooled connection per concurrent sender, reused across webhooks, as a delivery service keeps them.
	s.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConns: s.cfg.Concurrency * 2, MaxIdleConnsPerHost: s.cfg.Concurrency * 2, IdleConnTimeout: time.Minute,
	}}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return app.Bridge.WaitReady(readyCtx)
}

// stop stops every started part, last started first.
func (s *stack) stop() error {
	var problems []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		if err := s.stops[i](); err != nil {
			problems = append(problems, err)
		}
	}
	s.stops = nil
	return errors.Join(problems...)
}

// cpu is the CPU time this run's processes (this one, the workers, and an external server's given by
// -server-pids) have used so far; 0 when it cannot be read, which leaves CPU per operation out of the report
// rather than failing the run.
func (s *stack) cpu(ctx context.Context) time.Duration {
	self, err := processCPU()
	if err != nil {
		return 0
	}
	for _, pid := range s.cfg.ServerPIDs {
		server, err := otherProcessCPU(pid)
		if err != nil {
			s.log.Warn("server CPU time", "err", err)
			return 0
		}
		self += server
	}
	if s.worker == nil {
		return self
	}
	worker, err := s.worker.CPU(ctx)
	if err != nil {
		s.log.Warn("worker CPU time", "err", err)
		return 0
	}
	for _, w := range s.moreWorkers {
		more, err := w.CPU(ctx)
		if err != nil {
			s.log.Warn("worker CPU time", "err", err)
			return 0
		}
		worker += more
	}
	return self + worker
}

// Settling: after a burst the server keeps working for a while (visibility updates, transfer and timer tasks).
// settle waits until this run's processes are nearly idle, so no round starts inside another's tail.
const (
	settleWindow = 250 * time.Millisecond
	settleIdle   = settleWindow / 20 // 5% of one CPU
	settleMax    = time.Minute
)

// settle waits until this run's processes use under 5% of a CPU over a window, at most settleMax, and says how
// long it waited.
func (s *stack) settle(ctx context.Context) time.Duration {
	start := time.Now()
	for time.Since(start) < settleMax {
		before := s.cpu(ctx)
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(settleWindow):
		}
		if after := s.cpu(ctx); before == 0 || after-before < settleIdle {
			return time.Since(start)
		}
	}
	s.log.Warn("the run's processes are still busy; measuring anyway", "waited", settleMax)
	return time.Since(start)
}

// searchAttributesUsable waits until the frontend takes a query naming every connectflow search attribute: on a
// fresh cluster the namespace's new attributes reach each node's namespace cache some seconds after they are
// added, and a start that names one before then fails ("no mapping defined for search attribute").
func searchAttributesUsable(ctx context.Context, c client.Client) error {
	var q []string
	for _, name := range workflows.SearchAttributeNames {
		q = append(q, name+" = 'bench-probe'")
	}
	query := strings.Join(q, " AND ")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("search attributes still unusable after 2 minutes: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
