// Command worker runs connectflow's Temporal worker: the transfer and onboarding workflows and their Connect and
// Zero Hash activities. Every setting comes from a flag or its environment variable; `worker -h` lists them.
// Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot run, 2 for a missing or malformed setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
	"github.com/connectflow/connectflow/internal/workerapp"
)

const (
	exitFailure = 1
	exitUsage   = 2
	// shutdownTimeout bounds how long the metrics server may take to finish its last scrape.
	shutdownTimeout = 5 * time.Second
	// startRetryDelay paces start attempts while Temporal is unreachable after a successful dial.
	startRetryDelay = 2 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	defer otelsetup.Main("connectflow-worker", stderr)() // tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/tracing.md)
	st, err := workerapp.LoadSettings(args, settings.OSEnv, stderr)
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
	if err := serve(st, opts, logger); err != nil {
		logger.Error("worker stopped", "error", err)
		return exitFailure
	}
	return 0
}

// serve runs the worker until SIGINT or SIGTERM.
func serve(st *workerapp.Settings, opts client.Options, logger *slog.Logger) error {
	opts.Logger = log.NewStructuredLogger(logger)
	if opts.Identity == "" {
		// Explicit, so readiness can find this worker among the task queue's pollers.
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%d@%s@worker", os.Getpid(), host)
	}
	var metrics *workerapp.Metrics
	if st.MetricsAddr != "" || st.AdminAddr != "" {
		metrics = workerapp.NewMetrics(logger)
		defer metrics.Close()
		opts.MetricsHandler = metrics.Handler
	}
	if st.MetricsAddr != "" {
		ln, err := net.Listen("tcp", st.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		srv := metrics.Serve(ln)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(ctx) // the process is ending; a scrape cut short is harmless
		}()
		logger.Info("serving metrics", "addr", ln.Addr().String(), "path", workerapp.MetricsPath)
	}

	dialCtx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return fmt.Errorf("cannot reach Temporal at %s: %w", settings.HostPort(opts), err)
	}
	defer c.Close()
	if metrics != nil {
		// The stalled, timed-out, review and notification gauges, from visibility; never blocks the worker.
		watch, stop := context.WithCancel(context.Background())
		defer stop()
		metrics.WatchVisibility(watch, c, workerapp.VisibilityOptions{})
	}
	ready := workerapp.NewReadiness(c, st.Worker.TaskQueue, opts.Identity)
	if st.AdminAddr != "" {
		ln, err := net.Listen("tcp", st.AdminAddr)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		srv := workerapp.ServeAdmin(ln, ready, metrics, logger)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(ctx) // the process is ending; a probe cut short is harmless
		}()
		logger.Info("serving admin", "addr", ln.Addr().String(), "paths", []string{workerapp.ReadyPath, workerapp.MetricsPath})
	}
	if st.RegisterSearchAttributes {
		ctx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
		defer cancel()
		if err := workerapp.RegisterSearchAttributes(ctx, c, opts.Namespace); err != nil {
			return err
		}
	}

	ensureReconcileSchedule(c, st.Worker, logger)

	interrupt := worker.InterruptCh()
	for {
		w, err := workerapp.New(c, st.Worker, logger)
		if err != nil {
			return err
		}
		logger.Info("worker starting", "namespace", opts.Namespace, "task_queue", st.Worker.TaskQueue)
		err = w.Start()
		if err == nil {
			ready.MarkStarted()
			ctx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
			workerapp.LogRouting(ctx, c, st.Worker.Deployment, logger) // with WORKER_VERSIONING: is this version current?
			cancel()
			<-interrupt
			ready.MarkStopped()
			w.Stop()
			return nil
		}
		// Temporal went away between the dial and the start (a restart): wait for it rather than exit.
		logger.Warn("worker could not start; retrying", "error", err, "retry_in", startRetryDelay.String())
		select {
		case <-interrupt:
			return nil
		case <-time.After(startRetryDelay):
		}
	}
}

// ensureReconcileSchedule keeps the reconciliation schedule as ZEROHASH_RECONCILE_EVERY says, trying a few
// times. A failure is logged, not fatal: the worker's transfers do not depend on it, and the next worker start
// (or another worker) ensures it again.
func ensureReconcileSchedule(c client.Client, cfg workerapp.Config, logger *slog.Logger) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
		err = workerapp.EnsureReconcileSchedule(ctx, c, cfg)
		cancel()
		if err == nil {
			logger.Info("reconciliation schedule ensured", "every", cfg.ReconcileEvery.String())
			return
		}
		time.Sleep(startRetryDelay)
	}
	logger.Error("reconciliation schedule not ensured; Zero Hash movements are not read back until it is", "error", err)
}

// printLines prints each line of err (one per bad setting) as "worker: ...".
func printLines(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "worker: "+line)
	}
}
