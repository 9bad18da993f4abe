package bridge_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// TestLateLedgerMovement: a movement for a closed transfer is acknowledged only when the transfer took one
// (settled: a redelivery) or never waited for one (confirmed). A transfer that ended unsettled gave up waiting, so
// a movement that comes after all must reach a person: found by the chaos suite, where such movements were
// answered 200 and recorded nowhere.
func TestLateLedgerMovement(t *testing.T) {
	cases := []struct {
		final   workflows.Status
		outcome string
	}{
		{workflows.StatusSettled, "acknowledged"},
		{workflows.StatusConfirmed, "acknowledged"},
		{workflows.StatusUnsettled, "review"},
		{workflows.StatusFailed, "review"},
		{workflows.StatusExpired, "review"},
		{workflows.StatusTimedOut, "review"},
	}
	for _, c := range cases {
		t.Run(string(c.final), func(t *testing.T) {
			h := newHarness(t, harnessOptions{temporalTimeout: 200 * time.Millisecond})
			h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'cx-1'", "deposit-T1")
			h.temporal.mu.Lock()
			h.temporal.closed["deposit-T1"] = c.final
			h.temporal.mu.Unlock()
			got := h.send(t, balanceWebhook(t, zerohash.Movement{MovementID: "m-late", Change: "0.013",
				MovementType: "deposit", DepositReferenceID: "cx-1"}))
			if got.status != http.StatusOK || got.body != `{"outcome":"`+c.outcome+`"}` {
				t.Fatalf("answer %d %s, want 200 %s", got.status, got.body, c.outcome)
			}
			_, starts := h.temporal.calls()
			if c.outcome == "acknowledged" {
				if len(starts) != 0 {
					t.Fatalf("reviews %+v, want none", starts)
				}
				return
			}
			if len(starts) != 1 || starts[0].workflowID != "review-ledger:m-late" || starts[0].signal != workflows.SignalLedger ||
				starts[0].input.Reason != workflows.ReviewClosedConflict || starts[0].input.TransferWorkflowID != "deposit-T1" {
				t.Fatalf("reviews %+v, want review-ledger:m-late (%s) for deposit-T1", starts, workflows.ReviewClosedConflict)
			}
		})
	}
}
