package tests

import (
	"strings"
	"testing"
	"time"

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
