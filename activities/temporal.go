package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
)

// Temporal is the part of client.Client the activities that reach other workflows use; a client.Client is one.
type Temporal interface {
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// SignalMatchingRequest signals every running workflow a visibility query lists, except one.
type SignalMatchingRequest struct {
	Query   string `json:"query"`
	Exclude string `json:"exclude,omitempty"` // a workflow id not to signal (the caller itself)
	Signal  string `json:"signal"`
	// Arg is the signal's argument. The workflow sets its typed value; the activity receives it as the same JSON
	// (a json.RawMessage) and signals it on unchanged, so this package needs no workflow types.
	Arg any `json:"arg"`
}

// UnmarshalJSON keeps Arg as the JSON it was sent as.
func (r *SignalMatchingRequest) UnmarshalJSON(b []byte) error {
	type plain SignalMatchingRequest
	var raw struct {
		plain
		Arg json.RawMessage `json:"arg"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = SignalMatchingRequest(raw.plain)
	r.Arg = raw.Arg
	return nil
}

// maxSignalMatching bounds how many workflows one SignalMatching call signals.
const maxSignalMatching = 1000

// SignalMatching signals each workflow req.Query lists (but req.Exclude) with req.Signal and req.Arg, and
// returns the ids it signalled. A workflow that closed in between is skipped. Signalling again on a retry is
// harmless: the receiver dedupes on the argument's dedupe key.
func (a *Activities) SignalMatching(ctx context.Context, req SignalMatchingRequest) ([]string, error) {
	if a.Temporal == nil {
		return nil, temporal.NewNonRetryableApplicationError("worker has no Temporal client for activities", "TemporalNotConfigured", nil)
	}
	if req.Query == "" || req.Signal == "" {
		return nil, temporal.NewNonRetryableApplicationError("signal matching: query and signal are required", "InvalidRequest", nil)
	}
	var signalled []string
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: req.Query, PageSize: 100, NextPageToken: token})
		if err != nil {
			return signalled, fmt.Errorf("list %q: %w", req.Query, err)
		}
		for _, ex := range resp.GetExecutions() {
			id := ex.GetExecution().GetWorkflowId()
			if id == req.Exclude || ex.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				continue
			}
			err := a.Temporal.SignalWorkflow(ctx, id, "", req.Signal, req.Arg)
			var notFound *serviceerror.NotFound
			switch {
			case errors.As(err, &notFound):
				continue // closed since it was listed
			case err != nil:
				return signalled, fmt.Errorf("signal %s to %s: %w", req.Signal, id, err)
			}
			signalled = append(signalled, id)
			if len(signalled) >= maxSignalMatching {
				return signalled, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return signalled, nil
		}
	}
}

// ReviewRequest signals a review workflow, starting it if it does not exist yet.
type ReviewRequest struct {
	WorkflowID   string `json:"workflow_id"` // one review per event: the same id for every redelivery
	WorkflowType string `json:"workflow_type"`
	Signal       string `json:"signal"`
	// SignalArg and Input are the review's signal argument and workflow input: typed values in the workflow,
	// the same JSON (json.RawMessage) in the activity, passed on unchanged.
	SignalArg any    `json:"signal_arg"`
	Input     any    `json:"input"`
	Summary   string `json:"summary,omitempty"`
}

// UnmarshalJSON keeps SignalArg and Input as the JSON they were sent as.
func (r *ReviewRequest) UnmarshalJSON(b []byte) error {
	type plain ReviewRequest
	var raw struct {
		plain
		SignalArg json.RawMessage `json:"signal_arg"`
		Input     json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = ReviewRequest(raw.plain)
	r.SignalArg, r.Input = raw.SignalArg, raw.Input
	return nil
}

// ReviewOpened says what OpenReview did.
type ReviewOpened struct {
	WorkflowID string `json:"workflow_id"`
	// Closed: the review exists and was resolved already, so the event was handled before.
	Closed bool `json:"closed,omitempty"`
}

// OpenReview signal-with-starts the review workflow req.WorkflowID on this worker's task queue. A resolved review
// is never reopened (REJECT_DUPLICATE): that answer is Closed, not an error. Idempotent by workflow id: a retry
// signals the same review, which dedupes the event.
func (a *Activities) OpenReview(ctx context.Context, req ReviewRequest) (ReviewOpened, error) {
	if a.Temporal == nil {
		return ReviewOpened{}, temporal.NewNonRetryableApplicationError("worker has no Temporal client for activities", "TemporalNotConfigured", nil)
	}
	if req.WorkflowID == "" || req.WorkflowType == "" || req.Signal == "" {
		return ReviewOpened{}, temporal.NewNonRetryableApplicationError("open review: workflow id, type and signal are required", "InvalidRequest", nil)
	}
	opts := client.StartWorkflowOptions{
		ID:                    req.WorkflowID,
		TaskQueue:             activity.GetInfo(ctx).TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		StaticSummary:         req.Summary,
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, req.WorkflowID, req.Signal, req.SignalArg, opts, req.WorkflowType, req.Input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return ReviewOpened{WorkflowID: req.WorkflowID}, nil
	case errors.As(err, &started):
		return ReviewOpened{WorkflowID: req.WorkflowID, Closed: true}, nil
	}
	return ReviewOpened{}, fmt.Errorf("open review %s: %w", req.WorkflowID, err)
}

// OpenSessionRequest opens a transfer's Connect session. Before ChangeSupersedeAfterSession it then told the
// transfers whose session the new one replaced (Connect keeps one session per reference), in the same activity
// (Supersede); under workflows.MachineV2 it then checks whether there is anyone to tell (Others).
type OpenSessionRequest struct {
	Session   connect.SessionRequest `json:"session"`
	Supersede *SignalMatchingRequest `json:"supersede,omitempty"`
	Others    *OthersCheck           `json:"others,omitempty"`
}

// OthersCheck asks, once the session is open, whether a visibility query lists any running workflow but one.
type OthersCheck struct {
	Query   string `json:"query"`
	Exclude string `json:"exclude,omitempty"` // the caller itself
}

// OthersCheckWait bounds OpenSession's OthersCheck, which runs once the session is open: the user waits for the
// session, so a slow visibility store adds at most this, and an unanswered check counts as "maybe" (the workflow
// then runs SignalMatching after the session).
const OthersCheckWait = 100 * time.Millisecond

// OpenedSession is the opened session and what superseding did.
type OpenedSession struct {
	Session    connect.Session `json:"session"`
	Superseded []string        `json:"superseded,omitempty"` // the transfers signalled
	// SupersedeError says why superseding failed; the session stands, and the older transfers end at their own
	// deadline instead. The workflow records it.
	SupersedeError string `json:"supersede_error,omitempty"`
	// NoOthers is true when the OthersCheck answered in time and listed no running workflow but the caller. False
	// means "there may be": listed, failed, not answered within OthersCheckWait, or not asked.
	NoOthers bool `json:"no_others,omitempty"`
}

// OpenSession is CreateSession, then req.Others checked (within OthersCheckWait), then SignalMatching
// (req.Supersede). The check runs only after Connect opened the session, so every transfer of the reference
// whose session the new one replaced (opened before it) has started by then. A retry opens the same session at
// Connect (same request_id) and signals again, which the receivers dedupe. A failure to check or supersede does
// not fail the session: the user is waiting for it.
func (a *Activities) OpenSession(ctx context.Context, req OpenSessionRequest) (OpenedSession, error) {
	s, err := a.CreateSession(ctx, req.Session)
	if err != nil {
		return OpenedSession{}, err
	}
	out := OpenedSession{Session: s}
	if req.Others != nil && a.Temporal != nil {
		out.NoOthers = a.noOthers(ctx, *req.Others)
	}
	if req.Supersede != nil {
		ids, err := a.SignalMatching(ctx, *req.Supersede)
		out.Superseded = ids
		if err != nil {
			out.SupersedeError = err.Error()
			activity.GetLogger(ctx).Warn("older transfers not superseded", "error", err)
		}
	}
	return out, nil
}

// noOthers lists c.Query, for at most OthersCheckWait, and answers true when it lists no running workflow but
// c.Exclude; false when it lists one, or more than a page, or fails or runs out of time (logged).
func (a *Activities) noOthers(ctx context.Context, c OthersCheck) bool {
	ctx, cancel := context.WithTimeout(ctx, OthersCheckWait)
	defer cancel()
	resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: c.Query, PageSize: 2})
	if err != nil {
		activity.GetLogger(ctx).Info("other transfers of the reference not checked: superseding after the session", "error", err)
		return false
	}
	if len(resp.GetNextPageToken()) > 0 {
		return false
	}
	for _, ex := range resp.GetExecutions() {
		if ex.GetExecution().GetWorkflowId() != c.Exclude && ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return false
		}
	}
	return true
}
