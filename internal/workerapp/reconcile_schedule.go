package workerapp

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/reconcile"
)

// EnsureReconcileSchedule keeps the Zero Hash reconciliation schedule as cfg.ReconcileEvery says: created when
// missing, its interval updated when it changed, paused when the interval is 0 (reconcile.EnsureSchedule). The
// worker command calls it once after reaching Temporal.
func EnsureReconcileSchedule(ctx context.Context, c client.Client, cfg Config) error {
	return reconcile.EnsureSchedule(ctx, c, cfg.TaskQueue, cfg.ReconcileEvery)
}
