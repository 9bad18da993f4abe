package tests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/reconcile"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// confirmedAwaitingLedger starts an await_ledger deposit, plays it confirmed through the bridge, and waits until
// it is confirmed (still open for its movement) and listed by its Connect transfer id. It returns that id.
func (s *stack) confirmedAwaitingLedger(transferID, referenceID string) string {
	s.t.Helper()
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: transferID, ReferenceID: referenceID,
		AwaitLedger: true})
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{})
	requireDelivered(s.t, deliveries, err)
	cx := s.connectID(started.SessionID)
	s.listed(fmt.Sprintf("ConnectTransferID = '%s'", cx), started.WorkflowID)
	eventually(s.t, transferID+" confirmed and open for its ledger movement", func() bool {
		st, err := s.transfers.Status(s.ctx(), connect.KindDeposit, transferID)
		if err != nil {
			s.t.Fatalf("status: %v", err)
		}
		return st.Status == workflows.StatusConfirmed
	})
	return cx
}

// emitDeposit has the sandbox announce a deposit movement by balance webhook (sent, or dropped when the drop
// switch is on) and returns the delivery.
func (s *stack) emitDeposit(movementID, connectID string) connecttest.Delivery {
	s.t.Helper()
	d, err := s.sandbox.EmitBalance(s.ctx(), zerohash.BalanceEvent{Asset: "BTC", Balance: "0.013", ParticipantCode: "CUST01",
		AccountLabel: "general", Movements: []zerohash.Movement{{MovementID: movementID, Change: "0.013",
			MovementType: zerohash.MovementTypeDeposit, DepositReferenceID: connectID}}})
	if err != nil {
		s.t.Fatalf("emit %s: %v", movementID, err)
	}
	return d
}

func (s *stack) cursorState() workflows.ReconcileCursorState {
	s.t.Helper()
	var st workflows.ReconcileCursorState
	v, err := s.client.QueryWorkflow(s.ctx(), workflows.ReconcileCursorWorkflowID, "", workflows.QueryState)
	if err != nil {
		s.t.Fatalf("query the cursor workflow: %v", err)
	}
	if err := v.Get(&st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// TestReconciliationRecoversDroppedBalanceWebhooks: on a real server with the real worker wiring and the sandbox
// on loopback, a run that fails leaves the cursor; a run whose GET /movements answers 500 and 429 first is retried
// and then settles the await_ledger deposit whose balance webhook was dropped (its ledger movement marked as from
// reconciliation), counts the movement the webhook already delivered as known without applying it again, and puts
// the movement that names no transfer into its one review, the same the webhook opened.
func TestReconciliationRecoversDroppedBalanceWebhooks(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	s.startBridge(bridgeOptions{})

	dropped := s.confirmedAwaitingLedger("rc-dropped", "USER80")
	both := s.confirmedAwaitingLedger("rc-both", "USER81")

	// Zero Hash gives up on rc-dropped's webhook (the drop switch), delivers rc-both's, and delivers a movement
	// naming no transfer (it goes to review by webhook).
	s.sandbox.DropBalanceWebhooks(0)
	if d := s.emitDeposit("mv-dropped", dropped); !d.Dropped {
		t.Fatalf("webhook of mv-dropped was not dropped: %+v", d)
	}
	s.sandbox.ResumeBalanceWebhooks()
	if d := s.emitDeposit("mv-both", both); !d.Delivered {
		t.Fatalf("webhook of mv-both: %+v", d)
	}
	if d := s.emitDeposit("mv-nobody", "cx-no-such-transfer"); !d.Delivered {
		t.Fatalf("webhook of mv-nobody: %+v", d)
	}
	r, err := s.result(connect.KindDeposit, "rc-both")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger.Via != workflows.LedgerViaWebhook {
		t.Fatalf("rc-both after its webhook: %+v, %v", r, err)
	}

	// A run whose GET /movements is refused (403: not retried) fails and leaves the cursor where it was.
	if err := s.sandbox.Fail(connecttest.EndpointMovements, connecttest.Fault{Status: 403, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reconcile.RunNow(s.ctx(), s.client, taskQueue); err == nil {
		t.Fatal("a run refused by Zero Hash succeeded")
	}
	if st := s.cursorState(); st.Version != 0 || st.Cursor.HighWaterMS != 0 {
		t.Fatalf("a failed run moved the cursor: %+v", st)
	}
	if st, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "rc-dropped"); err != nil || st.Status != workflows.StatusConfirmed {
		t.Fatalf("rc-dropped after the failed run: %v, %v", st.Status, err)
	}

	// The next run meets a 500, then a 429 with Retry-After: both retried, then served.
	if err := s.sandbox.Fail(connecttest.EndpointMovements, connecttest.Fault{Status: 500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.sandbox.Fail(connecttest.EndpointMovements, connecttest.Fault{Status: 429, RetryAfter: time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	before := s.sandbox.Count(connecttest.EndpointMovements)
	summary, runID, err := reconcile.RunNow(s.ctx(), s.client, taskQueue)
	if err != nil {
		t.Fatalf("reconcile %s: %v", runID, err)
	}
	want := workflows.ReconcileSummary{Pages: 2, Seen: 3, Applied: 1, AlreadyKnown: 1, Unmatched: 1}
	if summary.Pages != want.Pages || summary.Seen != want.Seen || summary.Applied != want.Applied ||
		summary.AlreadyKnown != want.AlreadyKnown || summary.Unmatched != want.Unmatched || !summary.CursorAdvanced {
		t.Fatalf("summary %+v, want %+v and the cursor advanced", summary, want)
	}
	if n := s.sandbox.Count(connecttest.EndpointMovements) - before; n != 4 {
		t.Fatalf("GET /movements requests %d, want 4 (500, 429, then a page of deposits and one of withdrawals)", n)
	}

	r, err = s.result(connect.KindDeposit, "rc-dropped")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger == nil || r.Ledger.MovementID != "mv-dropped" ||
		r.Ledger.Via != workflows.LedgerViaReconciliation {
		t.Fatalf("rc-dropped after reconciliation: %+v, %v; want settled by mv-dropped via reconciliation", r, err)
	}
	ledgerRecords := 0
	for _, e := range r.Events {
		if e.Source == "ledger" {
			ledgerRecords++
		}
	}
	if ledgerRecords != 1 {
		t.Fatalf("rc-dropped recorded %d ledger events: %+v", ledgerRecords, r.Events)
	}

	// The unmatched movement is in one review, holding it once.
	reviewID := workflows.ReviewWorkflowID("ledger:mv-nobody")
	var review workflows.ReviewState
	v, err := s.client.QueryWorkflow(s.ctx(), reviewID, "", workflows.QueryState)
	if err != nil {
		t.Fatalf("query review %s: %v", reviewID, err)
	}
	if err := v.Get(&review); err != nil {
		t.Fatal(err)
	}
	if review.Input.Reason != workflows.ReviewUnmatchedLedger || len(review.Events) != 1 || review.Events[0].Ledger.MovementID != "mv-nobody" {
		t.Fatalf("review %+v", review)
	}
	s.listed("WorkflowType = 'ReviewWorkflow' AND ConnectTransferID = 'cx-no-such-transfer'", reviewID)
	resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowType = 'ReviewWorkflow' AND ConnectTransferID = 'cx-no-such-transfer'"})
	if err != nil || len(resp.GetExecutions()) != 1 {
		t.Fatalf("reviews of cx-no-such-transfer: %d, %v; want 1", len(resp.GetExecutions()), err)
	}

	// The cursor now stands at the newest movement; a run right after applies nothing again.
	if st := s.cursorState(); st.Version != 1 || st.Cursor.HighWaterMS != summary.HighWaterMS || len(st.Cursor.Recent) != 3 {
		t.Fatalf("cursor after the run: %+v (summary %+v)", st, summary)
	}
	again, _, err := reconcile.RunNow(s.ctx(), s.client, taskQueue)
	if err != nil || again.Seen != 0 || again.Applied != 0 || again.Pages != 2 {
		t.Fatalf("second run: %+v, %v; want nothing new", again, err)
	}
}

// TestReconcileScheduleSettlesWithoutAnOperator: the worker's schedule (WORKER_RECONCILE_EVERY) starts runs by
// itself; a deposit whose balance webhook was dropped settles without anyone asking; starter's RunNow goes through
// the schedule; the interval follows the setting and 0 pauses it.
func TestReconcileScheduleSettlesWithoutAnOperator(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	s.startBridge(bridgeOptions{})
	cfg := s.workerConfig()
	cfg.ReconcileEvery = 2 * time.Second
	if err := workerapp.EnsureReconcileSchedule(s.ctx(), s.client, cfg); err != nil {
		t.Fatalf("ensure schedule: %v", err)
	}
	if err := workerapp.EnsureReconcileSchedule(s.ctx(), s.client, cfg); err != nil { // a second worker: no change
		t.Fatalf("ensure schedule again: %v", err)
	}

	cx := s.confirmedAwaitingLedger("rs-1", "USER90")
	s.sandbox.DropBalanceWebhooks(time.Minute)
	s.emitDeposit("mv-rs-1", cx)
	r, err := s.result(connect.KindDeposit, "rs-1")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger.Via != workflows.LedgerViaReconciliation {
		t.Fatalf("rs-1: %+v, %v", r, err)
	}

	h := s.client.ScheduleClient().GetHandle(s.ctx(), workflows.ReconcileScheduleID)
	// Operators run one now: it is the schedule's run, listed under it.
	_, runID, err := reconcile.RunNow(s.ctx(), s.client, taskQueue)
	if err != nil {
		t.Fatalf("run now: %v", err)
	}
	desc, err := h.Describe(s.ctx())
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, a := range desc.Info.RecentActions {
		listed = listed || (a.StartWorkflowResult != nil && a.StartWorkflowResult.WorkflowID == runID)
	}
	if !listed {
		t.Fatalf("run %s is not among the schedule's recent actions", runID)
	}

	cfg.ReconcileEvery = 3 * time.Second
	if err := workerapp.EnsureReconcileSchedule(s.ctx(), s.client, cfg); err != nil {
		t.Fatal(err)
	}
	if desc, err = h.Describe(s.ctx()); err != nil || desc.Schedule.Spec.Intervals[0].Every != 3*time.Second {
		t.Fatalf("interval after the update: %+v, %v", desc.Schedule.Spec, err)
	}
	cfg.ReconcileEvery = 0
	if err := workerapp.EnsureReconcileSchedule(s.ctx(), s.client, cfg); err != nil {
		t.Fatal(err)
	}
	if desc, err = h.Describe(s.ctx()); err != nil || !desc.Schedule.State.Paused {
		t.Fatalf("schedule after WORKER_RECONCILE_EVERY=0: %+v, %v", desc.Schedule.State, err)
	}
}

// TestStarterReconcileCommand: `starter reconcile` runs one reconciliation now and prints its summary as one
// JSON object; with no schedule it starts the run itself.
func TestStarterReconcileCommand(t *testing.T) {
	bin := buildBinary(t, "starter")
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	s.sandbox.DropBalanceWebhooks(0) // no bridge at all: the movement is only in the ledger
	s.emitDeposit("mv-cli", "cx-cli-nobody")

	code, out, errOut := s.starter(bin, "reconcile")
	if code != 0 {
		t.Fatalf("reconcile: exit %d: %s", code, errOut)
	}
	var got struct {
		WorkflowID string `json:"workflow_id"`
		workflows.ReconcileSummary
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("reconcile output is not one JSON object: %q", out)
	}
	if !strings.HasPrefix(got.WorkflowID, workflows.ReconcileRunWorkflowPrefix+"-manual-") || got.Seen != 1 ||
		got.Unmatched != 1 || got.Pages != 2 || !got.CursorAdvanced {
		t.Fatalf("reconcile printed %s", out)
	}
	if code, _, errOut := s.starter(bin, "reconcile", "extra"); code != 2 || !strings.Contains(errOut, "unexpected argument") {
		t.Fatalf("reconcile with an argument: exit %d, %q", code, errOut)
	}
}
