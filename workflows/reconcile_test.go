package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// reconcileFakes are the run's three activities, scripted.
type reconcileFakes struct {
	state     ReconcileCursorState
	result    ReconcileMovementsResult
	failPages error
	stale     bool
	gotInput  ReconcileMovementsInput
	advances  []ReconcileAdvance
}

func (f *reconcileFakes) register(e *testsuite.TestWorkflowEnvironment) {
	e.RegisterActivityWithOptions(func(context.Context) (ReconcileCursorState, error) { return f.state, nil },
		activity.RegisterOptions{Name: ActivityReconcileReadCursor})
	e.RegisterActivityWithOptions(func(_ context.Context, in ReconcileMovementsInput) (ReconcileMovementsResult, error) {
		f.gotInput = in
		if f.failPages != nil {
			return ReconcileMovementsResult{}, f.failPages
		}
		return f.result, nil
	}, activity.RegisterOptions{Name: ActivityReconcileMovements})
	e.RegisterActivityWithOptions(func(_ context.Context, a ReconcileAdvance) (bool, error) {
		f.advances = append(f.advances, a)
		return !f.stale, nil
	}, activity.RegisterOptions{Name: ActivityReconcileCommitCursor})
}

func newReconcileEnv(f *reconcileFakes) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	e := s.NewTestWorkflowEnvironment()
	e.RegisterWorkflow(ReconcileWorkflow)
	f.register(e)
	return e
}

func TestReconcileRunAdvancesTheCursor(t *testing.T) {
	f := &reconcileFakes{
		state: ReconcileCursorState{Version: 4, Cursor: ReconcileCursor{HighWaterMS: 1_000_000,
			Recent: []SeenMovement{{ID: "old", Type: "deposit", TimestampMS: 999_000}}}},
		result: ReconcileMovementsResult{
			Summary: ReconcileSummary{Pages: 3, Seen: 2, Applied: 1, AlreadyKnown: 1, SinceMS: 400_000},
			Seen: []SeenMovement{{ID: "m1", Type: "deposit", TimestampMS: 1_200_000},
				{ID: "m2", Type: "withdrawal", TimestampMS: 1_150_000}},
		},
	}
	e := newReconcileEnv(f)
	e.ExecuteWorkflow(ReconcileWorkflow, ReconcileInput{Overlap: time.Minute})
	require.NoError(t, e.GetWorkflowError())
	var s ReconcileSummary
	require.NoError(t, e.GetWorkflowResult(&s))
	require.Equal(t, 3, s.Pages)
	require.Equal(t, 1, s.Applied)
	require.Equal(t, int64(1_200_000), s.HighWaterMS)
	require.True(t, s.CursorAdvanced)
	require.False(t, s.StartedAt.IsZero())

	// The run paged from the cursor it read, with the defaults filled.
	require.Equal(t, f.state.Cursor, f.gotInput.Cursor)
	require.Equal(t, DefaultReconcilePageSize, f.gotInput.Input.PageSize)
	require.Equal(t, []string{"deposit", "withdrawal"}, f.gotInput.Input.MovementTypes)
	// It advanced from the version it read; "old" fell out of the overlap window (1 min before 1_200_000 ms).
	require.Len(t, f.advances, 1)
	require.Equal(t, int64(4), f.advances[0].FromVersion)
	require.Equal(t, int64(1_200_000), f.advances[0].Cursor.HighWaterMS)
	require.ElementsMatch(t, []string{"m1", "m2"}, ids(f.advances[0].Cursor.Recent))
}

func ids(s []SeenMovement) []string {
	var out []string
	for _, m := range s {
		out = append(out, m.ID)
	}
	return out
}

func TestReconcileRunThatFailsLeavesTheCursor(t *testing.T) {
	f := &reconcileFakes{state: ReconcileCursorState{Version: 2, Cursor: ReconcileCursor{HighWaterMS: 5000}},
		failPages: temporal.NewNonRetryableApplicationError("zerohash: 403 Forbidden", "ZeroHashMovementsHTTP403", nil)}
	e := newReconcileEnv(f)
	e.ExecuteWorkflow(ReconcileWorkflow, ReconcileInput{})
	err := e.GetWorkflowError()
	require.Error(t, err)
	require.ErrorContains(t, err, "cursor left at 5000")
	require.Empty(t, f.advances, "a failed run must not advance the cursor")
}

func TestReconcileRunWhenAnotherRunAdvancedFirst(t *testing.T) {
	f := &reconcileFakes{stale: true, result: ReconcileMovementsResult{Seen: []SeenMovement{{ID: "m", Type: "deposit", TimestampMS: 7}}}}
	e := newReconcileEnv(f)
	e.ExecuteWorkflow(ReconcileWorkflow, ReconcileInput{})
	require.NoError(t, e.GetWorkflowError())
	var s ReconcileSummary
	require.NoError(t, e.GetWorkflowResult(&s))
	require.False(t, s.CursorAdvanced)
}

func TestReconcileCursorWorkflowCompareAndSet(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	e := s.NewTestWorkflowEnvironment()
	e.RegisterWorkflow(ReconcileCursorWorkflow)
	update := func(at time.Duration, name string, arg any, done func(ReconcileCursorState, error)) {
		e.RegisterDelayedCallback(func() {
			e.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { done(ReconcileCursorState{}, err) },
				OnComplete: func(v any, err error) {
					st, _ := v.(ReconcileCursorState)
					done(st, err)
				},
			}, arg)
		}, at)
	}
	var results []error
	var last ReconcileCursorState
	record := func(st ReconcileCursorState, err error) { results = append(results, err); last = st }
	c1 := ReconcileCursor{HighWaterMS: 100}
	update(time.Second, UpdateReconcileAdvance, ReconcileAdvance{FromVersion: 0, Cursor: c1}, record)
	update(2*time.Second, UpdateReconcileAdvance, ReconcileAdvance{FromVersion: 0, Cursor: ReconcileCursor{HighWaterMS: 200}}, record)
	update(3*time.Second, UpdateReconcileAdvance, ReconcileAdvance{FromVersion: 1, Cursor: ReconcileCursor{HighWaterMS: 50}}, record)
	update(4*time.Second, UpdateReconcileCursor, nil, record)
	e.RegisterDelayedCallback(func() {
		require.Len(t, results, 4)
		require.NoError(t, results[0])
		require.True(t, IsStaleCursor(results[1]), "advance from an old version: %v", results[1])
		require.True(t, IsStaleCursor(results[2]), "advance backwards: %v", results[2])
		require.NoError(t, results[3])
		require.Equal(t, int64(1), last.Version)
		require.Equal(t, c1, last.Cursor)
		e.CancelWorkflow()
	}, 5*time.Second)
	e.ExecuteWorkflow(ReconcileCursorWorkflow, ReconcileCursorState{})
	require.True(t, temporal.IsCanceledError(e.GetWorkflowError()), "%v", e.GetWorkflowError())
}

func TestReconcileCursorWorkflowContinuesAsNew(t *testing.T) {
	defer func(n int) { cursorUpdatesPerRun = n }(cursorUpdatesPerRun)
	cursorUpdatesPerRun = 3
	var s testsuite.WorkflowTestSuite
	e := s.NewTestWorkflowEnvironment()
	e.RegisterWorkflow(ReconcileCursorWorkflow)
	for i := range 3 {
		e.RegisterDelayedCallback(func() {
			e.UpdateWorkflow(UpdateReconcileAdvance, "", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) {
				t.Errorf("advance %d refused: %v", i, err)
			}, OnComplete: func(any, error) {}}, ReconcileAdvance{FromVersion: int64(i), Cursor: ReconcileCursor{HighWaterMS: int64(10 * (i + 1))}})
		}, time.Duration(i+1)*time.Second)
	}
	e.ExecuteWorkflow(ReconcileCursorWorkflow, ReconcileCursorState{})
	err := e.GetWorkflowError()
	var canErr *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &canErr)
	var carried ReconcileCursorState
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(canErr.Input, &carried))
	require.Equal(t, int64(3), carried.Version)
	require.Equal(t, int64(30), carried.Cursor.HighWaterMS)
}

func TestReconcileCursorAdvance(t *testing.T) {
	overlap := 10 * time.Second
	c := ReconcileCursor{HighWaterMS: 50_000, Recent: []SeenMovement{
		{ID: "a", Type: "deposit", TimestampMS: 45_000}, {ID: "b", Type: "deposit", TimestampMS: 49_000}}}
	// Nothing new: the cursor stays, with the ids within the overlap.
	require.Equal(t, c, c.Advance(nil, overlap))
	next := c.Advance([]SeenMovement{{ID: "b", Type: "deposit", TimestampMS: 49_000}, {ID: "c", Type: "withdrawal", TimestampMS: 58_000},
		{ID: "b", Type: "withdrawal", TimestampMS: 30_000}}, overlap)
	require.Equal(t, int64(58_000), next.HighWaterMS)
	require.Equal(t, []string{"b", "c"}, ids(next.Recent), "a and the old withdrawal b fall before 48_000; b is kept once")

	// Over the cap, the newest ids are kept.
	var many []SeenMovement
	for i := range maxRecentIDs + 5 {
		many = append(many, SeenMovement{ID: string(rune('A'+i%26)) + time.Duration(i).String(), Type: "deposit", TimestampMS: int64(100_000 + i)})
	}
	capped := ReconcileCursor{}.Advance(many, time.Hour)
	require.Len(t, capped.Recent, maxRecentIDs)
	require.Equal(t, int64(100_005), capped.Recent[0].TimestampMS)
	require.Equal(t, int64(100_000+maxRecentIDs+4), capped.HighWaterMS)
}

func TestIsStaleCursor(t *testing.T) {
	require.True(t, IsStaleCursor(temporal.NewApplicationError("x", ErrStaleCursor)))
	require.False(t, IsStaleCursor(errors.New("x")))
}

func TestReconcileRunReportsMetrics(t *testing.T) {
	m := newRecorder()
	var s testsuite.WorkflowTestSuite
	s.SetMetricsHandler(m)
	e := s.NewTestWorkflowEnvironment()
	e.RegisterWorkflow(ReconcileWorkflow)
	f := &reconcileFakes{result: ReconcileMovementsResult{Summary: ReconcileSummary{Pages: 2, Seen: 4, Applied: 2, AlreadyKnown: 1, Unmatched: 1}}}
	f.register(e)
	e.ExecuteWorkflow(ReconcileWorkflow, ReconcileInput{})
	require.NoError(t, e.GetWorkflowError())
	got := m.ours()
	for name, want := range map[string]int64{
		MetricReconcileRuns + " result=ok":                  1,
		MetricReconcilePages:                                2,
		MetricReconcileMovements + " outcome=seen":          4,
		MetricReconcileMovements + " outcome=applied":       2,
		MetricReconcileMovements + " outcome=already_known": 1,
		MetricReconcileMovements + " outcome=unmatched":     1,
	} {
		require.Equal(t, want, got[name], name)
	}
}
