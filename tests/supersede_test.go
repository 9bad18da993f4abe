package tests

import (
	"errors"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// A new transfer for a reference supersedes the older one still awaiting its user (Connect keeps one session per
// reference); with if_busy=refuse nothing starts and the caller learns which transfer is in the way.
func TestNewTransferSupersedesTheOneAwaitingItsUser(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	const ref = `O'Brien-7` // a quote: the visibility query must escape it
	old, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "sup-old", ReferenceID: ref})
	if err != nil {
		t.Fatal(err)
	}
	s.listed(workflows.QueryAwaitingUser(ref), old.WorkflowID)

	// refuse: a *BusyError naming the older transfer, and nothing started.
	_, err = s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: "sup-refused",
		ReferenceID: ref, Asset: "BTC", Network: "bitcoin", Amount: "0.5", IfBusy: workflows.IfBusyRefuse})
	var busy *transfer.BusyError
	if !errors.Is(err, transfer.ErrBusy) || !errors.As(err, &busy) || busy.WorkflowID != old.WorkflowID {
		t.Fatalf("want ErrBusy naming %s, got %v", old.WorkflowID, err)
	}
	if _, err := s.client.DescribeWorkflowExecution(s.ctx(), workflows.WorkflowID(connect.KindWithdrawal, "sup-refused"), ""); err == nil {
		t.Fatal("a refused start must start nothing")
	}
	if got := s.sandbox.SessionsCreatedFor(ref); got != 1 {
		t.Fatalf("a refused start opened a session: %d sessions", got)
	}

	// supersede (the default). The sandbox, as Connect, invalidates the older session when the new one opens.
	newer, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "sup-new", ReferenceID: ref})
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := s.sandbox.Session(old.SessionID); !ok || !info.Invalidated() || info.ReplacedBy != newer.SessionID {
		t.Fatalf("the sandbox did not invalidate the older session: %+v", info)
	}
	r, err := s.result(connect.KindDeposit, "sup-old")
	if err != nil || r.Status != workflows.StatusSuperseded || r.SupersededBy != newer.WorkflowID || !r.Final() {
		t.Fatalf("older transfer: %+v, %v", r, err)
	}
	if last := r.Events[len(r.Events)-1]; last.Source != "transfer" || last.Name != "superseded" || last.Effect != workflows.EffectApplied {
		t.Fatalf("the supersede is not in the record: %+v", r.Events)
	}
	s.listed("TransferStatus = 'superseded'", old.WorkflowID)
	cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "sup-new")
	if err != nil || cur.Status != workflows.StatusAwaitingUser {
		t.Fatalf("the newer transfer awaits its user: %+v, %v", cur, err)
	}
	s.checkReplay(old.WorkflowID, "deposit_superseded")

	// A transfer that already moved on ignores a supersede (recorded), and its own session stands.
	s.signal(connect.KindDeposit, "sup-new", event(connect.KindDeposit, connect.StatusInitiated, "cx-sup-new", newer.SessionID))
	eventually(t, "sup-new initiated", func() bool {
		cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "sup-new")
		return err == nil && cur.Status == workflows.StatusInitiated
	})
	if err := s.client.SignalWorkflow(s.ctx(), newer.WorkflowID, "", workflows.SignalSupersede,
		workflows.Supersede{WorkflowID: "deposit-later", DedupeKey: "supersede:deposit-later"}); err != nil {
		t.Fatal(err)
	}
	s.signal(connect.KindDeposit, "sup-new", event(connect.KindDeposit, connect.StatusConfirmed, "cx-sup-new", newer.SessionID))
	r, err = s.result(connect.KindDeposit, "sup-new")
	if err != nil || r.Status != workflows.StatusConfirmed || r.SupersededBy != "" {
		t.Fatalf("newer transfer: %+v, %v", r, err)
	}
	s.checkReplay(newer.WorkflowID, "deposit_supersede_ignored")
}

// A ledger movement settles a withdrawal only when its asset and amount are the withdrawal's; one that does not
// match is a conflict that goes to a review workflow, and the matching one settles it.
func TestMismatchedLedgerMovementGoesToReview(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	wd := connect.KindWithdrawal
	st, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: wd, TransferID: "lm-1", ReferenceID: "USER-LM",
		Asset: "BTC", Network: "bitcoin", Amount: "0.5", AwaitLedger: true})
	if err != nil {
		t.Fatal(err)
	}
	s.playLife(wd, "lm-1", st.SessionID, connect.StatusConfirmed)
	eventually(t, "lm-1 confirmed", func() bool {
		cur, err := s.transfers.Status(s.ctx(), wd, "lm-1")
		return err == nil && cur.Status == workflows.StatusConfirmed
	})
	ledger := func(m workflows.LedgerMovement) {
		t.Helper()
		if err := s.client.SignalWorkflow(s.ctx(), st.WorkflowID, "", workflows.SignalLedger, m); err != nil {
			t.Fatal(err)
		}
	}
	wrong := workflows.LedgerMovement{MovementID: "mv-wrong", MovementType: "withdrawal", Asset: "BTC", Change: "-0.4", At: time.Now()}
	ledger(wrong)
	ledger(wrong)
	reviewID := workflows.ReviewWorkflowID("ledger:mv-wrong")
	var rv workflows.ReviewState
	eventually(t, "review of the mismatched movement", func() bool {
		v, err := s.client.QueryWorkflow(s.ctx(), reviewID, "", workflows.QueryState)
		return err == nil && v.Get(&rv) == nil && len(rv.Events) == 1
	})
	if rv.Input.Reason != workflows.ReviewLedgerMismatch || rv.Input.TransferWorkflowID != st.WorkflowID ||
		rv.Events[0].Ledger == nil || rv.Events[0].Ledger.Change != "-0.4" {
		t.Fatalf("review: %+v", rv)
	}
	ledger(workflows.LedgerMovement{MovementID: "mv-right", MovementType: "withdrawal", Asset: "btc", Change: "-0.50", At: time.Now()})
	r, err := s.result(wd, "lm-1")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger == nil || r.Ledger.MovementID != "mv-right" {
		t.Fatalf("withdrawal: %+v, %v", r, err)
	}
	effects := map[string]string{}
	for _, e := range r.Events {
		effects[e.DedupeKey] = e.Effect
	}
	if effects["ledger:mv-wrong"] != workflows.EffectConflict || effects["ledger:mv-right"] != workflows.EffectApplied {
		t.Fatalf("effects: %v", effects)
	}
	if _, err := s.transfers.ResolveReview(s.ctx(), reviewID, workflows.Resolution{Operator: "ana", Outcome: workflows.StatusFailed,
		Reason: "not ours"}); err != nil {
		t.Fatal(err)
	}
	s.checkReplay(st.WorkflowID, "withdrawal_ledger_mismatch_settled")
	s.checkReplay(reviewID, "review_ledger_mismatch_resolved")
}

// Review finding (issue 12, MachineV2): B's session request is slow; C starts while it is in flight and opens
// its session first, so Connect replaced C's session with B's. B's check for other transfers of the reference
// runs after its session opened, so it sees C, and C ends superseded by B.
func TestTransferStartedDuringASlowSessionIsSuperseded(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	// warm up the token so the first session request is the slow one
	if _, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "warm", ReferenceID: "OTHER"}); err != nil {
		t.Fatal(err)
	}
	if err := s.sandbox.Fail(connecttest.EndpointSessions, connecttest.Fault{Latency: 2 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	const ref = "USERR"
	done := make(chan error, 1)
	go func() {
		_, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "b", ReferenceID: ref})
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	c, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "c", ReferenceID: ref})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if info, ok := s.sandbox.Session(c.SessionID); !ok || !info.Invalidated() {
		t.Fatalf("the scenario did not happen: C's session %s is still Connect's current one", c.SessionID)
	}
	eventually(t, "C superseded by B", func() bool {
		cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "c")
		return err == nil && cur.Status == workflows.StatusSuperseded && cur.SupersededBy == "deposit-b"
	})
}
