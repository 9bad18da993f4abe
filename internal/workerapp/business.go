package workerapp

import (
	"context"
	"fmt"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// Business metrics. The transfer counters and the histogram come from the workflow (workflows/metrics.go, emitted
// through workflow.GetMetricsHandler, so never on replay); the gauges from Temporal's visibility store
// (WatchVisibility). docs/metrics.md describes each one and the alerts on them.
const (
	MetricTransfersStarted   = workflows.MetricTransfersStarted   // counter{kind}
	MetricTransfersFinished  = workflows.MetricTransfersFinished  // counter{kind,status}
	MetricSessionToConfirmed = workflows.MetricSessionToConfirmed // histogram{kind}
	// MetricTransfersStalled is the number of running transfers in status stalled.
	MetricTransfersStalled = "connectflow_transfers_stalled"
	// MetricTransfersTimedOut is the number of running transfers in status timed_out (waiting for a person).
	MetricTransfersTimedOut = "connectflow_transfers_timed_out"
	// MetricReviewsOpen is the number of review workflows waiting for a person (TransferStatus needs_review).
	MetricReviewsOpen = "connectflow_reviews_open"
	// MetricNotificationsPending is the number of running transfers whose final notification the platform has
	// not acknowledged yet (PlatformNotified = pending).
	MetricNotificationsPending = "connectflow_notifications_pending"
	// MetricVisibilityErrors counts visibility counts that failed (timed out, or refused), by gauge.
	MetricVisibilityErrors = "connectflow_visibility_count_errors_total"
	// MetricVisibilityLastSuccess is when every gauge was last counted successfully (Unix seconds).
	MetricVisibilityLastSuccess = "connectflow_visibility_last_success_timestamp_seconds"
)

// SessionToConfirmedBuckets are MetricSessionToConfirmed's buckets: from 30 s (a test network) to a day, with
// the usual chain confirmation times (minutes to an hour) well resolved.
var SessionToConfirmedBuckets = []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400}

// Label value for a tag that is missing or not one of the known values: a label never carries free text.
const labelUnknown = "unknown"

// business holds the Prometheus series behind the workflow's business metrics and the visibility gauges.
type business struct {
	started     *prom.CounterVec
	finished    *prom.CounterVec
	toConfirmed *prom.HistogramVec
	gauges      map[string]prom.Gauge // visibility gauge name -> gauge
	visErrors   *prom.CounterVec
	visSuccess  prom.Gauge
}

func newBusiness(reg prom.Registerer) *business {
	b := &business{
		started: prom.NewCounterVec(prom.CounterOpts{Name: MetricTransfersStarted,
			Help: "Transfers started, by kind (a continued run is not a new transfer)."}, []string{workflows.MetricTagKind}),
		finished: prom.NewCounterVec(prom.CounterOpts{Name: MetricTransfersFinished,
			Help: "Transfers that reached a final status, by kind and final status."},
			[]string{workflows.MetricTagKind, workflows.MetricTagStatus}),
		toConfirmed: prom.NewHistogramVec(prom.HistogramOpts{Name: MetricSessionToConfirmed,
			Help:    "Time from the Connect session opening to Connect's confirmed event, by kind.",
			Buckets: SessionToConfirmedBuckets}, []string{workflows.MetricTagKind}),
		gauges: map[string]prom.Gauge{
			MetricTransfersStalled: prom.NewGauge(prom.GaugeOpts{Name: MetricTransfersStalled,
				Help: "Running transfers in status stalled (no final event within the stall timeout), from visibility."}),
			MetricTransfersTimedOut: prom.NewGauge(prom.GaugeOpts{Name: MetricTransfersTimedOut,
				Help: "Running transfers in status timed_out, waiting for a person to resolve them, from visibility."}),
			MetricReviewsOpen: prom.NewGauge(prom.GaugeOpts{Name: MetricReviewsOpen,
				Help: "Review workflows waiting for a person (needs_review), from visibility."}),
			MetricNotificationsPending: prom.NewGauge(prom.GaugeOpts{Name: MetricNotificationsPending,
				Help: "Running transfers whose final notification the platform has not acknowledged, from visibility."}),
		},
		visErrors: prom.NewCounterVec(prom.CounterOpts{Name: MetricVisibilityErrors,
			Help: "Visibility counts behind the gauges that failed, by gauge."}, []string{"gauge"}),
		visSuccess: prom.NewGauge(prom.GaugeOpts{Name: MetricVisibilityLastSuccess,
			Help: "When every visibility gauge was last counted successfully, in Unix seconds (0: never)."}),
	}
	reg.MustRegister(b.started, b.finished, b.toConfirmed, b.visErrors, b.visSuccess)
	for _, q := range visibilityQueries {
		reg.MustRegister(b.gauges[q.gauge])
		b.visErrors.WithLabelValues(q.gauge) // every series exists from the start, so rate() sees the first one
	}
	// Every kind and final status exists from the start at 0, so the first increment is a visible rate.
	for _, k := range []connect.Kind{connect.KindDeposit, connect.KindWithdrawal} {
		b.started.WithLabelValues(string(k))
		b.toConfirmed.WithLabelValues(string(k))
		for _, s := range workflows.Statuses {
			if workflows.Final(s, workflows.Facts{}) {
				b.finished.WithLabelValues(string(k), string(s))
			}
		}
	}
	return b
}

// kindLabel is tags' kind if it is a transfer kind, else "unknown".
func kindLabel(tags map[string]string) string {
	if k := connect.Kind(tags[workflows.MetricTagKind]); k.Valid() {
		return string(k)
	}
	return labelUnknown
}

// statusLabel is tags' status if it is a transfer status, else "unknown".
func statusLabel(tags map[string]string) string {
	if s := workflows.Status(tags[workflows.MetricTagStatus]); s.Known() {
		return string(s)
	}
	return labelUnknown
}

// businessHandler is the SDK metrics handler the worker's client gets: the workflow's business metrics go to
// native Prometheus series (own buckets, own help, only the kind and status labels, with values checked against
// the enums), everything else to the SDK's tally handler (next).
type businessHandler struct {
	next client.MetricsHandler
	tags map[string]string
	b    *business
}

func (h businessHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return businessHandler{next: h.next.WithTags(tags), tags: merged, b: h.b}
}

func (h businessHandler) Counter(name string) client.MetricsCounter {
	switch name {
	case MetricTransfersStarted:
		c := h.b.started.WithLabelValues(kindLabel(h.tags))
		return counterFunc(func(d int64) { c.Add(float64(d)) })
	case MetricTransfersFinished:
		c := h.b.finished.WithLabelValues(kindLabel(h.tags), statusLabel(h.tags))
		return counterFunc(func(d int64) { c.Add(float64(d)) })
	}
	return h.next.Counter(name)
}

func (h businessHandler) Gauge(name string) client.MetricsGauge { return h.next.Gauge(name) }

func (h businessHandler) Timer(name string) client.MetricsTimer {
	if name == MetricSessionToConfirmed {
		o := h.b.toConfirmed.WithLabelValues(kindLabel(h.tags))
		return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
	}
	return h.next.Timer(name)
}

// Unwrap is the SDK's convention for a handler that wraps another.
func (h businessHandler) Unwrap() client.MetricsHandler { return h.next }

// visibilityQuery is one gauge and the visibility query that counts it.
type visibilityQuery struct {
	gauge string
	query string
}

// running narrows a query to open workflows: a terminated transfer stays stalled in visibility forever.
const running = "ExecutionStatus = 'Running' AND "

// visibilityQueries are the gauges WatchVisibility keeps, in a fixed order.
var visibilityQueries = []visibilityQuery{
	{MetricTransfersStalled, running + "WorkflowType = 'TransferWorkflow' AND " + workflows.QueryStalled},
	{MetricTransfersTimedOut, running + "WorkflowType = 'TransferWorkflow' AND " + workflows.QueryTimedOut},
	{MetricReviewsOpen, running + workflows.QueryUnmatched},
	{MetricNotificationsPending, running + workflows.QueryPlatformPending},
}

// Defaults of VisibilityOptions.
const (
	DefaultVisibilityInterval = 30 * time.Second
	DefaultVisibilityTimeout  = 10 * time.Second
)

// VisibilityOptions tune WatchVisibility; the zero value is ready to use.
type VisibilityOptions struct {
	// Interval between two rounds of counts; default 30 s. Every worker replica counts: alert on max(), not sum().
	Interval time.Duration
	// Timeout bounds each count; default 10 s. A count that fails leaves its gauge at its last value and counts
	// an error (MetricVisibilityErrors).
	Timeout time.Duration
}

// VisibilityCounter is what WatchVisibility needs of a Temporal client (a client.Client is one).
type VisibilityCounter interface {
	CountWorkflow(ctx context.Context, request *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error)
}

// WatchVisibility keeps the stalled, timed-out, review and pending-notification gauges current from Temporal's
// visibility store (c's namespace): one round at once, then one per interval, until ctx ends. It runs in the
// background and never blocks the worker; each count has its own timeout. Visibility, not the workflows, is the
// source because these are counts across every transfer, of every run and every worker, and it is the store the
// operators' own queries (workflows.QueryStalled, ...) read.
func (m *Metrics) WatchVisibility(ctx context.Context, c VisibilityCounter, opts VisibilityOptions) {
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultVisibilityInterval
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultVisibilityTimeout
	}
	go func() {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			m.countVisibility(ctx, c, timeout)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// countVisibility runs one round of counts.
func (m *Metrics) countVisibility(ctx context.Context, c VisibilityCounter, timeout time.Duration) {
	ok := true
	for _, q := range visibilityQueries {
		n, err := countOne(ctx, c, q.query, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return // stopping
			}
			ok = false
			m.business.visErrors.WithLabelValues(q.gauge).Inc()
			m.logger.Warn("visibility count failed", "gauge", q.gauge, "error", err)
			continue
		}
		m.business.gauges[q.gauge].Set(float64(n))
	}
	if ok {
		m.business.visSuccess.SetToCurrentTime()
	}
}

func countOne(ctx context.Context, c VisibilityCounter, query string, timeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, fmt.Errorf("count %q: %w", query, err)
	}
	return resp.GetCount(), nil
}

// counterFunc and timerFunc adapt functions to the SDK's metric interfaces.
type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
