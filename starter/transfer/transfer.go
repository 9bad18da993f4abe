// Package transfer is what a platform's Go backend calls to start Connect transfers and read their state.
// Starting is update-with-start: one round trip creates a new transfer's workflow (a second one joins a transfer
// that exists) and returns the session JWT for the frontend once Connect has opened the session.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/reconcile"
	"github.com/connectflow/connectflow/workflows"
)

// Options configure a Client.
type Options struct {
	TaskQueue string // default workflows.DefaultTaskQueue
}

// Client starts and inspects transfer workflows through a Temporal client it does not own.
type Client struct {
	temporal  client.Client
	taskQueue string
}

// NewClient wraps a connected Temporal client.
func NewClient(c client.Client, opts Options) *Client {
	if opts.TaskQueue == "" {
		opts.TaskQueue = workflows.DefaultTaskQueue
	}
	return &Client{temporal: c, taskQueue: opts.TaskQueue}
}

// Started is a transfer whose Connect session is open: hand JWT to the frontend's Auth SDK.
type Started struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	SessionID  string    `json:"session_id"`
	JWT        string    `json:"jwt"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Status is set when the transfer already existed and had finished; empty for a live transfer.
	Status workflows.Status `json:"status,omitempty"`
	// Created is true when this call's start created the workflow, false when it found the transfer's workflow
	// there already (a retry, or a concurrent start that won).
	Created bool `json:"-"`
}

// ErrBusy is what Start returns (wrapped in a *BusyError) for a transfer started with if_busy=refuse while
// another transfer of the same reference still awaits its user. Nothing was started.
var ErrBusy = errors.New("another transfer of this reference awaits its user")

// BusyError names the transfer that makes a reference busy; errors.Is(err, ErrBusy) holds.
type BusyError struct {
	WorkflowID string // the transfer awaiting its user
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s: %s (if_busy=%s)", ErrBusy, e.WorkflowID, workflows.IfBusyRefuse)
}

func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// MaxTransferIDBytes is the longest transfer id Start takes, the transfer API's bound (openapi.json). Within it,
// every webhook-id of the transfer's notifications (its workflow id, '.', '%' and whitespace percent-encoded, then
// ":<sequence>") stays within what platformhook signs; a longer id could have every notification go to review.
const MaxTransferIDBytes = 128

// validateStart checks in as Start takes it: in.Validate (what the workflow itself checks) and a transfer id of
// at most MaxTransferIDBytes.
func validateStart(in workflows.TransferInput) error {
	if err := in.Validate(); err != nil {
		return err
	}
	if n := len(in.TransferID); n > MaxTransferIDBytes {
		return fmt.Errorf("transfer_id: %d bytes, at most %d bytes", n, MaxTransferIDBytes)
	}
	return nil
}

// Start starts the transfer's workflow, or joins the one that exists for the same kind and transfer id, and
// waits until its Connect session is open. It never opens a second session for one transfer. Started.Created says
// whether this call created the workflow. A transfer id over MaxTransferIDBytes is refused before anything is asked
// of Temporal.
//
// Connect keeps one session per reference: the new session invalidates an older one, and the transfer that
// awaited its user there ends superseded. With in.IfBusy = refuse, Start instead returns a *BusyError (ErrBusy)
// naming that transfer, before anything starts. The check reads Temporal's visibility, which lags by a moment. It
// is for a new transfer only: a repeated start of one that exists answers as any repeat does.
func (c *Client) Start(ctx context.Context, in workflows.TransferInput) (Started, error) {
	if err := validateStart(in); err != nil {
		return Started{}, fmt.Errorf("invalid transfer: %w", err)
	}
	id := workflows.WorkflowID(in.Kind, in.TransferID)
	if in.IfBusy == workflows.IfBusyRefuse {
		_, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			if err := c.refuseIfBusy(ctx, id, in.ReferenceID); err != nil {
				return Started{}, err
			}
		case err != nil:
			return Started{}, fmt.Errorf("find %s: %w", id, err)
		}
	}
	// First as a new workflow only (conflict policy FAIL), so that the answer tells whether this call created it;
	// when the workflow exists, join it (USE_EXISTING) for its session. The SDK does not report whether an
	// update-with-start's start created the workflow, so the second round trip, paid by repeats only, is how to
	// know. A finished transfer is refused by both (REJECT_DUPLICATE): its recorded state answers.
	handle, err := c.updateWithStart(ctx, id, in, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
	created := true
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		created = false
		handle, err = c.updateWithStart(ctx, id, in, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
	}
	if errors.As(err, &already) {
		return c.existing(ctx, id)
	}
	if err != nil {
		return Started{}, fmt.Errorf("start %s: %w", id, err)
	}
	var s workflows.SessionInfo
	if err := handle.Get(ctx, &s); err != nil {
		return Started{}, fmt.Errorf("%s: %w", id, err)
	}
	return Started{WorkflowID: id, RunID: handle.RunID(), SessionID: s.SessionID, JWT: s.JWT, ExpiresAt: s.ExpiresAt,
		Created: created}, nil
}

// updateWithStart starts the transfer's workflow with the session update, under the conflict policy given.
func (c *Client) updateWithStart(ctx context.Context, id string, in workflows.TransferInput,
	conflict enumspb.WorkflowIdConflictPolicy) (client.WorkflowUpdateHandle, error) {
	start := c.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: conflict,
		// A finished transfer is never run again: a late start must not open a new session.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchTransferKind.ValueSet(string(in.Kind)),
			workflows.SearchTransferStatus.ValueSet(string(workflows.StatusCreatingSession)),
			workflows.SearchConnectReferenceID.ValueSet(in.ReferenceID),
		),
		StaticSummary: workflows.Summary(in.Kind, in.Amount, in.Asset, in.ReferenceID),
		StaticDetails: staticDetails(in),
	}, workflows.TransferWorkflow, in)
	return c.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateSession,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
}

// refuseIfBusy returns a *BusyError when a transfer of reference other than id awaits its user.
func (c *Client) refuseIfBusy(ctx context.Context, id, reference string) error {
	resp, err := c.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: workflows.QueryAwaitingUser(reference), PageSize: 10})
	if err != nil {
		return fmt.Errorf("check whether reference is busy: %w", err)
	}
	for _, ex := range resp.GetExecutions() {
		if other := ex.GetExecution().GetWorkflowId(); other != id {
			return &BusyError{WorkflowID: other}
		}
	}
	return nil
}

// staticDetails is the fixed part of what an operator reads in the UI; the workflow keeps the current part.
func staticDetails(in workflows.TransferInput) string {
	d := fmt.Sprintf("**%s** `%s` for reference `%s`", in.Kind, in.TransferID, in.ReferenceID)
	if in.Kind == connect.KindWithdrawal {
		d += fmt.Sprintf("\n\nWithdrawal of %s %s on %s", in.Amount, in.Asset, in.Network)
	}
	if in.AwaitLedger {
		d += "\n\nStays open after confirmation until the Zero Hash ledger movement arrives (then `settled`)."
	}
	return d
}

// existing answers a start for a transfer whose workflow already finished, from its recorded state.
func (c *Client) existing(ctx context.Context, id string) (Started, error) {
	st, runID, err := c.query(ctx, id)
	if err != nil {
		return Started{}, err
	}
	if st.Session == nil {
		return Started{}, fmt.Errorf("%s already ended %s without a session: %s", id, st.Status, st.FailureReason)
	}
	return Started{WorkflowID: id, RunID: runID, SessionID: st.Session.SessionID, JWT: st.Session.JWT,
		ExpiresAt: st.Session.ExpiresAt, Status: st.Status}, nil
}

// Status returns a transfer's current record: its status and every event it received.
func (c *Client) Status(ctx context.Context, kind connect.Kind, transferID string) (workflows.TransferState, error) {
	if !kind.Valid() {
		return workflows.TransferState{}, fmt.Errorf("kind: must be deposit or withdrawal, got %q", kind)
	}
	if transferID == "" {
		return workflows.TransferState{}, errors.New("transfer id: required")
	}
	st, _, err := c.query(ctx, workflows.WorkflowID(kind, transferID))
	return st, err
}

func (c *Client) query(ctx context.Context, id string) (workflows.TransferState, string, error) {
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return workflows.TransferState{}, "", fmt.Errorf("find %s: %w", id, err)
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	v, err := c.temporal.QueryWorkflow(ctx, id, runID, workflows.QueryState)
	if err != nil {
		return workflows.TransferState{}, "", fmt.Errorf("query %s: %w", id, err)
	}
	var st workflows.TransferState
	if err := v.Get(&st); err != nil {
		return workflows.TransferState{}, "", fmt.Errorf("decode state of %s: %w", id, err)
	}
	return st, runID, nil
}

// Onboarding issues a Zero Hash KYC onboarding token through the onboarding workflow and waits for it.
func (c *Client) Onboarding(ctx context.Context, req workflows.OnboardingRequest) (string, error) {
	run, err := c.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:            "onboarding-" + uuid.NewString(),
		TaskQueue:     c.taskQueue,
		StaticSummary: "Onboarding token",
	}, workflows.OnboardingWorkflow, req)
	if err != nil {
		return "", fmt.Errorf("start onboarding: %w", err)
	}
	var out activities.OnboardingResult
	if err := run.Get(ctx, &out); err != nil {
		return "", fmt.Errorf("onboarding %s: %w", run.GetID(), err)
	}
	return out.Token, nil
}

// ResolveTransfer records an operator's decision on a stalled or timed-out transfer and returns its final result.
func (c *Client) ResolveTransfer(ctx context.Context, kind connect.Kind, transferID string, r workflows.Resolution) (workflows.TransferResult, error) {
	var out workflows.TransferResult
	err := c.resolve(ctx, workflows.WorkflowID(kind, transferID), r, &out)
	return out, err
}

// ResolveReview records an operator's decision on a review workflow (an event no transfer could take).
func (c *Client) ResolveReview(ctx context.Context, reviewWorkflowID string, r workflows.Resolution) (workflows.ReviewState, error) {
	var out workflows.ReviewState
	err := c.resolve(ctx, reviewWorkflowID, r, &out)
	return out, err
}

func (c *Client) resolve(ctx context.Context, workflowID string, r workflows.Resolution, out any) error {
	if err := r.Validate(); err != nil {
		return err
	}
	h, err := c.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		UpdateName:   workflows.UpdateResolve,
		Args:         []any{r},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fmt.Errorf("resolve %s: %w", workflowID, err)
	}
	if err := h.Get(ctx, out); err != nil {
		return fmt.Errorf("resolve %s: %w", workflowID, err)
	}
	return nil
}

// Reconciled is one reconciliation run started by Reconcile: its workflow id and summary.
type Reconciled struct {
	WorkflowID string `json:"workflow_id"`
	workflows.ReconcileSummary
}

// Reconcile runs one Zero Hash reconciliation now (reconcile.RunNow: through the schedule when it exists, so the
// run is listed under it) and waits for its summary.
func (c *Client) Reconcile(ctx context.Context) (Reconciled, error) {
	s, id, err := reconcile.RunNow(ctx, c.temporal, c.taskQueue)
	return Reconciled{WorkflowID: id, ReconcileSummary: s}, err
}
