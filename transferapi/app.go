package transferapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
)

// The API's HTTP server, the same wherever it runs (`starter serve`, `go run ./dev`), has cmdmain.NewHTTPServer's
// timeouts and these.
const (
	// WriteSlack is added to RequestTimeout + TemporalTimeout for the write timeout: a start may wait
	// RequestTimeout, then a health check, and the answer must still get out.
	WriteSlack = 30 * time.Second
	// ShutdownTimeout lets requests in flight finish after the context ends (SIGINT or SIGTERM).
	ShutdownTimeout = 10 * time.Second
)

// command is `starter serve` for cmdmain.Main.
var command = cmdmain.Command[*Settings]{Name: "starter serve", Service: "connectflow-api", Load: LoadSettings, Run: Run}

// Main is `starter serve`: it loads the settings from args and env and serves until SIGINT or SIGTERM (or ctx
// ends). It returns the exit status: 0 after a signal, 1 when it cannot serve, 2 for a bad setting.
func Main(ctx context.Context, args []string, env settings.Env, stderr io.Writer) int {
	return cmdmain.Main(ctx, command, args, env, stderr)
}

// AppOptions are what NewApp takes besides the settings and the client options.
type AppOptions struct {
	// Existing, when set, is a client whose connection the API's own client shares (client.NewClientFromExisting),
	// for a process that already holds one; nil makes a lazy client: the API starts while Temporal is down,
	// answers 503 with Retry-After meanwhile, and /readyz says why.
	Existing client.Client
	// Logger gets the API's request lines and the App's start line; default slog.Default().
	Logger *slog.Logger
	// Registry takes the API's metrics (Options.Registry); nil: a new one with the Go and process collectors.
	Registry *prometheus.Registry
}

// App is the transfer API with its HTTP server and Temporal client, built but not yet serving.
type App struct {
	st      *Settings
	opts    client.Options
	log     *slog.Logger
	srv     *http.Server
	closers []func()
	tokens  int
	jwtOn   bool
}

// NewApp builds the transfer API from st: its own Temporal client from opts (with CallerPropagator added, so the
// caller is recorded in history), the JWKS when st.JWKSURL is set, the authenticator and the HTTP server. Close
// it when Serve is never called.
func NewApp(ctx context.Context, st *Settings, opts client.Options, ao AppOptions) (_ *App, err error) {
	a := &App{st: st, log: cmp.Or(ao.Logger, slog.Default()), tokens: len(st.Tokens), jwtOn: st.JWKSURL != ""}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	opts.ContextPropagators = append(opts.ContextPropagators, CallerPropagator())
	var c client.Client
	if ao.Existing != nil {
		c, err = client.NewClientFromExisting(ao.Existing, opts)
	} else {
		c, err = client.NewLazyClient(opts)
	}
	if err != nil {
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	a.closers = append(a.closers, c.Close)
	a.opts = opts
	var jwtCfg *JWTConfig
	var ready []func(context.Context) error
	if st.JWKSURL != "" {
		jwks, err := NewJWKS(ctx, st.JWKSURL, nil, a.log)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, jwks.Close)
		jwtCfg = &JWTConfig{Keyfunc: jwks.Keyfunc, Issuer: st.JWTIssuer, Audience: st.JWTAudience}
		ready = append(ready, jwks.Ready)
	}
	auth, err := NewAuthenticator(st.Tokens, jwtCfg)
	if err != nil {
		return nil, err
	}
	srv, err := New(Options{Temporal: c, TaskQueue: st.Temporal.TaskQueue, DataConverter: opts.DataConverter,
		Auth: auth, ReadyChecks: ready, RequestTimeout: st.RequestTimeout, TemporalTimeout: st.TemporalTimeout,
		Logger: a.log, Registry: ao.Registry})
	if err != nil {
		return nil, err
	}
	a.srv = cmdmain.NewHTTPServer(srv.Handler(),
		cmp.Or(st.RequestTimeout, DefaultRequestTimeout)+cmp.Or(st.TemporalTimeout, DefaultTemporalTimeout)+WriteSlack, a.log)
	return a, nil
}

// Listen opens the listener of Settings.Addr; an error names the setting.
func (a *App) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", a.st.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", a.st.Addr, EnvAddr, err)
	}
	return ln, nil
}

// Serve serves the API on ln until ctx ends or ln fails, then lets requests in flight finish (at most
// ShutdownTimeout) and closes the App. It returns nil after a clean stop.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	defer a.Close()
	a.log.Info("transfer API serving", "addr", ln.Addr().String(), "temporal", settings.HostPort(a.opts),
		"namespace", a.opts.Namespace, "task_queue", a.st.Temporal.TaskQueue, "tokens", a.tokens, "jwt", a.jwtOn)
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(ln) }()
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := a.srv.Shutdown(sctx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("shutdown: %w", err))
	}
	return serveErr
}

// Close closes the App's Temporal client and JWKS; Serve does it itself. It may be called more than once.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Run is `starter serve` once its settings are loaded: the App on a lazy Temporal client from opts, its
// listener, and Serve until ctx ends.
func Run(ctx context.Context, st *Settings, opts client.Options, logger *slog.Logger) error {
	a, err := NewApp(ctx, st, opts, AppOptions{Logger: logger})
	if err != nil {
		return err
	}
	ln, err := a.Listen()
	if err != nil {
		a.Close()
		return err
	}
	return a.Serve(ctx, ln)
}
