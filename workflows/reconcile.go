package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Reconciliation reads Zero Hash's ledger back (GET /movements) so a balance webhook Zero Hash gave up on still
// settles its transfer. Three pieces:
//
//   - A Temporal Schedule (ReconcileScheduleID, every WORKER_RECONCILE_EVERY) starts one ReconcileWorkflow per
//     interval; its runs, each with its ReconcileSummary as result, are listed under the schedule in the UI.
//   - ReconcileWorkflow: reads the cursor, pages GET /movements of the deposit and withdrawal kinds since it in one
//     activity (a heartbeat per page; a retry resumes from the last page heartbeated), routes each movement exactly
//     as a balance webhook is routed, then advances the cursor. A run that fails never reaches the advance, so the
//     cursor stays where it was and the next run reads the same movements again.
//   - ReconcileCursorWorkflow (ReconcileCursorWorkflowID): one long-lived workflow that keeps the cursor durably
//     between the schedule's separate runs. Runs read it and advance it through updates (compare-and-set on its
//     version, so two runs at once cannot move it backwards); it continues as new when its history grows.
//
// The activities run on the worker (package reconcile); they are named here so this package needs no import of it.
const (
	ReconcileScheduleID        = "connectflow-reconcile"
	ReconcileCursorWorkflowID  = "reconcile-cursor"
	ReconcileRunWorkflowPrefix = "reconcile-run" // the schedule appends the scheduled time; manual runs a timestamp

	UpdateReconcileCursor  = "reconcile-cursor"  // returns ReconcileCursorState
	UpdateReconcileAdvance = "reconcile-advance" // takes ReconcileAdvance, returns ReconcileCursorState

	ActivityReconcileReadCursor   = "ReconcileReadCursor"
	ActivityReconcileMovements    = "ReconcileMovements"
	ActivityReconcileCommitCursor = "ReconcileCommitCursor"

	// LedgerViaWebhook and LedgerViaReconciliation say how a LedgerMovement reached its transfer.
	LedgerViaWebhook        = "webhook"
	LedgerViaReconciliation = "reconciliation"
)

// Defaults of ReconcileInput.
const (
	DefaultReconcilePageSize = 100
	// DefaultReconcileOverlap re-reads this much before the newest movement seen, for a movement the ledger
	// records late with an earlier timestamp; ids an earlier run handled in it are skipped.
	DefaultReconcileOverlap = 10 * time.Minute
	// DefaultReconcileLookback is where the first run starts: a week (the review horizon a transfer waits for
	// its movement) and a day.
	DefaultReconcileLookback = DefaultReviewHorizon + 24*time.Hour
	// MaxReconcileLookback is how far back GET /movements reaches (two months).
	MaxReconcileLookback = 60 * 24 * time.Hour
	// maxRecentIDs bounds the ids the cursor keeps; past it the oldest are forgotten and only re-read.
	maxRecentIDs = 1000
)

// cursorUpdatesPerRun: the cursor workflow continues as new after this many advances (a variable for tests).
var cursorUpdatesPerRun = 500

// ReconcileInput configures one run; zero fields take the defaults. The schedule starts runs with the zero value.
type ReconcileInput struct {
	PageSize        int           `json:"page_size,omitempty"`
	Overlap         time.Duration `json:"overlap,omitempty"`
	InitialLookback time.Duration `json:"initial_lookback,omitempty"`
	// MovementTypes are listed one after another; default deposit, withdrawal.
	MovementTypes []string `json:"movement_types,omitempty"`
}

// WithDefaults fills the zero fields with the defaults.
func (in ReconcileInput) WithDefaults() ReconcileInput {
	if in.PageSize <= 0 || in.PageSize > DefaultReconcilePageSize {
		in.PageSize = DefaultReconcilePageSize
	}
	if in.Overlap <= 0 {
		in.Overlap = DefaultReconcileOverlap
	}
	if in.InitialLookback <= 0 {
		in.InitialLookback = DefaultReconcileLookback
	}
	in.InitialLookback = min(in.InitialLookback, MaxReconcileLookback)
	if len(in.MovementTypes) == 0 {
		in.MovementTypes = []string{"deposit", "withdrawal"}
	}
	return in
}

// SeenMovement is a movement id a run handled, with its timestamp (Unix ms).
type SeenMovement struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	TimestampMS int64  `json:"ts"`
}

// ReconcileCursor is where reconciliation stands: every movement before HighWaterMS-overlap has been routed.
type ReconcileCursor struct {
	// HighWaterMS is the newest movement_timestamp (Unix ms) a successful run has seen; 0 before the first run.
	HighWaterMS int64 `json:"high_water_ms,omitempty"`
	// Recent are the movements handled at or after HighWaterMS-overlap, skipped when a run reads them again.
	Recent []SeenMovement `json:"recent,omitempty"`
}

// Advance returns the cursor after a run that saw seen (in addition to what c.Recent holds), keeping the ids
// within overlap of the new high water, at most maxRecentIDs of them (the newest).
func (c ReconcileCursor) Advance(seen []SeenMovement, overlap time.Duration) ReconcileCursor {
	next := ReconcileCursor{HighWaterMS: c.HighWaterMS}
	for _, s := range seen {
		next.HighWaterMS = max(next.HighWaterMS, s.TimestampMS)
	}
	floor := next.HighWaterMS - overlap.Milliseconds()
	keep := map[string]bool{} // only looked up
	add := func(s SeenMovement) {
		if s.TimestampMS >= floor && !keep[s.Type+":"+s.ID] {
			keep[s.Type+":"+s.ID] = true
			next.Recent = append(next.Recent, s)
		}
	}
	for _, s := range c.Recent {
		add(s)
	}
	for _, s := range seen {
		add(s)
	}
	if n := len(next.Recent); n > maxRecentIDs {
		// Keep the newest: sort by timestamp (stable, deterministic), then cut.
		sortSeen(next.Recent)
		next.Recent = next.Recent[n-maxRecentIDs:]
	}
	return next
}

// sortSeen orders by timestamp, then type and id (insertion sort: the list is small and this stays deterministic).
func sortSeen(s []SeenMovement) {
	less := func(a, b SeenMovement) bool {
		if a.TimestampMS != b.TimestampMS {
			return a.TimestampMS < b.TimestampMS
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.ID < b.ID
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// ReconcileSummary is one run's result (and the metric it reports).
type ReconcileSummary struct {
	Pages int `json:"pages"`
	// Seen counts the deposit and withdrawal movements listed (each once, however many pages showed it).
	Seen int `json:"seen"`
	// Applied: signalled to an open transfer that did not have the movement yet.
	Applied int `json:"applied"`
	// AlreadyKnown: the transfer had it (by webhook or an earlier run), or its closed state covers it.
	AlreadyKnown int `json:"already_known"`
	// Unmatched: no transfer could take it; it is in its review workflow (one per movement).
	Unmatched int `json:"unmatched"`
	// NotOurs: movements naming no Connect transfer (no deposit_reference_id / withdrawal_request_id).
	NotOurs int `json:"not_ours"`
	// SinceMS is the movement_timestamp the run read from; HighWaterMS the newest it saw (or kept).
	SinceMS     int64 `json:"since_ms"`
	HighWaterMS int64 `json:"high_water_ms"`
	// CursorAdvanced is false when another run moved the cursor first (its own advance then stands).
	CursorAdvanced bool      `json:"cursor_advanced"`
	StartedAt      time.Time `json:"started_at"`
}

// ReconcileCursorState is the cursor workflow's record.
type ReconcileCursorState struct {
	Cursor  ReconcileCursor `json:"cursor"`
	Version int64           `json:"version"`
	// Last is the summary of the last run that advanced the cursor.
	Last *ReconcileSummary `json:"last,omitempty"`
}

// ReconcileAdvance moves the cursor from the version a run read.
type ReconcileAdvance struct {
	FromVersion int64            `json:"from_version"`
	Cursor      ReconcileCursor  `json:"cursor"`
	Summary     ReconcileSummary `json:"summary"`
}

// ErrStaleCursor is the advance validator's error type when another run moved the cursor first.
const ErrStaleCursor = "StaleReconcileCursor"

// ReconcileMovementsInput is the paging activity's input.
type ReconcileMovementsInput struct {
	Input  ReconcileInput  `json:"input"`
	Cursor ReconcileCursor `json:"cursor"`
}

// ReconcileMovementsResult is what the paging activity saw and did.
type ReconcileMovementsResult struct {
	Summary ReconcileSummary `json:"summary"`
	Seen    []SeenMovement   `json:"seen"`
}

// ReconcileCursorWorkflow keeps the reconciliation cursor between the schedule's runs. Updates: reconcile-cursor
// reads it; reconcile-advance sets it when FromVersion is the current version (else it is refused with
// ErrStaleCursor, leaving the newer cursor). It continues as new after cursorUpdatesPerRun advances or when
// Temporal suggests it, carrying the state.
func ReconcileCursorWorkflow(ctx workflow.Context, st ReconcileCursorState) error {
	advances := 0
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (ReconcileCursorState, error) { return st, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateReconcileCursor, func(workflow.Context) (ReconcileCursorState, error) {
		return st, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateReconcileAdvance,
		func(ctx workflow.Context, a ReconcileAdvance) (ReconcileCursorState, error) {
			st.Cursor = a.Cursor
			st.Version++
			summary := a.Summary
			st.Last = &summary
			advances++
			workflow.SetCurrentDetails(ctx, fmt.Sprintf("Cursor v%d at %s", st.Version,
				time.UnixMilli(st.Cursor.HighWaterMS).UTC().Format(time.RFC3339Nano)))
			return st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, a ReconcileAdvance) error {
			if a.FromVersion != st.Version {
				return temporal.NewApplicationError(fmt.Sprintf("cursor is at version %d, not %d: another run advanced it",
					st.Version, a.FromVersion), ErrStaleCursor)
			}
			if a.Cursor.HighWaterMS < st.Cursor.HighWaterMS {
				return temporal.NewApplicationError("cursor must not move backwards", ErrStaleCursor)
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool {
		return advances >= cursorUpdatesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
	}); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	return workflow.NewContinueAsNewError(ctx, ReconcileCursorWorkflow, st)
}

// Activity options of a run. Paging retries follow the Zero Hash client's rules: a 429's Retry-After (or the
// published 10 s block) becomes the next retry delay; 5xx and lost answers retry with backoff; other 4xx fail the
// run at once. Bounded, so a Zero Hash outage fails the run (cursor unmoved) and the next scheduled run retries.
var (
	reconcilePagingOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	}
	reconcileCursorOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	}
)

// Reconcile metrics, emitted through the worker's metrics handler (Prometheus): counters per run.
const (
	MetricReconcileRuns      = "connectflow_reconcile_runs"      // tag result: ok, failed
	MetricReconcilePages     = "connectflow_reconcile_pages"     // GET /movements pages read
	MetricReconcileMovements = "connectflow_reconcile_movements" // tag outcome: seen, applied, already_known, unmatched, not_ours
)

// ReconcileWorkflow is one reconciliation run: read the cursor, page and route the movements since it, advance
// the cursor. It returns the run's ReconcileSummary; a failed run returns the error and leaves the cursor.
func ReconcileWorkflow(ctx workflow.Context, in ReconcileInput) (ReconcileSummary, error) {
	in = in.WithDefaults()
	metrics := workflow.GetMetricsHandler(ctx)
	summary, err := reconcileRun(ctx, in)
	if err != nil {
		metrics.WithTags(map[string]string{"result": "failed"}).Counter(MetricReconcileRuns).Inc(1)
		return summary, err
	}
	metrics.WithTags(map[string]string{"result": "ok"}).Counter(MetricReconcileRuns).Inc(1)
	metrics.Counter(MetricReconcilePages).Inc(int64(summary.Pages))
	for _, c := range []struct {
		outcome string
		n       int
	}{{"seen", summary.Seen}, {"applied", summary.Applied}, {"already_known", summary.AlreadyKnown},
		{"unmatched", summary.Unmatched}, {"not_ours", summary.NotOurs}} {
		metrics.WithTags(map[string]string{"outcome": c.outcome}).Counter(MetricReconcileMovements).Inc(int64(c.n))
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("%d pages, %d movements: %d applied, %d already known, %d unmatched",
		summary.Pages, summary.Seen, summary.Applied, summary.AlreadyKnown, summary.Unmatched))
	return summary, nil
}

func reconcileRun(ctx workflow.Context, in ReconcileInput) (ReconcileSummary, error) {
	startedAt := workflow.Now(ctx)
	cursorCtx := workflow.WithActivityOptions(ctx, reconcileCursorOptions)
	var st ReconcileCursorState
	if err := workflow.ExecuteActivity(cursorCtx, ActivityReconcileReadCursor).Get(ctx, &st); err != nil {
		return ReconcileSummary{}, fmt.Errorf("read the reconciliation cursor: %w", err)
	}
	var res ReconcileMovementsResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, reconcilePagingOptions), ActivityReconcileMovements,
		ReconcileMovementsInput{Input: in, Cursor: st.Cursor}).Get(ctx, &res)
	if err != nil {
		return res.Summary, fmt.Errorf("read and route Zero Hash movements (cursor left at %d): %w", st.Cursor.HighWaterMS, err)
	}
	next := st.Cursor.Advance(res.Seen, in.Overlap)
	summary := res.Summary
	summary.StartedAt = startedAt
	summary.HighWaterMS = next.HighWaterMS
	var advanced bool
	err = workflow.ExecuteActivity(cursorCtx, ActivityReconcileCommitCursor,
		ReconcileAdvance{FromVersion: st.Version, Cursor: next, Summary: summary}).Get(ctx, &advanced)
	if err != nil {
		return summary, fmt.Errorf("advance the reconciliation cursor: %w", err)
	}
	summary.CursorAdvanced = advanced
	return summary, nil
}

// IsStaleCursor reports whether err is the cursor workflow refusing an advance because another run moved it.
func IsStaleCursor(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ErrStaleCursor
}
