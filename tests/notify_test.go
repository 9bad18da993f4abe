package tests

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/platformhook"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/workflows"
)

// platform is a test platform on loopback: it verifies notifications with the worker's secrets and keeps a ledger.
type platform struct {
	*platformtest.Receiver
	url     string
	secrets []platformhook.Secret
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	// Two secrets, as during a rotation: the receiver knows only the older one, so it verifies the signature made
	// with it among the two the worker sends.
	newer, older := platformhook.NewSecret(), platformhook.NewSecret()
	both, err := platformhook.ParseSecrets(newer + "," + older)
	if err != nil {
		t.Fatal(err)
	}
	r := platformtest.New(both[1:])
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &platform{Receiver: r, url: srv.URL + "/webhooks/connectflow", secrets: both}
}

// startNotifyingWorker runs the worker with notifications to p, each retried for retryFor; stop stops it early.
func (s *stack) startNotifyingWorker(p *platform, retryFor, timeout time.Duration) (stop func()) {
	s.t.Helper()
	cfg := s.workerConfig()
	cfg.Platform = workerapp.PlatformConfig{URL: p.url, Secrets: p.secrets, RetryFor: retryFor, Timeout: timeout}
	w, err := workerapp.New(s.client, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatalf("worker: %v", err)
	}
	if err := w.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(w.Stop) }
	s.t.Cleanup(stop)
	return stop
}

// running reports whether the workflow is still open.
func (s *stack) running(workflowID string) bool {
	s.t.Helper()
	d, err := s.client.DescribeWorkflowExecution(s.ctx(), workflowID, "")
	if err != nil {
		s.t.Fatalf("describe %s: %v", workflowID, err)
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// listedIDs lists the workflow ids visibility returns for query.
func (s *stack) listedIDs(query string) []string {
	s.t.Helper()
	resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.namespace, Query: query})
	if err != nil {
		s.t.Fatalf("list %q: %v", query, err)
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestPlatformNotificationsInOrderOnceDespiteFailures(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	p := newPlatform(t)
	s.startNotifyingWorker(p, 2*time.Minute, time.Second)
	// The first deliveries meet a 500, a 500 with Retry-After, then a platform that applies the notification but
	// answers after the worker's 1s timeout: the worker redelivers it, the platform dedupes on webhook-id.
	p.FailNext(platformtest.Fault{Status: http.StatusInternalServerError},
		platformtest.Fault{Status: http.StatusInternalServerError, RetryAfter: "1"},
		platformtest.Fault{Hang: 2 * time.Second})

	const id = "notify.1" // a '.' in the transfer id: the webhook-id encodes it
	dep, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id,
		ReferenceID: "USER-N1"})
	if err != nil {
		t.Fatalf("start deposit: %v", err)
	}
	eventually(t, "awaiting_user acknowledged", func() bool { return len(p.Of(dep.WorkflowID)) == 1 })
	for _, st := range []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted} {
		s.signal(connect.KindDeposit, id, event(connect.KindDeposit, st, "cx-n1", dep.SessionID))
	}
	eventually(t, "broadcasted acknowledged", func() bool { return len(p.Of(dep.WorkflowID)) == 3 })

	// The platform goes down before the final notification: the workflow stays open, and says why.
	p.SetDown(true)
	s.signal(connect.KindDeposit, id, event(connect.KindDeposit, connect.StatusConfirmed, "cx-n1", dep.SessionID))
	eventually(t, "confirmed, waiting for the platform", func() bool {
		st, err := s.transfers.Status(s.ctx(), connect.KindDeposit, id)
		return err == nil && st.Status == workflows.StatusConfirmed && st.Notifications != nil &&
			st.Notifications.PlatformNotified == workflows.PlatformNotifiedPending
	})
	eventually(t, "listed as pending", func() bool {
		return contains(s.listedIDs(workflows.QueryPlatformPending), dep.WorkflowID)
	})
	before := p.Attempts()
	eventually(t, "redeliveries while down", func() bool { return p.Attempts() >= before+2 })
	if !s.running(dep.WorkflowID) {
		t.Fatal("workflow closed before the platform acknowledged its final notification")
	}
	p.SetDown(false)

	r, err := s.result(connect.KindDeposit, id)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	if r.Notifications == nil || r.Notifications.Acknowledged != 4 || r.Notifications.Sequence != 4 ||
		r.Notifications.PlatformNotified != workflows.PlatformNotifiedDelivered || len(r.Notifications.Failed) != 0 {
		t.Fatalf("result notifications: %+v", r.Notifications)
	}
	if got := s.listedIDs("PlatformNotified = 'delivered'"); !contains(got, dep.WorkflowID) {
		eventually(t, "listed as delivered", func() bool {
			return contains(s.listedIDs("PlatformNotified = 'delivered'"), dep.WorkflowID)
		})
	}

	ledger := p.Of(dep.WorkflowID)
	wantTypes := []string{"deposit.awaiting_user", "deposit.initiated", "deposit.broadcasted", "deposit.confirmed"}
	wantPrev := []string{"creating_session", "awaiting_user", "initiated", "broadcasted"}
	if len(ledger) != len(wantTypes) {
		t.Fatalf("ledger: %d entries, want %d: %+v", len(ledger), len(wantTypes), ledger)
	}
	for i, e := range ledger {
		d := e.Message.Data
		wantID := fmt.Sprintf("deposit-notify%%2E1:%d", i+1)
		if e.WebhookID != wantID || e.Message.Type != wantTypes[i] || d.Sequence != i+1 || d.PreviousStatus != wantPrev[i] ||
			d.WorkflowID != dep.WorkflowID || d.TransferID != id || d.ReferenceID != "USER-N1" || d.Kind != "deposit" {
			t.Errorf("ledger[%d] = %s %+v, want %s %s after %s", i, e.WebhookID, e.Message, wantID, wantTypes[i], wantPrev[i])
		}
		if _, err := time.Parse(time.RFC3339, e.Message.Timestamp); err != nil {
			t.Errorf("ledger[%d] timestamp %q: %v", i, e.Message.Timestamp, err)
		}
	}
	if first := ledger[0]; first.Duplicates < 1 {
		t.Errorf("the first notification was applied, then timed out: want a redelivery counted, got %+v", first)
	}
	last := ledger[3].Message.Data
	if last.ConnectTransferID != "cx-n1" || last.TxHash == "" || last.Amount != "0.013" || last.Asset != "BTC" || ledger[3].Action != "credit" {
		t.Errorf("confirmed notification data: %+v (action %q)", last, ledger[3].Action)
	}
	if credits := p.Credits(); len(credits) != 1 {
		t.Errorf("credits: %+v, want exactly one", credits)
	}
	if rej := p.Rejected(); len(rej) != 0 {
		t.Errorf("platform refused deliveries: %v", rej)
	}
	s.checkReplay(dep.WorkflowID, "deposit_confirmed_notified")
}

func TestPlatformDownForTheWholeWindowEndsInReview(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	p := newPlatform(t)
	p.SetDown(true)
	s.startNotifyingWorker(p, 4*time.Second, time.Second)

	const id = "notify-down"
	dep, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: id,
		ReferenceID: "USER-N2", Asset: "BTC", Network: "bitcoin", Amount: "0.5",
		// The close abandons after its grace (workflows.ChangeEdgeRules), while the first notification still retries.
		Timeouts: workflows.Timeouts{CloseGrace: time.Second}})
	if err != nil {
		t.Fatalf("start withdrawal: %v", err)
	}
	err = s.client.SignalWorkflow(s.ctx(), dep.WorkflowID, "", workflows.SignalSDKEvent,
		workflows.SDKEvent{Type: workflows.SDKTypeClose, DedupeKey: "sdk:close:1"})
	if err != nil {
		t.Fatalf("signal close: %v", err)
	}
	eventually(t, "abandoned, waiting for the platform", func() bool {
		st, err := s.transfers.Status(s.ctx(), connect.KindWithdrawal, id)
		return err == nil && st.Status == workflows.StatusAbandoned && st.Notifications != nil &&
			st.Notifications.PlatformNotified == workflows.PlatformNotifiedPending
	})
	r, err := s.result(connect.KindWithdrawal, id)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	n := r.Notifications
	if n == nil || n.Acknowledged != 0 || n.Sequence != 2 || len(n.Failed) != 2 || n.PlatformNotified != workflows.PlatformNotifiedFailed {
		t.Fatalf("result notifications: %+v", n)
	}
	if len(p.Ledger()) != 0 || p.Attempts() < 2 {
		t.Fatalf("down platform: ledger %+v, attempts %d", p.Ledger(), p.Attempts())
	}
	for seq, typ := range map[int]string{1: "awaiting_user", 2: "abandoned"} {
		reviewID := workflows.ReviewWorkflowID(fmt.Sprintf("platform:%s:%d", dep.WorkflowID, seq))
		var rs workflows.ReviewState
		eventually(t, "review "+reviewID, func() bool {
			v, err := s.client.QueryWorkflow(s.ctx(), reviewID, "", workflows.QueryState)
			return err == nil && v.Get(&rs) == nil && len(rs.Events) == 1
		})
		ev := rs.Events[0].Event
		if rs.Input.Reason != workflows.ReviewPlatformUndelivered || rs.Input.TransferWorkflowID != dep.WorkflowID ||
			ev == nil || string(ev.Status) != typ || !strings.Contains(ev.FailureReason, "not acknowledged within 4s") {
			t.Fatalf("review %s: %+v (event %+v)", reviewID, rs, ev)
		}
	}
	eventually(t, "listed as failed", func() bool {
		return contains(s.listedIDs("PlatformNotified = 'failed'"), dep.WorkflowID)
	})
	s.checkReplay(dep.WorkflowID, "withdrawal_abandoned_notify_failed")
}

// TestPlatformNotificationsUnderFailures: transfers of every outcome run while the platform fails 30% of
// deliveries, is down for a while, and the worker is replaced mid-run. Every transfer's final outcome reaches the
// platform exactly once, in sequence, none lost, nothing credited twice.
func TestPlatformNotificationsUnderFailures(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	p := newPlatform(t)
	rnd := rand.New(rand.NewPCG(13, 7))
	var rmu sync.Mutex
	p.FailRandomly(0.3, func() float64 { rmu.Lock(); defer rmu.Unlock(); return rnd.Float64() })
	stop := s.startNotifyingWorker(p, 5*time.Minute, time.Second)

	type run struct {
		kind  connect.Kind
		id    string
		final connect.Status
		want  workflows.Status
	}
	var runs []run
	for i := range 8 {
		kind, final := connect.KindDeposit, connect.StatusConfirmed
		if i%2 == 1 {
			kind = connect.KindWithdrawal
		}
		if i%4 >= 2 {
			final = connect.StatusFailed
		}
		runs = append(runs, run{kind, fmt.Sprintf("chaos-%d", i), final, workflows.Status(final)})
	}
	sessions := map[string]string{}
	for _, r := range runs {
		in := workflows.TransferInput{Kind: r.kind, TransferID: r.id, ReferenceID: "USER-" + r.id}
		if r.kind == connect.KindWithdrawal {
			in.Asset, in.Network, in.Amount = "BTC", "bitcoin", "0.013"
		}
		st, err := s.transfers.Start(s.ctx(), in)
		if err != nil {
			t.Fatalf("start %s: %v", r.id, err)
		}
		sessions[r.id] = st.SessionID
	}
	for i, r := range runs {
		if i == len(runs)/2 { // mid-run: the platform goes down and the worker is replaced
			p.SetDown(true)
			stop()
			stop = s.startNotifyingWorker(p, 5*time.Minute, time.Second)
		}
		s.playLife(r.kind, r.id, sessions[r.id], r.final)
	}
	time.Sleep(3 * time.Second)
	p.SetDown(false)

	for _, r := range runs {
		res, err := s.result(r.kind, r.id)
		if err != nil {
			t.Fatalf("%s: %v", r.id, err)
		}
		if res.Status != r.want || res.Notifications == nil || res.Notifications.PlatformNotified != workflows.PlatformNotifiedDelivered {
			t.Fatalf("%s: status %s, notifications %+v", r.id, res.Status, res.Notifications)
		}
		wid := workflows.WorkflowID(r.kind, r.id)
		ledger := p.Of(wid)
		finals := 0
		for i, e := range ledger {
			if e.Message.Data.Sequence != i+1 {
				t.Errorf("%s: ledger[%d] has sequence %d", wid, i, e.Message.Data.Sequence)
			}
			if e.Message.Type == string(r.kind)+"."+string(r.want) {
				finals++
			}
		}
		if finals != 1 || len(ledger) != res.Notifications.Sequence {
			t.Errorf("%s: final outcome applied %d times, %d of %d notifications applied", wid, finals, len(ledger), res.Notifications.Sequence)
		}
	}
	credited := map[string]int{}
	for _, e := range p.Credits() {
		credited[e.Message.Data.WorkflowID]++
	}
	for wid, n := range credited {
		if n != 1 {
			t.Errorf("%s credited %d times", wid, n)
		}
	}
	if len(credited) != 2 { // chaos-0 and chaos-4: the confirmed deposits
		t.Errorf("credited %v, want the two confirmed deposits", credited)
	}
	if rej := p.Rejected(); len(rej) != 0 {
		t.Errorf("platform refused deliveries: %v", rej)
	}
	t.Logf("%d deliveries for %d notifications", p.Attempts(), len(p.Ledger()))
}

// TestPlatformNotifiedOfRefusedSessionAndResolution: a session Connect refused ends in withdrawal.session_failed
// (the platform releases its hold), and an operator's resolution reaches the platform naming the operator.
func TestPlatformNotifiedOfRefusedSessionAndResolution(t *testing.T) {
	s := newStack(t, connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeDepositSend, connect.ScopeWithdrawalSend}})
	p := newPlatform(t)
	s.startNotifyingWorker(p, time.Minute, time.Second)

	if _, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: "refused",
		ReferenceID: "USER-N3", Asset: "BTC", Network: "bitcoin", Amount: "1"}); err == nil {
		t.Fatal("the sandbox should refuse the withdrawal session")
	}
	if _, err := s.result(connect.KindWithdrawal, "refused"); err == nil {
		t.Fatal("the refused transfer's workflow should fail")
	}
	refused := p.Of("withdrawal-refused")
	if len(refused) != 1 || refused[0].Message.Type != "withdrawal.session_failed" || refused[0].Action != "release" ||
		refused[0].Message.Data.PreviousStatus != "creating_session" || !strings.Contains(refused[0].Message.Data.FailureReason, "403") {
		t.Fatalf("refused session notifications: %+v", refused)
	}

	in := workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "resolved", ReferenceID: "USER-N4",
		Timeouts: workflows.Timeouts{Stall: time.Second, ReviewHorizon: 2 * time.Second}}
	st, err := s.transfers.Start(s.ctx(), in)
	if err != nil {
		t.Fatal(err)
	}
	s.signal(connect.KindDeposit, "resolved", event(connect.KindDeposit, connect.StatusInitiated, "cx-res", st.SessionID))
	eventually(t, "timed_out notified", func() bool { return len(p.Of(st.WorkflowID)) == 4 })
	if _, err := s.transfers.ResolveTransfer(s.ctx(), connect.KindDeposit, "resolved",
		workflows.Resolution{Operator: "ana", Outcome: workflows.StatusConfirmed, Reason: "credited after checking the chain"}); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := s.result(connect.KindDeposit, "resolved"); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range p.Of(st.WorkflowID) {
		types = append(types, e.Message.Type)
	}
	want := "deposit.awaiting_user deposit.initiated deposit.stalled deposit.timed_out deposit.confirmed"
	if strings.Join(types, " ") != want {
		t.Fatalf("notifications %q, want %q", types, want)
	}
	last := p.Of(st.WorkflowID)[4]
	if last.Message.Data.ResolvedBy != "ana" || last.Action != "credit" || last.Message.Data.PreviousStatus != "timed_out" {
		t.Fatalf("resolved notification: %+v", last)
	}
	s.checkReplay("withdrawal-refused", "withdrawal_session_forbidden_notified")
	s.checkReplay(st.WorkflowID, "deposit_timed_out_resolved_notified")
}
