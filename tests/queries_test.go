package tests

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// The UI queries in docs/operations.md find exactly the transfers that need a person, on a real server's visibility store.
func TestOperatorQueries(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	short := workflows.Timeouts{Stall: time.Second, ReviewHorizon: 2 * time.Second}
	start := func(id string, timeouts workflows.Timeouts) string {
		st, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id,
			ReferenceID: "REF-" + id, Timeouts: timeouts})
		if err != nil {
			t.Fatal(err)
		}
		return st.SessionID
	}
	stalledSession := start("q-stalled", workflows.Timeouts{Stall: time.Second})
	s.signal(connect.KindDeposit, "q-stalled", event(connect.KindDeposit, connect.StatusInitiated, "cx-q-stalled", stalledSession))
	timedOutSession := start("q-timedout", short)
	s.signal(connect.KindDeposit, "q-timedout", event(connect.KindDeposit, connect.StatusInitiated, "cx-q-timedout", timedOutSession))
	failedSession := start("q-failed", workflows.Timeouts{})
	s.signal(connect.KindDeposit, "q-failed", event(connect.KindDeposit, connect.StatusFailed, "cx-q-failed", failedSession))
	unsettled, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "q-unsettled",
		ReferenceID: "REF-q-unsettled", AwaitLedger: true, Timeouts: short})
	if err != nil {
		t.Fatal(err)
	}
	s.signal(connect.KindDeposit, "q-unsettled", event(connect.KindDeposit, connect.StatusConfirmed, "cx-q-unsettled", unsettled.SessionID))
	okSession := start("q-ok", workflows.Timeouts{})
	s.signal(connect.KindDeposit, "q-ok", event(connect.KindDeposit, connect.StatusConfirmed, "cx-q-ok", okSession))
	unexpected := event(connect.KindDeposit, connect.StatusUnexpected, "cx-stray", "")
	reviewID := workflows.ReviewWorkflowID(unexpected.DedupeKey)
	if _, err := s.client.SignalWithStartWorkflow(s.ctx(), reviewID, workflows.SignalReviewEvent,
		workflows.EventSignal{Event: unexpected}, client.StartWorkflowOptions{TaskQueue: taskQueue},
		workflows.ReviewWorkflow, workflows.ReviewInput{Reason: workflows.ReviewUnexpected, Kind: connect.KindDeposit}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		query string
		want  []string
	}{
		{workflows.QueryStalled, []string{"deposit-q-stalled"}},
		{workflows.QueryTimedOut, []string{"deposit-q-timedout"}},
		{workflows.QueryFailed, []string{"deposit-q-failed"}},
		{workflows.QueryUnmatched, []string{reviewID}},
		{workflows.QueryUnsettled, []string{"deposit-q-unsettled"}},
		{workflows.QueryNeedsPerson, []string{"deposit-q-stalled", "deposit-q-timedout", reviewID}},
		{workflows.QuerySettledSince(today), []string{"deposit-q-ok"}},
		{workflows.QuerySettledSince(today.Add(24 * time.Hour)), nil},
	}
	for _, c := range cases {
		eventually(t, c.query, func() bool {
			resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.namespace, Query: c.query})
			if err != nil {
				t.Fatalf("%s: %v", c.query, err)
			}
			var got []string
			for _, ex := range resp.GetExecutions() {
				got = append(got, ex.GetExecution().GetWorkflowId())
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			return slices.Equal(got, want)
		})
	}

	page, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{workflows.QueryNeedsPerson, workflows.QueryStalled, workflows.QueryTimedOut, workflows.QueryUnsettled,
		workflows.QueryFailed, workflows.QueryUnmatched, "TransferStatus IN ('confirmed', 'settled') AND CloseTime >= '"} {
		if !strings.Contains(string(page), q) {
			t.Errorf("docs/operations.md does not list the query %q", q)
		}
	}
}
