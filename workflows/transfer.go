package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/decimal"
	"github.com/connectflow/connectflow/internal/telemetry/signalspan"
)

// act is only used to name activity methods; the worker registers a real *activities.Activities.
var act *activities.Activities

// SessionActivityOptions bound session creation: a user is waiting on the other end of the update.
var SessionActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// TemporalActivityOptions bound the activities that talk to Temporal itself (review): short attempts,
// retried for a day, since the Temporal that runs the workflow is the one they call.
var TemporalActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// ChangeStateMachine is the change id (workflow.GetVersion) under which the transfer workflow runs on the state
// machine of machine.go. Version 1 also upserts a search attribute only when its value changes, keeps a
// deadline's timer while the deadline does not move, gives each timer a summary, supersedes older transfers of
// the same reference, and sends conflicts to review. Transfers started before it (workflow.DefaultVersion) finish
// on transfer_v0.go. docs/versioning.md walks through this patch as its worked example.
const ChangeStateMachine = "transfer-state-machine"

// ChangeEdgeRules is the change id of two rules against a user's or an attacker's edge cases (issue 14):
//   - an Auth SDK deposit or withdrawal callback (the user submitted) keeps a later close from abandoning the
//     transfer, and a close abandons only after Timeouts.CloseGrace (DefaultCloseGrace) in which no Connect event
//     arrived: the close record is deferred, then applied by the grace timer, or ignored;
//   - a Connect event whose session id is not the transfer's own session is a conflict, sent to review
//     (ReviewSessionConflict), never applied.
//
// Transfers started before it (no marker) replay and finish on the rules they started with.
const ChangeEdgeRules = "transfer-edge-rules"

// ChangeSupersedeAfterSession is the change id of superseding off the session's critical path (issue 12). Before
// it, the session activity (OpenSession) listed the reference's transfers awaiting their user in visibility and
// signalled them before the session reached the user; a slow visibility store delayed every session, and a list
// that timed out lost the supersede (recorded, never retried). Under it:
//   - OpenSession only opens the session; the update answers as soon as it is open;
//   - SignalMatching runs next as a background activity (SupersedeActivityOptions: retried, bounded), and the
//     transfer closes only after it has run; a failure is recorded, never fatal;
//   - the Supersede signal carries the superseder's session time, and a transfer whose own session is newer than
//     the superseder's ignores it (recorded): a late retry of an older transfer's supersede never ends a newer one.
//
// Transfers started before it (no marker) replay and finish as they started.
const ChangeSupersedeAfterSession = "supersede-after-session"

// ChangeEveryConflictReviewed is the change id of two rules that make every conflicting event reach a person
// (a review), found by a review of the workflow:
//   - a final transfer that waits to close (for reviews being opened, notifications, update handlers) takes
//     the signals delivered meanwhile, records each and sends a conflict to review, then waits again; before,
//     it closed with them unread, and the bridge, whose signal had reached a running workflow, did not send them
//     to review either;
//   - a conflict taken while the transfer is stalled goes to review: a stalled transfer may still be ended by
//     Connect with nobody resolving it. (A timed_out one ends only by a person's resolve, who sees the record.)
//
// It is asked lazily, only when one of those cases happens, so a transfer without them records no marker.
// Executions that met a case before it (no marker) replay as they ran.
const ChangeEveryConflictReviewed = "every-conflict-reviewed"

// ChangeCloseKeptByOwnEvents is the change id of the rule that only a Connect event about this transfer (its
// kind, its session, its Connect id) cancels a pending SDK close: before, any event did, one that was ignored or
// a conflict too, and the transfer waited for its session to expire instead of being abandoned. Asked lazily,
// only when such an event meets a pending close.
const ChangeCloseKeptByOwnEvents = "close-kept-by-own-events"

// ChangeCarryPendingWork is the change id of handing over without waiting for background work: a run that has
// taken its SignalsPerRun signals continues as new at once, and the reviews and the supersede still running go to
// the next run (TransferCarry.Pending), which starts them again. Before it, the run waited for them first; while
// it waited no deadline or close grace was served, and a stream of conflicting events (each opening a review it
// then waited for) kept it from handing over at all. Asked lazily: only when a full run has background work.
const ChangeCarryPendingWork = "carry-pending-work"

// MaxCarriedWork bounds the background work one hand-over carries (about 700 bytes each, most of it the review's
// event): a run with more still running waits until it is down to this many, so a backlog of reviews (OpenReview
// throttled under a flood) never brings the continue-as-new input near Temporal's 2 MB payload limit.
const MaxCarriedWork = 100

// Versions of ChangeStateMachine. Version 2 is the first change that adds a version to an existing change id
// instead of a change id of its own: a change id costs every new transfer a marker and a TemporalChangeVersion
// search-attribute upsert (a visibility write) for as long as its GetVersion call stays in the code.
const (
	// MachineV1 is the state machine; ChangeEdgeRules, ChangeSupersedeAfterSession and
	// ChangePlatformNotifications are each asked with their own GetVersion call.
	MachineV1 workflow.Version = 1
	// MachineV2 (issue 12, cost per transfer) is MachineV1 with those three changes on, asked no more (one
	// marker per transfer instead of four), and three cheaper rules:
	//   - a pending deadline timer that fires no later than the current deadline is kept: when it fires early the
	//     workflow starts one for the rest of the deadline, and a final transfer leaves its timer to lapse. A
	//     deposit confirmed before its session window ends (and whose stall deadline is no earlier than the
	//     session's expiry) starts one timer, not two, and cancels none;
	//   - every signal already delivered is taken before the search attributes are synced, so webhooks that
	//     arrive together cost one upsert of their final values;
	//   - OpenSession checks, once the session is open, whether any other transfer of the reference is still
	//     before its user (creating_session or awaiting_user); SignalMatching runs after it unless that check
	//     answered "none" within activities.OthersCheckWait.
	MachineV2 workflow.Version = 2
)

// SupersedeActivityOptions bound superseding older transfers: it runs after the session is with the user, so
// nobody waits on it; past ScheduleToCloseTimeout the older transfers end at their own session deadline instead.
var SupersedeActivityOptions = func() workflow.ActivityOptions {
	o := TemporalActivityOptions
	o.ScheduleToCloseTimeout = 30 * time.Minute
	return o
}()

// transfer is the running state of one transfer workflow; the rules are machine.go's.
type transfer struct {
	in         TransferInput
	state      TransferState
	clock      Clock
	seen       map[string]int // dedupe key -> index in state.Events; only looked up, never iterated
	sessionErr error
	wake       workflow.Channel // the resolve update wakes the main loop through it
	timer      *deadlineTimer
	details    string    // the current details last set, so they are set only when they change
	indexed    [6]string // the search attribute values last upserted, in sync's order
	// machine is this execution's version of ChangeStateMachine (MachineV1 or MachineV2).
	machine workflow.Version
	// edge: this execution runs under ChangeEdgeRules.
	edge bool
	// lateSupersede: this execution runs under ChangeSupersedeAfterSession.
	lateSupersede bool
	// noOthers: OpenSession found no other transfer of the reference before its user (MachineV2), so there is
	// nobody to supersede.
	noOthers bool
	// closing is the grace timer of a deferred SDK close, and closeAt its record's index; nil when none pends.
	closing    *workflow.Future
	closeAt    int
	closeUntil time.Time // when the pending close's grace ends
	// received counts the signals this run took (ChangeEdgeRules): past in.SignalsPerRun it continues as new.
	received int
	runs     int      // runs before this one
	notify   notifier // notifications to the platform (notify.go)
	// inflight is the background work this run started, in order; the unfinished ones are running.
	inflight []*backgroundWork
	inbox    inbox // the signal channels
}

// inbox is a transfer's signal channels.
type inbox struct{ events, sdk, ledger, supersede workflow.ReceiveChannel }

// waiting is how many signals are delivered and not yet taken.
func (in inbox) waiting() int {
	return in.events.Len() + in.sdk.Len() + in.ledger.Len() + in.supersede.Len()
}

// pending is how many background activities (reviews, the supersede) are still running.
func (t *transfer) pending() int {
	n := 0
	for _, b := range t.inflight {
		if !b.done {
			n++
		}
	}
	return n
}

// backgroundWork is one background activity of the run and whether it has finished.
type backgroundWork struct {
	work PendingWork
	done bool
}

// unfinished is the background work still running, in the order it started: what a hand-over carries.
func (t *transfer) unfinished() []PendingWork {
	var out []PendingWork
	for _, b := range t.inflight {
		if !b.done {
			out = append(out, b.work)
		}
	}
	return out
}

// deadlineTimer is the timer of the current deadline (armTimer says when it is kept).
type deadlineTimer struct {
	Deadline
	future workflow.Future
	cancel workflow.CancelFunc
}

// TransferWorkflow follows one Connect deposit or withdrawal from session to its final state.
func TransferWorkflow(ctx workflow.Context, in TransferInput) (TransferResult, error) {
	if err := in.Validate(); err != nil {
		return TransferResult{}, temporal.NewNonRetryableApplicationError("invalid transfer input: "+err.Error(), "InvalidTransferInput", nil)
	}
	// A patch: transfers that started before the state machine replay on the code they started on. The version
	// is recorded (a marker) the first time this runs, so every later replay takes the same branch.
	machine := workflow.GetVersion(ctx, ChangeStateMachine, workflow.DefaultVersion, MachineV2)
	if machine == workflow.DefaultVersion {
		return transferWorkflowV0(ctx, in)
	}
	edge, lateSupersede := true, true
	if machine == MachineV1 { // each later change was asked on its own then
		edge = workflow.GetVersion(ctx, ChangeEdgeRules, workflow.DefaultVersion, 1) >= 1
		lateSupersede = workflow.GetVersion(ctx, ChangeSupersedeAfterSession, workflow.DefaultVersion, 1) >= 1
	}
	t := &transfer{
		machine:       machine,
		edge:          edge,
		lateSupersede: lateSupersede,
		in:            in,
		seen:          map[string]int{},
		wake:          workflow.NewChannel(ctx),
		clock:         Clock{Timeouts: in.Timeouts},
		state: TransferState{
			WorkflowID:  workflow.GetInfo(ctx).WorkflowExecution.ID,
			Kind:        in.Kind,
			TransferID:  in.TransferID,
			ReferenceID: in.ReferenceID,
			Status:      StatusCreatingSession,
			Asset:       in.Asset,
			Network:     in.Network,
			Amount:      in.Amount,
			AwaitLedger: in.AwaitLedger,
			Events:      []EventRecord{},
		},
	}
	if err := t.registerHandlers(ctx); err != nil {
		return TransferResult{}, err
	}
	if in.Carry == nil {
		t.metricStarted(ctx) // a continued run is the same transfer
	}
	workflow.SetCurrentDetails(ctx, t.summary())
	if c := in.Carry; c != nil && t.edge {
		t.resumeNotifications(ctx, c)
	} else {
		t.startNotifications(ctx)
	}

	t.inbox = inbox{events: workflow.GetSignalChannel(ctx, SignalConnectEvent), sdk: workflow.GetSignalChannel(ctx, SignalSDKEvent),
		ledger: workflow.GetSignalChannel(ctx, SignalLedger), supersede: workflow.GetSignalChannel(ctx, SignalSupersede)}
	if c := in.Carry; c != nil && t.edge {
		t.resume(ctx, c)
	} else if err := t.createSession(ctx); err != nil {
		t.sessionErr = err
		t.state.FailureReason = err.Error()
		t.step(ctx, EventSessionRefused)
		t.sync(ctx)
		if ferr := t.finish(ctx); ferr != nil {
			return TransferResult{}, ferr
		}
		return TransferResult{}, err
	} else {
		t.step(ctx, EventSessionOpened)
		t.sync(ctx)
		if t.lateSupersede && !t.noOthers {
			t.supersedeOthers(ctx)
		}
	}

	for !t.state.Final() && !t.runFull() {
		t.armTimer(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(t.inbox.events, func(c workflow.ReceiveChannel, _ bool) { t.received++; t.receiveConnectEvent(ctx, c) })
		sel.AddReceive(t.inbox.sdk, func(c workflow.ReceiveChannel, _ bool) { t.received++; t.receiveSDKEvent(ctx, c) })
		sel.AddReceive(t.inbox.ledger, func(c workflow.ReceiveChannel, _ bool) { t.received++; t.receiveLedger(ctx, c) })
		sel.AddReceive(t.inbox.supersede, func(c workflow.ReceiveChannel, _ bool) { t.received++; t.receiveSupersede(ctx, c) })
		sel.AddReceive(t.wake, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		if c := t.closing; c != nil {
			sel.AddFuture(*c, func(f workflow.Future) { t.closeGraceOver(ctx, f) })
		}
		if tm := t.timer; tm != nil {
			sel.AddFuture(tm.future, func(f workflow.Future) { t.timerFired(ctx, tm, f) })
		}
		sel.Select(ctx)
		// MachineV2: whatever else is ready in this workflow task is taken before the sync, so signals delivered
		// together cost one upsert of their final values, not one each.
		for t.machine >= MachineV2 && sel.HasPending() && !t.state.Final() && !t.runFull() {
			t.freezeNotifications() // each status change is notified with the data of its own event
			sel.Select(ctx)
		}
		t.sync(ctx)
	}
	if !t.state.Final() {
		return t.continueAsNew(ctx)
	}
	if t.timer != nil && t.machine < MachineV2 { // MachineV2 leaves it to lapse with the workflow
		t.timer.cancel()
		t.timer = nil
	}
	return t.close(ctx)
}

// close ends a final transfer: it waits for its notifications to be acknowledged, records every signal delivered
// meanwhile, upserts what changed, lets background activities and update handlers finish, and returns the result.
func (t *transfer) close(ctx workflow.Context) (TransferResult, error) {
	// Ended otherwise (expired, superseded) during a close's grace: the close did nothing.
	t.cancelClose(EffectIgnored)
	if err := t.awaitNotifications(ctx); err != nil {
		return t.result(), err
	}
	if t.inbox.waiting() > 0 && t.mayTakeLate(ctx) {
		t.drainSignals(ctx)
	}
	t.sync(ctx)
	if err := t.finish(ctx); err != nil {
		return t.result(), err
	}
	return t.result(), nil
}

// mayTakeLate reports whether a final transfer, about to close, takes the signals waiting now: always, unless
// the run has taken SignalsPerRun signals and it runs under ChangeEveryConflictReviewed (asked only then). Past
// that budget, which only a flood reaches, the rest stay unread and finish logs how many.
func (t *transfer) mayTakeLate(ctx workflow.Context) bool {
	return !t.runFull() || workflow.GetVersion(ctx, ChangeEveryConflictReviewed, workflow.DefaultVersion, 1) == workflow.DefaultVersion
}

func (t *transfer) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (TransferState, error) { return t.state, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResolve, t.resolve,
		workflow.UpdateHandlerOptions{Validator: t.validateResolve}); err != nil {
		return err
	}
	return workflow.SetUpdateHandler(ctx, UpdateSession, func(ctx workflow.Context) (SessionInfo, error) {
		if err := workflow.Await(ctx, func() bool { return t.state.Session != nil || t.sessionErr != nil }); err != nil {
			return SessionInfo{}, err
		}
		if t.sessionErr != nil {
			return SessionInfo{}, t.sessionErr
		}
		return *t.state.Session, nil
	})
}

// validateResolve accepts an operator's decision only on a transfer that waits for a person.
func (t *transfer) validateResolve(_ workflow.Context, r Resolution) error {
	if !Resolvable(t.state.Status) {
		return temporal.NewApplicationError(fmt.Sprintf("transfer is %s: only a stalled or timed-out transfer can be resolved", t.state.Status), "NotResolvable")
	}
	return r.Validate()
}

// resolve records the operator's decision as the transfer's outcome; the main loop then closes the workflow.
func (t *transfer) resolve(ctx workflow.Context, r Resolution) (TransferResult, error) {
	r.At = workflow.Now(ctx)
	t.state.Resolution = &r
	t.record(ctx, "resolve", EventRecord{Source: "operator", Name: "resolve", Status: string(r.Outcome),
		Effect: t.step(ctx, ResolveEvent(r.Outcome))})
	t.sync(ctx)
	// Wake the main loop if it waits in its selector. A non-blocking send: when the loop is elsewhere (it already
	// took another case of the same workflow task, or continueAsNew waits for a review), it sees the final status
	// by itself, and a blocking send would keep this handler, and so the workflow, open for ever.
	t.wake.SendAsync(nil)
	return t.result(), nil
}

// createSession opens the Connect session; the workflow id is the request id, so every retry is the same request.
// Connect keeps one session per reference, so the other transfers of the reference still awaiting their user hold
// an invalid session now: before ChangeSupersedeAfterSession the same activity superseded them; under
// MachineV2 it checks, once the session is open, whether there are any, and supersedeOthers is skipped only when
// that check found none.
func (t *transfer) createSession(ctx workflow.Context) error {
	metadata := maps.Clone(t.in.Metadata) // copying a map is order-independent
	if metadata == nil {
		metadata = map[string]string{}
	}
	metadata[MetadataTransferID] = t.in.TransferID
	metadata[MetadataKind] = string(t.in.Kind)
	req := connect.SessionRequest{
		RequestID:    t.state.WorkflowID,
		Kind:         t.in.Kind,
		ReferenceID:  t.in.ReferenceID,
		Metadata:     metadata,
		AccountLabel: t.in.AccountLabel,
		Asset:        t.in.Asset,
		Network:      t.in.Network,
		Amount:       t.in.Amount,
	}
	open := activities.OpenSessionRequest{Session: req}
	if !t.lateSupersede {
		sup := t.supersedeRequest(time.Time{})
		open.Supersede = &sup
	}
	if t.machine >= MachineV2 {
		open.Others = &activities.OthersCheck{Query: QueryBeforeUser(t.in.ReferenceID), Exclude: t.state.WorkflowID}
	}
	var opened activities.OpenedSession
	opts := SessionActivityOptions
	opts.Summary = "Open Connect session: " + Summary(t.in.Kind, t.in.Amount, t.in.Asset, t.in.ReferenceID)
	actx := workflow.WithActivityOptions(ctx, opts)
	if err := workflow.ExecuteActivity(actx, act.OpenSession, open).Get(ctx, &opened); err != nil {
		return sessionFailure(err)
	}
	s := opened.Session
	t.noOthers = opened.NoOthers
	t.clock.SessionOpened = workflow.Now(ctx)
	t.clock.SessionExpires = s.ExpiresAt
	t.state.Session = &SessionInfo{SessionID: s.ID, AccountID: s.AccountID, JWT: s.JWT, ExpiresAt: s.ExpiresAt}
	t.state.SessionID = s.ID
	t.record(ctx, "session:"+s.ID, EventRecord{Source: "connect", Name: "session.created", Effect: EffectApplied})
	if opened.SupersedeError != "" {
		t.record(ctx, "supersede-others", EventRecord{Source: "transfer", Name: "supersede_others",
			Status: opened.SupersedeError, Effect: EffectIgnored})
	}
	return nil
}

// supersedeRequest signals the other transfers of the reference still awaiting their user that this one's
// session, opened at opened (zero before ChangeSupersedeAfterSession), replaced theirs.
func (t *transfer) supersedeRequest(opened time.Time) activities.SignalMatchingRequest {
	return activities.SignalMatchingRequest{
		Query:   QueryAwaitingUser(t.in.ReferenceID),
		Exclude: t.state.WorkflowID,
		Signal:  SignalSupersede,
		Arg: Supersede{WorkflowID: t.state.WorkflowID, DedupeKey: "supersede:" + t.state.WorkflowID,
			SessionOpened: opened},
	}
}

// supersedeOthers runs SignalMatching in the background once the session is open (ChangeSupersedeAfterSession):
// Connect keeps one session per reference, so the older transfers' sessions are invalid now. A failure is
// recorded (supersede_others, ignored) and the older transfers end at their own deadline.
func (t *transfer) supersedeOthers(ctx workflow.Context) {
	t.supersede(ctx, t.supersedeRequest(t.clock.SessionOpened))
}

// supersede runs SignalMatching with req in the background.
func (t *transfer) supersede(ctx workflow.Context, req activities.SignalMatchingRequest) {
	opts := SupersedeActivityOptions
	opts.Summary = "Supersede the older transfers of reference " + t.in.ReferenceID + " still awaiting their user"
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), act.SignalMatching, req)
	t.background(ctx, "supersede", PendingWork{Supersede: &req, Summary: opts.Summary}, f, func(err error) {
		t.record(ctx, "supersede-others", EventRecord{Source: "transfer", Name: "supersede_others",
			Status: activityFailure(err), Effect: EffectIgnored})
	})
}

// activityFailure is the message of why an activity failed, without Temporal's wrapping (ids, attempt numbers).
func activityFailure(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) && actErr.Unwrap() != nil {
		return actErr.Unwrap().Error()
	}
	return err.Error()
}

// sessionFailure keeps the activity's error type (e.g. ConnectForbidden) and message, without Temporal's wrapping.
func sessionFailure(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return temporal.NewNonRetryableApplicationError("Connect session not created: "+appErr.Message(), appErr.Type(), nil)
	}
	return temporal.NewNonRetryableApplicationError("Connect session not created: "+err.Error(), "ConnectSessionFailed", nil)
}

// step applies event e through the machine and does what the new status implies: it stamps initiation and
// confirmation for the deadlines. It returns the event's effect.
func (t *transfer) step(ctx workflow.Context, e Event) string {
	from := t.state.Status
	wasFinal := t.state.Final()
	to, effect := Step(from, e, t.state.Facts())
	if effect != EffectApplied || to == from {
		return effect
	}
	now := workflow.Now(ctx)
	if Progress(from) < Progress(StatusInitiated) && Progress(to) >= Progress(StatusInitiated) && t.state.InitiatedAt.IsZero() {
		t.state.InitiatedAt = now
		t.clock.Initiated = now
	}
	if e == EventConfirmed {
		t.state.ConfirmedAt = now
		t.clock.Confirmed = now
		t.metricConfirmed(ctx, now)
	}
	t.state.Status = to
	if !wasFinal && t.state.Final() {
		t.metricFinished(ctx, to) // final statuses never change again: counted once per transfer
	}
	t.changed(ctx, from, to)
	return effect
}

// armTimer keeps one timer for the current deadline. Under MachineV1 a deadline that did not move keeps its
// timer and one that moved or went away cancels it. Under MachineV2 a pending timer is kept while it fires no
// later than the deadline (timerFired then starts one for the rest), and is cancelled only when the deadline
// comes earlier than it: a later deadline costs no cancel and no new timer until the old one fires.
func (t *transfer) armTimer(ctx workflow.Context) {
	d := DeadlineOf(t.state.Status, t.state.Facts(), t.clock)
	if t.machine >= MachineV2 && t.timer != nil && (d.At.IsZero() || !t.timer.At.After(d.At)) {
		return
	}
	if t.timer != nil && (t.timer.At.Equal(d.At) && t.timer.On == d.On) {
		return
	}
	if t.timer != nil {
		t.timer.cancel()
		t.timer = nil
	}
	if d.At.IsZero() {
		return
	}
	timerCtx, cancel := workflow.WithCancel(ctx)
	wait := max(d.At.Sub(workflow.Now(ctx)), 0)
	f := workflow.NewTimerWithOptions(timerCtx, wait, workflow.TimerOptions{Summary: d.Summary})
	t.timer = &deadlineTimer{Deadline: d, future: f, cancel: cancel}
}

// timerFired takes the firing of timer tm. Under MachineV1 it is always tm's deadline: its event is applied.
// Under MachineV2 the timer may be one the deadline outgrew (armTimer kept it): the current deadline's event is
// applied only when that deadline has come, and otherwise the next armTimer starts a timer for the rest.
func (t *transfer) timerFired(ctx workflow.Context, tm *deadlineTimer, f workflow.Future) {
	t.timer = nil
	if f.Get(ctx, nil) != nil {
		return // cancelled
	}
	on := tm.On
	if t.machine >= MachineV2 {
		d := DeadlineOf(t.state.Status, t.state.Facts(), t.clock)
		if d.At.IsZero() || workflow.Now(ctx).Before(d.At) {
			return
		}
		on = d.On
	}
	t.record(ctx, "timer:"+string(on), EventRecord{Source: "timer", Name: string(on), Effect: t.step(ctx, on)})
}

func (t *transfer) receiveConnectEvent(ctx workflow.Context, c workflow.ReceiveChannel) {
	var s EventSignal
	c.Receive(ctx, &s)
	ctx = signalspan.Received(ctx, SignalConnectEvent) // what this event causes is traced under its signal
	ev := s.Event
	key := ev.DedupeKey
	if key == "" {
		key = string(ev.Kind) + ":" + ev.TransferID + ":" + string(ev.Status)
	}
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "connect", Name: ev.Name, Status: string(ev.Status), ReceivedAt: s.ReceivedAt}
	e := EventOf(ev.Status)
	reason := ReviewTransferConflict
	switch {
	case ev.Kind != "" && ev.Kind != t.in.Kind, e == "":
		rec.Effect = EffectIgnored
	case t.edge && ev.SessionID != "" && t.state.SessionID != "" && ev.SessionID != t.state.SessionID:
		// It names this transfer (metadata) but another session: not ours to apply, whoever signed it.
		rec.Effect, reason = EffectConflict, ReviewSessionConflict
	case ev.TransferID != "" && t.state.ConnectTransferID != "" && ev.TransferID != t.state.ConnectTransferID:
		rec.Effect = EffectConflict
	default:
		failedBefore := t.state.Status
		rec.Effect = t.step(ctx, e)
		if rec.Effect == EffectApplied || rec.Effect == EffectLate {
			t.absorb(ev)
		}
		if rec.Effect == EffectApplied && t.state.Status == StatusFailed && failedBefore != StatusFailed {
			t.state.FailureReason = ev.FailureReason
		}
	}
	if t.edge && t.closing != nil {
		// A Connect event about this transfer arrived: the user did not walk away. Under
		// ChangeCloseKeptByOwnEvents an ignored or conflicting one (another kind, session or Connect id) is not
		// about this transfer and leaves the close pending.
		own := rec.Effect != EffectConflict && (ev.Kind == "" || ev.Kind == t.in.Kind)
		if own || workflow.GetVersion(ctx, ChangeCloseKeptByOwnEvents, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			t.cancelClose(EffectIgnored)
		}
	}
	t.record(ctx, key, rec)
	if rec.Effect == EffectConflict && t.reviewsConflicts(ctx) {
		t.toReview(ctx, key, SignalReviewEvent, EventSignal{Event: ev, ReceivedAt: rec.ReceivedAt},
			ReviewInput{Reason: reason, Kind: ev.Kind, ConnectTransferID: ev.TransferID, SessionID: ev.SessionID})
	}
}

// absorb fills what the transfer did not know yet from an event; it never overwrites a known value.
func (t *transfer) absorb(ev connect.Event) {
	fill(&t.state.ConnectTransferID, ev.TransferID)
	fill(&t.state.Asset, ev.Asset)
	fill(&t.state.Network, ev.Network)
	fill(&t.state.Amount, ev.Amount)
	fill(&t.state.TxHash, ev.TxHash)
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func (t *transfer) receiveSDKEvent(ctx workflow.Context, c workflow.ReceiveChannel) {
	var e SDKEvent
	c.Receive(ctx, &e)
	ctx = signalspan.Received(ctx, SignalSDKEvent)
	key := e.DedupeKey
	if key == "" {
		key = "sdk:" + e.Type + ":" + e.Detail
	}
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "sdk", Name: e.Type, Status: e.Detail, Effect: EffectIgnored}
	if t.edge {
		t.receiveSDKEdge(ctx, key, e, rec)
		return
	}
	if e.Type == SDKTypeClose {
		if rec.Effect = t.step(ctx, EventUserClosed); rec.Effect == EffectConflict {
			rec.Effect = EffectIgnored // closing the SDK moves no money
		}
	}
	t.record(ctx, key, rec)
}

// receiveSDKEdge is receiveSDKEvent under ChangeEdgeRules: a submitted callback marks the transfer submitted and
// cancels a pending close; a close before any submit is deferred for the grace period.
func (t *transfer) receiveSDKEdge(ctx workflow.Context, key string, e SDKEvent, rec EventRecord) {
	switch e.Type {
	case SDKTypeDeposit, SDKTypeWithdrawal:
		// Only the callback of this transfer's kind says its user submitted it.
		if e.Type == string(t.in.Kind) && (t.state.Status == StatusAwaitingUser || t.state.Status == StatusCreatingSession) {
			t.state.UserSubmitted = true
			rec.Effect = EffectApplied
			t.cancelClose(EffectIgnored)
		}
		t.record(ctx, key, rec)
	case SDKTypeClose:
		_, effect := Step(t.state.Status, EventUserClosed, t.state.Facts())
		if effect != EffectApplied || t.state.UserSubmitted || t.closing != nil {
			t.record(ctx, key, rec) // nothing to abandon, the user submitted, or a close already pends
			return
		}
		rec.Effect = EffectDeferred
		t.record(ctx, key, rec)
		t.closeAt = len(t.state.Events) - 1
		grace := orDefault(t.in.Timeouts.CloseGrace, DefaultCloseGrace)
		t.closeUntil = workflow.Now(ctx).Add(grace)
		f := workflow.NewTimerWithOptions(ctx, grace, workflow.TimerOptions{
			Summary: "close_grace: the user closed the widget; abandoned unless a Connect event arrives"})
		t.closing = &f
	default:
		t.record(ctx, key, rec)
	}
}

// runFull reports whether this run took its share of signals (ChangeEdgeRules): it continues as new then.
func (t *transfer) runFull() bool {
	return t.edge && t.received >= cmp.Or(t.in.SignalsPerRun, DefaultSignalsPerRun)
}

// continueAsNew hands the transfer to a new run with a fresh history and signal count, so a flood of signals
// never brings one execution near Temporal's limit. It first lets reviews and update handlers finish and takes
// every signal already delivered, with no yield between the last take and the hand-over, so none is lost. A
// signal that makes the transfer final on the way finishes it here instead.
func (t *transfer) continueAsNew(ctx workflow.Context) (TransferResult, error) {
	asked, carry := false, false // ChangeCarryPendingWork: unfinished background work goes to the next run
	for {
		if t.pending() > 0 && !asked {
			asked, carry = true, workflow.GetVersion(ctx, ChangeCarryPendingWork, workflow.DefaultVersion, 1) >= 1
		}
		// Not finish: queued notifications are handed to the next run (TransferCarry.Notify), not awaited here. A
		// backlog over MaxCarriedWork is waited down first, so the hand-over's input stays small.
		if err := workflow.Await(ctx, func() bool {
			n := t.pending()
			return (n == 0 || carry && n <= MaxCarriedWork) && workflow.AllHandlersFinished(ctx)
		}); err != nil {
			return t.result(), err
		}
		if t.inbox.waiting() == 0 {
			break
		}
		t.drainSignals(ctx)
	}
	t.sync(ctx)
	if t.state.Final() {
		return t.close(ctx)
	}
	next := t.in
	next.Carry = &TransferCarry{State: t.state, Clock: t.clock, Indexed: t.indexed, Runs: t.runs + 1, Notify: t.carryNotifications(),
		Pending: t.unfinished()}
	if t.closing != nil {
		next.Carry.CloseUntil, next.Carry.CloseIndex = t.closeUntil, t.closeAt
	}
	return TransferResult{}, workflow.NewContinueAsNewError(ctx, TransferWorkflow, next)
}

// resume restores a transfer continued from an earlier run: its state, clock, dedupe keys, the search attribute
// values already upserted, and a deferred close's remaining grace.
func (t *transfer) resume(ctx workflow.Context, c *TransferCarry) {
	t.state, t.clock, t.indexed, t.runs = c.State, c.Clock, c.Indexed, c.Runs
	if t.state.Events == nil {
		t.state.Events = []EventRecord{}
	}
	for i, e := range t.state.Events {
		t.seen[e.DedupeKey] = i
	}
	for _, w := range c.Pending { // handed over unfinished: started again (both are idempotent)
		switch {
		case w.Review != nil:
			t.openReview(ctx, w)
		case w.Supersede != nil:
			t.supersede(ctx, *w.Supersede)
		}
	}
	if !c.CloseUntil.IsZero() {
		t.closeAt, t.closeUntil = c.CloseIndex, c.CloseUntil
		f := workflow.NewTimerWithOptions(ctx, max(c.CloseUntil.Sub(workflow.Now(ctx)), 0), workflow.TimerOptions{
			Summary: "close_grace: the user closed the widget; abandoned unless a Connect event arrives"})
		t.closing = &f
	}
	t.sync(ctx)
}

// closeGraceOver runs when a deferred close's grace timer fires: the close abandons the transfer now, unless it
// was cancelled meanwhile.
func (t *transfer) closeGraceOver(ctx workflow.Context, f workflow.Future) {
	if t.closing == nil || *t.closing != f {
		// Cancelled, or the timer of a close that was cancelled since: a later close has its own grace. (Under
		// MachineV2 one selector serves every signal of a workflow task, so it can still hold an old timer.)
		return
	}
	t.closing = nil
	if f.Get(ctx, nil) != nil {
		return
	}
	t.state.Events[t.closeAt].Effect = t.step(ctx, EventUserClosed)
	if t.state.Events[t.closeAt].Effect == EffectConflict {
		t.state.Events[t.closeAt].Effect = EffectIgnored // closing the SDK moves no money
	}
}

// cancelClose settles a pending close's record with effect; its timer is left to fire unheeded.
func (t *transfer) cancelClose(effect string) {
	if t.closing == nil {
		return
	}
	t.closing = nil
	t.state.Events[t.closeAt].Effect = effect
}

func (t *transfer) receiveSupersede(ctx workflow.Context, c workflow.ReceiveChannel) {
	var s Supersede
	c.Receive(ctx, &s)
	ctx = signalspan.Received(ctx, SignalSupersede)
	key := s.DedupeKey
	if key == "" {
		key = "supersede:" + s.WorkflowID
	}
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "transfer", Name: "superseded", Status: s.WorkflowID}
	if t.lateSupersede && !s.SessionOpened.IsZero() && s.SessionOpened.Before(t.clock.SessionOpened) {
		rec.Effect = EffectIgnored // the superseder's session is older than this one's: this one is Connect's current
		t.record(ctx, key, rec)
		return
	}
	if rec.Effect = t.step(ctx, EventSuperseded); rec.Effect == EffectApplied {
		t.state.SupersededBy = s.WorkflowID
		t.state.FailureReason = "session replaced by a newer transfer for the same reference: " + s.WorkflowID
	} else {
		rec.Effect = EffectIgnored // the user went on with this session, or it ended already
	}
	t.record(ctx, key, rec)
}

// receiveLedger takes a Zero Hash movement: one whose asset or amount is not the transfer's (when the transfer
// names them), or a second movement, is a conflict for review.
func (t *transfer) receiveLedger(ctx workflow.Context, c workflow.ReceiveChannel) {
	var m LedgerMovement
	c.Receive(ctx, &m)
	ctx = signalspan.Received(ctx, SignalLedger)
	key := "ledger:" + m.MovementID
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "ledger", Name: m.MovementType}
	switch {
	case !LedgerMatches(t.in, m):
		rec.Effect = EffectConflict
		rec.Status = string(EventLedgerMismatch)
	case t.state.Ledger != nil:
		rec.Effect = EffectConflict // a second movement for one transfer
	default:
		rec.Effect = t.step(ctx, EventLedger)
		if rec.Effect == EffectApplied || rec.Effect == EffectLate {
			t.state.Ledger = &m
		}
	}
	t.record(ctx, key, rec)
	if rec.Effect == EffectConflict && t.reviewsConflicts(ctx) {
		t.toReview(ctx, key, SignalLedger, m, ReviewInput{Reason: ReviewLedgerMismatch, Kind: t.in.Kind,
			ConnectTransferID: t.state.ConnectTransferID, SessionID: t.state.SessionID})
	}
}

// reviewsConflicts reports whether a conflict taken now goes to review. In a status a person resolves it stays in
// the record for them, but a stalled transfer can still be ended by Connect with nobody resolving it, so under
// ChangeEveryConflictReviewed only timed_out keeps its conflicts for the resolver.
func (t *transfer) reviewsConflicts(ctx workflow.Context) bool {
	switch t.state.Status {
	case StatusTimedOut:
		return false
	case StatusStalled:
		return workflow.GetVersion(ctx, ChangeEveryConflictReviewed, workflow.DefaultVersion, 1) >= 1
	}
	return !Resolvable(t.state.Status)
}

// LedgerMatches reports whether movement m can settle a transfer started with in: its asset is the transfer's
// (case-insensitive) and the size of its change is the transfer's amount (numerically: "0.50" matches "-0.5"),
// each checked only when the transfer names it.
func LedgerMatches(in TransferInput, m LedgerMovement) bool {
	if in.Asset != "" && !strings.EqualFold(strings.TrimSpace(in.Asset), strings.TrimSpace(m.Asset)) {
		return false
	}
	if in.Amount != "" {
		want, err := decimal.Canonical(in.Amount)
		if err != nil {
			return false
		}
		got, err := decimal.Canonical(m.Change)
		if err != nil || strings.TrimPrefix(got, "-") != strings.TrimPrefix(want, "-") {
			return false
		}
	}
	return true
}

// duplicate counts a redelivery against the first record of its key.
func (t *transfer) duplicate(key string) bool {
	i, seen := t.seen[key]
	if seen {
		t.state.Events[i].Duplicates++
	}
	return seen
}

func (t *transfer) record(ctx workflow.Context, key string, rec EventRecord) {
	rec.DedupeKey = key
	if rec.ReceivedAt.IsZero() {
		rec.ReceivedAt = workflow.Now(ctx)
	}
	t.seen[key] = len(t.state.Events)
	t.state.Events = append(t.state.Events, rec)
}

// sync makes the search attributes and the UI's current details match the state. It upserts only the attributes
// whose value changed since the workflow last upserted them, in one command, so a transfer costs one upsert per
// change of a searchable value, not one per event. The first sync comes after the session activity: until then the
// attributes the starter set at start (kind, reference, creating_session) stand. What was upserted is tracked in
// the workflow's own state, never read back from the workflow's info, so a replay issues the same commands.
func (t *transfer) sync(ctx workflow.Context) {
	t.queueNotifications()
	want := [...]struct {
		key   temporal.SearchAttributeKeyKeyword
		value string
	}{
		{SearchTransferKind, string(t.in.Kind)},
		{SearchConnectReferenceID, t.in.ReferenceID},
		{SearchTransferStatus, string(t.state.Status)},
		{SearchConnectSessionID, t.state.SessionID},
		{SearchConnectTransferID, t.state.ConnectTransferID},
		{SearchPlatformNotified, t.platformNotified()},
	}
	var updates []temporal.SearchAttributeUpdate
	for i, w := range want {
		if w.value != "" && t.indexed[i] != w.value {
			t.indexed[i] = w.value
			updates = append(updates, w.key.ValueSet(w.value))
		}
	}
	if len(updates) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			// A failure here is a bug in our attribute names, not worth the transfer.
			workflow.GetLogger(ctx).Error("search attributes not updated", "error", err)
		}
	}
	if d := t.summary(); d != t.details {
		t.details = d
		workflow.SetCurrentDetails(ctx, d)
	}
}

// summary is the one line an operator reads in the UI, e.g. "Deposit 0.013 BTC for USER01 — broadcasted, tx 0xf3b9…".
func (t *transfer) summary() string {
	s := Summary(t.in.Kind, t.state.Amount, t.state.Asset, t.in.ReferenceID) + " — " + string(t.state.Status)
	if h := t.state.TxHash; h != "" {
		if len(h) > 10 {
			h = h[:6] + "…"
		}
		s += ", tx " + h
	}
	if t.state.FailureReason != "" {
		s += ": " + t.state.FailureReason
	}
	if t.platformNotified() == PlatformNotifiedPending {
		s += " (platform not notified yet)"
	}
	return s
}

// Summary names a transfer for people: "Deposit 0.013 BTC for USER01".
func Summary(kind connect.Kind, amount, asset, referenceID string) string {
	noun := "Deposit"
	if kind == connect.KindWithdrawal {
		noun = "Withdrawal"
	}
	if amount != "" || asset != "" {
		noun += " " + amount + " " + asset
	}
	return fmt.Sprintf("%s for %s", noun, referenceID)
}

// toReview hands an event the transfer cannot take (a conflict, when the transfer itself does not wait for a
// person) to its review workflow (one per event, by its dedupe key),
// starting the review if needed: the one way a transfer sends something to a person. It runs in the background.
func (t *transfer) toReview(ctx workflow.Context, key, signal string, arg any, in ReviewInput) {
	in.TransferWorkflowID = t.state.WorkflowID
	req := activities.ReviewRequest{
		WorkflowID:   ReviewWorkflowID(key),
		WorkflowType: "ReviewWorkflow",
		Signal:       signal,
		SignalArg:    arg,
		Input:        in,
		Summary:      "Needs review: " + in.Reason,
	}
	t.openReview(ctx, PendingWork{Review: &req, Summary: "Send to review (" + in.Reason + "): " + req.WorkflowID})
}

// openReview runs OpenReview with w.Review in the background.
func (t *transfer) openReview(ctx workflow.Context, w PendingWork) {
	opts := TemporalActivityOptions
	opts.Summary = w.Summary
	t.background(ctx, "review", w, workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), act.OpenReview, *w.Review), nil)
}

// background waits for f (the activity doing work) in its own coroutine; finish waits for every one before the
// workflow closes, and a hand-over carries the unfinished ones (ChangeCarryPendingWork). A failure is logged, then
// handed to failed when it is not nil.
func (t *transfer) background(ctx workflow.Context, what string, work PendingWork, f workflow.Future, failed func(error)) {
	item := &backgroundWork{work: work}
	t.inflight = append(t.inflight, item)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { item.done = true }()
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error(what+" failed", "error", err)
			if failed != nil {
				failed(err)
			}
		}
	})
}

// drainSignals records whatever was signalled before the workflow closes, so nothing Temporal accepted is lost.
func (t *transfer) drainSignals(ctx workflow.Context) {
	for ; ; t.freezeNotifications() { // each status change is notified with the data of its own event
		in := t.inbox
		if in.waiting() > 0 {
			t.received++ // counted against the run's budget (finish)
		}
		switch {
		case in.events.Len() > 0:
			t.receiveConnectEvent(ctx, in.events)
		case in.sdk.Len() > 0:
			t.receiveSDKEvent(ctx, in.sdk)
		case in.ledger.Len() > 0:
			t.receiveLedger(ctx, in.ledger)
		case in.supersede.Len() > 0:
			t.receiveSupersede(ctx, in.supersede)
		default:
			return
		}
	}
}

// finish waits for background activities, in-flight update handlers (the session update) and notifications, so
// callers get their answer and every review is open before the workflow closes. Under ChangeEveryConflictReviewed
// the signals delivered while it waits are taken (recorded; a conflict goes to review), and it waits again, as
// long as the run has taken fewer than in.SignalsPerRun signals: a final transfer cannot hand over to a new run
// without first waiting for the reviews its last signals opened, so past that budget (only a flood reaches it) it
// closes with the rest unread, and says so in its log.
func (t *transfer) finish(ctx workflow.Context) error {
	for {
		if err := workflow.Await(ctx, func() bool {
			return t.pending() == 0 && workflow.AllHandlersFinished(ctx) && t.notificationsIdle()
		}); err != nil {
			return err
		}
		waiting := t.inbox.waiting()
		if waiting == 0 || workflow.GetVersion(ctx, ChangeEveryConflictReviewed, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return nil
		}
		if t.runFull() {
			workflow.GetLogger(ctx).Warn("transfer closes with signals unread: its run took the signals it may (SignalsPerRun)",
				"unread", waiting, "status", string(t.state.Status))
			return nil
		}
		t.drainSignals(ctx)
		t.sync(ctx)
	}
}

// result is the state without the session, so without its JWT.
func (t *transfer) result() TransferResult {
	r := t.state
	r.Session = nil
	r.Events = append([]EventRecord(nil), t.state.Events...)
	return r
}
