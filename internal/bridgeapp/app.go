// Package bridgeapp assembles the webhook bridge process, the one way every caller builds it: LoadSettings reads
// its settings, New builds the bridge (package bridge) and its two HTTP servers with one set of timeouts, and
// (*App).Serve serves them until its context ends, then drains. Run does all of it for `webhookbridge`; `go run
// ./dev` and `go run ./bench` call New and Serve with a Temporal client of their own.
package bridgeapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/workflows"
)

// The bridge's HTTP servers, the same wherever it runs, have cmdmain.NewHTTPServer's timeouts and these.
const (
	// WriteTimeout bounds an answer on the admin port; the public port adds 4 × Settings.TemporalTimeout, since a
	// request makes a few bounded Temporal calls before it answers.
	WriteTimeout = 30 * time.Second
	// DrainTimeout bounds how long Serve waits for requests in flight after its context ends (each is bounded by
	// the Temporal timeout).
	DrainTimeout = 30 * time.Second
)

// Options are what New takes besides the settings.
type Options struct {
	// Temporal signals and starts the workflows: a client.Client. Required.
	Temporal bridge.Temporal
	// Keys supplies Connect's public keys; nil fetches Settings.JWKSURL (bridge.NewJWKSKeys), refreshed until
	// ctx ends or the App is closed.
	Keys bridge.KeySource
	// Logger gets the bridge's request lines and the App's start and stop lines; default slog.Default().
	Logger *slog.Logger
	// Registerer takes the bridge's metrics, served on the admin port when it is also a prometheus.Gatherer; nil
	// makes a registry with the Go runtime, process and payload-codec collectors, as the webhookbridge serves.
	Registerer prometheus.Registerer
}

// App is the webhook bridge with its public and admin HTTP servers, built but not yet serving.
type App struct {
	// Bridge is the handler and its readiness (Bridge.WaitReady for a process that starts it beside Temporal).
	Bridge *bridge.Bridge
	st     *Settings
	log    *slog.Logger
	// taskQueue is where review workflows start (Settings.Temporal's, else workflows.DefaultTaskQueue).
	taskQueue string
	public    *http.Server // webhook and SDK routes, /healthz
	admin     *http.Server // /readyz, /metrics, /healthz
}

// New builds the bridge from st and opts. It makes no network call but the first JWKS fetch when Options.Keys is
// nil (a JWKS down now only fails readiness). Close it when Serve is never called.
func New(ctx context.Context, st *Settings, opts Options) (*App, error) {
	log := cmp.Or(opts.Logger, slog.Default())
	keys := opts.Keys
	if keys == nil {
		k, err := bridge.NewJWKSKeys(ctx, st.JWKSURL, bridge.JWKSOptions{Logger: log})
		if err != nil {
			return nil, err
		}
		keys = k
	}
	reg := opts.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		r.MustRegister(codec.Collectors()...) // payloads whose encryption does not match this process's
		reg = r
	}
	taskQueue := workflows.DefaultTaskQueue
	if st.Temporal != nil {
		taskQueue = cmp.Or(st.Temporal.TaskQueue, taskQueue)
	}
	b, err := bridge.New(bridge.Options{
		Temporal: opts.Temporal, TaskQueue: taskQueue, PublicURL: st.PublicURL, Auth: st.Auth,
		ConnectClientID: st.ConnectClientID, Tolerance: st.Tolerance, MaxBody: st.MaxBody, Keys: keys,
		OrganizationID: st.OrganizationID, ZeroHashWebhookSecret: st.ZeroHashWebhookSecret,
		ZeroHashWebhookPublicKey: st.ZeroHashWebhookPublicKey, ZeroHashRequireTimestamp: st.ZeroHashRequireTimestamp,
		ZeroHashTolerance: st.ZeroHashTolerance, TemporalTimeout: st.TemporalTimeout, Logger: log, Registerer: reg,
	})
	if err != nil {
		if c, ok := keys.(interface{ Close() }); ok && opts.Keys == nil {
			c.Close()
		}
		return nil, err
	}
	temporalTimeout := cmp.Or(st.TemporalTimeout, bridge.DefaultTemporalTimeout)
	return &App{Bridge: b, st: st, log: log, taskQueue: taskQueue,
		public: cmdmain.NewHTTPServer(b.Handler(), WriteTimeout+4*temporalTimeout, log),
		admin:  cmdmain.NewHTTPServer(b.AdminHandler(), WriteTimeout, log),
	}, nil
}

// Listen opens the listeners of Settings.Addr and Settings.AdminAddr; an error names the setting.
func (a *App) Listen() (public, admin net.Listener, err error) {
	public, err = net.Listen("tcp", a.st.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s (%s): %w", a.st.Addr, EnvAddr, err)
	}
	admin, err = net.Listen("tcp", a.st.AdminAddr)
	if err != nil {
		_ = public.Close() // never served
		return nil, nil, fmt.Errorf("listen on %s (%s): %w", a.st.AdminAddr, EnvAdminAddr, err)
	}
	return public, admin, nil
}

// Serve serves the public port on public and the admin port on admin (nil: no admin port) until ctx ends or a
// listener fails. Then it closes the bridge (readiness fails, so a load balancer drains it) and lets requests in
// flight finish, for at most DrainTimeout. It returns nil after a clean stop.
func (a *App) Serve(ctx context.Context, public, admin net.Listener) error {
	served := make(chan error, 2)
	go func() { served <- a.public.Serve(public) }()
	adminAddr := ""
	if admin != nil {
		adminAddr = admin.Addr().String()
		go func() { served <- a.admin.Serve(admin) }()
	}
	a.log.Info("webhookbridge listening", "addr", public.Addr().String(), "admin_addr", adminAddr,
		"public_url", a.st.PublicURL, "auth", string(cmp.Or(a.st.Auth, bridge.AuthSignature)),
		"task_queue", a.taskQueue, "zerohash_webhooks", a.st.zeroHashSchemes())
	if a.st.ZeroHashWebhookSecret == "" && a.st.ZeroHashWebhookPublicKey == nil {
		a.log.Warn("Zero Hash balance webhooks are not configured: " + bridge.PathZeroHashBalances +
			" answers 404 not_configured; set " + EnvZeroHashWebhookSecret + " or " + EnvZeroHashWebhookPublicKey + " to take them")
	}
	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("webhookbridge draining requests in flight")
	a.Bridge.Close()
	drainCtx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	if err := a.public.Shutdown(drainCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("drain: %w", err))
	}
	if err := a.admin.Shutdown(drainCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("drain admin: %w", err))
	}
	if serveErr != nil {
		return serveErr
	}
	a.log.Info("webhookbridge stopped")
	return nil
}

// Close closes the bridge (and the key source it fetches) without serving; Serve does it itself.
func (a *App) Close() { a.Bridge.Close() }

// Run is the webhookbridge process: a lazy Temporal client from opts (a Temporal down at start fails /readyz and
// answers 503; it does not stop the process), the App, both listeners, and Serve until ctx ends.
func Run(ctx context.Context, st *Settings, opts client.Options, logger *slog.Logger) error {
	tc, err := client.NewLazyClient(opts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()
	app, err := New(ctx, st, Options{Temporal: tc, Logger: logger})
	if err != nil {
		return err
	}
	defer app.Close()
	public, admin, err := app.Listen()
	if err != nil {
		return err
	}
	return app.Serve(ctx, public, admin)
}
