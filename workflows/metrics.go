package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// Business metrics the transfer workflow emits through workflow.GetMetricsHandler. The SDK's handler drops every
// metric while the workflow replays, so each is counted once per workflow task that really ran (a task that
// fails after emitting and runs again counts again: rare, and never on replay). Emitting a metric adds no command
// to the history, so none of this is a workflow change (no GetVersion). The worker's metrics handler
// (internal/workerapp) turns these names into Prometheus series with the labels below; docs/metrics.md.
const (
	// MetricTransfersStarted counts transfers started (first run only, not continue-as-new), by kind.
	MetricTransfersStarted = "connectflow_transfers_started_total"
	// MetricTransfersFinished counts transfers that reached a final status (machine.go's Final), by kind and
	// status.
	MetricTransfersFinished = "connectflow_transfers_finished_total"
	// MetricSessionToConfirmed is the time from the Connect session opening to Connect's confirmed event, by kind.
	// An operator's resolve is not a confirmation by Connect and is not observed.
	MetricSessionToConfirmed = "connectflow_transfer_session_to_confirmed_seconds"
)

// Metric tag (label) names. Their values come only from this package's enums (connect.Kind, Status), never from
// a request, a user or an amount.
const (
	MetricTagKind   = "kind"
	MetricTagStatus = "status"
)

// metricStarted counts this transfer as started.
func (t *transfer) metricStarted(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{MetricTagKind: string(t.in.Kind)}).
		Counter(MetricTransfersStarted).Inc(1)
}

// metricFinished counts this transfer as finished in status s.
func (t *transfer) metricFinished(ctx workflow.Context, s Status) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{MetricTagKind: string(t.in.Kind), MetricTagStatus: string(s)}).
		Counter(MetricTransfersFinished).Inc(1)
}

// metricConfirmed observes the time from the session opening to now (Connect's confirmed event).
func (t *transfer) metricConfirmed(ctx workflow.Context, now time.Time) {
	if t.clock.SessionOpened.IsZero() {
		return
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{MetricTagKind: string(t.in.Kind)}).
		Timer(MetricSessionToConfirmed).Record(max(now.Sub(t.clock.SessionOpened), 0))
}
