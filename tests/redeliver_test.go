package tests

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

const docRedeliver = "/v1/reviews/{review_id}/redeliver"

// redeliverPath is the API path of a review's redeliver route, the id percent-encoded as a client would.
func redeliverPath(reviewID string) string {
	return transferapi.PathReviews + "/" + url.PathEscape(reviewID) + "/redeliver"
}

// TestRedeliverHeldLedgerMovement: Zero Hash's signed balance webhook for a deposit arrives before any Connect
// webhook, so no transfer carries its Connect id yet and the bridge holds it in a review (unmatched_ledger). Once
// the deposit is confirmed, an operator redelivers it through the API: the transfer takes it once and settles; the
// review closes as redelivered, naming the operator and the reason in its state, search attribute and history; a
// second redelivery (API and CLI) is refused and changes nothing.
func TestRedeliverHeldLedgerMovement(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	rig := a.startBridge(bridgeOptions{})
	bin := buildBinary(t, "starter")

	started := a.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "rd-1", ReferenceID: "USER31", AwaitLedger: true})
	cx := a.connectID(started.SessionID)
	d, err := a.sandbox.EmitBalance(a.ctx(), zerohash.BalanceEvent{Asset: "btc", Balance: "0.013", ParticipantCode: "CUST31",
		AccountLabel: "general", Movements: []zerohash.Movement{{MovementID: "mv-early", Change: "0.013", MovementType: "deposit", DepositReferenceID: cx}}})
	if err != nil || !d.Delivered {
		t.Fatalf("balance webhook: %+v, %v", d, err)
	}
	if n := rig.requests(bridge.PathZeroHashBalances, "review"); n != 1 {
		t.Fatalf("the early movement: review counted %v, want 1", n)
	}
	reviewID := workflows.ReviewWorkflowID("ledger:mv-early")
	a.listed("TransferStatus = 'needs_review'", reviewID)

	// Not deliverable yet: the transfer took no Connect event, so nothing names cx.
	a.call("POST", redeliverPath(reviewID), docRedeliver, apiOperatorToken, map[string]any{"reason": "too early"}).
		want(t, "redeliver before the transfer knows cx", http.StatusConflict, transferapi.TypeNotDeliverable)

	deliveries, err := a.sandbox.Play(a.ctx(), started.SessionID, connecttest.Play{})
	requireDelivered(t, deliveries, err)
	eventually(t, "the deposit confirmed, waiting for its ledger movement", func() bool {
		st, err := a.transfers.Status(a.ctx(), connect.KindDeposit, "rd-1")
		return err == nil && st.Status == workflows.StatusConfirmed
	})
	a.listed("ConnectTransferID = '"+cx+"'", started.WorkflowID)

	body := map[string]any{"reason": "movement came before Connect's webhooks"}
	a.call("POST", redeliverPath(reviewID), docRedeliver, apiBackendToken, body).
		want(t, "redeliver without the operator role", http.StatusForbidden, transferapi.TypeForbidden)
	a.call("POST", redeliverPath("review-ledger:mv-none"), docRedeliver, apiOperatorToken, body).
		want(t, "redeliver an unknown review", http.StatusNotFound, transferapi.TypeReviewNotFound)
	a.call("POST", redeliverPath(reviewID), docRedeliver, apiOperatorToken, map[string]any{"reason": "x", "kind": "deposit", "transfer_id": "rd-none"}).
		want(t, "redeliver to a transfer that does not exist", http.StatusNotFound, transferapi.TypeTransferNotFound)

	var out transfer.Redelivered
	a.call("POST", redeliverPath(reviewID), docRedeliver, apiOperatorToken, body).want(t, "redeliver", http.StatusOK, "").decode(t, &out)
	if out.TransferWorkflowID != started.WorkflowID || out.Redelivery.Operator != "ops-ana" ||
		out.Redelivery.Reason != "movement came before Connect's webhooks" || out.Redelivery.Signal != workflows.SignalLedger ||
		out.Redelivery.DedupeKey != "ledger:mv-early" || out.Redelivery.At.IsZero() || out.Review.Status != workflows.StatusRedelivered {
		t.Fatalf("redelivered: %+v", out)
	}
	if out.Record == nil || out.Record.Effect != workflows.EffectApplied || out.Record.Duplicates != 0 {
		t.Fatalf("the transfer's record of the movement: %+v", out.Record)
	}
	r, err := a.result(connect.KindDeposit, "rd-1")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger == nil || r.Ledger.MovementID != "mv-early" {
		t.Fatalf("after the redelivery: %+v, %v; want settled by mv-early", r, err)
	}

	// Again, by API, CLI and library: refused, nothing delivered twice.
	a.call("POST", redeliverPath(reviewID), docRedeliver, apiOperatorToken, body).
		want(t, "a second redelivery", http.StatusConflict, transferapi.TypeReviewClosed)
	code, stdout, stderr := a.starter(bin, "redeliver", "-review-id", reviewID, "-operator", "bo", "-reason", "again")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "starter: review already closed: "+reviewID+" has finished (redelivered)") ||
		strings.Count(stderr, "\n") != 1 {
		t.Fatalf("starter redeliver again: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := a.transfers.Redeliver(a.ctx(), reviewID, transfer.RedeliverRequest{Operator: "bo", Reason: "again"}); !errors.Is(err, transfer.ErrReviewClosed) {
		t.Fatalf("library redeliver again: %v, want ErrReviewClosed", err)
	}
	var final workflows.TransferResult
	if err := a.client.GetWorkflow(a.ctx(), started.WorkflowID, "").Get(a.ctx(), &final); err != nil {
		t.Fatal(err)
	}
	for _, e := range final.Events {
		if e.DedupeKey == "ledger:mv-early" && (e.Effect != workflows.EffectApplied || e.Duplicates != 0) {
			t.Fatalf("the movement was taken more than once: %+v", e)
		}
	}

	// The audit trail: the review's result, search attribute and history name who, why and where.
	var review workflows.ReviewState
	if err := a.client.GetWorkflow(a.ctx(), reviewID, "").Get(a.ctx(), &review); err != nil {
		t.Fatal(err)
	}
	if review.Status != workflows.StatusRedelivered || review.Redelivery == nil || review.Redelivery.Operator != "ops-ana" ||
		review.Redelivery.TransferWorkflowID != started.WorkflowID || review.Resolution != nil {
		t.Fatalf("review result: %+v", review)
	}
	a.listed("TransferStatus = 'redelivered'", reviewID)
	var accepted *workflows.Redelivery
	signalled := false
	for _, e := range a.history(reviewID) {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			in := e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput()
			if in.GetName() != workflows.UpdateRedeliver {
				t.Fatalf("review history: update %s accepted", in.GetName())
			}
			var got workflows.Redelivery
			if err := converter.GetDefaultDataConverter().FromPayloads(in.GetArgs(), &got); err != nil {
				t.Fatal(err)
			}
			accepted = &got
			var caller string
			if p := in.GetHeader().GetFields()[transferapi.HeaderCaller]; p == nil ||
				converter.GetDefaultDataConverter().FromPayload(p, &caller) != nil || caller != "ops-ana" {
				t.Fatalf("review history: the redeliver update's caller header is %q, want ops-ana", caller)
			}
		case enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
			at := e.GetSignalExternalWorkflowExecutionInitiatedEventAttributes()
			signalled = at.GetWorkflowExecution().GetWorkflowId() == started.WorkflowID && at.GetSignalName() == workflows.SignalLedger
		}
	}
	if accepted == nil || accepted.Operator != "ops-ana" || accepted.Reason != "movement came before Connect's webhooks" || !signalled {
		t.Fatalf("review history: accepted %+v, signalled %v", accepted, signalled)
	}
	fromReview := 0
	for _, e := range a.history(started.WorkflowID) {
		if at := e.GetWorkflowExecutionSignaledEventAttributes(); at != nil && at.GetExternalWorkflowExecution().GetWorkflowId() == reviewID {
			fromReview++
		}
	}
	if fromReview != 1 {
		t.Fatalf("the transfer's history holds %d signals from the review, want 1", fromReview)
	}
	a.checkReplay(reviewID, "review_ledger_redelivered")
	a.checkReplay(started.WorkflowID, "deposit_settled_redelivered")
}

// TestRedeliverRefusals: what cannot be delivered is refused with its reason, by CLI and API, and the review stays
// open: an unexpected deposit (no transfer takes it), a movement naming no transfer (unless the operator names
// one), a transfer that has finished.
func TestRedeliverRefusals(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	a.startBridge(bridgeOptions{})
	bin := buildBinary(t, "starter")

	// An unexpected deposit: held in review, never deliverable.
	started := a.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "rr-1", ReferenceID: "USER32"})
	deliveries, err := a.sandbox.Play(a.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeUnexpected})
	requireDelivered(t, deliveries, err)
	unexpected := workflows.ReviewWorkflowID("deposit:" + a.connectID(started.SessionID) + ":unexpected")
	a.listed("TransferStatus = 'needs_review'", unexpected)
	code, stdout, stderr := a.starter(bin, "redeliver", "-review-id", unexpected, "-operator", "ana", "-reason", "try")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "review holds no event a transfer can take") ||
		!strings.Contains(stderr, "unexpected_deposit") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("starter redeliver an unexpected deposit: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	a.call("POST", redeliverPath(unexpected), docRedeliver, apiOperatorToken, map[string]any{"reason": "try"}).
		want(t, "redeliver an unexpected deposit", http.StatusConflict, transferapi.TypeNotDeliverable)

	// A movement naming a Connect id no transfer has: no transfer to deliver to until the operator names one.
	d, err := a.sandbox.EmitBalance(a.ctx(), zerohash.BalanceEvent{Asset: "btc", Balance: "1", ParticipantCode: "CUST32",
		AccountLabel: "general", Movements: []zerohash.Movement{{MovementID: "mv-stray", Change: "1", MovementType: "deposit", DepositReferenceID: "cx-nobody"}}})
	if err != nil || !d.Delivered {
		t.Fatalf("balance webhook: %+v, %v", d, err)
	}
	stray := workflows.ReviewWorkflowID("ledger:mv-stray")
	a.listed("TransferStatus = 'needs_review'", stray)
	_, err = a.transfers.Redeliver(a.ctx(), stray, transfer.RedeliverRequest{Operator: "ana", Reason: "find it"})
	if !errors.Is(err, transfer.ErrNoTransfer) {
		t.Fatalf("redeliver a movement for no transfer: %v, want ErrNoTransfer", err)
	}
	a.call("POST", redeliverPath(stray), docRedeliver, apiOperatorToken, map[string]any{"reason": "find it"}).
		want(t, "redeliver a movement for no transfer", http.StatusConflict, transferapi.TypeNotDeliverable)

	// Named: a transfer that has finished refuses it.
	if err := a.client.TerminateWorkflow(a.ctx(), started.WorkflowID, "", "test: a finished transfer"); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = a.starter(bin, "redeliver", "-review-id", stray, "-operator", "ana", "-reason", "belongs to rr-1",
		"-kind", "deposit", "-transfer-id", "rr-1")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "starter: transfer has finished: deposit-rr-1 is terminated") {
		t.Fatalf("starter redeliver to a finished transfer: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	a.call("POST", redeliverPath(stray), docRedeliver, apiOperatorToken, map[string]any{"reason": "x", "kind": "deposit", "transfer_id": "rr-1"}).
		want(t, "redeliver to a finished transfer", http.StatusConflict, transferapi.TypeTransferClosed)

	// Every refusal left both reviews open, holding their event.
	for _, id := range []string{unexpected, stray} {
		v, err := a.client.QueryWorkflow(a.ctx(), id, "", workflows.QueryState)
		if err != nil {
			t.Fatal(err)
		}
		var st workflows.ReviewState
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		if st.Status != workflows.StatusNeedsReview || st.Redelivery != nil || len(st.Events) != 1 {
			t.Fatalf("%s after refusals: %+v", id, st)
		}
	}

	// The operator names an open transfer waiting for its movement: the CLI delivers it there, once.
	waiting := a.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "rr-2", ReferenceID: "USER33", AwaitLedger: true})
	deliveries, err = a.sandbox.Play(a.ctx(), waiting.SessionID, connecttest.Play{})
	requireDelivered(t, deliveries, err)
	eventually(t, "rr-2 confirmed, waiting for its ledger movement", func() bool {
		st, err := a.transfers.Status(a.ctx(), connect.KindDeposit, "rr-2")
		return err == nil && st.Status == workflows.StatusConfirmed
	})
	code, stdout, stderr = a.starter(bin, "redeliver", "-review", stray, "-actor", "ana", "-reason", "ticket 77: cx-nobody is rr-2's",
		"-kind", "deposit", "-transfer-id", "rr-2")
	var out transfer.Redelivered
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
		t.Fatalf("starter redeliver to rr-2: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if out.TransferWorkflowID != waiting.WorkflowID || out.Redelivery.Operator != "ana" || out.Review.Status != workflows.StatusRedelivered ||
		out.Record == nil || out.Record.Effect != workflows.EffectApplied {
		t.Fatalf("starter redeliver to rr-2: %s", stdout)
	}
	r, err := a.result(connect.KindDeposit, "rr-2")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger == nil || r.Ledger.MovementID != "mv-stray" {
		t.Fatalf("rr-2 after the redelivery: %+v, %v", r, err)
	}
	code, _, stderr = a.starter(bin, "redeliver", "-review-id", stray, "-operator", "ana", "-reason", "again", "-kind", "deposit", "-transfer-id", "rr-2")
	if code != 1 || !strings.Contains(stderr, "review already closed") {
		t.Fatalf("starter redeliver twice: exit %d, stderr %q", code, stderr)
	}
}

// history is a workflow's whole history.
func (s *stack) history(workflowID string) []*historypb.HistoryEvent {
	s.t.Helper()
	var out []*historypb.HistoryEvent
	it := s.client.GetWorkflowHistory(s.ctx(), workflowID, "", false, 0)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			s.t.Fatalf("history of %s: %v", workflowID, err)
		}
		out = append(out, e)
	}
	return out
}

// TestRedeliverConnectEvent: a Connect event the bridge held for no transfer (its session not found: here a
// payload without session metadata, reviewed as the bridge does) is redelivered by the library to the transfer
// whose ConnectSessionID is the event's, with the bridge's signal and dedupe key: the transfer applies it once, and
// Connect's own late redelivery of the same event afterwards is counted as a duplicate, not applied again.
func TestRedeliverConnectEvent(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	// Waiting for its ledger movement keeps the deposit open after confirmed, so Connect's late redelivery reaches it.
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "rc-1", ReferenceID: "USER34", AwaitLedger: true})
	cx := s.connectID(started.SessionID)
	s.signal(connect.KindDeposit, "rc-1", event(connect.KindDeposit, connect.StatusInitiated, cx, started.SessionID))
	s.listed("ConnectSessionID = '"+started.SessionID+"'", started.WorkflowID)

	confirmed := event(connect.KindDeposit, connect.StatusConfirmed, cx, started.SessionID)
	reviewID := workflows.ReviewWorkflowID(confirmed.DedupeKey)
	_, err := s.client.SignalWithStartWorkflow(s.ctx(), reviewID, workflows.SignalReviewEvent,
		workflows.EventSignal{Event: confirmed, ReceivedAt: time.Now()},
		client.StartWorkflowOptions{ID: reviewID, TaskQueue: taskQueue}, "ReviewWorkflow",
		workflows.ReviewInput{Reason: workflows.ReviewNoTransfer, Kind: connect.KindDeposit, ConnectTransferID: cx, SessionID: started.SessionID})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.transfers.Redeliver(s.ctx(), reviewID, transfer.RedeliverRequest{Operator: "ana", Reason: "session lookup missed it"})
	if err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	if out.TransferWorkflowID != started.WorkflowID || out.Redelivery.Signal != workflows.SignalConnectEvent ||
		out.Redelivery.DedupeKey != confirmed.DedupeKey || out.Record == nil || out.Record.Effect != workflows.EffectApplied {
		t.Fatalf("redelivered: %+v (record %+v)", out, out.Record)
	}
	s.signal(connect.KindDeposit, "rc-1", confirmed) // Connect delivers it again itself
	var r workflows.TransferState
	eventually(t, "Connect's redelivery counted", func() bool {
		r, err = s.transfers.Status(s.ctx(), connect.KindDeposit, "rc-1")
		for _, e := range r.Events {
			if e.DedupeKey == confirmed.DedupeKey && e.Duplicates > 0 {
				return true
			}
		}
		return false
	})
	if r.Status != workflows.StatusConfirmed {
		t.Fatalf("rc-1: %s, want confirmed", r.Status)
	}
	applied := 0
	for _, e := range r.Events {
		if e.DedupeKey == confirmed.DedupeKey {
			applied++
			if e.Effect != workflows.EffectApplied || e.Duplicates != 1 {
				t.Fatalf("the confirmed event's record: %+v, want applied with 1 duplicate", e)
			}
		}
	}
	if applied != 1 {
		t.Fatalf("%d records of the confirmed event, want 1: %+v", applied, r.Events)
	}
}
