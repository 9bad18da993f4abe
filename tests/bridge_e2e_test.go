package tests

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// start starts a transfer through the starter library and returns its open session.
func (s *stack) start(in workflows.TransferInput) transfer.Started {
	s.t.Helper()
	if in.Kind == connect.KindWithdrawal {
		in.Asset, in.Network, in.Amount = "BTC", "bitcoin", "0.5"
	}
	started, err := s.transfers.Start(s.ctx(), in)
	if err != nil {
		s.t.Fatalf("start %s %s: %v", in.Kind, in.TransferID, err)
	}
	return started
}

// connectID is the id Connect gave the session's transfer, which its webhooks and balance movements carry.
func (s *stack) connectID(sessionID string) string {
	s.t.Helper()
	info, ok := s.sandbox.Session(sessionID)
	if !ok {
		s.t.Fatalf("sandbox has no session %s", sessionID)
	}
	return info.TransferID
}

// TestBridgeTransfersEndToEnd: the sandbox's signed webhooks, through the bridge, take a deposit and a withdrawal
// from the starter to confirmed and a failed deposit to failed, each webhook accepted on its first attempt.
func TestBridgeTransfersEndToEnd(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{})

	cases := []struct {
		kind    connect.Kind
		id      string
		outcome connecttest.Outcome
		want    workflows.Status
	}{
		{connect.KindDeposit, "bd-1", connecttest.OutcomeConfirmed, workflows.StatusConfirmed},
		{connect.KindWithdrawal, "bw-1", connecttest.OutcomeConfirmed, workflows.StatusConfirmed},
		{connect.KindDeposit, "bd-2", connecttest.OutcomeFailed, workflows.StatusFailed},
	}
	for i, c := range cases {
		started := s.start(workflows.TransferInput{Kind: c.kind, TransferID: c.id, ReferenceID: fmt.Sprintf("USER%02d", i)})
		deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID,
			connecttest.Play{Outcome: c.outcome, FailureReason: "insufficient funds"})
		requireDelivered(t, deliveries, err)
		for _, d := range deliveries {
			if len(d.Attempts) != 1 {
				t.Errorf("%s %s: %d attempts, want 1: %+v", c.id, d.Event, len(d.Attempts), d.Attempts)
			}
		}
		r, err := s.result(c.kind, c.id)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if r.Status != c.want || r.ConnectTransferID != s.connectID(started.SessionID) || r.TxHash == "" {
			t.Fatalf("%s: result %+v, want %s", c.id, r, c.want)
		}
		if c.want == workflows.StatusFailed && r.FailureReason != "insufficient funds" {
			t.Fatalf("%s: failure reason %q", c.id, r.FailureReason)
		}
		applied := 0
		for _, e := range r.Events {
			if e.Source == "connect" && e.Effect == workflows.EffectApplied && e.Name != "session.created" {
				applied++
			}
		}
		if applied != 3 {
			t.Fatalf("%s: %d Connect events applied, want 3: %+v", c.id, applied, r.Events)
		}
	}
	if n := rig.requests(bridge.PathConnectDeposits, "signaled"); n != 6 {
		t.Fatalf("deposit webhooks signalled: %v, want 6", n)
	}
	if n := rig.requests(bridge.PathConnectWithdrawals, "signaled"); n != 3 {
		t.Fatalf("withdrawal webhooks signalled: %v, want 3", n)
	}
}

// TestBridgeBalanceSettlesAwaitLedger: a deposit started with await-ledger stays open when confirmed and ends
// settled when Zero Hash's signed balance webhook names its Connect id. The bridge is configured as an RSA-only
// platform that refuses legacy-only signatures (no HMAC secret): the sandbox's timed RSA signature must carry it.
// The movement's asset and change arrive normalised ("btc", "0.0130" -> "BTC", "0.013").
func TestBridgeBalanceSettlesAwaitLedger(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	s.startBridge(bridgeOptions{zhSecret: "-", zhRSA: true, zhRequireTS: true})

	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "bl-1", ReferenceID: "USER20",
		AwaitLedger: true})
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{})
	requireDelivered(t, deliveries, err)
	cx := s.connectID(started.SessionID)
	s.listed(fmt.Sprintf("ConnectTransferID = '%s'", cx), started.WorkflowID)
	eventually(t, "the deposit confirmed and still open for its ledger movement", func() bool {
		st, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "bl-1")
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st.Status == workflows.StatusConfirmed
	})

	d, err := s.sandbox.EmitBalance(s.ctx(), zerohash.BalanceEvent{Asset: "btc", Balance: "0.013",
		ParticipantCode: "CUST01", AccountLabel: "general",
		Movements: []zerohash.Movement{{MovementID: "mv-1", Change: "0.0130", MovementType: "deposit", DepositReferenceID: cx}}})
	if err != nil || !d.Delivered || len(d.Attempts) != 1 {
		t.Fatalf("balance webhook: %+v, %v", d, err)
	}
	r, err := s.result(connect.KindDeposit, "bl-1")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger == nil || r.Ledger.MovementID != "mv-1" ||
		r.Ledger.Change != "0.013" || r.Ledger.Asset != "BTC" {
		t.Fatalf("after the ledger: %+v, %v; want settled by mv-1", r, err)
	}
}

// TestBridgeSDKCloseAbandons: the frontend relays onClose with the session JWT; the transfer ends abandoned.
func TestBridgeSDKCloseAbandons(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{})

	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "sdk-1", ReferenceID: "USER30"})
	s.listed(fmt.Sprintf("ConnectSessionID = '%s'", started.SessionID), started.WorkflowID)
	for range 2 { // the frontend retries: a duplicate for the workflow, or acknowledged once it has closed
		if status, body := rig.sdkEvent(started.JWT, `{"type":"close","id":"cb-1"}`); status != http.StatusOK {
			t.Fatalf("relay onClose: %d %s", status, body)
		}
	}
	r, err := s.result(connect.KindDeposit, "sdk-1")
	if err != nil || r.Status != workflows.StatusAbandoned {
		t.Fatalf("result %+v, %v; want abandoned", r, err)
	}
	var closes int
	for _, e := range r.Events {
		if e.Source == "sdk" && e.Name == workflows.SDKTypeClose {
			closes++
			if e.Effect != workflows.EffectApplied {
				t.Fatalf("onClose record %+v, want applied", e)
			}
		}
	}
	if closes != 1 {
		t.Fatalf("%d onClose records, want 1: %+v", closes, r.Events)
	}
	if status, _ := rig.sdkEvent(started.JWT+"x", `{"type":"close"}`); status != http.StatusUnauthorized {
		t.Fatalf("tampered session JWT: %d, want 401", status)
	}
}

// TestBridgeDuplicatesAndShuffleApplyOnce: every event three times, in shuffled order, then all again late:
// each distinct event makes at most one state transition, and nothing goes to review.
func TestBridgeDuplicatesAndShuffleApplyOnce(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{})

	for seed := uint64(1); seed <= 3; seed++ {
		id := fmt.Sprintf("dup-%d", seed)
		started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id, ReferenceID: "USER4" + id})
		deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID,
			connecttest.Play{Duplicates: 2, Shuffle: true, Late: true, Seed: seed})
		requireDelivered(t, deliveries, err)
		if len(deliveries) != 12 {
			t.Fatalf("%s: %d deliveries, want 3 events x 3 copies + 3 late", id, len(deliveries))
		}
		r, err := s.result(connect.KindDeposit, id)
		if err != nil || r.Status != workflows.StatusConfirmed {
			t.Fatalf("%s: %+v, %v; want confirmed", id, r.Status, err)
		}
		seen := map[string]bool{}
		applied := map[string]int{}
		for _, e := range r.Events {
			if seen[e.DedupeKey] {
				t.Fatalf("%s: event %s recorded twice: %+v", id, e.DedupeKey, r.Events)
			}
			seen[e.DedupeKey] = true
			if e.Source == "connect" && e.Effect == workflows.EffectApplied {
				applied[e.Status]++
			}
			if e.Effect == workflows.EffectConflict {
				t.Fatalf("%s: a redelivery conflicted: %+v", id, e)
			}
		}
		if applied[string(connect.StatusConfirmed)] != 1 || applied[string(connect.StatusInitiated)] > 1 ||
			applied[string(connect.StatusBroadcasted)] > 1 {
			t.Fatalf("%s: transitions %v, want confirmed once and no status twice", id, applied)
		}
		// Connect redelivers the whole life once more, now that the transfer has closed: acknowledged, not review.
		late, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{})
		requireDelivered(t, late, err)
	}
	if n := rig.requests(bridge.PathConnectDeposits, "review"); n != 0 {
		t.Fatalf("%v redeliveries went to review; a closed transfer's final state covers them", n)
	}
	if n := rig.requests(bridge.PathConnectDeposits, "acknowledged"); n < 9 {
		t.Fatalf("redeliveries to closed transfers acknowledged: %v, want at least 3 transfers x 3 events", n)
	}
}

// TestBridgeTemporalOutageRedelivered: while Temporal is unreachable the bridge answers 503 with Retry-After and
// the sandbox keeps redelivering; once Temporal answers again a redelivery lands and the transfer completes.
//
// What is real: the Temporal server, the worker, the sandbox's signed deliveries and its redelivery schedule, the
// bridge on loopback, and the outage as the bridge sees it, a real SDK client whose server address has nothing
// listening. temporaltest cannot be stopped and restarted with its state, so "Temporal is back" is the bridge
// switching to a client of the running server, the same client the transfer was started with.
func TestBridgeTemporalOutageRedelivered(t *testing.T) {
	s := newStack(t, connecttest.Options{Redelivery: connecttest.Redelivery{Base: 200 * time.Millisecond,
		Max: time.Second, Attempts: 120}})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{temporalTimeout: time.Second})

	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "out-1", ReferenceID: "USER50"})
	rig.temporal.use(s.unreachableTemporal())
	play := s.sandbox.PlayAsync(started.SessionID, connecttest.Play{})
	eventually(t, "three refused deliveries of the first event", func() bool {
		d := s.sandbox.Deliveries()
		return len(d) > 0 && len(d[0].Attempts) >= 3
	})
	refused := 0
	for _, a := range rig.answers.all() {
		if a.path != bridge.PathConnectDeposits {
			continue
		}
		if a.status != http.StatusServiceUnavailable || a.retryAfter != "5" {
			t.Fatalf("during the outage: %d with Retry-After %q, want 503 with Retry-After 5", a.status, a.retryAfter)
		}
		refused++
	}
	if refused < 3 {
		t.Fatalf("%d refused answers, want at least 3", refused)
	}

	rig.temporal.use(s.client) // Temporal is back
	deliveries, err := play.Wait()
	requireDelivered(t, deliveries, err)
	first := deliveries[0]
	if last := first.Attempts[len(first.Attempts)-1]; len(first.Attempts) < 3 || last.Status != http.StatusOK {
		t.Fatalf("first event: %d attempts ending %d, want redeliveries ending 200", len(first.Attempts), last.Status)
	}
	r, err := s.result(connect.KindDeposit, "out-1")
	if err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("after the outage: %+v, %v; want confirmed", r.Status, err)
	}
	if n := rig.requests(bridge.PathConnectDeposits, "unavailable"); n < 3 {
		t.Fatalf("unavailable answers counted: %v", n)
	}
}

// TestBridgeKeyRotationMidStream: Connect rotates its signing key (and retires the old one) between two events of
// a transfer; the bridge fetches the new key on its first webhook and loses nothing, in both signature modes.
func TestBridgeKeyRotationMidStream(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	for i, mode := range []bridge.AuthMode{bridge.AuthSignatureJWT, bridge.AuthSignature} {
		func() {
			rig := s.startBridge(bridgeOptions{auth: mode})
			id := fmt.Sprintf("rot-%d", i)
			started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id, ReferenceID: "USER6" + id})
			fetches := s.sandbox.Count(connecttest.EndpointJWKS)
			before := len(s.sandbox.Deliveries())
			play := s.sandbox.PlayAsync(started.SessionID, connecttest.Play{Delay: 500 * time.Millisecond})
			eventually(t, "the first event delivered", func() bool {
				d := s.sandbox.Deliveries()
				return len(d) > before && d[before].Delivered
			})
			old := s.sandbox.CurrentKeyID()
			if _, err := s.sandbox.RotateKey(nil); err != nil {
				t.Fatal(err)
			}
			if err := s.sandbox.RetireKey(old); err != nil {
				t.Fatal(err)
			}
			deliveries, err := play.Wait()
			requireDelivered(t, deliveries, err)
			for _, d := range deliveries {
				if len(d.Attempts) != 1 {
					t.Errorf("mode %s: %s needed %d attempts around the rotation, want 1", mode, d.Event, len(d.Attempts))
				}
			}
			if s.sandbox.Count(connecttest.EndpointJWKS) <= fetches {
				t.Fatalf("mode %s: the bridge never refetched the JWKS, so the rotation was not exercised", mode)
			}
			r, err := s.result(connect.KindDeposit, id)
			if err != nil || r.Status != workflows.StatusConfirmed {
				t.Fatalf("mode %s: %+v, %v; want confirmed", mode, r.Status, err)
			}
			if n := rig.requests(bridge.PathConnectDeposits, "unauthorized"); n != 0 {
				t.Fatalf("mode %s: %v webhooks refused around the rotation", mode, n)
			}
		}()
	}
}

// TestBridgeUnexpectedDepositGoesToReview: connect.deposit.unexpected opens a review workflow a person can find;
// once resolved, a late redelivery of the event is acknowledged without reopening it.
func TestBridgeUnexpectedDepositGoesToReview(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{})

	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "un-1", ReferenceID: "USER70"})
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeUnexpected})
	requireDelivered(t, deliveries, err)
	cx := s.connectID(started.SessionID)
	reviewID := workflows.ReviewWorkflowID("deposit:" + cx + ":unexpected")

	var st workflows.ReviewState
	v, err := s.client.QueryWorkflow(s.ctx(), reviewID, "", workflows.QueryState)
	if err != nil {
		t.Fatalf("query review %s: %v", reviewID, err)
	}
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != workflows.StatusNeedsReview || st.Input.Reason != workflows.ReviewUnexpected ||
		st.Input.TransferWorkflowID != started.WorkflowID || len(st.Events) != 1 || st.Events[0].Event.Name != "connect.deposit.unexpected" {
		t.Fatalf("review %+v", st)
	}
	s.listed("TransferStatus = 'needs_review'", reviewID)

	handle, err := s.client.UpdateWorkflow(s.ctx(), client.UpdateWorkflowOptions{
		WorkflowID: reviewID, UpdateName: workflows.UpdateResolve, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.Resolution{Operator: "ops@example.com", Outcome: workflows.StatusFailed, Reason: "returned to sender"}},
	})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if err := handle.Get(s.ctx(), nil); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if err := s.client.GetWorkflow(s.ctx(), reviewID, "").Get(s.ctx(), &st); err != nil || st.Status != workflows.StatusResolved {
		t.Fatalf("review after resolution: %+v, %v", st.Status, err)
	}

	late, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeUnexpected})
	requireDelivered(t, late, err)
	if n := rig.requests(bridge.PathConnectDeposits, "review_closed"); n != 1 {
		t.Fatalf("late unexpected event: review_closed counted %v, want 1", n)
	}
	desc, err := s.client.DescribeWorkflowExecution(s.ctx(), reviewID, "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("the resolved review was reopened: %v, %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
}
