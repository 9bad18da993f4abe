package workflows

// This file is the transfer workflow as it ran before the state machine (machine.go): version
// workflow.DefaultVersion of the change ChangeStateMachine. It is frozen: transfers started before that change
// replay and finish on this code, so it must not change in any way that alters the commands it issues (see
// docs/versioning.md). Delete it, and the DefaultVersion branch in TransferWorkflow, once no open transfer runs it:
//
//	WorkflowType = 'TransferWorkflow' AND ExecutionStatus = 'Running' AND TemporalChangeVersion IS NULL
//
// lists none.

import (
	"fmt"
	"maps"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/connect"
)

// progress ranks the on-chain milestones so a late event never moves a transfer backwards.
const (
	progressNoneV0 = iota
	progressInitiatedV0
	progressBroadcastedV0
	progressFinalV0
)

func eventProgressV0(s connect.Status) int {
	switch s {
	case connect.StatusInitiated:
		return progressInitiatedV0
	case connect.StatusBroadcasted:
		return progressBroadcastedV0
	case connect.StatusConfirmed, connect.StatusFailed:
		return progressFinalV0
	}
	return progressNoneV0
}

// transfer is the running state machine of one transfer workflow.
type transferV0 struct {
	in          TransferInput
	state       TransferState
	progress    int
	seen        map[string]int // dedupe key -> index in state.Events; only looked up, never iterated
	sessionErr  error
	resolved    workflow.Channel // the resolve update wakes the main loop through it
	sessionAt   time.Time        // when the session was opened: the user's window starts here
	confirmedAt time.Time        // when confirmed arrived: the ledger wait is measured from it
}

// transferWorkflowV0 follows one Connect deposit or withdrawal from session to its final state.
func transferWorkflowV0(ctx workflow.Context, in TransferInput) (TransferResult, error) {
	if err := in.Validate(); err != nil {
		return TransferResult{}, temporal.NewNonRetryableApplicationError("invalid transfer input: "+err.Error(), "InvalidTransferInput", nil)
	}
	t := &transferV0{
		in:       in,
		seen:     map[string]int{},
		resolved: workflow.NewChannel(ctx),
		state: TransferState{
			WorkflowID:  workflow.GetInfo(ctx).WorkflowExecution.ID,
			Kind:        in.Kind,
			TransferID:  in.TransferID,
			ReferenceID: in.ReferenceID,
			Asset:       in.Asset,
			Network:     in.Network,
			Amount:      in.Amount,
			Events:      []EventRecord{},
		},
	}
	if err := t.registerHandlers(ctx); err != nil {
		return TransferResult{}, err
	}
	t.setStatus(ctx, StatusCreatingSession,
		SearchTransferKind.ValueSet(string(in.Kind)), SearchConnectReferenceID.ValueSet(in.ReferenceID))

	if err := t.createSession(ctx); err != nil {
		t.sessionErr = err
		t.state.FailureReason = err.Error()
		t.setStatus(ctx, StatusSessionFailed)
		if ferr := t.finish(ctx); ferr != nil {
			return TransferResult{}, ferr
		}
		return TransferResult{}, err
	}
	t.setStatus(ctx, StatusAwaitingUser, SearchConnectSessionID.ValueSet(t.state.Session.SessionID))

	events := workflow.GetSignalChannel(ctx, SignalConnectEvent)
	sdk := workflow.GetSignalChannel(ctx, SignalSDKEvent)
	ledger := workflow.GetSignalChannel(ctx, SignalLedger)
	for !t.done() {
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(events, func(c workflow.ReceiveChannel, _ bool) { t.receiveConnectEvent(ctx, c) })
		sel.AddReceive(sdk, func(c workflow.ReceiveChannel, _ bool) { t.receiveSDKEvent(ctx, c) })
		sel.AddReceive(ledger, func(c workflow.ReceiveChannel, _ bool) { t.receiveLedger(ctx, c) })
		sel.AddReceive(t.resolved, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		if at, name, next := t.deadline(); !at.IsZero() {
			wait := max(at.Sub(workflow.Now(ctx)), 0)
			sel.AddFuture(workflow.NewTimer(timerCtx, wait), func(f workflow.Future) {
				if f.Get(ctx, nil) == nil {
					t.record(ctx, "timer:"+name, EventRecord{Source: "timer", Name: name, Effect: EffectApplied})
					t.setStatus(ctx, next)
				}
			})
		}
		sel.Select(ctx)
		cancelTimer()
	}
	t.drainSignals(ctx, events, sdk, ledger)
	if err := t.finish(ctx); err != nil {
		return t.result(), err
	}
	return t.result(), nil
}

func (t *transferV0) registerHandlers(ctx workflow.Context) error {
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
func (t *transferV0) validateResolve(_ workflow.Context, r Resolution) error {
	if t.state.Status != StatusStalled && t.state.Status != StatusTimedOut {
		return temporal.NewApplicationError(fmt.Sprintf("transfer is %s: only a stalled or timed-out transfer can be resolved", t.state.Status), "NotResolvable")
	}
	return r.Validate()
}

// resolve records the operator's decision as the transfer's outcome; the main loop then closes the workflow.
func (t *transferV0) resolve(ctx workflow.Context, r Resolution) (TransferResult, error) {
	r.At = workflow.Now(ctx)
	t.state.Resolution = &r
	t.record(ctx, "resolve", EventRecord{Source: "operator", Name: "resolve", Status: string(r.Outcome), Effect: EffectApplied})
	t.setStatus(ctx, r.Outcome)
	t.resolved.Send(ctx, nil)
	return t.result(), nil
}

// createSession opens the Connect session; the workflow id is the request id, so every retry is the same request.
func (t *transferV0) createSession(ctx workflow.Context) error {
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
	var s connect.Session
	opts := SessionActivityOptions
	opts.Summary = "Open Connect session: " + Summary(t.in.Kind, t.in.Amount, t.in.Asset, t.in.ReferenceID)
	actx := workflow.WithActivityOptions(ctx, opts)
	if err := workflow.ExecuteActivity(actx, act.CreateSession, req).Get(ctx, &s); err != nil {
		return sessionFailure(err)
	}
	t.sessionAt = workflow.Now(ctx)
	t.state.Session = &SessionInfo{SessionID: s.ID, AccountID: s.AccountID, JWT: s.JWT, ExpiresAt: s.ExpiresAt}
	t.record(ctx, "session:"+s.ID, EventRecord{Source: "connect", Name: "session.created", Effect: EffectApplied})
	return nil
}

// done reports whether the transfer has nothing more to wait for.
// A timed-out transfer stays open for an operator's resolve; a confirmed one may wait for its ledger movement.
func (t *transferV0) done() bool {
	switch {
	case t.state.Resolution != nil:
		return true
	case t.state.Status == StatusTimedOut:
		return false
	case t.state.Status == StatusConfirmed && t.in.AwaitLedger:
		return false
	}
	return t.state.Status.finalV0()
}

// deadline returns the next timeout for the current status, its name, and the status it leads to.
func (t *transferV0) deadline() (time.Time, string, Status) {
	switch t.state.Status {
	case StatusAwaitingUser:
		at := t.state.Session.ExpiresAt
		if t.in.Timeouts.SessionExpiry > 0 {
			at = t.sessionAt.Add(t.in.Timeouts.SessionExpiry)
		}
		return at, "session_expired", StatusExpired
	case StatusInitiated, StatusBroadcasted:
		return t.state.InitiatedAt.Add(orDefault(t.in.Timeouts.Stall, DefaultStallTimeout)), "stall_timeout", StatusStalled
	case StatusStalled:
		return t.state.InitiatedAt.Add(orDefault(t.in.Timeouts.ReviewHorizon, DefaultReviewHorizon)), "review_horizon", StatusTimedOut
	case StatusConfirmed:
		return t.confirmedAt.Add(orDefault(t.in.Timeouts.ReviewHorizon, DefaultReviewHorizon)), "ledger_horizon", StatusUnsettled
	}
	return time.Time{}, "", ""
}

func (t *transferV0) receiveConnectEvent(ctx workflow.Context, c workflow.ReceiveChannel) {
	var s EventSignal
	c.Receive(ctx, &s)
	ev := s.Event
	key := ev.DedupeKey
	if key == "" {
		key = string(ev.Kind) + ":" + ev.TransferID + ":" + string(ev.Status)
	}
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "connect", Name: ev.Name, Status: string(ev.Status), ReceivedAt: s.ReceivedAt}
	rec.Effect = t.applyConnectEvent(ctx, ev)
	t.record(ctx, key, rec)
}

// applyConnectEvent moves the state machine forward for one new event and says what it did.
func (t *transferV0) applyConnectEvent(ctx workflow.Context, ev connect.Event) string {
	if ev.Kind != "" && ev.Kind != t.in.Kind {
		return EffectIgnored
	}
	p := eventProgressV0(ev.Status)
	if p == progressNoneV0 {
		return EffectIgnored
	}
	if ev.TransferID != "" && t.state.ConnectTransferID != "" && ev.TransferID != t.state.ConnectTransferID {
		return EffectConflict
	}
	if t.state.Status.finalV0() {
		if t.covers(ev.Status) {
			t.absorb(ctx, ev)
			return EffectLate
		}
		return EffectConflict
	}
	t.absorb(ctx, ev)
	if p <= t.progress {
		return EffectLate
	}
	if t.progress == progressNoneV0 {
		t.state.InitiatedAt = workflow.Now(ctx)
	}
	t.progress = p
	switch ev.Status {
	case connect.StatusInitiated:
		t.setStatus(ctx, StatusInitiated)
	case connect.StatusBroadcasted:
		t.setStatus(ctx, StatusBroadcasted)
	case connect.StatusFailed:
		t.state.FailureReason = ev.FailureReason
		t.setStatus(ctx, StatusFailed)
	case connect.StatusConfirmed:
		t.confirmedAt = workflow.Now(ctx)
		if t.in.AwaitLedger && t.state.Ledger != nil {
			t.setStatus(ctx, StatusSettled)
		} else {
			t.setStatus(ctx, StatusConfirmed)
		}
	}
	return EffectApplied
}

// covers reports whether the transfer's final state already includes an event of status s.
func (t *transferV0) covers(s connect.Status) bool {
	switch t.state.Status {
	case StatusConfirmed, StatusSettled, StatusUnsettled:
		return s == connect.StatusInitiated || s == connect.StatusBroadcasted || s == connect.StatusConfirmed
	case StatusFailed:
		return s == connect.StatusInitiated || s == connect.StatusBroadcasted || s == connect.StatusFailed
	}
	return false
}

// absorb fills what the transfer did not know yet from an event; it never overwrites a known value.
func (t *transferV0) absorb(ctx workflow.Context, ev connect.Event) {
	if t.state.ConnectTransferID == "" && ev.TransferID != "" {
		t.state.ConnectTransferID = ev.TransferID
		t.upsert(ctx, SearchConnectTransferID.ValueSet(ev.TransferID))
	}
	fillV0(&t.state.Asset, ev.Asset)
	fillV0(&t.state.Network, ev.Network)
	fillV0(&t.state.Amount, ev.Amount)
	fillV0(&t.state.TxHash, ev.TxHash)
}

func fillV0(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func (t *transferV0) receiveSDKEvent(ctx workflow.Context, c workflow.ReceiveChannel) {
	var e SDKEvent
	c.Receive(ctx, &e)
	key := e.DedupeKey
	if key == "" {
		key = "sdk:" + e.Type + ":" + e.Detail
	}
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "sdk", Name: e.Type, Status: e.Detail, Effect: EffectIgnored}
	if e.Type == SDKTypeClose && t.state.Status == StatusAwaitingUser {
		rec.Effect = EffectApplied
		t.setStatus(ctx, StatusAbandoned)
	}
	t.record(ctx, key, rec)
}

func (t *transferV0) receiveLedger(ctx workflow.Context, c workflow.ReceiveChannel) {
	var m LedgerMovement
	c.Receive(ctx, &m)
	key := "ledger:" + m.MovementID
	if t.duplicate(key) {
		return
	}
	rec := EventRecord{Source: "ledger", Name: m.MovementType, Effect: EffectIgnored}
	if t.state.Ledger == nil {
		t.state.Ledger = &m
		rec.Effect = EffectApplied
		if t.in.AwaitLedger && t.state.Status == StatusConfirmed {
			t.setStatus(ctx, StatusSettled)
		}
	}
	t.record(ctx, key, rec)
}

// duplicate counts a redelivery against the first record of its key.
func (t *transferV0) duplicate(key string) bool {
	i, seen := t.seen[key]
	if seen {
		t.state.Events[i].Duplicates++
	}
	return seen
}

func (t *transferV0) record(ctx workflow.Context, key string, rec EventRecord) {
	rec.DedupeKey = key
	if rec.ReceivedAt.IsZero() {
		rec.ReceivedAt = workflow.Now(ctx)
	}
	t.seen[key] = len(t.state.Events)
	t.state.Events = append(t.state.Events, rec)
}

func (t *transferV0) setStatus(ctx workflow.Context, s Status, more ...temporal.SearchAttributeUpdate) {
	t.state.Status = s
	t.upsert(ctx, append(more, SearchTransferStatus.ValueSet(string(s)))...)
	workflow.SetCurrentDetails(ctx, t.summary())
}

// upsert keeps search attributes current. A failure here is a bug in our attribute names, not worth the transfer.
func (t *transferV0) upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Error("search attributes not updated", "error", err)
	}
}

// summary is the one line an operator reads in the UI, e.g. "Deposit 0.013 BTC for USER01 — broadcasted, tx 0xf3b9…".
func (t *transferV0) summary() string {
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
	return s
}

// drainSignals records whatever was signalled before the workflow closes, so nothing Temporal accepted is lost.
func (t *transferV0) drainSignals(ctx workflow.Context, events, sdk, ledger workflow.ReceiveChannel) {
	for {
		switch {
		case events.Len() > 0:
			t.receiveConnectEvent(ctx, events)
		case sdk.Len() > 0:
			t.receiveSDKEvent(ctx, sdk)
		case ledger.Len() > 0:
			t.receiveLedger(ctx, ledger)
		default:
			return
		}
	}
}

// finish waits for in-flight update handlers (the session update) so callers get their answer.
func (t *transferV0) finish(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

func (t *transferV0) result() TransferResult {
	r := TransferResult{
		Status:            t.state.Status,
		Kind:              t.state.Kind,
		TransferID:        t.state.TransferID,
		ConnectTransferID: t.state.ConnectTransferID,
		Asset:             t.state.Asset,
		Network:           t.state.Network,
		Amount:            t.state.Amount,
		TxHash:            t.state.TxHash,
		FailureReason:     t.state.FailureReason,
		Ledger:            t.state.Ledger,
		Resolution:        t.state.Resolution,
		Events:            t.state.Events,
	}
	if t.state.Session != nil {
		r.SessionID = t.state.Session.SessionID
	}
	return r
}

// finalV0 is the version-0 meaning of "final": true for timed_out and confirmed, which may still change.
func (s Status) finalV0() bool {
	switch s {
	case StatusConfirmed, StatusFailed, StatusExpired, StatusAbandoned, StatusTimedOut, StatusSettled,
		StatusUnsettled, StatusSessionFailed:
		return true
	}
	return false
}
