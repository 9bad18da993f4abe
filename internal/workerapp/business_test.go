package workerapp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/connectflow/connectflow/workflows"
)

func quietMetrics() *Metrics { return NewMetrics(slog.New(slog.NewTextHandler(io.Discard, nil))) }

// The workflow's metrics, as the SDK hands them over (with its own tags on top), become native Prometheus series
// with only the kind and status labels.
func TestBusinessMetricsNamesLabelsValues(t *testing.T) {
	m := quietMetrics()
	defer m.Close()
	srv := httptest.NewServer(m.HTTP)
	defer srv.Close()

	_, before := scrape(t, srv.URL)
	for _, want := range []string{
		`connectflow_transfers_started_total{kind="deposit"} 0`,
		`connectflow_transfers_started_total{kind="withdrawal"} 0`,
		`connectflow_transfers_finished_total{kind="deposit",status="settled"} 0`,
		`connectflow_transfer_session_to_confirmed_seconds_count{kind="withdrawal"} 0`,
		"# TYPE connectflow_transfer_session_to_confirmed_seconds histogram",
		"# TYPE connectflow_transfers_stalled gauge",
		"connectflow_transfers_timed_out 0", "connectflow_reviews_open 0", "connectflow_notifications_pending 0",
		`connectflow_visibility_count_errors_total{gauge="connectflow_reviews_open"} 0`,
	} {
		if !strings.Contains(before, want) {
			t.Errorf("/metrics before any transfer lacks %s", want)
		}
	}
	if strings.Contains(before, `status="stalled"`) || strings.Contains(before, `status="awaiting_user"`) {
		t.Error("only final statuses are finished statuses")
	}

	sdk := m.Handler.WithTags(map[string]string{"namespace": "default", "task_queue": "q", "workflow_type": "TransferWorkflow"})
	dep := sdk.WithTags(map[string]string{workflows.MetricTagKind: "deposit"})
	dep.Counter(workflows.MetricTransfersStarted).Inc(1)
	dep.Counter(workflows.MetricTransfersStarted).Inc(1)
	dep.WithTags(map[string]string{workflows.MetricTagStatus: "confirmed"}).Counter(workflows.MetricTransfersFinished).Inc(1)
	dep.Timer(workflows.MetricSessionToConfirmed).Record(90 * time.Second)
	// A tag value that is not an enum value never becomes a label value.
	sdk.WithTags(map[string]string{workflows.MetricTagKind: "alice@example.com", workflows.MetricTagStatus: "USER01"}).
		Counter(workflows.MetricTransfersFinished).Inc(1)
	// The SDK's own metrics still go to tally.
	sdk.Counter("temporal_workflow_completed").Inc(1)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, after := scrape(t, srv.URL)
	for _, want := range []string{
		`connectflow_transfers_started_total{kind="deposit"} 2`,
		`connectflow_transfers_finished_total{kind="deposit",status="confirmed"} 1`,
		`connectflow_transfers_finished_total{kind="unknown",status="unknown"} 1`,
		`connectflow_transfer_session_to_confirmed_seconds_bucket{kind="deposit",le="60"} 0`,
		`connectflow_transfer_session_to_confirmed_seconds_bucket{kind="deposit",le="120"} 1`,
		`connectflow_transfer_session_to_confirmed_seconds_sum{kind="deposit"} 90`,
		`temporal_workflow_completed_total{namespace="default",task_queue="q",workflow_type="TransferWorkflow"} 1`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, line := range strings.Split(after, "\n") {
		if strings.HasPrefix(line, "connectflow_") && (strings.Contains(line, "namespace=") || strings.Contains(line, "workflow_type=") ||
			strings.Contains(line, "example.com") || strings.Contains(line, "USER01")) {
			t.Errorf("a business series carries a label beyond kind and status: %s", line)
		}
	}
}

// fakeCounter answers CountWorkflowExecutions from a table, failing the queries it is told to.
type fakeCounter struct {
	mu      sync.Mutex
	counts  map[string]int64 // substring of the query -> count
	fail    map[string]bool
	queries []string
	block   bool
}

func (f *fakeCounter) CountWorkflow(ctx context.Context, r *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	f.queries = append(f.queries, r.GetQuery())
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.fail {
		if strings.Contains(r.GetQuery(), sub) {
			return nil, errors.New("visibility unavailable")
		}
	}
	for sub, n := range f.counts {
		if strings.Contains(r.GetQuery(), sub) {
			return &workflowservice.CountWorkflowExecutionsResponse{Count: n}, nil
		}
	}
	return &workflowservice.CountWorkflowExecutionsResponse{}, nil
}

func TestWatchVisibilitySetsGaugesAndCountsErrors(t *testing.T) {
	m := quietMetrics()
	defer m.Close()
	srv := httptest.NewServer(m.HTTP)
	defer srv.Close()
	f := &fakeCounter{counts: map[string]int64{"'stalled'": 3, "'timed_out'": 2, "needs_review": 4, "'pending'": 5}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.WatchVisibility(ctx, f, VisibilityOptions{Interval: 20 * time.Millisecond, Timeout: time.Second})
	waitFor(t, srv.URL, "connectflow_notifications_pending 5")
	_, body := scrape(t, srv.URL)
	for _, want := range []string{"connectflow_transfers_stalled 3", "connectflow_transfers_timed_out 2", "connectflow_reviews_open 4"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "connectflow_visibility_last_success_timestamp_seconds 0\n") {
		t.Error("a successful round must set the last-success time")
	}
	f.mu.Lock()
	for _, q := range f.queries {
		if !strings.HasPrefix(q, "ExecutionStatus = 'Running' AND ") {
			t.Errorf("query %q counts closed workflows too", q)
		}
	}
	f.fail = map[string]bool{"needs_review": true}
	f.counts["'stalled'"] = 7
	f.mu.Unlock()
	waitFor(t, srv.URL, `connectflow_visibility_count_errors_total{gauge="connectflow_reviews_open"} 2`)
	_, body = scrape(t, srv.URL)
	for _, want := range []string{"connectflow_transfers_stalled 7", "connectflow_reviews_open 4"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s (a failed count keeps its gauge's last value)", want)
		}
	}
}

// A visibility store that does not answer holds no worker up: each count gives up at its timeout, counted.
func TestWatchVisibilityTimesOut(t *testing.T) {
	m := quietMetrics()
	defer m.Close()
	srv := httptest.NewServer(m.HTTP)
	defer srv.Close()
	f := &fakeCounter{block: true}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	m.WatchVisibility(ctx, f, VisibilityOptions{Interval: time.Hour, Timeout: 20 * time.Millisecond})
	if time.Since(start) > 10*time.Millisecond {
		t.Fatal("WatchVisibility must return at once")
	}
	waitFor(t, srv.URL, `connectflow_visibility_count_errors_total{gauge="connectflow_notifications_pending"} 1`)
	cancel()
}

func waitFor(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := scrape(t, url)
		if strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q:\n%s", want, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
