// Package cmdmain is the start-up every long-running connectflow process shares (the worker, the webhook bridge
// and `starter serve`): load the settings, make the JSON logger, read the Temporal client options, run until
// SIGINT or SIGTERM, and turn the outcome into the exit status. What each process serves is its own package's
// (workerapp, bridgeapp, transferapi); only the boilerplate around it lives here.
package cmdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
)

// Exit statuses of Main.
const (
	ExitOK      = 0
	ExitFailure = 1 // the process could not run, or stopped on an error
	ExitUsage   = 2 // a missing or malformed setting, or bad command-line syntax
)

// Settings is what Main needs of a process's settings: how it reaches Temporal and its log level.
type Settings interface {
	TemporalSettings() *settings.Temporal
	Level() slog.Level
}

// Command is one long-running process as Main runs it. S is its settings type.
type Command[S Settings] struct {
	// Service is the OpenTelemetry service name of the process's spans ("connectflow-worker"); tracing is on only
	// when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set (docs/tracing.md).
	Service string
	// Name prefixes each bad-setting line on stderr ("worker: CONNECT_API_URL ...") and names the process in the
	// log line of a failure ("worker stopped").
	Name string
	// Load reads the settings from args and env, printing -h and syntax errors to output (settings.Set's contract:
	// flag.ErrHelp, settings.ErrUsage, else every bad setting joined).
	Load func(args []string, env settings.Env, output io.Writer) (S, error)
	// Run serves until ctx ends (SIGINT, SIGTERM, or the caller's ctx) and returns nil after a clean stop. opts
	// are the Temporal client options (envconfig, flags, payload codec), their Logger already the process's.
	Run func(ctx context.Context, st S, opts client.Options, logger *slog.Logger) error
}

// Main runs cmd and returns the exit status: 0 after -h, -version or a clean stop; 1 when Run fails (logged as
// "<Name> stopped" with the error); 2 for a bad setting, printed to stderr one per line, never with its value.
// The logger writes JSON lines to stderr at the settings' level.
func Main[S Settings](ctx context.Context, cmd Command[S], args []string, env settings.Env, stderr io.Writer) int {
	st, err := cmd.Load(args, env, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp): // -h, or -version (settings.ErrVersion wraps flag.ErrHelp)
		if !errors.Is(err, settings.ErrVersion) {
			otelsetup.Usage(stderr, cmd.Service) // -h: the OTEL_* settings follow the process's own
		}
		return ExitOK
	case errors.Is(err, settings.ErrUsage):
		return ExitUsage // already printed with the usage
	case err != nil:
		PrintLines(stderr, cmd.Name, err)
		return ExitUsage
	}
	stopTracing, err := otelsetup.Start(ctx, cmd.Service, stderr)
	if err != nil {
		PrintLines(stderr, cmd.Name, err)
		return ExitUsage
	}
	defer stopTracing()
	temporal := st.TemporalSettings()
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: st.Level()}))
	for _, d := range temporal.Deprecated() {
		logger.Warn(d.Message(), "setting", d.Old, "use", d.New) // the names only, never the value
	}
	temporal.Logger = logger
	opts, err := temporal.ClientOptions()
	if err != nil {
		PrintLines(stderr, cmd.Name, err)
		return ExitUsage
	}
	opts.Logger = sdklog.NewStructuredLogger(logger)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.Run(ctx, st, opts, logger); err != nil {
		logger.Error(cmd.Name+" stopped", "error", err)
		return ExitFailure
	}
	return ExitOK
}

// PrintLines prints each line of err (joined errors: one bad setting a line) as "name: line".
func PrintLines(w io.Writer, name string, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "%s: %s\n", name, line)
	}
}

// Background runs serve (an App's Serve: it serves until its context ends, then drains) in its own goroutine,
// for a process that embeds a part beside others (`go run ./dev`, `go run ./bench`). stop ends serve's context and
// waits for it, returning its error. failed, when not nil, hears at once of a serve that ended by itself.
func Background(serve func(ctx context.Context) error, failed func(error)) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := serve(ctx)
		if err != nil && ctx.Err() == nil && failed != nil {
			failed(err)
		}
		done <- err
	}()
	return func() error { cancel(); return <-done }
}

// The HTTP server timeouts every connectflow server shares (the bridge's public and admin ports, the transfer
// API); each sets its own write timeout, the bound on its slowest answer.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// NewHTTPServer returns a server of h with the shared timeouts and writeTimeout, logging its own errors (a bad
// TLS handshake, a panic) to log at warn.
func NewHTTPServer(h http.Handler, writeTimeout time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: IdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}
