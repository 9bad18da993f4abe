package workerapp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/internal/settings"
)

const (
	// shutdownTimeout bounds how long the metrics and admin servers may take to finish their last answer.
	shutdownTimeout = 5 * time.Second
	// startRetryDelay paces start attempts while Temporal is unreachable after a successful dial.
	startRetryDelay = 2 * time.Second
)

// Run is the worker process once its settings are loaded (cmdmain.Main calls it for `worker`): the metrics and
// admin servers when their addresses are set, a Temporal client dialed with opts (an unreachable Temporal is an
// error), the search attributes and the reconciliation schedule, then the worker until ctx ends. A Temporal that
// goes away between the dial and the start is waited for. It returns nil after a clean stop.
func Run(ctx context.Context, st *Settings, opts client.Options, logger *slog.Logger) error {
	if opts.Identity == "" {
		// Explicit, so readiness can find this worker among the task queue's pollers.
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%d@%s@worker", os.Getpid(), host)
	}
	var metrics *Metrics
	if st.MetricsAddr != "" || st.AdminAddr != "" {
		metrics = NewMetrics(logger)
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
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx) // the process is ending; a scrape cut short is harmless
		}()
		logger.Info("serving metrics", "addr", ln.Addr().String(), "path", MetricsPath)
	}

	dialCtx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return fmt.Errorf("cannot reach Temporal at %s: %w", settings.HostPort(opts), err)
	}
	defer c.Close()
	if metrics != nil && st.GaugeInterval > 0 {
		// The stalled, timed-out, review and notification gauges, from visibility; never blocks the worker.
		watch, stop := context.WithCancel(context.Background())
		defer stop()
		metrics.WatchVisibility(watch, c, VisibilityOptions{Interval: st.GaugeInterval})
	}
	ready := NewReadiness(c, st.Worker.TaskQueue, opts.Identity)
	if st.AdminAddr != "" {
		ln, err := net.Listen("tcp", st.AdminAddr)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		srv := ServeAdmin(ln, ready, metrics, logger)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx) // the process is ending; a probe cut short is harmless
		}()
		logger.Info("serving admin", "addr", ln.Addr().String(), "paths", []string{ReadyPath, MetricsPath})
	}
	if st.RegisterSearchAttributes {
		rctx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
		defer cancel()
		if err := RegisterSearchAttributes(rctx, c, opts.Namespace); err != nil {
			return err
		}
	}

	ensureReconcileSchedule(c, st.Worker, logger)

	for {
		w, err := New(c, st.Worker, logger)
		if err != nil {
			return err
		}
		logger.Info("worker starting", "namespace", opts.Namespace, "task_queue", st.Worker.TaskQueue)
		err = w.Start()
		if err == nil {
			ready.MarkStarted()
			lctx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
			LogRouting(lctx, c, st.Worker.Deployment, logger) // with WORKER_VERSIONING: is this version current?
			cancel()
			<-ctx.Done() // SIGINT or SIGTERM
			ready.MarkStopped()
			w.Stop()
			return nil
		}
		// Temporal went away between the dial and the start (a restart): wait for it rather than exit.
		logger.Warn("worker could not start; retrying", "error", err, "retry_in", startRetryDelay.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(startRetryDelay):
		}
	}
}

// ensureReconcileSchedule keeps the reconciliation schedule as WORKER_RECONCILE_EVERY says, trying a few
// times. A failure is logged, not fatal: the worker's transfers do not depend on it, and the next worker start
// (or another worker) ensures it again.
func ensureReconcileSchedule(c client.Client, cfg Config, logger *slog.Logger) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), settings.DialTimeout)
		err = EnsureReconcileSchedule(ctx, c, cfg)
		cancel()
		if err == nil {
			logger.Info("reconciliation schedule ensured", "every", cfg.ReconcileEvery.String())
			return
		}
		time.Sleep(startRetryDelay)
	}
	logger.Error("reconciliation schedule not ensured; Zero Hash movements are not read back until it is", "error", err)
}
