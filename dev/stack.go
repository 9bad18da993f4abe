package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/dev/embedded"
	"github.com/connectflow/connectflow/internal/bridgeapp"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/workflows"
)

const (
	// stopTimeout bounds how long the bridge and the metrics server may take to finish requests in flight.
	stopTimeout = 10 * time.Second
	// readyTimeout bounds the wait for the bridge to hold the sandbox's keys and reach Temporal.
	readyTimeout = 30 * time.Second
	// dirMode keeps the data folder private: it holds every transfer's history.
	dirMode = 0o700
)

// part is one started piece of the stack and how to stop it.
type part struct {
	name string
	stop func() error
}

// stack is everything the command runs; start fills it in order, stop empties it in reverse.
type stack struct {
	cfg        config
	log        *slog.Logger
	parts      []part
	server     *embedded.Server
	client     client.Client
	metrics    *workerapp.Metrics
	sandbox    *connecttest.Server
	bridgeURL  string
	metricsURL string
	codecURL   string // empty without payload encryption
	// devCodecKeys is the payload key the stack made or found in its data folder (CONNECTFLOW_CODEC_KEYS text);
	// empty when the keys came from the shell.
	devCodecKeys string
	codecToken   string
	// platform is the demo platform receiving the worker's notifications (platform.go).
	platform       *platformtest.Receiver
	platformSecret string // the demo platform's whsec_ secret, made before the sandbox starts
	platformURL    string
	apiURL         string // the transfer API (api.go)
	apiToken       string // its bearer token, made for this run
	env            []envGroup
}

// envGroup is a block of the environment the banner prints for other processes.
type envGroup struct {
	title string // which binaries read these, e.g. "worker"
	vars  []envVar
}

type envVar struct{ name, value string }

// Titles of the env groups: which binaries read the variables.
const (
	temporalGroup = "starter, worker and webhookbridge"
	workerGroup   = "worker"
	bridgeGroup   = "webhookbridge"
)

// appendEnv adds v to the group titled title.
func (s *stack) appendEnv(title string, v envVar) {
	for i := range s.env {
		if s.env[i].title == title {
			s.env[i].vars = append(s.env[i].vars, v)
			return
		}
	}
	s.env = append(s.env, envGroup{title: title, vars: []envVar{v}})
}

// lookup returns the value of a variable in any group.
func lookup(groups []envGroup, name string) (string, bool) {
	for _, g := range groups {
		for _, v := range g.vars {
			if v.name == name {
				return v.value, true
			}
		}
	}
	return "", false
}

// startStack starts every part the configuration asks for; on failure it stops those already running.
func startStack(ctx context.Context, cfg config, log *slog.Logger, serverLog *slog.Logger) (*stack, error) {
	s := &stack{cfg: cfg, log: log}
	if err := s.start(ctx, serverLog); err != nil {
		if stopErr := s.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return s, nil
}

// start brings the parts up in the order they need each other; stop takes them down in reverse, so the bridge
// stops before the worker, the worker before the sandbox, and Temporal last.
func (s *stack) start(ctx context.Context, serverLog *slog.Logger) error {
	if err := s.startTemporal(ctx, serverLog); err != nil {
		return err
	}
	if s.cfg.serverOnly {
		return nil
	}
	if err := s.newPlatform(); err != nil {
		return err
	}
	if err := s.startSandbox(); err != nil {
		return err
	}
	if err := s.startPlatform(); err != nil {
		return err
	}
	if err := s.startWorker(); err != nil {
		return err
	}
	if err := s.startAPI(); err != nil {
		return err
	}
	if err := s.startBridge(ctx); err != nil {
		return err
	}
	return s.sandbox.SetWebhookURLs(s.bridgeURL+bridge.PathConnectDeposits,
		s.bridgeURL+bridge.PathConnectWithdrawals, s.bridgeURL+bridge.PathZeroHashBalances)
}

func (s *stack) add(name string, stop func() error) { s.parts = append(s.parts, part{name, stop}) }

// stop stops every started part, last started first, and reports each failure by name.
func (s *stack) stop() error {
	var problems []error
	for i := len(s.parts) - 1; i >= 0; i-- {
		p := s.parts[i]
		s.log.Debug("stopping", "part", p.name)
		if err := p.stop(); err != nil {
			problems = append(problems, fmt.Errorf("stop %s: %w", p.name, err))
		}
	}
	s.parts = nil
	return errors.Join(problems...)
}

func (s *stack) startTemporal(ctx context.Context, serverLog *slog.Logger) error {
	if !s.cfg.memory && s.cfg.cluster.postgres == "" {
		if err := os.MkdirAll(s.cfg.dataDir, dirMode); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
		unlock, err := lockDataDir(s.cfg.dataDir)
		if err != nil {
			return err
		}
		s.add("data folder lock", unlock)
	}
	if len(s.cfg.codecKeys) == 0 {
		// Encrypted by default: session JWTs and emails never sit in the dev history in clear.
		keys, text, err := devCodecKeys(s.cfg)
		if err != nil {
			return err
		}
		s.cfg.codecKeys, s.devCodecKeys = keys, text
	}
	attrs := map[string]enumspb.IndexedValueType{}
	for _, name := range workflows.SearchAttributeNames {
		attrs[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	// The codec server's address goes into the UI's settings, so it listens before the UI starts.
	var codecLn net.Listener
	if len(s.cfg.codecKeys) > 0 {
		ln, err := net.Listen("tcp", hostPort(s.cfg.ip, s.cfg.codecPort))
		if err != nil {
			return fmt.Errorf("codec server: %w", err)
		}
		codecLn = ln
		s.codecURL = "http://" + hostPort(embedded.BrowserHost(s.cfg.ip), ln.Addr().(*net.TCPAddr).Port)
	}
	srv, err := embedded.Start(ctx, embedded.Options{
		IP:               s.cfg.ip,
		FrontendPort:     s.cfg.temporalPort,
		UIPort:           s.cfg.uiPort,
		DatabaseFile:     s.cfg.databaseFile(),
		SearchAttributes: attrs,
		// A search attribute added to an existing data folder is usable at once; fine for one dev server. A cluster
		// node runs compose's settings only (embedded.ClusterDynamicConfig).
		DynamicConfig:   s.devDynamicConfig(),
		UICodecEndpoint: s.codecURL,
		Logger:          serverLog,
		Postgres:        s.cfg.cluster.options(),
	})
	if err != nil {
		if codecLn != nil {
			_ = codecLn.Close() // never served
		}
		return err
	}
	s.server = srv
	s.add("Temporal server and UI", srv.Stop)
	if codecLn != nil {
		if err := s.serveCodec(codecLn); err != nil {
			return err
		}
	}

	opts := client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(),
		Logger: sdklog.NewStructuredLogger(s.log.With("part", "sdk"))}
	if !s.cfg.serverOnly {
		m := workerapp.NewMetrics(s.log.With("part", "metrics"))
		s.metrics = m
		s.add("metrics reporter", m.Close)
		opts.MetricsHandler = m.Handler
	}
	// Worker, bridge and demo share this client, so they encrypt with the keys every other process is given.
	if err := codec.Apply(&opts, s.cfg.codecKeys); err != nil {
		return fmt.Errorf("payload encryption: %w", err)
	}
	if err := telemetry.AddTemporal(&opts); err != nil { // traced when OTEL_* says so (docs/tracing.md)
		return err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("reach the embedded Temporal at %s: %w", srv.FrontendAddr(), err)
	}
	s.client = c
	s.add("Temporal client", func() error { c.Close(); return nil })
	// A data folder made before an attribute existed gets it here; a new one has them all already.
	if err := workerapp.RegisterSearchAttributes(ctx, c, srv.Namespace()); err != nil {
		return err
	}
	if s.metrics != nil {
		watch, stop := context.WithCancel(context.Background())
		s.add("visibility gauges", func() error { stop(); return nil })
		s.metrics.WatchVisibility(watch, c, workerapp.VisibilityOptions{})
	}
	s.env = []envGroup{{title: temporalGroup, vars: []envVar{
		{settings.EnvTemporalAddress, srv.FrontendAddr()},
		{settings.EnvTemporalNamespace, srv.Namespace()},
		{settings.EnvTemporalTaskQueue, workflows.DefaultTaskQueue},
	}}}
	if s.devCodecKeys != "" {
		// The stack's own key (a dev key for dev data), printed so other processes read and write the same payloads.
		s.appendEnv(temporalGroup, envVar{codec.EnvKeys, s.devCodecKeys})
	}
	return nil
}

// serveCodec serves the codec server the UI decrypts payloads through, for the UI's origin only, behind a token
// made for this run.
func (s *stack) serveCodec(ln net.Listener) error {
	ui, err := url.Parse(s.server.UIURL())
	if err != nil {
		_ = ln.Close() // never served
		return fmt.Errorf("codec server: UI URL: %w", err)
	}
	origins := []string{s.server.UIURL(), "http://" + hostPort(dialHost(s.cfg.ip), portOf(ui))}
	s.codecToken = rand.Text()
	h, err := codec.Handler(s.cfg.codecKeys, s.codecToken, origins)
	if err != nil {
		_ = ln.Close() // never served
		return err
	}
	log := s.log.With("part", "codec")
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("codec server stopped serving", "err", err)
		}
	}()
	s.add("codec server", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	return nil
}

func portOf(u *url.URL) int {
	port, _ := strconv.Atoi(u.Port()) // the UI's URL always names its port
	return port
}

func (s *stack) startSandbox() error {
	sb, err := connecttest.New(connecttest.Options{
		Addr:          hostPort(s.cfg.ip, s.cfg.sandboxPort),
		AutoPlay:      s.cfg.autoPlay(),
		AutoPlayAfter: s.cfg.pace,
		Logger:        s.log.With("part", "sandbox"),
		// The sandbox's control API also drives the demo platform, to watch redelivery from one place.
		ControlRoutes: map[string]http.Handler{"POST " + sandboxPlatformFaultsPath: http.HandlerFunc(s.serveFaults)},
	})
	if err != nil {
		return fmt.Errorf("Connect sandbox: %w", err)
	}
	s.sandbox = sb
	s.add("Connect sandbox", func() error { sb.Close(); return nil })
	worker, bridgeVars, err := splitSandboxEnv(sb.Env())
	if err != nil {
		return err
	}
	s.env = append(s.env, envGroup{title: workerGroup, vars: worker}, envGroup{title: bridgeGroup, vars: bridgeVars})
	return nil
}

// workerEnv lists the sandbox's variables the worker reads; the rest are the bridge's.
var workerEnv = map[string]bool{
	workerapp.EnvConnectAPIURL: true, workerapp.EnvConnectClientID: true, workerapp.EnvConnectClientSecret: true,
	workerapp.EnvConnectOrganizationID: true,
	workerapp.EnvZeroHashAPIURL:        true, workerapp.EnvZeroHashAPIKey: true, workerapp.EnvZeroHashAPISecret: true,
	workerapp.EnvZeroHashPassphrase: true,
}

var bridgeEnv = map[string]bool{bridgeapp.EnvConnectJWKSURL: true, bridgeapp.EnvZeroHashWebhookSecret: true}

// splitSandboxEnv sorts the sandbox's KEY=value lines into the worker's and the bridge's. A line neither reads
// is an error: the sandbox and this command have drifted apart.
func splitSandboxEnv(lines []string) (worker, bridgeVars []envVar, err error) {
	for _, line := range lines {
		name, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("sandbox environment line without '=' (%d bytes)", len(line))
		case workerEnv[name]:
			worker = append(worker, envVar{name, value})
		case bridgeEnv[name]:
			bridgeVars = append(bridgeVars, envVar{name, value})
		default:
			return nil, nil, fmt.Errorf("sandbox environment has %s, which neither the worker nor the bridge reads", name)
		}
	}
	if len(worker) != len(workerEnv) || len(bridgeVars) != len(bridgeEnv) {
		return nil, nil, fmt.Errorf("sandbox environment has %d of the worker's %d and %d of the bridge's %d variables",
			len(worker), len(workerEnv), len(bridgeVars), len(bridgeEnv))
	}
	return worker, bridgeVars, nil
}

// startWorker runs the worker configured exactly as `go run ./worker` would be with the printed environment.
func (s *stack) startWorker() error {
	var usage strings.Builder
	st, err := workerapp.LoadSettings(nil, s.envOf(), &usage)
	if err != nil {
		return fmt.Errorf("worker settings from the sandbox: %w", err)
	}
	ln, err := net.Listen("tcp", hostPort(s.cfg.ip, s.cfg.metricsPort))
	if err != nil {
		return fmt.Errorf("worker metrics: %w", err)
	}
	s.metricsURL = "http://" + dialAddr(ln.Addr()) + workerapp.MetricsPath
	metricsSrv := s.metrics.Serve(ln)
	s.add("worker metrics", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return metricsSrv.Shutdown(ctx)
	})
	w, err := workerapp.New(s.client, st.Worker, s.log.With("part", "worker"))
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	s.add("worker", func() error { w.Stop(); return nil })
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := workerapp.EnsureReconcileSchedule(ctx, s.client, st.Worker); err != nil {
		return fmt.Errorf("reconciliation schedule: %w", err)
	}
	return nil
}

// startBridge runs the webhook bridge assembled by bridgeapp as `go run ./webhookbridge` assembles it, from the
// environment the banner prints for it (Temporal's and the bridge's groups), on the stack's Temporal client. It
// has no admin port: the stack waits for its readiness here.
func (s *stack) startBridge(ctx context.Context) error {
	ln, err := net.Listen("tcp", hostPort(s.cfg.ip, s.cfg.bridgePort))
	if err != nil {
		return fmt.Errorf("webhook bridge: %w", err)
	}
	s.bridgeURL = "http://" + dialAddr(ln.Addr())
	s.appendEnv(bridgeGroup, envVar{bridgeapp.EnvPublicURL, s.bridgeURL})
	st, err := bridgeapp.LoadSettings(nil, s.envOf(temporalGroup, bridgeGroup), io.Discard)
	if err != nil {
		_ = ln.Close() // never served
		return fmt.Errorf("webhook bridge settings from the sandbox: %w", err)
	}
	app, err := bridgeapp.New(context.Background(), st, bridgeapp.Options{Temporal: s.client,
		Logger: s.log.With("part", "bridge"), Registerer: prometheus.NewRegistry()})
	if err != nil {
		_ = ln.Close() // never served
		return err
	}
	s.serve("webhook bridge", func(ctx context.Context) error { return app.Serve(ctx, ln, nil) })
	return waitReady(ctx, app.Bridge)
}

// serve runs a part that serves until its context ends and then drains (bridgeapp's and transferapi's Serve);
// stopping it ends that context and waits for the drain. A part that stops serving by itself is logged at once.
func (s *stack) serve(name string, serve func(ctx context.Context) error) {
	s.add(name, cmdmain.Background(serve, func(err error) { s.log.Error(name+" stopped serving", "err", err) }))
}

// envOf is the environment the banner prints in the groups titled titles (every group when none is named).
func (s *stack) envOf(titles ...string) settings.MapEnv {
	env := settings.MapEnv{}
	for _, g := range s.env {
		if len(titles) > 0 && !slices.Contains(titles, g.title) {
			continue
		}
		for _, v := range g.vars {
			env[v.name] = v.value
		}
	}
	return env
}

// waitReady waits until the bridge holds the sandbox's keys and reaches Temporal.
func waitReady(ctx context.Context, b *bridge.Bridge) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return b.WaitReady(ctx)
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// dialHost is where a process on this machine reaches a service bound to ip.
func dialHost(ip string) string {
	if net.ParseIP(ip).IsUnspecified() {
		return embedded.DefaultIP
	}
	return ip
}

// dialAddr is where a process on this machine reaches a listener, naming loopback for every-interface binds.
func dialAddr(addr net.Addr) string {
	tcp := addr.(*net.TCPAddr) // every listener here is TCP
	return hostPort(dialHost(tcp.IP.String()), tcp.Port)
}
