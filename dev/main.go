// Command dev runs all of connectflow in one process, for trying it and for developing it:
//
//	go run ./dev
//
// It starts an embedded Temporal server (SQLite in .dev-data/, or memory with -memory) and the Temporal Web UI on
// http://localhost:8233, registers the search attributes, and starts the Connect sandbox, the worker and the
// webhook bridge wired to each other. Then it runs a demo deposit and withdrawal, printing each step and a UI
// link to each workflow, and serves until Ctrl-C. -server-only runs just Temporal and its UI, for a worker and a
// bridge run as their own processes. Everything it prints on start says where each part listens and which
// environment points the worker, webhookbridge and starter at it.
//
// Only this command and the tests link the Temporal server; the worker, webhookbridge and starter stay small.
// Exit status: 0 after Ctrl-C (SIGINT) or SIGTERM and a clean stop, 1 when a part fails to start or stop, 2 for
// bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once, the default way
	}()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole command: it serves until ctx ends and returns the exit status. getenv supplies the payload
// encryption keys, read as every connectflow process reads them.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	stopTracing, err := otelsetup.Start(ctx, "connectflow-dev", stderr) // when OTEL_* says so (docs/tracing.md)
	if err != nil {
		fmt.Fprintf(stderr, "dev: %v\n", err)
		return 2
	}
	defer stopTracing()
	cfg, err := parseConfig(args, stderr)
	if err == nil {
		cfg.codecKeys, err = codec.LoadKeys(getenv) // its errors name the variable, never key material
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errPrinted):
		return exitUsage
	case err != nil:
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "dev: %s\n", line)
		}
		fmt.Fprintln(stderr, "dev: see go run ./dev -h")
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	serverLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.serverLevel})).With("part", "temporal")
	out := &lineWriter{w: stdout}

	started := time.Now()
	out.printf("connectflow dev: starting; Temporal's data: %s", dataDescription(cfg))
	s, err := startStack(ctx, cfg, log, serverLog)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "dev: interrupted while starting; stopped")
			return 0
		}
		fmt.Fprintf(stderr, "dev: %v\n", err)
		return exitFailure
	}
	log.Info("stack started", "took", time.Since(started).Round(time.Millisecond))
	if err := printBanner(out, s); err != nil {
		fmt.Fprintf(stderr, "dev: print the banner: %v\n", err)
	}

	if s.platform != nil {
		s.platform.OnApply(func(e platformtest.Entry) { out.printf("%s", platformLine(e)) })
	}
	demoCtx, cancelDemo := context.WithCancel(ctx)
	defer cancelDemo()
	demoDone := startDemo(demoCtx, s, out)

	<-ctx.Done()
	out.printf("\nconnectflow dev: stopping (Ctrl-C again to force)")
	cancelDemo()
	<-demoDone
	if err := s.stop(); err != nil {
		fmt.Fprintf(stderr, "dev: %v\n", err)
		return exitFailure
	}
	out.printf("connectflow dev: stopped cleanly")
	return 0
}

// startDemo runs the demo in the background unless the configuration skips it; the channel closes when it is done.
func startDemo(ctx context.Context, s *stack, out *lineWriter) <-chan struct{} {
	done := make(chan struct{})
	if s.cfg.serverOnly || s.cfg.noDemo {
		close(done)
		return done
	}
	d := &demo{transfers: transfer.NewClient(s.client, transfer.Options{TaskQueue: workflows.DefaultTaskQueue}),
		temporal: s.client, out: out, uiURL: s.server.UIURL(), namespace: s.server.Namespace(), now: time.Now,
		platform: s.platform}
	go func() {
		defer close(done)
		d.run(ctx)
	}()
	return done
}
