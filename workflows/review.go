package workflows

import (
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
	StatusNeedsReview Status = "needs_review"
	StatusResolved    Status = "resolved"
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
}

// ReviewWorkflow holds events no transfer could take until an operator resolves them.
func ReviewWorkflow(ctx workflow.Context, in ReviewInput) (ReviewState, error) {
	st := ReviewState{Input: in, Status: StatusNeedsReview, Events: []ReviewedEvent{}}
	seen := map[string]int{} // dedupe key -> index in st.Events; only looked up
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (ReviewState, error) { return st, nil }); err != nil {
		return st, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResolve,
		func(ctx workflow.Context, r Resolution) (ReviewState, error) {
			r.At = workflow.Now(ctx)
			st.Resolution = &r
			st.Status = StatusResolved
			return st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r Resolution) error {
			if st.Status == StatusResolved {
				return temporal.NewApplicationError("already resolved", "AlreadyResolved")
			}
			return r.Validate()
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
		if st.Status == StatusResolved {
			break
		}
		if err := workflow.Await(ctx, func() bool {
			return st.Status == StatusResolved || events.Len() > 0 || ledger.Len() > 0
		}); err != nil {
			return st, err
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return st, err
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Resolved %s by %s: %s", st.Resolution.Outcome, st.Resolution.Operator, st.Resolution.Reason))
	return st, workflow.UpsertTypedSearchAttributes(ctx, SearchTransferStatus.ValueSet(string(StatusResolved)))
}
