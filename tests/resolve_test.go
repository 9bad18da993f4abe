package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

func TestResolveTimedOutTransfer(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	in := workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "late", ReferenceID: "USER07",
		Timeouts: workflows.Timeouts{Stall: time.Second, ReviewHorizon: 2 * time.Second}}
	st, err := s.transfers.Start(s.ctx(), in)
	if err != nil {
		t.Fatal(err)
	}
	s.signal(connect.KindDeposit, "late", event(connect.KindDeposit, connect.StatusInitiated, "cx-late", st.SessionID))
	eventually(t, "timed_out", func() bool {
		cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "late")
		return err == nil && cur.Status == workflows.StatusTimedOut
	})

	_, err = s.transfers.ResolveTransfer(s.ctx(), connect.KindDeposit, "late", workflows.Resolution{Operator: "ana", Outcome: "settled", Reason: "x"})
	if err == nil || !strings.Contains(err.Error(), "outcome") {
		t.Fatalf("an invalid outcome must be refused naming it, got %v", err)
	}
	r, err := s.transfers.ResolveTransfer(s.ctx(), connect.KindDeposit, "late",
		workflows.Resolution{Operator: "ana", Outcome: workflows.StatusConfirmed, Reason: "credited after checking the chain"})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if r.Status != workflows.StatusConfirmed || r.Resolution == nil || r.Resolution.Operator != "ana" {
		t.Fatalf("resolve result: %+v", r)
	}
	final, err := s.result(connect.KindDeposit, "late")
	if err != nil || final.Resolution == nil || final.Resolution.Reason != "credited after checking the chain" {
		t.Fatalf("workflow result: %+v, %v", final, err)
	}
	// A finished transfer cannot be resolved again.
	if _, err := s.transfers.ResolveTransfer(s.ctx(), connect.KindDeposit, "late",
		workflows.Resolution{Operator: "bo", Outcome: workflows.StatusFailed, Reason: "again"}); err == nil {
		t.Fatal("resolving a closed transfer must fail")
	}
	s.checkReplay(st.WorkflowID, "deposit_timed_out_resolved")
}

func TestResolveRefusedOnLiveTransfer(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	if _, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "live", ReferenceID: "USER08"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.transfers.ResolveTransfer(s.ctx(), connect.KindDeposit, "live",
		workflows.Resolution{Operator: "ana", Outcome: workflows.StatusFailed, Reason: "x"})
	if err == nil || !strings.Contains(err.Error(), "only a stalled or timed-out transfer") {
		t.Fatalf("want a refusal naming the rule, got %v", err)
	}
	cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "live")
	if err != nil || cur.Status != workflows.StatusAwaitingUser || cur.Resolution != nil {
		t.Fatalf("a refused resolve must change nothing: %+v, %v", cur, err)
	}
}

// Review finding (issue 12): a stalled transfer gets, in one workflow task, a Connect "confirmed" and an
// operator's resolve (failed). The update runs first (accepted: stalled) and makes the transfer final; the main
// loop's selector has already taken the signal, sees the final status and leaves the loop. The resolve must still
// answer and the workflow close (it used to wait for ever on a wake-up nobody received). The worker is stopped
// meanwhile so both arrive in one workflow task.
func TestResolveTogetherWithAWebhookAnswersAndCloses(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	w := s.startWorker()
	in := workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "rs", ReferenceID: "USERRS",
		Timeouts: workflows.Timeouts{Stall: time.Second}}
	st, err := s.transfers.Start(s.ctx(), in)
	if err != nil {
		t.Fatal(err)
	}
	s.signal(connect.KindDeposit, "rs", event(connect.KindDeposit, connect.StatusInitiated, "cx-rs", st.SessionID))
	eventually(t, "stalled", func() bool {
		cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "rs")
		return err == nil && cur.Status == workflows.StatusStalled
	})
	w.Stop()
	s.signal(connect.KindDeposit, "rs", event(connect.KindDeposit, connect.StatusConfirmed, "cx-rs", st.SessionID))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: st.WorkflowID,
			UpdateName: workflows.UpdateResolve, WaitForStage: client.WorkflowUpdateStageCompleted,
			Args: []any{workflows.Resolution{Operator: "ana", Outcome: workflows.StatusFailed, Reason: "reversed"}}})
		if err == nil {
			var r workflows.TransferResult
			err = h.Get(ctx, &r)
		}
		done <- err
	}()
	time.Sleep(2 * time.Second)
	s.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r workflows.TransferResult
	err = s.client.GetWorkflow(ctx, st.WorkflowID, "").Get(ctx, &r)
	uerr := <-done
	v, qerr := s.client.QueryWorkflow(s.ctx(), st.WorkflowID, "", workflows.QueryState)
	var cur workflows.TransferState
	if qerr == nil {
		_ = v.Get(&cur)
		for _, e := range cur.Events {
			t.Logf("%s %s %s %s", e.Source, e.Name, e.Status, e.Effect)
		}
	}
	if err != nil || uerr != nil {
		t.Fatalf("workflow did not close: result err %v; resolve update err %v; status %s", err, uerr, cur.Status)
	}
	if r.Status != workflows.StatusFailed || r.Resolution == nil || r.Resolution.Operator != "ana" {
		t.Fatalf("result %s resolved by %+v, want failed by ana", r.Status, r.Resolution)
	}
}
