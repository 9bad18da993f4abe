package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
)

// Found by a review (MachineV2): the batch loop notifies each status change with its own event's data, but the signals
// continueAsNew drains before the hand-over are taken without a queueNotifications between them: when they
// make several status changes, each is notified with the data of the last one (broadcasted carries the later
// failure's reason).
func TestDrainBeforeContinueAsNewNotifiesEachWithItsOwnData(t *testing.T) {
	e := newEnv(t)
	e.openSession(true, time.Second)
	e.OnActivity(act.PlatformNotifications, mock.Anything).Return(activities.PlatformConfig{Enabled: true, RetryFor: time.Hour}, nil)
	var mu sync.Mutex
	var sent []activities.Notification
	e.OnActivity(act.NotifyPlatform, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, n)
		return nil
	})
	in := deposit()
	in.SignalsPerRun = 1 // the first webhook fills the run: the other two are drained by continueAsNew
	e.signalAt(time.Millisecond, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated),
		ev(connect.KindDeposit, connect.StatusBroadcasted), ev(connect.KindDeposit, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.Equal(t, StatusFailed, e.result().Status)
	var got []string
	for _, n := range sent {
		got = append(got, n.Data.Status+":"+n.Data.FailureReason)
	}
	require.Equal(t, []string{"awaiting_user:", "initiated:", "broadcasted:", "failed:insufficient funds"}, got)
}

// Found by a review: close() drains the signals delivered so far, then finish waits for background activities (a review
// being opened). A Connect event signalled during that wait is never received: the workflow completes with it
// unread, so a conflict (failed after confirmed) is neither recorded nor sent to review, and the bridge, whose
// signal to the still-running workflow succeeded, does not send it either.
func TestSignalDuringFinishIsRecordedAndReviewed(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	e := s.NewTestWorkflowEnvironment()
	e.RegisterWorkflow(TransferWorkflow)
	e.RegisterActivity(&activities.Activities{})
	var mu sync.Mutex
	var reviews []string
	// Opening a review takes ten minutes (Temporal slow or retrying).
	e.OnActivity(act.OpenReview, mock.Anything, mock.Anything).After(10 * time.Minute).Return(
		func(_ context.Context, req activities.ReviewRequest) (activities.ReviewOpened, error) {
			mu.Lock()
			defer mu.Unlock()
			reviews = append(reviews, req.WorkflowID)
			return activities.ReviewOpened{WorkflowID: req.WorkflowID}, nil
		})
	te := env{TestWorkflowEnvironment: e, t: t}
	te.openSession(true, 0)
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	// A movement of another asset (a conflict: review opening until 11m), then confirmed (final: close waits for
	// the review), then, while it waits, Connect says failed: a contradiction a person must see.
	te.signalAt(time.Minute, SignalLedger, LedgerMovement{MovementID: "m-eth", Asset: "ETH", Change: "0.013"})
	te.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	te.signalAt(5*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := te.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Contains(t, effects(r), "connect:failed:conflict", "the failed webhook is recorded")
	require.Contains(t, reviews, ReviewWorkflowID("deposit:cx-1:failed"), "the contradiction goes to review")
}

// Found by a review: a conflict taken while the transfer is stalled is not sent to review ("the record shows it to whoever
// resolves"), but a stalled transfer need not be resolved by a person: Connect's own confirmed ends it. Then the
// conflict (here a ledger movement of the wrong amount) is recorded in a closed transfer and no person ever sees it.
func TestConflictWhileStalledReachesAPersonWhenConnectEndsIt(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := TransferInput{Kind: connect.KindWithdrawal, TransferID: "w-1", ReferenceID: "USER01", Asset: "BTC",
		Network: "bitcoin", Amount: "0.5", AwaitLedger: true}
	in.Timeouts.Stall = time.Hour
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusInitiated))
	e.RegisterDelayedCallback(func() { require.Equal(t, StatusStalled, e.state().Status) }, 2*time.Hour)
	e.signalAt(3*time.Hour, SignalLedger, LedgerMovement{MovementID: "m-small", Asset: "BTC", Change: "-0.4"})
	e.signalAt(4*time.Hour, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusConfirmed))
	e.signalAt(5*time.Hour, SignalLedger, LedgerMovement{MovementID: "m-ok", Asset: "BTC", Change: "-0.5"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusSettled, r.Status)
	require.Contains(t, effects(r), "ledger:ledger_mismatch:conflict")
	var ids []string
	for _, rv := range *e.reviews {
		ids = append(ids, rv.WorkflowID)
	}
	require.Contains(t, ids, ReviewWorkflowID("ledger:m-small"), "nobody resolved the transfer: the conflict needs a review")
}

// ChangeCloseKeptByOwnEvents (found by a review): an event of another session (a conflict, sent to review) or of
// the other kind (ignored) during a close's grace is not this transfer's user coming back: the close still
// abandons the transfer when its grace ends. Before, any Connect event cancelled the close and the transfer
// waited for its session to expire.
func TestCloseIsKeptByEventsNotAboutTheTransfer(t *testing.T) {
	for name, foreign := range map[string]func() EventSignal{
		"another session": func() EventSignal {
			s := ev(connect.KindDeposit, connect.StatusInitiated)
			s.Event.SessionID, s.Event.DedupeKey = "sess-other", "deposit:cx-1:initiated:other"
			return s
		},
		"the other kind": func() EventSignal { return ev(connect.KindWithdrawal, connect.StatusInitiated) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.sessionOK()
			in := deposit()
			in.Timeouts.CloseGrace = 5 * time.Minute
			e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
			e.signalAt(2*time.Minute, SignalConnectEvent, foreign())
			e.ExecuteWorkflow(TransferWorkflow, in)
			r := e.result()
			require.Equal(t, StatusAbandoned, r.Status, "effects %v", effects(r))
			require.Equal(t, "sdk::applied", effects(r)[1])
		})
	}
}

// Found by a review: a transfer that ends otherwise (here its session expires) while a close waits out its grace
// records that close as ignored, not as deferred for ever.
func TestCloseDeferredWhenTheSessionExpiresIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	in := deposit()
	in.Timeouts.SessionExpiry, in.Timeouts.CloseGrace = 2*time.Minute, 5*time.Minute
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusExpired, r.Status)
	require.Equal(t, "sdk::ignored", effects(r)[1])
}
