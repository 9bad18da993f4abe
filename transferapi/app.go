package transferapi

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
)

// Exit statuses of Main, the starter command's.
const (
	exitFailure = 1
	exitUsage   = 2
	// shutdownTimeout lets requests in flight finish after SIGINT or SIGTERM.
	shutdownTimeout = 10 * time.Second
)

// Main is `starter serve`: it loads the settings from args and env and serves until SIGINT or SIGTERM (or ctx
// ends). It returns the exit status: 0 after a signal, 1 when it cannot serve, 2 for a bad setting.
func Main(ctx context.Context, args []string, env settings.Env, stderr io.Writer) int {
	defer otelsetup.Main("connectflow-api", stderr)() // tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/tracing.md)
	st, err := LoadSettings(args, env, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, settings.ErrUsage):
		return exitUsage // already printed with the usage
	case err != nil:
		printLines(stderr, err)
		return exitUsage
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: st.LogLevel}))
	st.Temporal.Logger = logger
	opts, err := st.Temporal.ClientOptions()
	if err != nil {
		printLines(stderr, err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", st.Addr)
	if err != nil {
		logger.Error("transfer API cannot listen", "addr", st.Addr, "error", err)
		return exitFailure
	}
	if err := Run(ctx, st, opts, ln, logger); err != nil {
		logger.Error("transfer API stopped", "error", err)
		return exitFailure
	}
	return 0
}

// Run serves the transfer API on ln until ctx ends, then drains requests in flight. The Temporal client is lazy:
// the API starts while Temporal is down, answers 503 with Retry-After meanwhile, and /readyz says why.
func Run(ctx context.Context, st *Settings, opts client.Options, ln net.Listener, logger *slog.Logger) error {
	opts.Logger = log.NewStructuredLogger(logger)
	opts.ContextPropagators = append(opts.ContextPropagators, CallerPropagator())
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer c.Close()
	var jwtCfg *JWTConfig
	var ready []func(context.Context) error
	if st.JWKSURL != "" {
		jwks, err := NewJWKS(ctx, st.JWKSURL, nil, logger)
		if err != nil {
			return err
		}
		defer jwks.Close()
		jwtCfg = &JWTConfig{Keyfunc: jwks.Keyfunc, Issuer: st.JWTIssuer, Audience: st.JWTAudience}
		ready = append(ready, jwks.Ready)
	}
	auth, err := NewAuthenticator(st.Tokens, jwtCfg)
	if err != nil {
		return err
	}
	srv, err := New(Options{Temporal: c, TaskQueue: st.Temporal.TaskQueue, DataConverter: opts.DataConverter,
		Auth: auth, ReadyChecks: ready, RequestTimeout: st.RequestTimeout, TemporalTimeout: st.TemporalTimeout,
		Logger: logger})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		// A start may wait RequestTimeout, then a health check: the answer must still get out.
		WriteTimeout: st.RequestTimeout + st.TemporalTimeout + 30*time.Second,
		IdleTimeout:  2 * time.Minute, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	logger.Info("transfer API serving", "addr", ln.Addr().String(), "temporal", settings.HostPort(opts),
		"namespace", opts.Namespace, "task_queue", st.Temporal.TaskQueue, "tokens", len(st.Tokens),
		"jwt", st.JWKSURL != "")
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// printLines prints each joined error on its own line.
func printLines(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintln(w, "starter serve: "+line)
	}
}
