// Package reconcile reads Zero Hash's ledger back through GET /movements and routes every deposit and withdrawal
// movement the way a balance webhook is routed, so a webhook Zero Hash gave up on still settles its transfer. It
// holds the run's activities (registered by the worker), the Temporal Schedule that starts runs
// (EnsureSchedule), and RunNow, which starts one at once (the starter's `reconcile` command; the transfer API
// later). The workflows themselves are workflows.ReconcileWorkflow and workflows.ReconcileCursorWorkflow.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// Lister reads one page of GET /movements; *zerohash.Client is one.
type Lister interface {
	Movements(ctx context.Context, q zerohash.MovementsQuery) (zerohash.MovementsPage, error)
}

// Outcome is what routing did with one movement.
type Outcome string

const (
	OutcomeApplied      Outcome = "applied"       // an open transfer took it, and did not have it before
	OutcomeAlreadyKnown Outcome = "already_known" // its transfer had it, or its closed state covers it
	OutcomeUnmatched    Outcome = "unmatched"     // no transfer took it: it is in its review workflow
	OutcomeNotOurs      Outcome = "not_ours"      // it names no Connect transfer
)

// Router routes one movement exactly as the balance webhook path does (match to its transfer, signal it, or open
// its review), marking the LedgerMovement as coming from reconciliation. An error means nothing is known to have
// happened: the activity fails and is retried, and the transfer and review dedupe on the movement id.
type Router interface {
	Route(ctx context.Context, mv zerohash.Movement) (Outcome, error)
}

// Activities are the reconciliation run's activities. Register them with Register.
type Activities struct {
	ZeroHash Lister
	Router   Router
	// Temporal reads and advances the cursor workflow.
	Temporal client.Client
	// TaskQueue is where the cursor workflow runs.
	TaskQueue string
	// Now is the clock for the first run's lookback; nil means time.Now.
	Now func() time.Time
}

// Registry is the part of worker.Worker Register needs.
type Registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Register registers the three activities under the names workflows.ReconcileWorkflow calls.
func (a *Activities) Register(r Registry) {
	r.RegisterActivityWithOptions(a.ReadCursor, activity.RegisterOptions{Name: workflows.ActivityReconcileReadCursor})
	r.RegisterActivityWithOptions(a.Movements, activity.RegisterOptions{Name: workflows.ActivityReconcileMovements})
	r.RegisterActivityWithOptions(a.CommitCursor, activity.RegisterOptions{Name: workflows.ActivityReconcileCommitCursor})
}

// ReadCursor returns the cursor workflow's state, starting the cursor workflow when it does not exist yet.
func (a *Activities) ReadCursor(ctx context.Context) (workflows.ReconcileCursorState, error) {
	start := a.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.ReconcileCursorWorkflowID,
		TaskQueue:                a.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Zero Hash reconciliation cursor",
	}, workflows.ReconcileCursorWorkflow, workflows.ReconcileCursorState{})
	h, err := a.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			WorkflowID:   workflows.ReconcileCursorWorkflowID,
			UpdateName:   workflows.UpdateReconcileCursor,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return workflows.ReconcileCursorState{}, fmt.Errorf("read cursor workflow %s: %w", workflows.ReconcileCursorWorkflowID, err)
	}
	var st workflows.ReconcileCursorState
	if err := h.Get(ctx, &st); err != nil {
		return workflows.ReconcileCursorState{}, fmt.Errorf("read cursor workflow %s: %w", workflows.ReconcileCursorWorkflowID, err)
	}
	return st, nil
}

// CommitCursor advances the cursor; false (and no error) when another run advanced it first.
func (a *Activities) CommitCursor(ctx context.Context, adv workflows.ReconcileAdvance) (bool, error) {
	h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.ReconcileCursorWorkflowID,
		UpdateName:   workflows.UpdateReconcileAdvance,
		Args:         []any{adv},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	switch {
	case err == nil:
		return true, nil
	case workflows.IsStaleCursor(err):
		activity.GetLogger(ctx).Info("reconciliation cursor was advanced by another run; keeping its cursor", "error", err)
		return false, nil
	}
	return false, fmt.Errorf("advance cursor workflow %s: %w", workflows.ReconcileCursorWorkflowID, err)
}

// progress is what Movements heartbeats after each page, so a retry resumes at the next page.
type progress struct {
	TypeIndex int                        `json:"type_index"`
	NextPage  int                        `json:"next_page"`
	SinceMS   int64                      `json:"since_ms"`
	Summary   workflows.ReconcileSummary `json:"summary"`
	Seen      []workflows.SeenMovement   `json:"seen"`
}

// Movements pages GET /movements for each movement type since the cursor (its high water minus the overlap, or
// the initial lookback on the first run), newest first, and routes every movement it has not handled yet. It
// heartbeats after each page with its progress; a retried attempt resumes from there. Paging newest first is
// safe while new movements arrive: they push older ones to later pages, never to earlier ones.
func (a *Activities) Movements(ctx context.Context, in workflows.ReconcileMovementsInput) (workflows.ReconcileMovementsResult, error) {
	if a.ZeroHash == nil || a.Router == nil {
		return workflows.ReconcileMovementsResult{}, temporal.NewNonRetryableApplicationError(
			"worker has no Zero Hash client or router for reconciliation", "ReconcileNotConfigured", nil)
	}
	cfg := in.Input.WithDefaults()
	p := progress{NextPage: 1}
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			return workflows.ReconcileMovementsResult{}, fmt.Errorf("read heartbeat details: %w", err)
		}
	} else {
		p.SinceMS = sinceMS(in.Cursor, cfg, a.now())
		p.Summary.SinceMS = p.SinceMS
	}
	handled := map[string]bool{} // type:id already handled, by an earlier run (Recent) or this one; only looked up
	for _, s := range in.Cursor.Recent {
		handled[s.Type+":"+s.ID] = true
	}
	for _, s := range p.Seen {
		handled[s.Type+":"+s.ID] = true
	}
	for ; p.TypeIndex < len(cfg.MovementTypes); p.TypeIndex, p.NextPage = p.TypeIndex+1, 1 {
		typ := cfg.MovementTypes[p.TypeIndex]
		for {
			page, err := a.ZeroHash.Movements(ctx, zerohash.MovementsQuery{Page: p.NextPage, PageSize: cfg.PageSize,
				MovementType: typ, SinceMillis: p.SinceMS})
			if err != nil {
				return workflows.ReconcileMovementsResult{}, listError(err)
			}
			p.Summary.Pages++
			for _, mv := range page.Movements {
				if mv.MovementType != "" && mv.MovementType != typ {
					continue // not what was asked for; its own type's listing has it
				}
				key := typ + ":" + mv.MovementID
				if handled[key] {
					continue
				}
				out, err := a.Router.Route(ctx, mv)
				if err != nil {
					return workflows.ReconcileMovementsResult{}, temporal.NewApplicationErrorWithOptions(
						fmt.Sprintf("route movement %s: %v", mv.MovementID, err), "ReconcileRouteUnavailable",
						temporal.ApplicationErrorOptions{Cause: err})
				}
				handled[key] = true
				p.Seen = append(p.Seen, workflows.SeenMovement{ID: mv.MovementID, Type: typ, TimestampMS: mv.MovementTimestamp})
				p.Summary.Seen++
				switch out {
				case OutcomeApplied:
					p.Summary.Applied++
				case OutcomeAlreadyKnown:
					p.Summary.AlreadyKnown++
				case OutcomeUnmatched:
					p.Summary.Unmatched++
				default:
					p.Summary.NotOurs++
				}
			}
			p.NextPage++
			more := page.More(cfg.PageSize) && len(page.Movements) > 0
			if !more {
				break
			}
			activity.RecordHeartbeat(ctx, p)
		}
		next := p
		next.TypeIndex, next.NextPage = p.TypeIndex+1, 1
		activity.RecordHeartbeat(ctx, next)
	}
	// The workflow needs only the newest movement and the ids within the overlap before it (ReconcileCursor.Advance
	// keeps no others): a first run over days of movements returns a bounded result.
	recent := workflows.ReconcileCursor{}.Advance(p.Seen, cfg.Overlap).Recent
	return workflows.ReconcileMovementsResult{Summary: p.Summary, Seen: recent}, nil
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// sinceMS is where a run reads from: the high water minus the overlap, or the initial lookback before any run.
func sinceMS(c workflows.ReconcileCursor, in workflows.ReconcileInput, now time.Time) int64 {
	oldest := max(now.Add(-workflows.MaxReconcileLookback).UnixMilli(), 0)
	if c.HighWaterMS == 0 {
		return max(now.Add(-in.InitialLookback).UnixMilli(), oldest)
	}
	return max(c.HighWaterMS-in.Overlap.Milliseconds(), oldest)
}

// listError turns a GET /movements failure into an application error Temporal retries by the client's rules: a
// 429's Retry-After becomes the next retry delay; 5xx and lost answers retry with backoff; 4xx fail the run.
func listError(err error) error {
	var apiErr *zerohash.APIError
	status := 0
	if errors.As(err, &apiErr) {
		status = apiErr.StatusCode
	} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "ZeroHashInvalidRequest", err)
	}
	retryable, after := zerohash.RetryInfo(err)
	name := "ZeroHashMovements"
	switch {
	case status == 0:
		name += "Unreachable"
	case status == http.StatusTooManyRequests:
		name += "RateLimited"
	case status >= 500:
		name += "ServerError"
	default:
		name += fmt.Sprintf("HTTP%d", status)
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), name, temporal.ApplicationErrorOptions{
		NonRetryable: !retryable, NextRetryDelay: after, Cause: err})
}
