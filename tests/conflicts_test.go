package tests

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// The cases of workflows.ChangeEveryConflictReviewed and workflows.ChangeCloseKeptByOwnEvents (found by a review)
// on a real server, each recorded for the replay test. Histories of the same cases recorded on the code before
// (no marker: "_v4") replay there too, on the old rules.

// reviewOpened waits for the review workflow of an event's dedupe key.
func (s *stack) reviewOpened(key string) {
	s.t.Helper()
	eventually(s.t, "the review of "+key, func() bool {
		_, err := s.client.DescribeWorkflowExecution(s.ctx(), workflows.ReviewWorkflowID(key), "")
		return err == nil
	})
}

// A Connect event signalled while the session request is failing (slowly) is taken by the closing transfer and,
// contradicting session_failed, sent to review; before, the workflow closed with it unread.
func TestSignalDuringAFailingSessionIsReviewed(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	if err := s.sandbox.Fail(connecttest.EndpointSessions, connecttest.Fault{Status: http.StatusForbidden,
		Latency: 3 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	s.startWorker()
	const id = "late-signal"
	wf := workflows.WorkflowID(connect.KindDeposit, id)
	started := make(chan error, 1)
	go func() {
		_, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id,
			ReferenceID: "USERLS"})
		started <- err
	}()
	eventually(t, "the transfer running", func() bool {
		_, err := s.client.DescribeWorkflowExecution(s.ctx(), wf, "")
		return err == nil
	})
	ev := event(connect.KindDeposit, connect.StatusConfirmed, "cx-late-signal", "sess-unknown")
	s.signal(connect.KindDeposit, id, ev)
	if err := <-started; err == nil {
		t.Fatal("the session was refused (403), but the start succeeded")
	}
	if _, err := s.result(connect.KindDeposit, id); err == nil {
		t.Fatal("want the workflow failed with the session's error")
	}
	s.reviewOpened(ev.DedupeKey)
	s.checkReplayFile(wf, recordFile("deposit_session_failed_late_signal"))
}

// A ledger movement of the wrong amount taken while the transfer is stalled goes to review: here Connect then
// confirms it and the right movement settles it, so nobody resolves the stalled transfer and the record alone
// would show the conflict to no one.
func TestConflictWhileStalledIsReviewed(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	const id = "stalled-conflict"
	started := s.start(workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: id, ReferenceID: "USERSC",
		AwaitLedger: true, Timeouts: workflows.Timeouts{Stall: 2 * time.Second}}) // 0.5 BTC
	const cx = "cx-stalled-conflict"
	s.signal(connect.KindWithdrawal, id, event(connect.KindWithdrawal, connect.StatusInitiated, cx, started.SessionID))
	eventually(t, "stalled", func() bool { return s.state(started.WorkflowID).Status == workflows.StatusStalled })
	ledger := func(m workflows.LedgerMovement) {
		t.Helper()
		if err := s.client.SignalWorkflow(s.ctx(), started.WorkflowID, "", workflows.SignalLedger, m); err != nil {
			t.Fatal(err)
		}
	}
	ledger(workflows.LedgerMovement{MovementID: "m-wrong", MovementType: "withdrawal", Asset: "BTC", Change: "-0.4"})
	s.signal(connect.KindWithdrawal, id, event(connect.KindWithdrawal, connect.StatusConfirmed, cx, started.SessionID))
	ledger(workflows.LedgerMovement{MovementID: "m-right", MovementType: "withdrawal", Asset: "BTC", Change: "-0.5"})
	r, err := s.result(connect.KindWithdrawal, id)
	if err != nil || r.Status != workflows.StatusSettled {
		t.Fatalf("result %+v, %v; want settled", r, err)
	}
	s.reviewOpened("ledger:m-wrong")
	s.checkReplayFile(started.WorkflowID, recordFile("withdrawal_stalled_conflict_reviewed"))
}

// A signed event that names the transfer but another session, arriving while the user's close waits out its
// grace, is a conflict (sent to review), not the user coming back: the close still abandons the transfer at the
// end of its grace, not at the session's expiry.
func TestAttackEventOfAnotherSessionDoesNotKeepAClosedTransfer(t *testing.T) {
	s := newStack(t, connecttest.Options{SessionTTL: 20 * time.Second})
	s.startWorker()
	a := s.newAttacker()
	rig := s.startBridge(bridgeOptions{})
	const id, grace = "atk-keep", 3 * time.Second
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id, ReferenceID: "USERKC",
		Timeouts: workflows.Timeouts{CloseGrace: grace}})
	if err := s.client.SignalWorkflow(s.ctx(), started.WorkflowID, "", workflows.SignalSDKEvent,
		workflows.SDKEvent{Type: workflows.SDKTypeClose, DedupeKey: "close-1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the close deferred", func() bool { return len(s.state(started.WorkflowID).Events) == 2 })
	body := depositEvent("initiated", id, "sess-attacker")
	if status, answer := a.webhook(rig, body, ""); status != http.StatusOK {
		t.Fatalf("forged-session webhook: %d %s", status, answer)
	}
	ev, err := connect.ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	s.reviewOpened(ev.DedupeKey)
	r, err := s.result(connect.KindDeposit, id)
	if err != nil || r.Status != workflows.StatusAbandoned || r.Events[1].Effect != workflows.EffectApplied {
		t.Fatalf("result %+v, %v; want abandoned by the close", r, err)
	}
	// The forged event must have come within the grace, or the close would have abandoned the transfer anyway.
	if len(r.Events) < 3 || r.Events[2].Effect != workflows.EffectConflict || !r.Events[2].ReceivedAt.Before(r.Events[1].ReceivedAt.Add(grace)) {
		t.Fatalf("events %+v: want the forged event recorded as a conflict within the close's grace", r.Events)
	}
	s.checkReplayFile(started.WorkflowID, recordFile("deposit_close_kept_by_foreign_event"))
}

// A run that fills with a conflicting event hands over at once (workflows.ChangeCarryPendingWork): the review that
// event opens is still being opened, so it goes to the next run, which opens it again (the review workflow counts
// the duplicate). Every review opens, and the transfer goes on to confirm.
func TestFullRunHandsOverItsPendingReview(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	s.startBridge(bridgeOptions{}) // the sandbox's webhooks go through it
	const id = "carry-review"
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id, ReferenceID: "USERCR",
		SignalsPerRun: 3})
	var keys []string
	for i := range 3 { // events of another session: conflicts, each sent to review; the third fills the run
		ev := event(connect.KindDeposit, connect.StatusInitiated, "cx-carry-review", "sess-other")
		ev.DedupeKey = fmt.Sprintf("deposit:cx-carry-review:other-%d", i)
		keys = append(keys, ev.DedupeKey)
		s.signal(connect.KindDeposit, id, ev)
	}
	var first string
	eventually(t, "the first run handed over", func() bool {
		resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowId = '" + started.WorkflowID + "' AND ExecutionStatus = 'ContinuedAsNew'"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) == 1 {
			first = resp.GetExecutions()[0].GetExecution().GetRunId()
		}
		return first != ""
	})
	for _, k := range keys {
		s.reviewOpened(k)
	}
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
	requireDelivered(t, deliveries, err)
	if r, err := s.result(connect.KindDeposit, id); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("result %+v, %v; want confirmed", r, err)
	}
	carry := s.carryOf(started.WorkflowID, first)
	if len(carry.Pending) == 0 || carry.Pending[len(carry.Pending)-1].Review == nil ||
		carry.Pending[len(carry.Pending)-1].Review.WorkflowID != workflows.ReviewWorkflowID(keys[2]) {
		t.Fatalf("handed over %+v; want the third event's review among the pending work", carry.Pending)
	}
	s.checkReplayRun(started.WorkflowID, first, recordFile("deposit_handover_carries_review"))
	s.checkReplayFile(started.WorkflowID, recordFile("deposit_handover_carried_review_next"))
}

// carryOf is what run runID of workflowID handed to the next run (its ContinueAsNew command's input).
func (s *stack) carryOf(workflowID, runID string) workflows.TransferCarry {
	s.t.Helper()
	it := s.client.GetWorkflowHistory(s.ctx(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
			var next workflows.TransferInput
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &next); err != nil {
				s.t.Fatal(err)
			}
			if next.Carry == nil {
				s.t.Fatalf("run %s handed over no carry", runID)
			}
			return *next.Carry
		}
	}
	s.t.Fatalf("run %s of %s did not continue as new", runID, workflowID)
	return workflows.TransferCarry{}
}
