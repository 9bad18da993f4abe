package tests

import (
	"errors"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// TestRecordedPaths drives every path of the transfer and review workflows on a real server and replays each
// history against today's code. With UPDATE_HISTORIES=1 it adds the histories that are not recorded yet under
// workflows/testdata/histories; a recorded history is never overwritten (docs/versioning.md).
func TestRecordedPaths(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	dep := connect.KindDeposit
	start := func(in workflows.TransferInput) string {
		t.Helper()
		if in.Kind == "" {
			in.Kind = dep
		}
		if in.ReferenceID == "" {
			in.ReferenceID = "REF-" + in.TransferID
		}
		st, err := s.transfers.Start(s.ctx(), in)
		if err != nil {
			t.Fatalf("start %s: %v", in.TransferID, err)
		}
		return st.SessionID
	}
	waitStatus := func(kind connect.Kind, id string, want workflows.Status) {
		t.Helper()
		eventually(t, id+" "+string(want), func() bool {
			cur, err := s.transfers.Status(s.ctx(), kind, id)
			return err == nil && cur.Status == want
		})
	}
	finished := func(kind connect.Kind, id string, want workflows.Status, name string) {
		t.Helper()
		r, err := s.result(kind, id)
		if err != nil || r.Status != want {
			t.Fatalf("%s: result %+v, %v; want %s", id, r, err, want)
		}
		s.checkReplay(workflows.WorkflowID(kind, id), name)
	}
	sdk := func(id string, e workflows.SDKEvent) {
		t.Helper()
		if err := s.client.SignalWorkflow(s.ctx(), workflows.WorkflowID(dep, id), "", workflows.SignalSDKEvent, e); err != nil {
			t.Fatal(err)
		}
	}
	ledger := func(id string, m workflows.LedgerMovement) {
		t.Helper()
		if err := s.client.SignalWorkflow(s.ctx(), workflows.WorkflowID(dep, id), "", workflows.SignalLedger, m); err != nil {
			t.Fatal(err)
		}
	}

	// failed, with a redelivered and a late event on the way.
	sess := start(workflows.TransferInput{TransferID: "h-failed"})
	s.signal(dep, "h-failed", event(dep, connect.StatusBroadcasted, "cx-h-failed", sess))
	s.signal(dep, "h-failed", event(dep, connect.StatusInitiated, "cx-h-failed", sess))
	s.signal(dep, "h-failed", event(dep, connect.StatusBroadcasted, "cx-h-failed", sess))
	failed := event(dep, connect.StatusFailed, "cx-h-failed", sess)
	failed.FailureReason = "rejected by the exchange"
	s.signal(dep, "h-failed", failed)
	finished(dep, "h-failed", workflows.StatusFailed, "deposit_failed")

	// expired: the user never initiated within the session's window.
	start(workflows.TransferInput{TransferID: "h-expired", Timeouts: workflows.Timeouts{SessionExpiry: time.Second}})
	finished(dep, "h-expired", workflows.StatusExpired, "deposit_expired")

	// abandoned: the user closed the SDK; an informational SDK event first.
	start(workflows.TransferInput{TransferID: "h-abandoned"})
	sdk("h-abandoned", workflows.SDKEvent{Type: workflows.SDKTypeEvent, Detail: "opened", DedupeKey: "sdk-1"})
	sdk("h-abandoned", workflows.SDKEvent{Type: workflows.SDKTypeClose, DedupeKey: "sdk-2"})
	finished(dep, "h-abandoned", workflows.StatusAbandoned, "deposit_abandoned")

	// settled: confirmed, then its ledger movement (redelivered once).
	sess = start(workflows.TransferInput{TransferID: "h-settled", AwaitLedger: true})
	s.playLife(dep, "h-settled", sess, connect.StatusConfirmed)
	waitStatus(dep, "h-settled", workflows.StatusConfirmed)
	mv := workflows.LedgerMovement{MovementID: "mv-h-settled", MovementType: "deposit", Asset: "BTC", Change: "0.013", At: time.Now()}
	ledger("h-settled", mv)
	// The redelivery races the workflow's close: either it is counted as a duplicate or the transfer is gone.
	var gone *serviceerror.NotFound
	if err := s.client.SignalWorkflow(s.ctx(), workflows.WorkflowID(dep, "h-settled"), "", workflows.SignalLedger, mv); err != nil && !errors.As(err, &gone) {
		t.Fatal(err)
	}
	finished(dep, "h-settled", workflows.StatusSettled, "deposit_settled")

	// settled, ledger first: the movement arrives before confirmed.
	sess = start(workflows.TransferInput{TransferID: "h-ledger-first", AwaitLedger: true})
	s.signal(dep, "h-ledger-first", event(dep, connect.StatusInitiated, "cx-h-ledger-first", sess))
	waitStatus(dep, "h-ledger-first", workflows.StatusInitiated)
	ledger("h-ledger-first", workflows.LedgerMovement{MovementID: "mv-h-ledger-first", MovementType: "deposit", Asset: "BTC", Change: "0.013"})
	s.signal(dep, "h-ledger-first", event(dep, connect.StatusConfirmed, "cx-h-ledger-first", sess))
	finished(dep, "h-ledger-first", workflows.StatusSettled, "deposit_settled_ledger_first")

	// unsettled: confirmed, no ledger movement within the horizon.
	sess = start(workflows.TransferInput{TransferID: "h-unsettled", AwaitLedger: true, Timeouts: workflows.Timeouts{ReviewHorizon: 2 * time.Second}})
	s.playLife(dep, "h-unsettled", sess, connect.StatusConfirmed)
	finished(dep, "h-unsettled", workflows.StatusUnsettled, "deposit_unsettled")

	// stalled, then confirmed after all.
	sess = start(workflows.TransferInput{TransferID: "h-stalled", Timeouts: workflows.Timeouts{Stall: time.Second, ReviewHorizon: time.Hour}})
	s.signal(dep, "h-stalled", event(dep, connect.StatusInitiated, "cx-h-stalled", sess))
	waitStatus(dep, "h-stalled", workflows.StatusStalled)
	s.signal(dep, "h-stalled", event(dep, connect.StatusBroadcasted, "cx-h-stalled", sess))
	s.signal(dep, "h-stalled", event(dep, connect.StatusConfirmed, "cx-h-stalled", sess))
	finished(dep, "h-stalled", workflows.StatusConfirmed, "deposit_stalled_confirmed")

	// stalled, resolved failed by an operator.
	sess = start(workflows.TransferInput{TransferID: "h-stalled-resolved", Timeouts: workflows.Timeouts{Stall: time.Second, ReviewHorizon: time.Hour}})
	s.signal(dep, "h-stalled-resolved", event(dep, connect.StatusInitiated, "cx-h-stalled-resolved", sess))
	waitStatus(dep, "h-stalled-resolved", workflows.StatusStalled)
	if _, err := s.transfers.ResolveTransfer(s.ctx(), dep, "h-stalled-resolved",
		workflows.Resolution{Operator: "ana", Outcome: workflows.StatusFailed, Reason: "exchange says never sent"}); err != nil {
		t.Fatal(err)
	}
	finished(dep, "h-stalled-resolved", workflows.StatusFailed, "deposit_stalled_resolved")

	// a withdrawal that failed after broadcast, with an SDK withdrawal callback.
	wd := connect.KindWithdrawal
	sess = start(workflows.TransferInput{Kind: wd, TransferID: "h-wfailed", Asset: "BTC", Network: "bitcoin", Amount: "0.5"})
	s.signal(wd, "h-wfailed", event(wd, connect.StatusInitiated, "cx-h-wfailed", sess))
	s.signal(wd, "h-wfailed", event(wd, connect.StatusFailed, "cx-h-wfailed", sess))
	finished(wd, "h-wfailed", workflows.StatusFailed, "withdrawal_failed")

	// review: an unexpected deposit, redelivered, then resolved.
	unexpected := event(dep, connect.StatusUnexpected, "cx-h-review", "")
	reviewID := workflows.ReviewWorkflowID(unexpected.DedupeKey)
	for range 2 {
		if _, err := s.client.SignalWithStartWorkflow(s.ctx(), reviewID, workflows.SignalReviewEvent,
			workflows.EventSignal{Event: unexpected, ReceivedAt: time.Now()},
			client.StartWorkflowOptions{ID: reviewID, TaskQueue: taskQueue, WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE},
			workflows.ReviewWorkflow, workflows.ReviewInput{Reason: workflows.ReviewUnexpected, Kind: dep}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.transfers.ResolveReview(s.ctx(), reviewID,
		workflows.Resolution{Operator: "ana", Outcome: workflows.StatusConfirmed, Reason: "credited by hand"}); err != nil {
		t.Fatal(err)
	}
	var rv workflows.ReviewState
	if err := s.client.GetWorkflow(s.ctx(), reviewID, "").Get(s.ctx(), &rv); err != nil || rv.Status != workflows.StatusResolved {
		t.Fatalf("review: %+v, %v", rv, err)
	}
	s.checkReplay(reviewID, "review_unexpected_resolved")
}
