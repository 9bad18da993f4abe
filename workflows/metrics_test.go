package workflows

import (
	"context"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
)

// recorder is an SDK metrics handler that keeps what connectflow's own metrics recorded, keyed by name and the
// tags connectflow sets ("connectflow_transfers_finished_total kind=deposit status=confirmed",
// "connectflow_reconcile_movements outcome=applied").
type recorder struct {
	tags map[string]string
	m    *recorded
}

type recorded struct {
	mu       sync.Mutex
	counters map[string]int64
	timers   map[string][]time.Duration
}

// ourTags are the tags connectflow's metrics carry, in the order a key lists them.
var ourTags = []string{MetricTagKind, MetricTagStatus, "outcome", "result"}

func newRecorder() recorder {
	return recorder{m: &recorded{counters: map[string]int64{}, timers: map[string][]time.Duration{}}}
}

func (r recorder) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(r.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return recorder{tags: merged, m: r.m}
}

// key names a series by the tags connectflow sets; the SDK's own tags (namespace, task queue, workflow type) are
// left out.
func (r recorder) key(name string) string {
	parts := []string{name}
	for _, k := range ourTags {
		if v, ok := r.tags[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func (r recorder) Counter(name string) client.MetricsCounter {
	return counterFn(func(d int64) {
		r.m.mu.Lock()
		defer r.m.mu.Unlock()
		r.m.counters[r.key(name)] += d
	})
}

func (r recorder) Gauge(string) client.MetricsGauge { return client.MetricsNopHandler.Gauge("") }

func (r recorder) Timer(name string) client.MetricsTimer {
	return timerFn(func(d time.Duration) {
		r.m.mu.Lock()
		defer r.m.mu.Unlock()
		r.m.timers[r.key(name)] = append(r.m.timers[r.key(name)], d)
	})
}

type counterFn func(int64)

func (f counterFn) Inc(d int64) { f(d) }

type timerFn func(time.Duration)

func (f timerFn) Record(d time.Duration) { f(d) }

// ours returns connectflow's counters (the SDK's own metrics left out).
func (r recorder) ours() map[string]int64 {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	out := map[string]int64{}
	for k, v := range r.m.counters {
		if strings.HasPrefix(k, "connectflow_") {
			out[k] = v
		}
	}
	return out
}

func (r recorder) timer(key string) []time.Duration {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return append([]time.Duration(nil), r.m.timers[key]...)
}

func TestMetricsDepositConfirmed(t *testing.T) {
	rec := newRecorder()
	e := newEnv(t, rec)
	e.sessionOK()
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(10*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.Equal(t, StatusConfirmed, e.result().Status)
	require.Equal(t, map[string]int64{
		"connectflow_transfers_started_total kind=deposit":                   1,
		"connectflow_transfers_finished_total kind=deposit status=confirmed": 1,
	}, rec.ours())
	got := rec.timer(MetricSessionToConfirmed + " kind=deposit")
	require.Len(t, got, 1)
	require.InDelta(t, (10 * time.Minute).Seconds(), got[0].Seconds(), 1, "session opened at the start, confirmed at 10 min")
}

func TestMetricsWithdrawalFailedAndSessionRefused(t *testing.T) {
	rec := newRecorder()
	e := newEnv(t, rec)
	e.sessionOK()
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, TransferInput{Kind: connect.KindWithdrawal, TransferID: "w-1", ReferenceID: "USER02",
		Asset: "BTC", Network: "bitcoin", Amount: "0.013"})
	require.Equal(t, StatusFailed, e.result().Status)

	e2 := newEnv(t, rec)
	e2.onSession(func(context.Context, connect.SessionRequest) (connect.Session, error) {
		return connect.Session{}, connectForbidden()
	})
	e2.ExecuteWorkflow(TransferWorkflow, deposit())
	require.Error(t, e2.GetWorkflowError())
	require.Equal(t, map[string]int64{
		"connectflow_transfers_started_total kind=withdrawal":                     1,
		"connectflow_transfers_finished_total kind=withdrawal status=failed":      1,
		"connectflow_transfers_started_total kind=deposit":                        1,
		"connectflow_transfers_finished_total kind=deposit status=session_failed": 1,
	}, rec.ours())
	require.Empty(t, rec.timer(MetricSessionToConfirmed+" kind=withdrawal"), "failed is not confirmed")
}

// A transfer that waits for a person is not finished; the operator's resolve finishes it, and is not a Connect
// confirmation (no session-to-confirmed observation).
func TestMetricsTimedOutCountsOnlyWhenResolved(t *testing.T) {
	rec := newRecorder()
	e := newEnv(t, rec)
	e.sessionOK()
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	var atTimedOut map[string]int64
	e.RegisterDelayedCallback(func() {
		require.Equal(t, StatusTimedOut, e.state().Status)
		atTimedOut = rec.ours()
	}, 30*24*time.Hour)
	var resolveErr error = errNotCalled
	e.resolve(31*24*time.Hour, Resolution{Operator: "ana", Outcome: StatusConfirmed, Reason: "tx seen on chain"},
		func(err error) { resolveErr = err })
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.NoError(t, resolveErr)
	require.Equal(t, StatusConfirmed, e.result().Status)
	require.Equal(t, map[string]int64{"connectflow_transfers_started_total kind=deposit": 1}, atTimedOut)
	require.Equal(t, map[string]int64{
		"connectflow_transfers_started_total kind=deposit":                   1,
		"connectflow_transfers_finished_total kind=deposit status=confirmed": 1,
	}, rec.ours())
	require.Empty(t, rec.timer(MetricSessionToConfirmed+" kind=deposit"))
}

// A transfer continued as new is one transfer: started once (first run), finished once (last run), and its
// session-to-confirmed time runs from the session the first run opened.
func TestMetricsContinueAsNewCountsOneTransfer(t *testing.T) {
	rec := newRecorder()
	e := newEnv(t, rec)
	e.sessionOK()
	in := deposit()
	in.SignalsPerRun = 2
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeEvent, Detail: "a", DedupeKey: "a"},
		SDKEvent{Type: SDKTypeEvent, Detail: "b", DedupeKey: "b"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	next := e.continuedAs()

	e2 := newEnv(t, rec)
	e2.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e2.ExecuteWorkflow(TransferWorkflow, next)
	require.Equal(t, StatusConfirmed, e2.result().Status)
	require.Equal(t, map[string]int64{
		"connectflow_transfers_started_total kind=deposit":                   1,
		"connectflow_transfers_finished_total kind=deposit status=confirmed": 1,
	}, rec.ours())
	require.Len(t, rec.timer(MetricSessionToConfirmed+" kind=deposit"), 1)
}

// Every final status is counted under its own name, and only final statuses are: the label set is the enum.
func TestMetricsFinishedLabelsAreFinalStatuses(t *testing.T) {
	var final []string
	for _, s := range Statuses {
		if Final(s, Facts{}) {
			final = append(final, string(s))
		}
	}
	sort.Strings(final)
	require.Equal(t, []string{"abandoned", "confirmed", "expired", "failed", "session_failed", "settled", "superseded", "unsettled"}, final,
		"docs/metrics.md lists these status label values: keep it in step")
}

// connectForbidden is the error the session activity returns when Connect refuses the session.
func connectForbidden() error {
	return temporal.NewNonRetryableApplicationError("connect create session: HTTP 403 forbidden", "ConnectForbidden", nil)
}
