package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/connect"
)

// Names for review workflows: events that no transfer can take, kept until a person resolves them.
const (
	SignalReviewEvent        = "review-event" // a Connect event for review: EventSignal
	UpdateResolve            = "resolve"      // an operator's audited decision: Resolution
	UpdateRedeliver          = "redeliver"    // an operator's audited redelivery of the held event: Redelivery
	StatusNeedsReview Status = "needs_review"
	StatusResolved    Status = "resolved"
	StatusRedelivered Status = "redelivered" // the held event was delivered to a transfer on an operator's order
)

// Why an event went to review.
const (
	ReviewUnexpected       = "unexpected_deposit" // connect.deposit.unexpected
	ReviewUnknownEvent     = "unknown_event"      // an event name the alias table does not know
	ReviewNoTransfer       = "no_transfer"        // no transfer workflow matches the event
	ReviewClosedConflict   = "closed_conflict"    // contradicts the final state of a closed transfer
	ReviewUnmatchedLedger  = "unmatched_ledger"   // a balance movement naming a Connect id no transfer has
	ReviewTransferConflict = "transfer_conflict"  // an open transfer took an event that contradicts it
	ReviewLedgerMismatch   = "ledger_mismatch"    // a movement whose asset or amount is not its transfer's, or a second one
	ReviewSessionConflict  = "session_conflict"   // an event naming this transfer whose session is not the transfer's
)

// ReviewWorkflowID is one review per event: redeliveries of the event reach the same workflow.
func ReviewWorkflowID(dedupeKey string) string { return "review-" + dedupeKey }

// ReviewInput says what the review is about.
type ReviewInput struct {
	Reason             string       `json:"reason"`
	Kind               connect.Kind `json:"kind,omitempty"`
	TransferWorkflowID string       `json:"transfer_workflow_id,omitempty"` // the transfer it concerns, if known
	ConnectTransferID  string       `json:"connect_transfer_id,omitempty"`
	SessionID          string       `json:"session_id,omitempty"`
}

// ReviewedEvent keeps the whole event so a person can see amounts and hashes without the webhook log.
type ReviewedEvent struct {
	Event      *connect.Event  `json:"event,omitempty"`
	Ledger     *LedgerMovement `json:"ledger,omitempty"`
	ReceivedAt time.Time       `json:"received_at"`
	Duplicates int             `json:"duplicates,omitempty"`
}

// Resolution is an operator's decision on a transfer or review that needs a person.
type Resolution struct {
	Operator string    `json:"operator"`
	Outcome  Status    `json:"outcome"` // confirmed or failed
	Reason   string    `json:"reason"`
	At       time.Time `json:"at,omitzero"` // set by the workflow when accepted
}

// Validate says what is missing or wrong, before the update is accepted into history.
func (r Resolution) Validate() error {
	var problems []string
	if strings.TrimSpace(r.Operator) == "" {
		problems = append(problems, "operator: required")
	}
	if r.Outcome != StatusConfirmed && r.Outcome != StatusFailed {
		problems = append(problems, fmt.Sprintf("outcome: must be %q or %q, got %q", StatusConfirmed, StatusFailed, r.Outcome))
	}
	if strings.TrimSpace(r.Reason) == "" {
		problems = append(problems, "reason: required")
	}
	if len(problems) > 0 {
		return temporal.NewApplicationError("invalid resolution: "+strings.Join(problems, "; "), "InvalidResolution")
	}
	return nil
}

// ReviewState is a review workflow's record, returned by QueryState and as its result.
type ReviewState struct {
	Input      ReviewInput     `json:"input"`
	Status     Status          `json:"status"`
	Events     []ReviewedEvent `json:"events"`
	Resolution *Resolution     `json:"resolution,omitempty"`
	Redelivery *Redelivery     `json:"redelivery,omitempty"` // set when an operator redelivered the event
}

// ReviewWorkflow holds events no transfer could take until an operator resolves them.
func ReviewWorkflow(ctx workflow.Context, in ReviewInput) (ReviewState, error) {
	st := ReviewState{Input: in, Status: StatusNeedsReview, Events: []ReviewedEvent{}}
	seen := map[string]int{} // dedupe key -> index in st.Events; only looked up
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (ReviewState, error) { return st, nil }); err != nil {
		return st, err
	}
	redelivering := false // a redeliver update is signalling the transfer: no other decision is taken meanwhile
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResolve,
		func(ctx workflow.Context, r Resolution) (ReviewState, error) {
			r.At = workflow.Now(ctx)
			st.Resolution = &r
			st.Status = StatusResolved
			return st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r Resolution) error {
			if err := reviewOpen(st, redelivering); err != nil {
				return err
			}
			return r.Validate()
		}}); err != nil {
		return st, err
	}
	// A handler no history recorded before it existed: registering it issues no command, and only an update of
	// this name (which older workers refused) runs the code below, so every recorded history replays unchanged.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRedeliver,
		func(ctx workflow.Context, r Redelivery) (ReviewState, error) {
			redelivering = true
			defer func() { redelivering = false }()
			signal, arg, key := heldSignal(st.Events[0])
			if err := workflow.SignalExternalWorkflow(ctx, r.TransferWorkflowID, "", signal, arg).Get(ctx, nil); err != nil {
				var unknown *temporal.UnknownExternalWorkflowExecutionError
				if errors.As(err, &unknown) {
					return st, temporal.NewApplicationError(r.TransferWorkflowID+" is not running: it takes no more events; nothing was delivered", ErrTypeTransferClosed)
				}
				return st, temporal.NewApplicationError("signal "+r.TransferWorkflowID+": "+err.Error()+"; nothing was delivered", "RedeliveryFailed")
			}
			r.At, r.Signal, r.DedupeKey = workflow.Now(ctx), signal, key
			st.Redelivery = &r
			st.Status = StatusRedelivered
			return st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r Redelivery) error {
			if err := reviewOpen(st, redelivering); err != nil {
				return err
			}
			if err := Redeliverable(st); err != nil {
				return err
			}
			return r.Validate(st)
		}}); err != nil {
		return st, err
	}
	updates := []temporal.SearchAttributeUpdate{SearchTransferStatus.ValueSet(string(StatusNeedsReview))}
	if in.Kind != "" {
		updates = append(updates, SearchTransferKind.ValueSet(string(in.Kind)))
	}
	if in.ConnectTransferID != "" {
		updates = append(updates, SearchConnectTransferID.ValueSet(in.ConnectTransferID))
	}
	if in.SessionID != "" {
		updates = append(updates, SearchConnectSessionID.ValueSet(in.SessionID))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return st, err
	}
	workflow.SetCurrentDetails(ctx, "Needs review: "+in.Reason)

	add := func(key string, e ReviewedEvent) {
		if i, dup := seen[key]; dup {
			st.Events[i].Duplicates++
			return
		}
		if e.ReceivedAt.IsZero() {
			e.ReceivedAt = workflow.Now(ctx)
		}
		seen[key] = len(st.Events)
		st.Events = append(st.Events, e)
	}
	events := workflow.GetSignalChannel(ctx, SignalReviewEvent)
	ledger := workflow.GetSignalChannel(ctx, SignalLedger)
	for {
		// Take every signal, including those that arrive with the resolution, before closing.
		for events.Len() > 0 || ledger.Len() > 0 {
			var s EventSignal
			if events.ReceiveAsync(&s) {
				add("connect:"+s.Event.DedupeKey, ReviewedEvent{Event: &s.Event, ReceivedAt: s.ReceivedAt})
			}
			var m LedgerMovement
			if ledger.ReceiveAsync(&m) {
				add("ledger:"+m.MovementID, ReviewedEvent{Ledger: &m})
			}
		}
		if st.Status == StatusResolved || st.Status == StatusRedelivered {
			break
		}
		if err := workflow.Await(ctx, func() bool {
			return st.Status == StatusResolved || st.Status == StatusRedelivered || events.Len() > 0 || ledger.Len() > 0
		}); err != nil {
			return st, err
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return st, err
	}
	if r := st.Redelivery; r != nil {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("Redelivered to %s by %s: %s", r.TransferWorkflowID, r.Operator, r.Reason))
		return st, workflow.UpsertTypedSearchAttributes(ctx, SearchTransferStatus.ValueSet(string(StatusRedelivered)))
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Resolved %s by %s: %s", st.Resolution.Outcome, st.Resolution.Operator, st.Resolution.Reason))
	return st, workflow.UpsertTypedSearchAttributes(ctx, SearchTransferStatus.ValueSet(string(StatusResolved)))
}

// Application error types of the review's updates, for callers to tell refusals apart.
const (
	ErrTypeAlreadyResolved  = "AlreadyResolved"      // the review was resolved or redelivered already
	ErrTypeRedeliveryBusy   = "RedeliveryInProgress" // a redelivery is signalling the transfer now
	ErrTypeNotDeliverable   = "NotDeliverable"       // the review holds nothing a transfer can take
	ErrTypeInvalidRedeliver = "InvalidRedelivery"    // operator, reason or transfer missing or wrong
	ErrTypeTransferClosed   = "TransferClosed"       // the transfer to deliver to is not running
)

// reviewOpen refuses a decision on a review that has one already, or is taking one.
func reviewOpen(st ReviewState, redelivering bool) error {
	switch {
	case st.Status == StatusResolved:
		return temporal.NewApplicationError("already resolved", ErrTypeAlreadyResolved)
	case st.Status == StatusRedelivered:
		return temporal.NewApplicationError("already redelivered to "+st.Redelivery.TransferWorkflowID, ErrTypeAlreadyResolved)
	case redelivering:
		return temporal.NewApplicationError("a redelivery of this review is in progress", ErrTypeRedeliveryBusy)
	}
	return nil
}

// Redelivery is an operator's audited order to deliver the event a review holds to a transfer workflow, with the
// signal and payload the webhook bridge sends (so the transfer dedupes it on the same key: applied at most once,
// however often it is delivered).
type Redelivery struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
	// TransferWorkflowID is the transfer to deliver to (WorkflowID(kind, transfer id)); the caller finds it as the
	// bridge routes the event, or an operator names it.
	TransferWorkflowID string `json:"transfer_workflow_id"`
	// Signal and DedupeKey are set by the workflow: the signal sent and the key the transfer dedupes it on.
	Signal    string    `json:"signal,omitempty"`
	DedupeKey string    `json:"dedupe_key,omitempty"`
	At        time.Time `json:"at,omitzero"` // set by the workflow when delivered
}

// Validate says what is missing or wrong in r for the review st, before the update is accepted into history.
func (r Redelivery) Validate(st ReviewState) error {
	var problems []string
	if strings.TrimSpace(r.Operator) == "" {
		problems = append(problems, "operator: required")
	}
	if strings.TrimSpace(r.Reason) == "" {
		problems = append(problems, "reason: required")
	}
	kind, ok := TransferKindOf(r.TransferWorkflowID)
	switch {
	case !ok:
		problems = append(problems, fmt.Sprintf("transfer_workflow_id: must be a transfer's workflow id (deposit-<id> or withdrawal-<id>), got %q", r.TransferWorkflowID))
	case len(st.Events) > 0 && st.Events[0].Event != nil && st.Events[0].Event.Kind != "" && st.Events[0].Event.Kind != kind:
		problems = append(problems, fmt.Sprintf("transfer_workflow_id: the held event is a %s event; %s is a %s", st.Events[0].Event.Kind, r.TransferWorkflowID, kind))
	case st.Input.Kind != "" && st.Input.Kind != kind:
		problems = append(problems, fmt.Sprintf("transfer_workflow_id: the review is about a %s; %s is a %s", st.Input.Kind, r.TransferWorkflowID, kind))
	}
	if len(problems) > 0 {
		return temporal.NewApplicationError("invalid redelivery: "+strings.Join(problems, "; "), ErrTypeInvalidRedeliver)
	}
	return nil
}

// TransferKindOf is the kind of a transfer workflow id (WorkflowID's form); false for any other id.
func TransferKindOf(workflowID string) (connect.Kind, bool) {
	for _, k := range []connect.Kind{connect.KindDeposit, connect.KindWithdrawal} {
		if p := WorkflowID(k, ""); strings.HasPrefix(workflowID, p) && len(workflowID) > len(p) {
			return k, true
		}
	}
	return "", false
}

// Redeliverable says whether the review st holds an event a transfer can take, and if not, why. Only the reasons
// where no transfer took the event (ReviewNoTransfer, ReviewUnmatchedLedger, ReviewClosedConflict) qualify: the
// event is a Connect status event (initiated, broadcasted, confirmed, failed) or a ledger movement, and the
// review holds exactly one. A conflict the transfer itself sent to review was recorded by that transfer under the
// same key (delivering it again changes nothing); an unexpected deposit or unknown event has no status a transfer
// applies; a platform notification is not an event for the transfer at all. Those are resolved, not redelivered.
func Redeliverable(st ReviewState) error {
	notDeliverable := func(why string) error {
		return temporal.NewApplicationError("not deliverable: "+why+"; resolve the review instead", ErrTypeNotDeliverable)
	}
	switch st.Input.Reason {
	case ReviewNoTransfer, ReviewUnmatchedLedger, ReviewClosedConflict:
	case ReviewTransferConflict, ReviewLedgerMismatch, ReviewSessionConflict:
		return notDeliverable(fmt.Sprintf("transfer %s took this event and found it conflicting (%s); it dedupes a redelivery", st.Input.TransferWorkflowID, st.Input.Reason))
	default:
		return notDeliverable(fmt.Sprintf("a review for %q holds nothing a transfer takes", st.Input.Reason))
	}
	if len(st.Events) != 1 {
		return notDeliverable(fmt.Sprintf("the review holds %d events, redelivery takes exactly one", len(st.Events)))
	}
	held := st.Events[0]
	switch {
	case held.Ledger != nil:
	case held.Event == nil:
		return notDeliverable("the review holds no event")
	case EventOf(held.Event.Status) == "":
		return notDeliverable(fmt.Sprintf("a %q event moves no transfer", held.Event.Status))
	}
	return nil
}

// heldSignal is the signal, argument and dedupe key the bridge sends a transfer for the held event e.
func heldSignal(e ReviewedEvent) (signal string, arg any, key string) {
	if m := e.Ledger; m != nil {
		return SignalLedger, *m, "ledger:" + m.MovementID
	}
	ev := *e.Event
	key = ev.DedupeKey
	if key == "" {
		key = string(ev.Kind) + ":" + ev.TransferID + ":" + string(ev.Status)
	}
	return SignalConnectEvent, EventSignal{Event: ev, ReceivedAt: e.ReceivedAt}, key
}
