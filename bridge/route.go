package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// Temporal is the part of client.Client the bridge uses; a client.Client is one.
type Temporal interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
}

// outcome is what the bridge did with one request; its name is the metric label and the answer body.
type outcome uint8

const (
	outcomeSignaled             outcome = iota // Temporal accepted the signal to an open transfer
	outcomeAcknowledged                        // nothing to do: a closed transfer's final state covers it, or not ours
	outcomeReview                              // Temporal accepted it into a review workflow
	outcomeReviewClosed                        // its review was already resolved: handled before
	outcomeNoTransfer                          // an SDK event for a session no transfer has
	outcomeUnavailable                         // Temporal did not answer in time or refused: the sender retries
	outcomeUnauthorized                        // a credential is missing or does not verify
	outcomeMalformed                           // verified, but not a message the bridge understands
	outcomeTooLarge                            // over the body limit
	outcomeUnsupportedMediaType                // a Content-Type that is not JSON (none at all is read as JSON)
	outcomeDuplicate                           // a Connect event id this bridge answered 2xx lately: taken already
	outcomeNotConfigured                       // balance webhooks: no Zero Hash secret or key configured
	outcomeRateLimited                         // an SDK session sent more callbacks than its rate allows
	outcomeSignalLimit                         // Temporal refuses more signals to this workflow: alert, a person looks
	outcomeNotForwarded                        // an SDK callback that changes no state: taken, not signalled
	outcomeJWKSUnavailable                     // no Connect key loaded (JWKS outage): nothing verifies, the sender retries
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	outcomeSignaled:             "signaled",
	outcomeAcknowledged:         "acknowledged",
	outcomeReview:               "review",
	outcomeReviewClosed:         "review_closed",
	outcomeNoTransfer:           "no_transfer",
	outcomeUnavailable:          "unavailable",
	outcomeUnauthorized:         "unauthorized",
	outcomeMalformed:            "malformed",
	outcomeTooLarge:             "too_large",
	outcomeUnsupportedMediaType: "unsupported_media_type",
	outcomeDuplicate:            "duplicate",
	outcomeNotConfigured:        "not_configured",
	outcomeRateLimited:          "rate_limited",
	outcomeSignalLimit:          "signal_limit",
	outcomeNotForwarded:         "not_forwarded",
	outcomeJWKSUnavailable:      "jwks_unavailable",
}

func (o outcome) String() string { return outcomeNames[o] }

// message is one verified webhook or callback, reduced to what routing needs.
type message struct {
	// target is the transfer workflow id when the payload names it (session metadata); "" means look it up.
	target string
	// sessionID and connectID find the transfer through its search attributes when target is "".
	sessionID, connectID string
	signal               string
	arg                  any
	// status is what the message says happened, checked with workflows.Covers against a closed transfer.
	status connect.Status
	// review is where the message goes when no open transfer takes it; nil means nowhere (SDK events).
	review *review
}

// review is a review workflow to signal-with-start.
type review struct {
	key    string // the event's dedupe key: one review per event, whatever its redeliveries
	signal string
	arg    any
	input  workflows.ReviewInput
	// now sends the message to review without looking for a transfer (unexpected deposits, unknown events).
	now bool
}

// router is the one place that decides between signalling a transfer and opening a review.
type router struct {
	temporal  Temporal
	taskQueue string
	timeout   time.Duration // bounds each Temporal call
}

// errUnavailable marks a Temporal failure that the sender should retry later.
var errUnavailable = errors.New("temporal unavailable")

// deliver signals the transfer m is about, or routes m to review; it returns the outcome, the workflow that took
// the message (if any) and, for outcomeUnavailable, the cause.
func (r *router) deliver(ctx context.Context, m *message) (outcome, string, error) {
	if m.review != nil && m.review.now {
		return r.toReview(ctx, m, m.target)
	}
	target := m.target
	if target == "" {
		id, err := r.find(ctx, m.sessionID, m.connectID)
		if err != nil {
			return outcomeUnavailable, "", err
		}
		if id == "" {
			return r.noTransfer(ctx, m, "")
		}
		target = id
	}
	err := r.call(ctx, func(ctx context.Context) error {
		return r.temporal.SignalWorkflow(ctx, target, "", m.signal, m.arg)
	})
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return outcomeSignaled, target, nil
	case isSignalLimit(err):
		return outcomeSignalLimit, target, err
	case !errors.As(err, &notFound):
		return outcomeUnavailable, target, err
	}
	// The transfer has closed, or never existed.
	final, exists, err := r.finalStatus(ctx, target)
	switch {
	case err != nil:
		return outcomeUnavailable, target, err
	case !exists:
		return r.noTransfer(ctx, m, target)
	case m.review == nil || covered(final, m):
		return outcomeAcknowledged, target, nil
	}
	m.review.input.Reason = workflows.ReviewClosedConflict
	return r.toReview(ctx, m, target)
}

// isSignalLimit reports whether Temporal refused a signal because the workflow has taken as many signals as its
// namespace allows (history.maximumSignalsPerExecution: InvalidArgument "exceeded workflow execution limit for
// signal events"), or too many are pending (ResourceExhausted). Retrying does not help: the answer is a 4xx.
func isSignalLimit(err error) bool {
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) && strings.Contains(invalid.Error(), "limit for signal") {
		return true
	}
	var exhausted *serviceerror.ResourceExhausted
	return errors.As(err, &exhausted) && exhausted.Cause == enumspb.RESOURCE_EXHAUSTED_CAUSE_CONCURRENT_LIMIT
}

// covered reports whether a closed transfer's final state already includes m, by the state machine's rule
// (workflows.Covers): a ledger movement is covered only by a transfer that took one (settled) or never waited for
// one (confirmed); an unsettled transfer gave up waiting, so a movement that comes after all is news.
func covered(final workflows.Status, m *message) bool {
	e := workflows.EventOf(m.status)
	if m.signal == workflows.SignalLedger {
		e = workflows.EventLedger
	}
	return workflows.Covers(final, e)
}

// noTransfer handles a message no transfer workflow matches.
func (r *router) noTransfer(ctx context.Context, m *message, target string) (outcome, string, error) {
	if m.review == nil {
		return outcomeNoTransfer, "", nil
	}
	if m.review.input.Reason == "" {
		m.review.input.Reason = workflows.ReviewNoTransfer
	}
	return r.toReview(ctx, m, target)
}

// toReview signals the message's review workflow, starting it if needed. REJECT_DUPLICATE keeps a late
// redelivery from reopening a resolved review: that answer means the event was handled.
func (r *router) toReview(ctx context.Context, m *message, transferWorkflowID string) (outcome, string, error) {
	rv := m.review
	id := workflows.ReviewWorkflowID(rv.key)
	in := rv.input
	in.TransferWorkflowID = transferWorkflowID
	opts := client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             r.taskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		StaticSummary:         "Needs review: " + in.Reason,
	}
	err := r.call(ctx, func(ctx context.Context) error {
		_, err := r.temporal.SignalWithStartWorkflow(ctx, id, rv.signal, rv.arg, opts, workflows.ReviewWorkflow, in)
		return err
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return outcomeReview, id, nil
	case errors.As(err, &started):
		return outcomeReviewClosed, id, nil
	}
	return outcomeUnavailable, id, err
}

// finalStatus reads a transfer's TransferStatus search attribute from Temporal's record of the workflow.
func (r *router) finalStatus(ctx context.Context, workflowID string) (workflows.Status, bool, error) {
	var resp *workflowservice.DescribeWorkflowExecutionResponse
	err := r.call(ctx, func(ctx context.Context) (err error) {
		resp, err = r.temporal.DescribeWorkflowExecution(ctx, workflowID, "")
		return err
	})
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	info := resp.GetWorkflowExecutionInfo()
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		// Closed a moment ago by the signal's answer, running now: only a retry can tell.
		return "", false, fmt.Errorf("%w: %s is running again", errUnavailable, workflowID)
	}
	var status string
	if p := info.GetSearchAttributes().GetIndexedFields()[workflows.SearchTransferStatus.GetName()]; p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &status); err != nil {
			return "", false, fmt.Errorf("decode %s of %s: %w", workflows.SearchTransferStatus.GetName(), workflowID, err)
		}
	}
	return workflows.Status(status), true, nil
}

// Visibility is eventually consistent: a transfer that set its search attribute a moment ago may not be listed
// yet, so a miss is looked up again a few times before it counts.
const (
	searchAttempts = 3
	searchBackoff  = 200 * time.Millisecond
)

// find looks a transfer workflow up by its ConnectSessionID, else its ConnectTransferID
// (workflows.ConnectIDQueries); "" when none has it.
func (r *router) find(ctx context.Context, sessionID, connectID string) (string, error) {
	queries := workflows.ConnectIDQueries(sessionID, connectID)
	if len(queries) == 0 {
		return "", nil // no id Connect issues looks like these, so no transfer carries them
	}
	for attempt := 1; ; attempt++ {
		for _, q := range queries {
			id, err := r.search(ctx, q)
			if err != nil || id != "" {
				return id, err
			}
		}
		if attempt == searchAttempts {
			return "", nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", errUnavailable, ctx.Err())
		case <-time.After(searchBackoff):
		}
	}
}

// maxSearchResults bounds one visibility lookup: a key names one transfer, and a few in a bad case.
const maxSearchResults = 20

// search returns the transfer workflow a ConnectIDQueries query lists, preferring a running one.
func (r *router) search(ctx context.Context, query string) (string, error) {
	var resp *workflowservice.ListWorkflowExecutionsResponse
	err := r.call(ctx, func(ctx context.Context) (err error) {
		resp, err = r.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: maxSearchResults,
			Query:    query,
		})
		return err
	})
	if err != nil {
		return "", err
	}
	return workflows.PickTransfer(resp.GetExecutions()), nil
}

// call runs one Temporal call under the per-call timeout.
func (r *router) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return f(ctx)
}
