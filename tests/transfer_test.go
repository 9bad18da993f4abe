package tests

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// playLife signals the guide's happy path for a started transfer, as the bridge would.
func (s *stack) playLife(kind connect.Kind, transferID, sessionID string, final connect.Status) {
	for _, st := range []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted, final} {
		s.signal(kind, transferID, event(kind, st, "cx-"+transferID, sessionID))
	}
}

func TestDepositAndWithdrawalEndToEnd(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()

	dep, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "d-1",
		ReferenceID: "USER01", Metadata: map[string]string{"order": "42"}})
	if err != nil {
		t.Fatalf("start deposit: %v", err)
	}
	if dep.JWT == "" || dep.SessionID == "" || dep.ExpiresAt.IsZero() || dep.WorkflowID != "deposit-d-1" || dep.RunID == "" {
		t.Fatalf("deposit start incomplete: %+v", dep)
	}
	claims, err := connect.ParseSessionJWT(dep.JWT)
	if err != nil || claims.Session.ID != dep.SessionID || claims.Account.ReferenceID != "USER01" {
		t.Fatalf("session JWT claims %+v (err %v) do not match start %+v", claims, err, dep)
	}
	wd, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: "w-1",
		ReferenceID: "USER02", Asset: "BTC", Network: "bitcoin", Amount: "0.5"})
	if err != nil {
		t.Fatalf("start withdrawal: %v", err)
	}
	info, ok := s.sandbox.Session(wd.SessionID)
	if !ok {
		t.Fatalf("sandbox has no session %s", wd.SessionID)
	}
	var metadata map[string]string
	if err := json.Unmarshal(info.Metadata, &metadata); err != nil {
		t.Fatalf("session metadata: %v", err)
	}
	if metadata[workflows.MetadataTransferID] != "w-1" || metadata[workflows.MetadataKind] != "withdrawal" {
		t.Fatalf("session metadata lacks routing keys: %s", info.Metadata)
	}

	s.playLife(connect.KindDeposit, "d-1", dep.SessionID, connect.StatusConfirmed)
	s.playLife(connect.KindWithdrawal, "w-1", wd.SessionID, connect.StatusConfirmed)
	for _, c := range []struct {
		kind connect.Kind
		id   string
	}{{connect.KindDeposit, "d-1"}, {connect.KindWithdrawal, "w-1"}} {
		r, err := s.result(c.kind, c.id)
		if err != nil {
			t.Fatalf("%s %s: %v", c.kind, c.id, err)
		}
		if r.Status != workflows.StatusConfirmed || r.ConnectTransferID != "cx-"+c.id || r.TxHash == "" || r.Asset != "BTC" {
			t.Fatalf("%s %s result: %+v", c.kind, c.id, r)
		}
		if len(r.Events) != 4 {
			t.Fatalf("%s %s: want session + 3 events, got %+v", c.kind, c.id, r.Events)
		}
	}
	st, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "d-1")
	if err != nil || st.Status != workflows.StatusConfirmed {
		t.Fatalf("status after close: %+v, %v", st.Status, err)
	}
	s.checkReplay(dep.WorkflowID, "deposit_confirmed")
	s.checkReplay(wd.WorkflowID, "withdrawal_confirmed")
	s.checkCheapHistory(dep.WorkflowID)
	s.checkCheapHistory(wd.WorkflowID)
	if got := s.sandbox.Count(connecttest.EndpointToken); got != 1 {
		t.Fatalf("token requests: got %d, want 1", got)
	}
}

func TestSameTransferStartedTwiceOpensOneSession(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	in := workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "twice", ReferenceID: "USER03"}

	var wg sync.WaitGroup
	results := make([]string, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.transfers.Start(s.ctx(), in)
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				return
			}
			results[i] = st.SessionID + "|" + st.RunID
		}()
	}
	wg.Wait()
	for _, r := range results[1:] {
		if r != results[0] {
			t.Fatalf("concurrent starts disagree: %v", results)
		}
	}
	if n := s.sandbox.SessionsCreatedFor("USER03"); n != 1 {
		t.Fatalf("sessions created: %d, want 1", n)
	}

	s.playLife(connect.KindDeposit, "twice", strings.Split(results[0], "|")[0], connect.StatusConfirmed)
	if _, err := s.result(connect.KindDeposit, "twice"); err != nil {
		t.Fatal(err)
	}
	again, err := s.transfers.Start(s.ctx(), in)
	if err != nil {
		t.Fatalf("start after close: %v", err)
	}
	if again.Status != workflows.StatusConfirmed || again.SessionID+"|"+again.RunID != results[0] {
		t.Fatalf("start after close should return the finished transfer, got %+v", again)
	}
	if n := s.sandbox.SessionsCreatedFor("USER03"); n != 1 {
		t.Fatalf("sessions created after a late start: %d, want 1", n)
	}
}

func TestWorkerReplacedMidTransferCompletes(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	w := s.startWorker()
	st, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "crash", ReferenceID: "USER04"})
	if err != nil {
		t.Fatal(err)
	}
	s.signal(connect.KindDeposit, "crash", event(connect.KindDeposit, connect.StatusInitiated, "cx-crash", st.SessionID))
	eventually(t, "initiated", func() bool {
		cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "crash")
		return err == nil && cur.Status == workflows.StatusInitiated
	})
	w.Stop()
	// Events arrive while no worker runs: Temporal keeps them.
	s.signal(connect.KindDeposit, "crash", event(connect.KindDeposit, connect.StatusBroadcasted, "cx-crash", st.SessionID))
	s.signal(connect.KindDeposit, "crash", event(connect.KindDeposit, connect.StatusConfirmed, "cx-crash", st.SessionID))
	s.startWorker()
	r, err := s.result(connect.KindDeposit, "crash")
	if err != nil || r.Status != workflows.StatusConfirmed || len(r.Events) != 4 {
		t.Fatalf("after worker restart: %+v, %v", r, err)
	}
	s.checkReplay(st.WorkflowID, "deposit_worker_replaced")
}

func TestSessionServerErrorsRetryToOneSession(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	if err := s.sandbox.Fail(connecttest.EndpointSessions, connecttest.Fault{Status: 500, Times: 2}); err != nil {
		t.Fatal(err)
	}
	s.startWorker()
	st, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "flaky", ReferenceID: "USER05"})
	if err != nil {
		t.Fatalf("start through two 500s: %v", err)
	}
	if got := s.sandbox.Count(connecttest.EndpointSessions); got != 3 {
		t.Fatalf("session requests: %d, want 3 (two failures, one success)", got)
	}
	if n := s.sandbox.SessionsCreatedFor("USER05"); n != 1 {
		t.Fatalf("sessions created: %d, want 1", n)
	}
	s.playLife(connect.KindDeposit, "flaky", st.SessionID, connect.StatusConfirmed)
	if r, err := s.result(connect.KindDeposit, "flaky"); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("result: %+v, %v", r, err)
	}
}

func TestFiftyTransfersOneTokenRequest(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "bulk-" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + time.Duration(i).String()
			if _, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: id,
				ReferenceID: "BULK-" + id}); err != nil {
				t.Errorf("start %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	if got := s.sandbox.SessionsCreated(); got != 50 {
		t.Fatalf("sessions: %d, want 50", got)
	}
	if got := s.sandbox.Count(connecttest.EndpointToken); got != 1 {
		t.Fatalf("token requests for 50 sessions: %d, want 1", got)
	}
}

func TestForbiddenSessionFailsWithReadableReason(t *testing.T) {
	s := newStack(t, connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeDepositSend, connect.ScopeWithdrawalSend}})
	s.startWorker()
	_, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: "nope",
		ReferenceID: "USER06", Asset: "BTC", Network: "bitcoin", Amount: "1"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "ConnectForbidden" {
		t.Fatalf("want a ConnectForbidden error, got %v", err)
	}
	if !strings.Contains(err.Error(), "403") {
		t.Fatalf("reason should name the status: %v", err)
	}
	if got := s.sandbox.Count(connecttest.EndpointSessions); got != 1 {
		t.Fatalf("a 403 must not be retried: %d session requests", got)
	}
	_, err = s.result(connect.KindWithdrawal, "nope")
	if !errors.As(err, &appErr) || appErr.Type() != "ConnectForbidden" {
		t.Fatalf("workflow should fail ConnectForbidden, got %v", err)
	}
	st, err := s.transfers.Status(s.ctx(), connect.KindWithdrawal, "nope")
	if err != nil || st.Status != workflows.StatusSessionFailed || !strings.Contains(st.FailureReason, "403") {
		t.Fatalf("status: %+v, %v", st, err)
	}
	// The sandbox refused the default user:withdrawal:request: the reason names the setting that picks the other.
	if !strings.Contains(st.FailureReason, "CONNECT_WITHDRAWAL_SCOPE=user:withdrawal:send") {
		t.Fatalf("failure reason %q does not say which setting to change", st.FailureReason)
	}
	s.checkReplay(st.WorkflowID, "withdrawal_session_forbidden")
}

func TestOnboardingTokenThroughSandbox(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	if err := s.sandbox.Fail(connecttest.EndpointOnboarding, connecttest.Fault{Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	s.startWorker()
	token, err := s.transfers.Onboarding(s.ctx(), workflows.OnboardingRequest{Email: "kyc@example.com", Phone: "33512345678"})
	if err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	if token == "" {
		t.Fatal("empty onboarding token")
	}
	resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.namespace, Query: "WorkflowType = 'OnboardingWorkflow'"})
	if err != nil || len(resp.GetExecutions()) != 1 {
		t.Fatalf("onboarding workflow not listed: %v, %v", resp, err)
	}
	s.checkReplay(resp.GetExecutions()[0].GetExecution().GetWorkflowId(), "onboarding_retried")
}

// A session that expired before it reached the worker (the sandbox's clock two hours behind) ends the transfer
// session_failed at once with a named reason, instead of a transfer that goes awaiting_user and expires at once.
func TestUnusableSessionFailsWithReadableReason(t *testing.T) {
	s := newStack(t, connecttest.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }, TokenTTL: 4 * time.Hour})
	s.startWorker()
	_, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "late", ReferenceID: "USER09"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "ConnectSessionUnusable" {
		t.Fatalf("want a ConnectSessionUnusable error, got %v", err)
	}
	st, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "late")
	if err != nil || st.Status != workflows.StatusSessionFailed || !strings.Contains(st.FailureReason, "before it arrived") {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if got := s.sandbox.Count(connecttest.EndpointSessions); got != 1 {
		t.Fatalf("an unusable session must not be retried: %d session requests", got)
	}
}

// checkCheapHistory checks what workflows.MachineV2 saves in a transfer confirmed inside its session window, with
// no other transfer of its reference, on a real server: one version marker (one TemporalChangeVersion upsert), one
// deadline timer and no cancelled one, and no SignalMatching activity (OpenSession found nobody to supersede).
func (s *stack) checkCheapHistory(workflowID string) {
	s.t.Helper()
	var markers, timers, cancelled, upserts int
	var activities []string
	it := s.client.GetWorkflowHistory(s.ctx(), workflowID, "", false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			s.t.Fatalf("history of %s: %v", workflowID, err)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
				markers++
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			timers++
		case enumspb.EVENT_TYPE_TIMER_CANCELED:
			cancelled++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			upserts++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			activities = append(activities, ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		}
	}
	if markers != 1 || timers != 1 || cancelled != 0 || len(activities) != 1 || activities[0] != "OpenSession" {
		s.t.Errorf("%s: %d version markers, %d timers started, %d cancelled, activities %v; want 1, 1, 0, [OpenSession]",
			workflowID, markers, timers, cancelled, activities)
	}
	// The version marker's TemporalChangeVersion and awaiting_user, then at most one per status change
	// (initiated, broadcasted, confirmed): webhooks the workflow takes in one workflow task share one upsert.
	if upserts < 3 || upserts > 5 {
		s.t.Errorf("%s: %d search-attribute upserts, want 3 to 5", workflowID, upserts)
	}
}
