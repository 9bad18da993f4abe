package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/workflows"
)

// DefaultEvery is WORKER_RECONCILE_EVERY's default.
const DefaultEvery = 5 * time.Minute

// scheduleNote is the note a worker leaves on the schedule when it pauses it.
const pausedNote = "paused by a worker started with WORKER_RECONCILE_EVERY=0"

// ScheduleAction is what the schedule's action is: what EnsureSchedule creates and compares.
func scheduleAction(taskQueue string) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:            workflows.ReconcileRunWorkflowPrefix,
		Workflow:      workflows.ReconcileWorkflow,
		Args:          []any{workflows.ReconcileInput{}},
		TaskQueue:     taskQueue,
		StaticSummary: "Zero Hash reconciliation run (GET /movements)",
	}
}

// EnsureSchedule makes the reconciliation schedule match every: with every > 0 it creates the schedule when it
// is missing, and updates its interval (and unpauses it) when it differs; with every == 0 it pauses an existing
// schedule (and creates none). It is safe for several workers to call at once: a schedule another worker created
// a moment earlier is then updated, not duplicated. Runs skip while one is still running (overlap SKIP).
func EnsureSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	if every < 0 {
		return fmt.Errorf("reconcile: interval %v is negative", every)
	}
	sc := c.ScheduleClient()
	h := sc.GetHandle(ctx, workflows.ReconcileScheduleID)
	desc, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound) && every == 0:
		return nil
	case errors.As(err, &notFound):
		_, err := sc.Create(ctx, client.ScheduleOptions{
			ID:            workflows.ReconcileScheduleID,
			Spec:          client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
			Action:        scheduleAction(taskQueue),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: max(every, time.Minute),
			Note:          "created by a connectflow worker (WORKER_RECONCILE_EVERY=" + every.String() + ")",
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return fmt.Errorf("reconcile: create schedule %s: %w", workflows.ReconcileScheduleID, err)
		}
		if desc, err = h.Describe(ctx); err != nil {
			return fmt.Errorf("reconcile: describe schedule %s: %w", workflows.ReconcileScheduleID, err)
		}
	case err != nil:
		return fmt.Errorf("reconcile: describe schedule %s: %w", workflows.ReconcileScheduleID, err)
	}
	if every == 0 {
		if desc.Schedule.State != nil && desc.Schedule.State.Paused {
			return nil
		}
		if err := h.Pause(ctx, client.SchedulePauseOptions{Note: pausedNote}); err != nil {
			return fmt.Errorf("reconcile: pause schedule %s: %w", workflows.ReconcileScheduleID, err)
		}
		return nil
	}
	if scheduleMatches(desc, taskQueue, every) {
		return nil
	}
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
		s.Action = scheduleAction(taskQueue)
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
		s.Policy.CatchupWindow = max(every, time.Minute)
		if s.State == nil {
			s.State = &client.ScheduleState{}
		}
		s.State.Paused = false
		s.State.Note = "updated by a connectflow worker (WORKER_RECONCILE_EVERY=" + every.String() + ")"
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return fmt.Errorf("reconcile: update schedule %s: %w", workflows.ReconcileScheduleID, err)
	}
	return nil
}

// scheduleMatches reports whether the schedule runs every interval, unpaused, on taskQueue.
func scheduleMatches(desc *client.ScheduleDescription, taskQueue string, every time.Duration) bool {
	s := desc.Schedule
	if s.Spec == nil || len(s.Spec.Intervals) != 1 || s.Spec.Intervals[0].Every != every || s.Spec.Intervals[0].Offset != 0 ||
		len(s.Spec.Calendars) > 0 || len(s.Spec.CronExpressions) > 0 {
		return false
	}
	if s.State != nil && s.State.Paused {
		return false
	}
	action, ok := s.Action.(*client.ScheduleWorkflowAction)
	return ok && action.TaskQueue == taskQueue
}

// RunNow starts one reconciliation run at once and waits for its summary. When the schedule exists the run is
// the schedule's (triggered, so the UI lists it under the schedule, and allowed to overlap a scheduled run: the
// cursor's compare-and-set keeps the two consistent); otherwise it is started directly with id
// "reconcile-run-manual-<unix ms>". The transfer API's POST /v1/reconcile is meant to call this.
func RunNow(ctx context.Context, c client.Client, taskQueue string) (workflows.ReconcileSummary, string, error) {
	h := c.ScheduleClient().GetHandle(ctx, workflows.ReconcileScheduleID)
	desc, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	var run client.WorkflowRun
	switch {
	case errors.As(err, &notFound):
		run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:            workflows.ReconcileRunWorkflowPrefix + "-manual-" + strconv.FormatInt(time.Now().UnixMilli(), 10),
			TaskQueue:     taskQueue,
			StaticSummary: "Zero Hash reconciliation run, started by hand",
		}, workflows.ReconcileWorkflow, workflows.ReconcileInput{})
		if err != nil {
			return workflows.ReconcileSummary{}, "", fmt.Errorf("reconcile: start a run: %w", err)
		}
	case err != nil:
		return workflows.ReconcileSummary{}, "", fmt.Errorf("reconcile: describe schedule %s: %w", workflows.ReconcileScheduleID, err)
	default:
		if run, err = trigger(ctx, c, h, known(desc)); err != nil {
			return workflows.ReconcileSummary{}, "", err
		}
	}
	var s workflows.ReconcileSummary
	if err := run.Get(ctx, &s); err != nil {
		return s, run.GetID(), fmt.Errorf("reconcile: run %s: %w", run.GetID(), err)
	}
	return s, run.GetID(), nil
}

// known lists the runs the schedule has started so far (recent and running), by workflow id.
func known(desc *client.ScheduleDescription) []string {
	var ids []string
	for _, a := range desc.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			ids = append(ids, a.StartWorkflowResult.WorkflowID)
		}
	}
	for _, r := range desc.Info.RunningWorkflows {
		ids = append(ids, r.WorkflowID)
	}
	return ids
}

// trigger asks the schedule for a run now and returns it once the schedule has started it.
func trigger(ctx context.Context, c client.Client, h client.ScheduleHandle, before []string) (client.WorkflowRun, error) {
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		return nil, fmt.Errorf("reconcile: trigger schedule %s: %w", workflows.ReconcileScheduleID, err)
	}
	for {
		desc, err := h.Describe(ctx)
		if err != nil {
			return nil, fmt.Errorf("reconcile: describe schedule %s: %w", workflows.ReconcileScheduleID, err)
		}
		for _, a := range desc.Info.RecentActions {
			if r := a.StartWorkflowResult; r != nil && !slices.Contains(before, r.WorkflowID) {
				return c.GetWorkflow(ctx, r.WorkflowID, r.FirstExecutionRunID), nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reconcile: schedule %s did not start the triggered run: %w", workflows.ReconcileScheduleID, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
