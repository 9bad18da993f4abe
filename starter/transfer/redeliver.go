package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// Errors of Redeliver; each is wrapped with what was found, so errors.Is tells them apart and Error() says why.
var (
	// ErrInvalidRedelivery: operator or reason missing, or the transfer named by the caller is malformed or of
	// another kind than the event.
	ErrInvalidRedelivery = errors.New("invalid redelivery")
	// ErrReviewNotFound: no review workflow has this id.
	ErrReviewNotFound = errors.New("no such review")
	// ErrReviewClosed: the review was resolved or redelivered already (or another redelivery of it is under
	// way); nothing was delivered by this call.
	ErrReviewClosed = errors.New("review already closed")
	// ErrNotDeliverable: the review holds nothing a transfer takes (workflows.Redeliverable says why); resolve it.
	ErrNotDeliverable = errors.New("review holds no event a transfer can take")
	// ErrNoTransfer: no transfer workflow is the event's (by its session metadata, the review's record, its
	// session id or Connect transfer id), nor the one the caller named.
	ErrNoTransfer = errors.New("no transfer takes the held event")
	// ErrTransferClosed: the event's transfer has finished; it takes no more events. The review stays open.
	ErrTransferClosed = errors.New("transfer has finished")
)

// RedeliverRequest is an operator's order to deliver the event a review holds to its transfer.
type RedeliverRequest struct {
	Operator string // who decides, for the audit trail (required)
	Reason   string // why, for the audit trail (required)
	// Kind and TransferID name the transfer to deliver to; both empty (the usual case) means the transfer the
	// bridge routes the event to now: the one its session metadata names, else the one the review recorded, else
	// the one whose ConnectSessionID or ConnectTransferID matches the event's.
	Kind       connect.Kind
	TransferID string
}

// Redelivered is what Redeliver did.
type Redelivered struct {
	ReviewID           string `json:"review_id"`
	TransferWorkflowID string `json:"transfer_workflow_id"`
	// Redelivery is the review's audit record: operator, reason, signal, dedupe key, time.
	Redelivery workflows.Redelivery `json:"redelivery"`
	// Record is the transfer's event record for the delivered key: its effect (applied, late, ignored, conflict)
	// and, when the transfer had the event before, its duplicates. Nil when the transfer had not recorded it by
	// the time Redeliver looked (it records every signal it accepted, a moment later).
	Record *workflows.EventRecord `json:"record,omitempty"`
	// Review is the review's final state.
	Review workflows.ReviewState `json:"review"`
}

// Redeliver delivers the event held in review reviewID to its transfer, as the webhook bridge would have: the same
// signal (workflows.SignalConnectEvent or SignalLedger) and payload, so the transfer dedupes it on the same key and
// applies it at most once however often it arrives. The review itself sends the signal, in its redeliver update
// (workflows.UpdateRedeliver), and closes as redelivered with the operator, reason, signal, key and time in its
// state, result, history and current details (TransferStatus = redelivered): the audit trail resolve keeps.
//
// Nothing is delivered when it returns ErrInvalidRedelivery, ErrReviewNotFound, ErrReviewClosed,
// ErrNotDeliverable, ErrNoTransfer or ErrTransferClosed (each wrapped, errors.Is). Two operators redelivering at
// once: one is taken, the other gets ErrReviewClosed. Any other error (Temporal unreachable, a timeout) leaves
// the review open unless it was redelivered; calling again is safe.
func (c *Client) Redeliver(ctx context.Context, reviewID string, req RedeliverRequest) (Redelivered, error) {
	out := Redelivered{ReviewID: reviewID}
	if err := req.validate(reviewID); err != nil {
		return out, err
	}
	st, err := c.openReview(ctx, reviewID)
	if err != nil {
		return out, err
	}
	if err := workflows.Redeliverable(st); err != nil {
		return out, fmt.Errorf("%w: %s: %s", ErrNotDeliverable, reviewID, describeApp(err))
	}
	target := ""
	if req.TransferID != "" {
		target = workflows.WorkflowID(req.Kind, req.TransferID)
	} else if target, err = c.eventTransfer(ctx, st); err != nil {
		return out, err
	}
	if target == "" {
		return out, fmt.Errorf("%w: %s: none matches its session metadata, session id or Connect transfer id; name one (kind and transfer id)", ErrNoTransfer, reviewID)
	}
	if err := c.running(ctx, target); err != nil {
		return out, err
	}
	out.TransferWorkflowID = target
	h, err := c.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   reviewID,
		UpdateName:   workflows.UpdateRedeliver,
		Args:         []any{workflows.Redelivery{Operator: req.Operator, Reason: req.Reason, TransferWorkflowID: target}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &out.Review)
	}
	if err != nil {
		return out, redeliverError(reviewID, target, err)
	}
	if out.Review.Redelivery != nil {
		out.Redelivery = *out.Review.Redelivery
		out.Record = c.recordOf(ctx, target, out.Redelivery.DedupeKey)
	}
	return out, nil
}

func (r RedeliverRequest) validate(reviewID string) error {
	var problems []string
	if strings.TrimSpace(reviewID) == "" {
		problems = append(problems, "review id: required")
	}
	if strings.TrimSpace(r.Operator) == "" {
		problems = append(problems, "operator: required")
	}
	if strings.TrimSpace(r.Reason) == "" {
		problems = append(problems, "reason: required")
	}
	switch {
	case r.Kind == "" && r.TransferID == "":
	case !r.Kind.Valid():
		problems = append(problems, fmt.Sprintf("kind: must be deposit or withdrawal with a transfer id, got %q", r.Kind))
	case strings.TrimSpace(r.TransferID) == "":
		problems = append(problems, "transfer id: required with kind")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidRedelivery, strings.Join(problems, "; "))
	}
	return nil
}

// openReview reads a running review's state; a missing, closed or decided review is an error.
func (c *Client) openReview(ctx context.Context, reviewID string) (workflows.ReviewState, error) {
	var st workflows.ReviewState
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, reviewID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return st, fmt.Errorf("%w: %s", ErrReviewNotFound, reviewID)
	case err != nil:
		return st, fmt.Errorf("find review %s: %w", reviewID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if t := info.GetType().GetName(); t != "ReviewWorkflow" {
		return st, fmt.Errorf("%w: %s is a %s, not a review", ErrReviewNotFound, reviewID, t)
	}
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return st, fmt.Errorf("%w: %s has finished (%s)", ErrReviewClosed, reviewID, closedAs(info))
	}
	v, err := c.temporal.QueryWorkflow(ctx, reviewID, info.GetExecution().GetRunId(), workflows.QueryState)
	if err != nil {
		return st, fmt.Errorf("query review %s: %w", reviewID, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode state of review %s: %w", reviewID, err)
	}
	if st.Status != workflows.StatusNeedsReview {
		return st, fmt.Errorf("%w: %s is %s", ErrReviewClosed, reviewID, st.Status)
	}
	return st, nil
}

// closedAs names how a closed review ended: its TransferStatus (resolved, redelivered), else its execution status.
func closedAs(info *workflowpb.WorkflowExecutionInfo) string {
	if p := info.GetSearchAttributes().GetIndexedFields()[workflows.SearchTransferStatus.GetName()]; p != nil {
		var status string
		if converter.GetDefaultDataConverter().FromPayload(p, &status) == nil && status != "" {
			return status
		}
	}
	return statusWord(info.GetStatus())
}

// eventTransfer is the transfer the bridge routes the held event to now: the one its session metadata names,
// else the one the review recorded, else the transfer whose ConnectSessionID, then ConnectTransferID, is the
// event's (a running one preferred); "" when none.
func (c *Client) eventTransfer(ctx context.Context, st workflows.ReviewState) (string, error) {
	held := st.Events[0]
	sessionID, connectID := st.Input.SessionID, st.Input.ConnectTransferID
	if e := held.Event; e != nil {
		if id := e.Metadata[workflows.MetadataTransferID]; id != "" {
			if kind := connect.Kind(e.Metadata[workflows.MetadataKind]); kind.Valid() {
				return workflows.WorkflowID(kind, id), nil
			}
		}
		sessionID, connectID = e.SessionID, e.TransferID
	}
	if _, ok := workflows.TransferKindOf(st.Input.TransferWorkflowID); ok {
		return st.Input.TransferWorkflowID, nil
	}
	for _, q := range workflows.ConnectIDQueries(sessionID, connectID) {
		resp, err := c.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 20, Query: q})
		if err != nil {
			return "", fmt.Errorf("find the transfer (%s): %w", q, err)
		}
		if id := workflows.PickTransfer(resp.GetExecutions()); id != "" {
			return id, nil
		}
	}
	return "", nil
}

// running checks that transfer workflow id exists and runs.
func (c *Client) running(ctx context.Context, id string) error {
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: %s does not exist", ErrNoTransfer, id)
	case err != nil:
		return fmt.Errorf("find transfer %s: %w", id, err)
	}
	if s := desc.GetWorkflowExecutionInfo().GetStatus(); s != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return fmt.Errorf("%w: %s is %s; it takes no more events", ErrTransferClosed, id, statusWord(s))
	}
	return nil
}

func statusWord(s enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}

// redeliverError maps the review's refusals to Redeliver's errors.
func redeliverError(reviewID, target string, err error) error {
	var appErr *temporal.ApplicationError
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: %s has finished", ErrReviewClosed, reviewID)
	case !errors.As(err, &appErr):
		return fmt.Errorf("redeliver %s to %s: %w", reviewID, target, err)
	}
	msg := reviewID + ": " + appErr.Message()
	switch appErr.Type() {
	case workflows.ErrTypeAlreadyResolved, workflows.ErrTypeRedeliveryBusy:
		return fmt.Errorf("%w: %s", ErrReviewClosed, msg)
	case workflows.ErrTypeNotDeliverable:
		return fmt.Errorf("%w: %s", ErrNotDeliverable, msg)
	case workflows.ErrTypeInvalidRedeliver:
		return fmt.Errorf("%w: %s", ErrInvalidRedelivery, msg)
	case workflows.ErrTypeTransferClosed:
		return fmt.Errorf("%w: %s", ErrTransferClosed, msg)
	}
	return fmt.Errorf("redeliver %s to %s: %w", reviewID, target, err)
}

// describeApp is an application error's message without Temporal's wrapping.
func describeApp(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// recordOf reads the transfer's record of key, waiting briefly for the transfer to take the signal.
func (c *Client) recordOf(ctx context.Context, workflowID, key string) *workflows.EventRecord {
	for attempt := 0; attempt < 10; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
		}
		st, _, err := c.query(ctx, workflowID)
		if err != nil {
			continue
		}
		for i := range st.Events {
			if st.Events[i].DedupeKey == key {
				return &st.Events[i]
			}
		}
	}
	return nil
}
