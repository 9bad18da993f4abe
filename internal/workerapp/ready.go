package workerapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// ReadyPath is the admin listener's readiness route; MetricsPath is served beside it.
const ReadyPath = "/readyz"

// EnvWorkerAdminAddr is where the worker serves ReadyPath and MetricsPath (loopback by default in compose's
// network namespace: the healthcheck runs inside the container).
const EnvWorkerAdminAddr = "WORKER_ADMIN_ADDR"

// readyCheckTimeout bounds the Temporal call behind one readiness answer.
const readyCheckTimeout = 3 * time.Second

// pollerFreshness is how recently Temporal must have seen this worker poll for it to count as polling. The SDK's
// long polls last up to a minute, and Temporal records a poller when its poll starts.
const pollerFreshness = 2 * time.Minute

// Readiness answers whether this process's worker is started and polling its task queue: Temporal, asked with
// DescribeTaskQueue, lists a workflow poller with this worker's identity seen within pollerFreshness. Before
// MarkStarted, after MarkStopped, while Temporal is unreachable or while Temporal sees no poll, it is not ready.
type Readiness struct {
	client    client.Client
	taskQueue string
	identity  string
	started   atomic.Bool
	now       func() time.Time
}

// NewReadiness checks the worker that polls taskQueue through c with identity (client.Options.Identity).
func NewReadiness(c client.Client, taskQueue, identity string) *Readiness {
	return &Readiness{client: c, taskQueue: taskQueue, identity: identity, now: time.Now}
}

// MarkStarted records that worker.Start returned nil.
func (r *Readiness) MarkStarted() { r.started.Store(true) }

// MarkStopped records that the worker is stopping or restarting.
func (r *Readiness) MarkStopped() { r.started.Store(false) }

// Check returns nil when the worker is started and Temporal sees it polling, else why not.
func (r *Readiness) Check(ctx context.Context) error {
	if !r.started.Load() {
		return errors.New("worker not started")
	}
	resp, err := r.client.DescribeTaskQueue(ctx, r.taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return fmt.Errorf("cannot ask Temporal about task queue %s: %w", r.taskQueue, err)
	}
	for _, p := range resp.GetPollers() {
		if p.GetIdentity() == r.identity && r.now().Sub(p.GetLastAccessTime().AsTime()) <= pollerFreshness {
			return nil
		}
	}
	return fmt.Errorf("Temporal sees no recent poll of task queue %s from this worker", r.taskQueue)
}

// ServeHTTP answers 200 {"status":"ready"} or 503 {"status":"not ready","reason":...}.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), readyCheckTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := r.Check(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ready"})
}

// ServeAdmin serves ReadyPath (ready) and, when metrics is non-nil, MetricsPath on ln in the background; Shutdown
// the returned server to stop.
func ServeAdmin(ln net.Listener, ready http.Handler, metrics *Metrics, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET "+ReadyPath, ready)
	if metrics != nil {
		mux.Handle("GET "+MetricsPath, metrics.HTTP)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin server stopped", "error", err)
		}
	}()
	return srv
}
