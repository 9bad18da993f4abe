package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

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
	sent := e.recordNotifications(time.Hour)
	in := deposit()
	in.SignalsPerRun = 1 // the first webhook fills the run: the other two are drained by continueAsNew
	e.signalAt(time.Millisecond, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated),
		ev(connect.KindDeposit, connect.StatusBroadcasted), ev(connect.KindDeposit, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.Equal(t, StatusFailed, e.result().Status)
	got := statusesAndReasons(sent())
	require.Equal(t, []string{"awaiting_user:", "initiated:", "broadcasted:", "failed:insufficient funds"}, got)
}

// Found by a review: close() drains the signals delivered so far, then finish waits for background activities (a review
// being opened). A Connect event signalled during that wait is never received: the workflow completes with it
// unread, so a conflict (failed after confirmed) is neither recorded nor sent to review, and the bridge, whose
// signal to the still-running workflow succeeded, does not send it either.
func TestSignalDuringFinishIsRecordedAndReviewed(t *testing.T) {
	e := newEnvReviewsAfter(t, 10*time.Minute)
	e.openSession(true, 0)
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	// A movement of another asset (a conflict: review opening until 11m), then confirmed (final: close waits for
	// the review), then, while it waits, Connect says failed: a contradiction a person must see.
	e.signalAt(time.Minute, SignalLedger, LedgerMovement{MovementID: "m-eth", Asset: "ETH", Change: "0.013"})
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.signalAt(5*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Contains(t, effects(r), "connect:failed:conflict", "the failed webhook is recorded")
	require.Contains(t, e.reviewIDs(), ReviewWorkflowID("deposit:cx-1:failed"), "the contradiction goes to review")
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
	require.Contains(t, e.reviewIDs(), ReviewWorkflowID("ledger:m-small"), "nobody resolved the transfer: the conflict needs a review")
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

// Found by a review of ChangeEveryConflictReviewed: finish's loop took signals with no per-run budget. A
// final transfer whose closing waits for a review keeps taking conflicting events (each opening a review it
// then waits for) for as long as they keep coming: SignalsPerRun, which bounds every other part of a run, is not
// applied, so one execution's history grows without bound under a stream of distinct conflicting events.
func TestFinishTakesLateSignalsWithinTheRunsBudget(t *testing.T) {
	e := newEnvReviewsAfter(t, 10*time.Minute)
	e.openSession(true, 0)
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	in.SignalsPerRun = 10
	e.signalAt(time.Minute, SignalLedger, LedgerMovement{MovementID: "m-eth", Asset: "ETH", Change: "0.013"})
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.signalContradictions(100)
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result() // completed, not continued as new
	conflicts := contradictionsTaken(r)
	t.Logf("final %s; one run took %d conflicting signals after it was final and opened %d reviews; closed at %s",
		r.Status, conflicts, len(*e.reviews), e.Now().Sub(r.Events[0].ReceivedAt))
	require.LessOrEqual(t, conflicts, in.SignalsPerRun,
		"a run takes at most SignalsPerRun signals (continueAsNew's contract); finish took every one of the flood")
}

// Found by a review: the main loop's exit recorded a close pending when the transfer ends otherwise as ignored, but only
// on the main loop's way out. A transfer that becomes final in continueAsNew's drain (here superseded, delivered
// in the same workflow task as the close that filled the run) closes through close() directly and keeps the
// close's record "deferred" for ever.
func TestCloseDeferredWhenFinalInContinueAsNewDrainIsIgnored(t *testing.T) {
	e := newEnvReviewsAfter(t, 10*time.Minute)
	// The hand-over waits for its reviews, as before ChangeCarryPendingWork (and as a replay of then does).
	e.OnGetVersion(ChangeCarryPendingWork, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.openSession(true, 0)
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	in.SignalsPerRun = 2
	in.Timeouts.CloseGrace = time.Hour
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"}) // deferred
	// A conflicting movement fills the run; its review (until 12m) holds continueAsNew, which then drains the
	// supersede that arrived meanwhile: the transfer is final and closes without the main loop's cancelClose.
	e.signalAt(2*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-eth", Asset: "ETH", Change: "0.013"})
	e.signalAt(3*time.Minute, SignalSupersede, Supersede{WorkflowID: "deposit-newer", DedupeKey: "supersede:deposit-newer"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusSuperseded, r.Status)
	require.Equal(t, "sdk::ignored", effects(r)[1], "effects %v", effects(r))
}

// Found by a review (a test gap): nothing pins ChangeCloseKeptByOwnEvents' DefaultVersion branch (the _v4 history replays
// without the gate, docs/versioning.md). This passes today and fails if the gate is removed.
func TestCloseKeptByOwnEventsDefaultVersionKeepsOldRule(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.OnGetVersion(ChangeCloseKeptByOwnEvents, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	in := deposit()
	in.Timeouts.CloseGrace = 5 * time.Minute
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeClose, DedupeKey: "sdk:close:1"})
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindWithdrawal, connect.StatusInitiated))
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	require.Equal(t, StatusExpired, r.Status, "effects %v", effects(r))
	require.Equal(t, "sdk::ignored", effects(r)[1])
}

// Found by a review: queueNotifications in drainSignals (no patch) moved a NotifyPlatform command to an
// earlier workflow task when continueAsNew drains a status change together with a conflict: the conflict's review
// makes continueAsNew's Await yield between the drain and the sync, and the deliver coroutine, which used to see an
// empty outbox until that sync (or carryNotifications), now schedules the notification in the drain's task. A
// history recorded before the change has the NotifyPlatform command one task later, after the review's completion
// and the upsert: replaying it on this code fails (commands matched in order). Here the notification of initiated
// is scheduled at 11m (the drain) instead of 21m (the hand-over, when the second review completed).
func TestDrainBeforeContinueAsNewDoesNotMoveNotifyCommand(t *testing.T) {
	e := newEnvReviewsAfter(t, 10*time.Minute)
	// A history recorded before ChangeCarryPendingWork: the hand-over waits for its reviews.
	e.OnGetVersion(ChangeCarryPendingWork, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.OnActivity(act.PlatformNotifications, mock.Anything).Return(activities.PlatformConfig{Enabled: true, RetryFor: time.Hour}, nil)
	e.openSession(true, 0)
	start := e.Now()
	var mu sync.Mutex
	scheduled := map[string]time.Duration{}
	e.OnActivity(act.NotifyPlatform, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		scheduled[n.Data.Status] = e.Now().Sub(start).Round(time.Minute)
		return nil
	})
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	in.SignalsPerRun = 2
	e.signalAt(time.Minute, SignalLedger, LedgerMovement{MovementID: "m-1", Asset: "ETH", Change: "0.013"})  // review until 11m
	e.signalAt(2*time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeEvent, Detail: "x", DedupeKey: "sdk:x"}) // fills the run
	e.signalAt(3*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(4*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-2", Asset: "ETH", Change: "0.013"}) // review 11m..21m
	e.ExecuteWorkflow(TransferWorkflow, in)
	next := e.continuedAs()
	mu.Lock()
	t.Logf("NotifyPlatform ran at %v", scheduled)
	at, scheduledHere := scheduled["initiated"]
	mu.Unlock()
	// The hand-over's own task (21m) may schedule it before the run ends, as before the change; the drain's (11m) not.
	if scheduledHere {
		require.Equal(t, 21*time.Minute, at, "the notification of initiated was scheduled in the drain's workflow task")
	}
	require.NotNil(t, next.Carry.Notify)
	var carried []string
	for _, n := range next.Carry.Notify.Outbox {
		carried = append(carried, n.Data.Status)
	}
	require.Equal(t, []string{"initiated"}, carried, "the next run delivers it")
}

// Found by a review: the budget finish applies (SignalsPerRun) was bypassed by awaitNotifications, which
// close() runs before finish and which drained every signal, unbounded, for as long as a notification is in
// flight (up to PLATFORM_WEBHOOK_RETRY_FOR). A final transfer whose platform is down takes a whole flood of
// distinct conflicting events in one run, each opening a review: the growth TestFinishTakesLateSignalsWithinTheRunsBudget
// guards against in finish.
func TestAwaitNotificationsTakesLateSignalsWithinTheRunsBudget(t *testing.T) {
	e := newEnv(t)
	e.OnActivity(act.PlatformNotifications, mock.Anything).Return(activities.PlatformConfig{Enabled: true, RetryFor: 20 * time.Hour}, nil)
	e.OnActivity(act.NotifyPlatform, mock.Anything, mock.Anything).Return(temporal.NewApplicationErrorWithOptions("platform down: 503, Retry-After 1h", "PlatformUnavailable",
		temporal.ApplicationErrorOptions{NextRetryDelay: time.Hour}))
	e.openSession(true, 0)
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	in.SignalsPerRun = 10
	e.signalAt(2*time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.signalContradictions(100)
	e.ExecuteWorkflow(TransferWorkflow, in)
	r := e.result()
	conflicts := contradictionsTaken(r)
	t.Logf("final %s; one run took %d conflicting signals after it was final", r.Status, conflicts)
	require.LessOrEqual(t, conflicts, in.SignalsPerRun,
		"a closing transfer takes at most SignalsPerRun signals (docs/versioning.md); awaitNotifications took the flood")
}

// signalContradictions sends n distinct "failed" events (contradicting a confirmed deposit, so conflicts), one
// every 5 minutes from the third minute.
func (e env) signalContradictions(n int) {
	for i := range n {
		s := ev(connect.KindDeposit, connect.StatusFailed)
		s.Event.DedupeKey = fmt.Sprintf("deposit:cx-1:failed:%d", i)
		e.signalAt(time.Duration(3+5*i)*time.Minute, SignalConnectEvent, s)
	}
}

// contradictionsTaken counts the signalContradictions events r recorded.
func contradictionsTaken(r TransferResult) int {
	n := 0
	for _, x := range effects(r) {
		if x == "connect:failed:conflict" {
			n++
		}
	}
	return n
}

// reviewIDs are the review workflows the transfer opened, in order.
func (e env) reviewIDs() []string {
	var ids []string
	for _, rv := range *e.reviews {
		ids = append(ids, rv.WorkflowID)
	}
	return ids
}

// ChangeCarryPendingWork (found by reviews): a run that has taken its SignalsPerRun signals hands over at once; a
// review still being opened goes to the next run, which opens it again. Before, the run waited for the review
// (here 10 minutes), serving no deadline meanwhile, and a stream of conflicts could keep it from handing over.
func TestFullRunHandsOverWithoutWaitingForReviews(t *testing.T) {
	e := newEnvReviewsAfter(t, 10*time.Minute)
	e.openSession(true, 0)
	start := e.Now()
	in := deposit()
	in.Asset, in.Amount = "BTC", "0.013"
	in.SignalsPerRun = 2
	e.signalAt(time.Minute, SignalLedger, LedgerMovement{MovementID: "m-eth", Asset: "ETH", Change: "0.013"}) // a conflict: review 1m..11m
	e.signalAt(2*time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeEvent, Detail: "x", DedupeKey: "sdk:x"})  // fills the run
	e.ExecuteWorkflow(TransferWorkflow, in)
	next := e.continuedAs()
	require.Less(t, e.Now().Sub(start), 3*time.Minute, "the run waited for the review before handing over")
	require.Len(t, next.Carry.Pending, 1)
	carried := next.Carry.Pending[0]
	require.NotNil(t, carried.Review)
	require.Equal(t, ReviewWorkflowID("ledger:m-eth"), carried.Review.WorkflowID)

	// The next run opens it again (the review workflow dedupes the event), and goes on with the transfer.
	e2 := newEnv(t)
	e2.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e2.ExecuteWorkflow(TransferWorkflow, next)
	r := e2.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, []string{ReviewWorkflowID("ledger:m-eth")}, e2.reviewIDs())
	// The same request, to the byte: its signal argument and input pass through the carry as the JSON they were.
	orig, err := json.Marshal(carried.Review)
	require.NoError(t, err)
	again, err := json.Marshal((*e2.reviews)[0])
	require.NoError(t, err)
	require.JSONEq(t, string(orig), string(again))
	var arg LedgerMovement
	require.NoError(t, json.Unmarshal((*e2.reviews)[0].SignalArg.(json.RawMessage), &arg))
	require.Equal(t, "m-eth", arg.MovementID)
	var rin ReviewInput
	require.NoError(t, json.Unmarshal((*e2.reviews)[0].Input.(json.RawMessage), &rin))
	require.Equal(t, ReviewLedgerMismatch, rin.Reason)
	require.NotEmpty(t, rin.TransferWorkflowID)
}

// A supersede still running at the hand-over is carried and run again by the next run.
func TestCarriedSupersedeRunsAgain(t *testing.T) {
	e := newEnv(t)
	in := deposit()
	opened := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	req := activities.SignalMatchingRequest{Query: QueryAwaitingUser(in.ReferenceID), Exclude: "deposit-t1", Signal: SignalSupersede,
		Arg: Supersede{WorkflowID: "deposit-t1", DedupeKey: "supersede:deposit-t1", SessionOpened: opened}}
	in.Carry = &TransferCarry{State: TransferState{WorkflowID: "deposit-t1", Kind: in.Kind, TransferID: in.TransferID,
		ReferenceID: in.ReferenceID, Status: StatusAwaitingUser, SessionID: "sess-1", Events: []EventRecord{}},
		Runs: 1, Pending: []PendingWork{{Supersede: &req, Summary: "Supersede the older transfers"}}}
	var got []activities.SignalMatchingRequest
	var mu sync.Mutex
	*e.matching = func(_ context.Context, r activities.SignalMatchingRequest) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r)
		return nil, nil
	}
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.Equal(t, StatusConfirmed, e.result().Status)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	require.Equal(t, req.Query, got[0].Query)
	require.Equal(t, "deposit-t1", got[0].Exclude)
	var s Supersede // the same argument: its dedupe key and session time
	require.NoError(t, json.Unmarshal(got[0].Arg.(json.RawMessage), &s))
	require.Equal(t, "supersede:deposit-t1", s.DedupeKey)
	require.True(t, opened.Equal(s.SessionOpened))
}

// A run whose backlog of reviews exceeds MaxCarriedWork waits it down before it hands over, so the carry stays
// small (a flood with OpenReview throttled would otherwise carry a backlog toward Temporal's payload limit).
func TestHandOverCarriesAtMostMaxCarriedWork(t *testing.T) {
	e := newEnvReviewsAfter(t, 10*time.Minute)
	e.openSession(true, 0)
	start := e.Now()
	in := deposit()
	in.SignalsPerRun = MaxCarriedWork + 1
	var flood []any
	for i := range MaxCarriedWork + 1 { // conflicts (another session), each opening a review; the last fills the run
		s := ev(connect.KindDeposit, connect.StatusInitiated)
		s.Event.SessionID, s.Event.DedupeKey = "sess-other", fmt.Sprintf("deposit:cx-1:other-%d", i)
		flood = append(flood, s)
	}
	e.signalAt(time.Minute, SignalConnectEvent, flood...)
	e.ExecuteWorkflow(TransferWorkflow, in)
	next := e.continuedAs()
	require.LessOrEqual(t, len(next.Carry.Pending), MaxCarriedWork)
	require.GreaterOrEqual(t, e.Now().Sub(start), 11*time.Minute, "handed over %d pending reviews without waiting", len(next.Carry.Pending))
}
