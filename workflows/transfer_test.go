package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
)

const testSessionTTL = time.Hour

type env struct {
	*testsuite.TestWorkflowEnvironment
	t       *testing.T
	reviews *[]activities.ReviewRequest // every review the workflow opened
	// matching answers SignalMatching (superseding) when set.
	matching *func(context.Context, activities.SignalMatchingRequest) ([]string, error)
}

// newEnv is a test environment for the transfer workflow; metrics, if given, gets the workflow's metrics.
func newEnv(t *testing.T, metrics ...client.MetricsHandler) env {
	return newEnvReviewsAfter(t, 0, metrics...)
}

// newEnvReviewsAfter is newEnv with opening a review taking d of workflow time (Temporal slow, or the activity
// retrying), so a test can deliver signals while the workflow waits for its reviews.
func newEnvReviewsAfter(t *testing.T, d time.Duration, metrics ...client.MetricsHandler) env {
	var s testsuite.WorkflowTestSuite
	for _, h := range metrics {
		s.SetMetricsHandler(h)
	}
	e := s.NewTestWorkflowEnvironment()
	e.RegisterWorkflow(TransferWorkflow)
	e.RegisterWorkflow(OnboardingWorkflow)
	e.RegisterActivity(&activities.Activities{})
	// The activities that reach other workflows answer as a Temporal with no other transfer would.
	reviews := &[]activities.ReviewRequest{}
	var mu sync.Mutex // activities run on their own goroutines
	e.OnActivity(act.OpenReview, mock.Anything, mock.Anything).After(d).Return(
		func(_ context.Context, req activities.ReviewRequest) (activities.ReviewOpened, error) {
			mu.Lock()
			defer mu.Unlock()
			*reviews = append(*reviews, req)
			return activities.ReviewOpened{WorkflowID: req.WorkflowID}, nil
		}).Maybe()
	// Superseding finds no other transfer of the reference, unless a test sets matching.
	matching := new(func(context.Context, activities.SignalMatchingRequest) ([]string, error))
	e.OnActivity(act.SignalMatching, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, req activities.SignalMatchingRequest) ([]string, error) {
			if *matching != nil {
				return (*matching)(ctx, req)
			}
			return nil, nil
		}).Maybe()
	return env{e, t, reviews, matching}
}

// onSession answers the session activity with fn, as Connect would; superseding finds no other transfer.
func (e env) onSession(fn func(context.Context, connect.SessionRequest) (connect.Session, error)) {
	e.OnActivity(act.OpenSession, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, req activities.OpenSessionRequest) (activities.OpenedSession, error) {
			s, err := fn(ctx, req.Session)
			return activities.OpenedSession{Session: s}, err
		})
}

// sessionOK answers the session activity like Connect does, echoing what the workflow asked for.
func (e env) sessionOK() {
	e.onSession(
		func(_ context.Context, req connect.SessionRequest) (connect.Session, error) {
			now := e.Now()
			return connect.Session{JWT: "jwt-for-" + req.RequestID, ID: "sess-1", AccountID: "acct-1",
				ReferenceID: req.ReferenceID, IssuedAt: now, ExpiresAt: now.Add(testSessionTTL)}, nil
		})
}

func ev(kind connect.Kind, status connect.Status) EventSignal {
	e := connect.Event{Name: "connect." + string(kind) + "." + string(status), Kind: kind, Status: status,
		TransferID: "cx-1", SessionID: "sess-1", Asset: "BTC", Network: "bitcoin", Amount: "0.013"}
	if status == connect.StatusBroadcasted || status == connect.StatusConfirmed {
		e.TxHash = "0xf3b9c88212d7a8d611d6f97a4b6e96b2b2c1b7"
	}
	if status == connect.StatusFailed {
		e.FailureReason = "insufficient funds"
	}
	e.DedupeKey = string(kind) + ":cx-1:" + string(status)
	return EventSignal{Event: e}
}

// continuedAs is the input the workflow continued as new with; the test fails if it did not continue as new.
func (e env) continuedAs() TransferInput {
	e.t.Helper()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(e.t, e.GetWorkflowError(), &can)
	var next TransferInput
	require.NoError(e.t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

// recordNotifications turns notifications to the platform on (each retried for retryFor) and records every
// one delivered; sent returns them so far.
func (e env) recordNotifications(retryFor time.Duration) (sent func() []activities.Notification) {
	e.OnActivity(act.PlatformNotifications, mock.Anything).Return(activities.PlatformConfig{Enabled: true, RetryFor: retryFor}, nil)
	var mu sync.Mutex
	var got []activities.Notification
	e.OnActivity(act.NotifyPlatform, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n)
		return nil
	})
	return func() []activities.Notification {
		mu.Lock()
		defer mu.Unlock()
		return append([]activities.Notification(nil), got...)
	}
}

// statusesAndReasons are notifications as "status:failure reason".
func statusesAndReasons(ns []activities.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Data.Status+":"+n.Data.FailureReason)
	}
	return out
}

// signalAt sends signals at offsets from the start, in the given order.
func (e env) signalAt(at time.Duration, name string, payloads ...any) {
	e.RegisterDelayedCallback(func() {
		for _, p := range payloads {
			e.SignalWorkflow(name, p)
		}
	}, at)
}

func (e env) result() TransferResult {
	e.t.Helper()
	require.True(e.t, e.IsWorkflowCompleted())
	require.NoError(e.t, e.GetWorkflowError())
	var r TransferResult
	require.NoError(e.t, e.GetWorkflowResult(&r))
	return r
}

func (e env) state() TransferState {
	e.t.Helper()
	v, err := e.QueryWorkflow(QueryState)
	require.NoError(e.t, err)
	var s TransferState
	require.NoError(e.t, v.Get(&s))
	return s
}

func deposit() TransferInput {
	return TransferInput{Kind: connect.KindDeposit, TransferID: "t-1", ReferenceID: "USER01", Metadata: map[string]string{"order": "42"}}
}

func effects(r TransferResult) []string {
	var out []string
	for _, e := range r.Events {
		out = append(out, e.Source+":"+e.Status+":"+e.Effect)
	}
	return out
}

func TestDepositConfirmed(t *testing.T) {
	e := newEnv(t)
	var got connect.SessionRequest
	e.onSession(
		func(_ context.Context, req connect.SessionRequest) (connect.Session, error) {
			got = req
			return connect.Session{JWT: "jwt", ID: "sess-1", ExpiresAt: e.Now().Add(testSessionTTL)}, nil
		})
	var session SessionInfo
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(UpdateSession, "u1", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { t.Errorf("update rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				session = v.(SessionInfo)
			},
		})
	}, 0)
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.RegisterDelayedCallback(func() {
		s := e.state()
		require.Equal(t, StatusInitiated, s.Status)
		require.Equal(t, "cx-1", s.ConnectTransferID)
	}, 2*time.Minute)
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusBroadcasted))
	e.signalAt(10*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WorkflowID(connect.KindDeposit, "t-1")})
	e.ExecuteWorkflow(TransferWorkflow, deposit())

	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, "jwt", session.JWT)
	require.Equal(t, "sess-1", session.SessionID)
	require.Equal(t, "deposit-t-1", got.RequestID, "the workflow id is the idempotency key")
	require.Equal(t, "t-1", got.Metadata[MetadataTransferID])
	require.Equal(t, "deposit", got.Metadata[MetadataKind])
	require.Equal(t, "42", got.Metadata["order"])
	require.Equal(t, "cx-1", r.ConnectTransferID)
	require.Equal(t, "0xf3b9c88212d7a8d611d6f97a4b6e96b2b2c1b7", r.TxHash)
	require.Equal(t, "0.013", r.Amount)
	require.Equal(t, "BTC", r.Asset)
	require.Equal(t, "bitcoin", r.Network)
	require.Equal(t, "sess-1", r.SessionID)
	require.Equal(t, []string{"connect::applied", "connect:initiated:applied", "connect:broadcasted:applied", "connect:confirmed:applied"}, effects(r))
	for _, rec := range r.Events {
		require.False(t, rec.ReceivedAt.IsZero(), "every event keeps its time")
	}
}

func TestDuplicatesAndReorderNeverMoveBackwards(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.AwaitLedger = true // keeps the workflow open after confirmed so late events reach it
	confirmed := ev(connect.KindDeposit, connect.StatusConfirmed)
	e.signalAt(time.Minute, SignalConnectEvent, confirmed, confirmed, ev(connect.KindDeposit, connect.StatusBroadcasted),
		ev(connect.KindDeposit, connect.StatusInitiated), confirmed, ev(connect.KindDeposit, connect.StatusInitiated))
	e.RegisterDelayedCallback(func() {
		s := e.state()
		require.Equal(t, StatusConfirmed, s.Status)
		require.Len(t, s.Events, 4) // session + three distinct events
		require.Equal(t, 2, s.Events[1].Duplicates)
		require.Equal(t, EffectApplied, s.Events[1].Effect)
		require.Equal(t, EffectLate, s.Events[2].Effect)
		require.Equal(t, EffectLate, s.Events[3].Effect)
		require.Equal(t, 1, s.Events[3].Duplicates)
	}, 2*time.Minute)
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusFailed))
	e.signalAt(4*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-1", MovementType: "deposit", Change: "0.013"})
	e.ExecuteWorkflow(TransferWorkflow, in)

	r := e.result()
	require.Equal(t, StatusSettled, r.Status)
	require.Equal(t, "m-1", r.Ledger.MovementID)
	require.Equal(t, []string{"connect::applied", "connect:confirmed:applied", "connect:broadcasted:late",
		"connect:initiated:late", "connect:failed:conflict", "ledger::applied"}, effects(r))
}

func TestLedgerBeforeConfirmedSettlesOnConfirmed(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.AwaitLedger = true
	e.signalAt(time.Minute, SignalLedger, LedgerMovement{MovementID: "m-1"}, LedgerMovement{MovementID: "m-1"})
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusSettled, r.Status)
	require.Equal(t, "m-1", r.Ledger.MovementID)
	require.Equal(t, []string{"connect::applied", "ledger::applied", "connect:confirmed:applied"}, effects(r))
	require.Equal(t, 1, r.Events[1].Duplicates)
}

func TestConfirmedWithoutLedgerEndsUnsettled(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.AwaitLedger = true
	in.Timeouts.ReviewHorizon = 48 * time.Hour
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusUnsettled, r.Status)
	require.Equal(t, "ledger_horizon", r.Events[len(r.Events)-1].Name)
}

func TestWithdrawalFailed(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := TransferInput{Kind: connect.KindWithdrawal, TransferID: "w-1", ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin", Amount: "0.5"}
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusInitiated), ev(connect.KindDeposit, connect.StatusConfirmed))
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusFailed, r.Status)
	require.Equal(t, "insufficient funds", r.FailureReason)
	require.Equal(t, "0.5", r.Amount, "the requested amount is kept")
	require.Equal(t, []string{"connect::applied", "connect:initiated:applied", "connect:confirmed:ignored", "connect:failed:applied"}, effects(r))
}

func TestExpiredWhenNotInitiatedBeforeSessionExpiry(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusAwaitingUser, e.state().Status) }, testSessionTTL-time.Minute)
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusExpired, r.Status)
	require.Equal(t, "session_expired", r.Events[len(r.Events)-1].Name)
}

func TestSessionExpiryOverride(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.Timeouts.SessionExpiry = 10 * time.Minute
	e.signalAt(11*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.Equal(t, StatusExpired, e.result().Status)
}

func TestStalledThenTimedOutWaitsForAPerson(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusInitiated, e.state().Status) }, 23*time.Hour)
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusStalled, e.state().Status) }, 25*time.Hour)
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusStalled, e.state().Status) }, 6*24*time.Hour)
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusTimedOut, e.state().Status) }, 30*24*time.Hour)
	// A confirmation after the horizon is kept for the operator, not applied on its own.
	e.signalAt(30*24*time.Hour+time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	var resolveErr error = errNotCalled
	e.resolve(31*24*time.Hour, Resolution{Operator: "ana", Outcome: StatusConfirmed, Reason: "tx seen on chain"},
		func(err error) { resolveErr = err })
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.NoError(t, resolveErr)
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, "ana", r.Resolution.Operator)
	require.Equal(t, "tx seen on chain", r.Resolution.Reason)
	names := []string{}
	for _, rec := range r.Events {
		names = append(names, rec.Source+":"+rec.Name+":"+rec.Effect)
	}
	require.Equal(t, []string{"connect:session.created:applied", "connect:connect.deposit.initiated:applied",
		"timer:stall_timeout:applied", "timer:review_horizon:applied", "connect:connect.deposit.confirmed:conflict",
		"operator:resolve:applied"}, names)
}

func TestResolveStalledTransfer(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.Timeouts.Stall = time.Hour
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	refusals := []struct {
		want string
		r    Resolution
	}{
		{"operator: required", Resolution{Outcome: StatusFailed, Reason: "r"}},
		{"outcome: must be", Resolution{Operator: "ana", Outcome: StatusSettled, Reason: "r"}},
		{"reason: required", Resolution{Operator: "ana", Outcome: StatusFailed}},
	}
	refused := 0
	for i, c := range refusals {
		e.resolve(2*time.Hour+time.Duration(i)*time.Minute, c.r, func(err error) {
			require.ErrorContains(t, err, c.want)
			refused++
		})
	}
	var resolveErr error = errNotCalled
	e.resolve(3*time.Hour, Resolution{Operator: "ana", Outcome: StatusFailed, Reason: "exchange reversed it"}, func(err error) { resolveErr = err })
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.NoError(t, resolveErr)
	require.Equal(t, len(refusals), refused)
	r := e.result()
	require.Equal(t, StatusFailed, r.Status)
	require.Equal(t, StatusFailed, r.Resolution.Outcome)
	require.Equal(t, "exchange reversed it", r.Resolution.Reason)
	require.Equal(t, 3*time.Hour, r.Resolution.At.Sub(e.startTime(r)))
}

func TestResolveRefusedUnlessWaitingForAPerson(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.AwaitLedger = true // keeps the confirmed transfer open, so the refusal is the validator's
	ok := Resolution{Operator: "ana", Outcome: StatusFailed, Reason: "r"}
	refused := 0
	e.resolve(time.Minute, ok, func(err error) { require.ErrorContains(t, err, "transfer is awaiting_user"); refused++ })
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.resolve(3*time.Minute, ok, func(err error) { require.ErrorContains(t, err, "transfer is confirmed"); refused++ })
	e.signalAt(4*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-1"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusSettled, r.Status)
	require.Nil(t, r.Resolution)
	require.Equal(t, 2, refused)
}

func TestStalledTransferStillConfirms(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.Timeouts.Stall = time.Hour
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(3*time.Hour, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusStalled, e.state().Status) }, 2*time.Hour)
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.Equal(t, StatusConfirmed, e.result().Status)
}

func TestAbandonedWhenClosedBeforeInitiating(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.Equal(t, StatusAbandoned, e.result().Status)
}

func TestCloseAfterInitiatingDoesNotAbandon(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(2*time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, "sdk::ignored", effects(r)[2])
}

func TestSessionRefusedFailsAtOnceWithReadableReason(t *testing.T) {
	e := newEnv(t)
	calls := 0
	e.onSession(
		func(_ context.Context, _ connect.SessionRequest) (connect.Session, error) {
			calls++
			return connect.Session{}, temporal.NewNonRetryableApplicationError("connect create session: HTTP 403 forbidden: scope not allowed", "ConnectForbidden", nil)
		})
	var updateErr error
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(UpdateSession, "u1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { updateErr = err },
			OnComplete: func(_ any, err error) { updateErr = err },
		})
	}, 0)
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.True(t, e.IsWorkflowCompleted())
	err := e.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %v", err)
	require.Equal(t, "ConnectForbidden", appErr.Type())
	require.Contains(t, appErr.Error(), "scope not allowed")
	require.Equal(t, 1, calls)
	require.ErrorAs(t, updateErr, &appErr)
	require.Equal(t, "ConnectForbidden", appErr.Type())
	require.Equal(t, StatusSessionFailed, e.state().Status)
}

func TestSessionServerErrorsRetryThenSucceed(t *testing.T) {
	e := newEnv(t)
	calls := 0
	e.onSession(
		func(_ context.Context, req connect.SessionRequest) (connect.Session, error) {
			calls++
			if calls <= 2 {
				return connect.Session{}, temporal.NewApplicationErrorWithOptions("HTTP 500", "ConnectServerError",
					temporal.ApplicationErrorOptions{NextRetryDelay: 3 * time.Second})
			}
			return connect.Session{JWT: "jwt", ID: "sess-1", ExpiresAt: e.Now().Add(testSessionTTL)}, nil
		})
	e.signalAt(time.Hour/2, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.Equal(t, StatusConfirmed, e.result().Status)
	require.Equal(t, 3, calls)
}

func TestInvalidInputFails(t *testing.T) {
	for name, in := range map[string]TransferInput{
		"no kind":              {TransferID: "t", ReferenceID: "r"},
		"no transfer id":       {Kind: connect.KindDeposit, ReferenceID: "r"},
		"withdrawal no amount": {Kind: connect.KindWithdrawal, TransferID: "t", ReferenceID: "r", Asset: "BTC", Network: "bitcoin"},
		"reserved metadata":    {Kind: connect.KindDeposit, TransferID: "t", ReferenceID: "r", Metadata: map[string]string{MetadataTransferID: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.ExecuteWorkflow(TransferWorkflow, in)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, e.GetWorkflowError(), &appErr)
			require.Equal(t, "InvalidTransferInput", appErr.Type())
		})
	}
}

func TestOnboardingReusesRequestIDAcrossRetries(t *testing.T) {
	e := newEnv(t)
	var ids []string
	e.OnActivity(act.IssueOnboardingToken, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.OnboardingInput) (activities.OnboardingResult, error) {
			ids = append(ids, in.RequestID)
			if len(ids) == 1 {
				return activities.OnboardingResult{}, temporal.NewApplicationError("HTTP 503", "ZeroHashServiceUnavailable")
			}
			return activities.OnboardingResult{Token: "onb-token"}, nil
		})
	e.ExecuteWorkflow(OnboardingWorkflow, OnboardingRequest{Email: "a@example.com"})
	require.NoError(t, e.GetWorkflowError())
	var out activities.OnboardingResult
	require.NoError(t, e.GetWorkflowResult(&out))
	require.Equal(t, "onb-token", out.Token)
	require.Len(t, ids, 2)
	require.Equal(t, ids[0], ids[1])
	require.Len(t, ids[0], 36)
}

func TestOnboardingRejectsBadEmail(t *testing.T) {
	e := newEnv(t)
	e.ExecuteWorkflow(OnboardingWorkflow, OnboardingRequest{Email: "nope"})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, e.GetWorkflowError(), &appErr)
	require.Equal(t, "InvalidOnboardingInput", appErr.Type())
}

// startTime is when the session was recorded, the first event of every transfer.
func (e env) startTime(r TransferResult) time.Time { return r.Events[0].ReceivedAt }

// openSession answers the session activity, after the given delay, with session sess-1 and noOthers as its check
// of the reference's other transfers; the request it was asked with is kept in what it returns.
func (e env) openSession(noOthers bool, after time.Duration) *activities.OpenSessionRequest {
	asked := new(activities.OpenSessionRequest)
	e.OnActivity(act.OpenSession, mock.Anything, mock.Anything).After(after).Return(
		func(_ context.Context, req activities.OpenSessionRequest) (activities.OpenedSession, error) {
			*asked = req
			return activities.OpenedSession{NoOthers: noOthers,
				Session: connect.Session{ID: "sess-1", JWT: "jwt", ExpiresAt: e.Now().Add(testSessionTTL)}}, nil
		})
	return asked
}

func TestSupersededWhileAwaitingTheUser(t *testing.T) {
	e := newEnv(t)
	asked := e.openSession(false, 0)
	sup := Supersede{WorkflowID: "deposit-newer", DedupeKey: "supersede:deposit-newer"}
	e.signalAt(time.Minute, SignalSupersede, sup, sup)
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusSuperseded, r.Status)
	require.Equal(t, "deposit-newer", r.SupersededBy)
	require.True(t, r.Final())
	require.Nil(t, r.Session, "the result carries no JWT")
	require.Equal(t, "sess-1", r.SessionID)
	require.Equal(t, []string{"connect::applied", "transfer:deposit-newer:applied"}, effects(r))
	require.Nil(t, asked.Supersede, "under supersede-after-session the session activity only opens the session")
}

// Superseding runs after the session is with the user (ChangeSupersedeAfterSession): the update answers before
// SignalMatching is even scheduled to finish, the request names the reference and this session's time, and a
// failure is recorded and does not fail the transfer.
func TestSupersedeRunsAfterTheSessionUpdate(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	var asked activities.SignalMatchingRequest
	var answeredAt, supersededAt time.Time
	*e.matching = func(_ context.Context, req activities.SignalMatchingRequest) ([]string, error) {
		asked, supersededAt = req, e.Now()
		return nil, temporal.NewNonRetryableApplicationError("list: unavailable", "Unavailable", nil)
	}
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(UpdateSession, "s1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("session update rejected: %v", err) },
			OnComplete: func(_ any, err error) {
				require.NoError(t, err)
				answeredAt = e.Now()
			}})
	}, 0)
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated), ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.False(t, answeredAt.IsZero(), "the session update answered")
	require.False(t, supersededAt.IsZero(), "superseding ran")
	require.Equal(t, QueryAwaitingUser("USER01"), asked.Query)
	require.Equal(t, "default-test-workflow-id", asked.Exclude)
	require.Equal(t, SignalSupersede, asked.Signal)
	var arg Supersede
	b, err := json.Marshal(asked.Arg)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &arg))
	require.Equal(t, "supersede:default-test-workflow-id", arg.DedupeKey)
	require.Equal(t, r.Events[0].ReceivedAt, arg.SessionOpened, "the signal carries this session's time")
	require.Contains(t, effects(r), "transfer:list: unavailable:ignored")
	require.Equal(t, StatusConfirmed, r.Status, "a failed supersede never fails the transfer")
}

// A supersede from a transfer whose session is older than this one's is a late retry: Connect's current session
// is this one, so it is ignored (recorded).
func TestSupersedeFromAnOlderSessionIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	start := e.Now()
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(SignalSupersede, Supersede{WorkflowID: "deposit-older", DedupeKey: "supersede:deposit-older",
			SessionOpened: start.Add(-time.Minute)})
		e.SignalWorkflow(SignalSupersede, Supersede{WorkflowID: "deposit-newer", DedupeKey: "supersede:deposit-newer",
			SessionOpened: e.Now()})
	}, time.Minute)
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusSuperseded, r.Status)
	require.Equal(t, "deposit-newer", r.SupersededBy)
	require.Equal(t, []string{"connect::applied", "transfer:deposit-older:ignored", "transfer:deposit-newer:applied"}, effects(r))
}

func TestSupersedeAfterInitiatingIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(2*time.Minute, SignalSupersede, Supersede{WorkflowID: "deposit-newer"})
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Empty(t, r.SupersededBy)
	require.Equal(t, []string{"connect::applied", "connect:initiated:applied", "transfer:deposit-newer:ignored", "connect:confirmed:applied"}, effects(r))
}

func TestMismatchedLedgerIsAConflictForReview(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := TransferInput{Kind: connect.KindWithdrawal, TransferID: "w-1", ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin",
		Amount: "0.5", AwaitLedger: true}
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusConfirmed))
	e.signalAt(2*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-eth", Asset: "ETH", Change: "-0.5"},
		LedgerMovement{MovementID: "m-small", Asset: "BTC", Change: "-0.4"})
	e.signalAt(3*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-ok", Asset: "btc", Change: "-0.500"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusSettled, r.Status)
	require.Equal(t, "m-ok", r.Ledger.MovementID)
	require.Equal(t, []string{"connect::applied", "connect:confirmed:applied", "ledger:ledger_mismatch:conflict",
		"ledger:ledger_mismatch:conflict", "ledger::applied"}, effects(r))
	reviews := *e.reviews
	require.Len(t, reviews, 2)
	if reviews[0].WorkflowID != ReviewWorkflowID("ledger:m-eth") {
		reviews[0], reviews[1] = reviews[1], reviews[0] // the two run side by side
	}
	require.Equal(t, ReviewWorkflowID("ledger:m-eth"), reviews[0].WorkflowID)
	require.Equal(t, ReviewWorkflowID("ledger:m-small"), reviews[1].WorkflowID)
	require.Equal(t, "ReviewWorkflow", reviews[0].WorkflowType)
	require.Equal(t, SignalLedger, reviews[0].Signal)
	var rin ReviewInput
	require.NoError(t, json.Unmarshal(reviews[0].Input.(json.RawMessage), &rin))
	require.Equal(t, ReviewLedgerMismatch, rin.Reason)
	require.Equal(t, "default-test-workflow-id", rin.TransferWorkflowID)
	var mv LedgerMovement
	require.NoError(t, json.Unmarshal(reviews[0].SignalArg.(json.RawMessage), &mv))
	require.Equal(t, "m-eth", mv.MovementID)
}

func TestLedgerMatches(t *testing.T) {
	in := TransferInput{Asset: "BTC", Amount: "0.013"}
	for m, want := range map[LedgerMovement]bool{
		{Asset: "BTC", Change: "0.013"}:   true,
		{Asset: "btc", Change: "-0.0130"}: true,
		{Asset: "BTC", Change: "13e-3"}:   true,
		{Asset: "ETH", Change: "0.013"}:   false,
		{Asset: "BTC", Change: "0.0131"}:  false,
		{Asset: "BTC", Change: "abc"}:     false,
		{Asset: "BTC"}:                    false,
	} {
		if got := LedgerMatches(in, m); got != want {
			t.Errorf("LedgerMatches(%+v) = %v, want %v", m, got, want)
		}
	}
	if !LedgerMatches(TransferInput{}, LedgerMovement{Asset: "ETH", Change: "7"}) {
		t.Error("a transfer that names no asset or amount takes any movement")
	}
}

// Random orders of a transfer's events, each sent up to three times, with SDK callbacks, a supersede and a ledger
// movement mixed in: whatever the order, the workflow never moves backwards, records each event once (redeliveries
// only count), and ends in the final status its outcome implies.
func TestRandomEventOrdersKeepTheInvariants(t *testing.T) {
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 11))
		e := newEnv(t)
		e.sessionOK()
		in := deposit()
		in.AwaitLedger = r.IntN(2) == 0
		outcome := []connect.Status{connect.StatusConfirmed, connect.StatusFailed}[r.IntN(2)]
		var sends []any
		for _, st := range []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted, outcome} {
			for range 1 + r.IntN(3) {
				sends = append(sends, ev(connect.KindDeposit, st))
			}
		}
		sends = append(sends, SDKEvent{Type: SDKTypeEvent, Detail: "loaded", DedupeKey: "sdk-loaded"})
		r.Shuffle(len(sends), func(i, j int) { sends[i], sends[j] = sends[j], sends[i] })
		last := -1
		for i, p := range sends {
			at := time.Duration(i+1) * time.Minute
			name := SignalConnectEvent
			if _, ok := p.(SDKEvent); ok {
				name = SignalSDKEvent
			}
			e.signalAt(at, name, p)
			e.RegisterDelayedCallback(func() {
				st := e.state()
				if st.Progress() < last {
					t.Errorf("seed %d: moved backwards to %s", seed, st.Status)
				}
				last = st.Progress()
			}, at+time.Second)
		}
		if in.AwaitLedger {
			e.signalAt(time.Duration(len(sends)+1)*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-1", Change: "0.013"})
		}
		e.ExecuteWorkflow(TransferWorkflow, in)
		res := e.result()
		want := StatusFailed
		if outcome == connect.StatusConfirmed {
			want = StatusConfirmed
			if in.AwaitLedger {
				want = StatusSettled
			}
		}
		// A failed transfer awaiting its ledger closes at failed; the movement after close is not taken.
		if res.Status != want || !res.Final() {
			t.Fatalf("seed %d: ended %s, want %s (events %v)", seed, res.Status, want, effects(res))
		}
		seen := map[string]bool{}
		applied := map[string]int{}
		for _, rec := range res.Events {
			if seen[rec.DedupeKey] {
				t.Fatalf("seed %d: %s recorded twice", seed, rec.DedupeKey)
			}
			seen[rec.DedupeKey] = true
			if rec.Effect == EffectApplied && rec.Source == "connect" && rec.Status != "" {
				applied[rec.Status]++
			}
		}
		for st, n := range applied {
			if n > 1 {
				t.Fatalf("seed %d: %s applied %d times", seed, st, n)
			}
		}
	}
}

// ChangeEdgeRules: a close after the user submitted does not abandon the transfer; its events still confirm it.
func TestCloseAfterSubmitDoesNotAbandon(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeDeposit, Detail: "submitted", DedupeKey: "sdk:deposit:1"},
		SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.signalAt(10*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(11*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.True(t, r.UserSubmitted)
	require.Equal(t, []string{"connect::applied", "sdk:submitted:applied", "sdk::ignored", "connect:initiated:applied",
		"connect:confirmed:applied"}, effects(r))
}

// ChangeEdgeRules: a close is deferred for the grace period; a Connect event within it keeps the transfer.
func TestCloseThenConnectEventWithinGraceDoesNotAbandon(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.Timeouts.CloseGrace = 5 * time.Minute
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusAwaitingUser, e.state().Status) }, 3*time.Minute)
	e.signalAt(4*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(10*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, "sdk::ignored", effects(r)[1])
}

// ChangeEdgeRules: with no Connect event in the grace period, the close abandons the transfer.
func TestCloseAbandonsAfterGrace(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.RegisterDelayedCallback(func() {
		s := e.state()
		require.Equal(t, StatusAwaitingUser, s.Status)
		require.Equal(t, EffectDeferred, s.Events[1].Effect)
	}, time.Minute+DefaultCloseGrace-time.Second)
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusAbandoned, r.Status)
	require.Equal(t, "sdk::applied", effects(r)[1])
}

// ChangeEdgeRules: an event that names this transfer but another session is a conflict for review, not applied.
func TestEventOfAnotherSessionIsAConflict(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	other := ev(connect.KindDeposit, connect.StatusConfirmed)
	other.Event.SessionID = "sess-attacker"
	other.Event.DedupeKey = "deposit:cx-1:confirmed:other"
	e.signalAt(time.Minute, SignalConnectEvent, other)
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusAwaitingUser, e.state().Status) }, 2*time.Minute)
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, "connect:confirmed:conflict", effects(r)[1])
	require.Len(t, *e.reviews, 1)
	require.Contains(t, string((*e.reviews)[0].Input.(json.RawMessage)), `"reason":"`+ReviewSessionConflict+`"`)
}

// ChangeEdgeRules: a run that took SignalsPerRun signals continues as new with its state, well before Temporal's
// per-execution signal limit; the next run resumes it (no second session) and finishes it.
func TestFloodedTransferContinuesAsNew(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.SignalsPerRun = 3
	in.Timeouts.CloseGrace = time.Hour
	flood := make([]any, 0, 4)
	flood = append(flood, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	for i := range 2 { // the third signal fills the run (the test env drops a signal sent after the hand-over;
		// a real server refuses the hand-over then, and the run takes it first: tests/attacks_test.go)
		flood = append(flood, SDKEvent{Type: SDKTypeEvent, Detail: "flood", DedupeKey: fmt.Sprintf("flood-%d", i)})
	}
	e.signalAt(time.Minute, SignalSDKEvent, flood...)
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.True(t, e.IsWorkflowCompleted())
	next := e.continuedAs()
	require.NotNil(t, next.Carry)
	require.Equal(t, StatusAwaitingUser, next.Carry.State.Status)
	require.Equal(t, 1, next.Carry.Runs)
	require.False(t, next.Carry.CloseUntil.IsZero(), "the deferred close's grace is carried")

	e2 := newEnv(t) // no session activity mocked: a resumed run must not open another session
	e2.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e2.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e2.ExecuteWorkflow(TransferWorkflow, next)
	r := e2.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, "sess-1", r.SessionID)
	require.Equal(t, "sdk::ignored", effects(r)[1], "the pending close was cancelled by initiated")
	require.Len(t, r.Events, 6) // session, close, 2 flood, initiated, confirmed
}

// MachineV2: a deposit confirmed inside its session window starts one deadline timer (the session window's),
// which the stall deadline does not restart, and cancels none: the workflow ends with it pending.
func TestDeadlineTimerKeptWhenTheDeadlineMovesLater(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	var started []time.Duration
	cancelled := 0
	e.SetOnTimerScheduledListener(func(_ string, d time.Duration) { started = append(started, d) })
	e.SetOnTimerCanceledListener(func(string) { cancelled++ })
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusBroadcasted))
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.Equal(t, StatusConfirmed, e.result().Status)
	require.Equal(t, []time.Duration{testSessionTTL}, started, "one timer: the session window's")
	require.Zero(t, cancelled)
}

// MachineV2: the session window's timer fires after the transfer was initiated; it applies nothing and the
// workflow starts a timer for the rest of the stall deadline, which then stalls the transfer on time. A later
// confirmation leaves the review horizon's timer pending, never cancelled.
func TestOutgrownTimerStartsOneForTheRestOfTheDeadline(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	var started []time.Duration
	e.SetOnTimerScheduledListener(func(_ string, d time.Duration) { started = append(started, d) })
	e.SetOnTimerCanceledListener(func(string) { t.Error("a timer was cancelled") })
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusInitiated, e.state().Status) }, DefaultStallTimeout)
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusStalled, e.state().Status) }, DefaultStallTimeout+2*time.Minute)
	e.signalAt(DefaultStallTimeout+3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	// The session window, the rest of the stall deadline, then the stalled transfer's review horizon.
	require.Equal(t, []time.Duration{testSessionTTL, DefaultStallTimeout + time.Minute - testSessionTTL,
		DefaultReviewHorizon - DefaultStallTimeout}, started)
	require.Equal(t, []string{"connect::applied", "connect:initiated:applied", "timer::applied", "connect:confirmed:applied"}, effects(r))
	require.Equal(t, string(EventStallTimeout), r.Events[2].Name)
}

// MachineV2: OpenSession asks whether the reference has another transfer before its user; when it has none,
// SignalMatching never runs.
func TestNoOtherTransferOfTheReferenceSkipsSuperseding(t *testing.T) {
	e := newEnv(t)
	asked := e.openSession(true, 0)
	*e.matching = func(context.Context, activities.SignalMatchingRequest) ([]string, error) {
		t.Error("SignalMatching ran although OpenSession found no other transfer of the reference")
		return nil, nil
	}
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated), ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	require.Equal(t, StatusConfirmed, e.result().Status)
	require.NotNil(t, asked.Others)
	require.Equal(t, QueryBeforeUser("USER01"), asked.Others.Query)
	require.Equal(t, "default-test-workflow-id", asked.Others.Exclude)
	require.Nil(t, asked.Supersede)
}

// MachineV2: webhooks taken in one workflow task share one upsert of their final values: initiated and
// broadcasted delivered together cost one upsert, not two, and each is still applied and recorded on its own.
func TestSignalsTakenTogetherShareOneUpsert(t *testing.T) {
	e := newEnv(t)
	// The session takes a second to open: the two webhooks arrive meanwhile and wait for the same workflow task.
	e.openSession(true, time.Second)
	var upserts [][]string
	e.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		var keys []string
		for k := range args.Get(0).(temporal.SearchAttributes).GetUntypedValues() {
			keys = append(keys, k.GetName())
		}
		slices.Sort(keys)
		upserts = append(upserts, keys)
	}).Return()
	e.signalAt(time.Millisecond, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated), ev(connect.KindDeposit, connect.StatusBroadcasted))
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, deposit())
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, []string{"connect::applied", "connect:initiated:applied", "connect:broadcasted:applied",
		"connect:confirmed:applied"}, effects(r))
	require.Equal(t, [][]string{
		{"ConnectReferenceID", "ConnectSessionID", "TransferKind", "TransferStatus"}, // awaiting_user; the test starts with none set
		{"ConnectTransferID", "TransferStatus"},                                      // initiated and broadcasted together: broadcasted
		{"TransferStatus"},                                                           // confirmed
	}, upserts)
}
