package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// fakeLedger serves pages of movements per type, newest first, like GET /movements; fail scripts errors by call.
type fakeLedger struct {
	mu      sync.Mutex
	byType  map[string][]zerohash.Movement
	queries []zerohash.MovementsQuery
	fail    map[int]error // call number (1-based) -> error
}

func (l *fakeLedger) Movements(_ context.Context, q zerohash.MovementsQuery) (zerohash.MovementsPage, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, q)
	if err := l.fail[len(l.queries)]; err != nil {
		return zerohash.MovementsPage{}, err
	}
	var kept []zerohash.Movement
	for _, m := range l.byType[q.MovementType] {
		if m.MovementTimestamp >= q.SinceMillis {
			kept = append(kept, m)
		}
	}
	from := min((q.Page-1)*q.PageSize, len(kept))
	to := min(from+q.PageSize, len(kept))
	return zerohash.MovementsPage{Movements: kept[from:to], Page: q.Page,
		TotalPages: (len(kept) + q.PageSize - 1) / q.PageSize}, nil
}

// fakeRouter answers by the movement id's prefix: "a" applied, "k" already known, "u" unmatched, "n" not ours.
type fakeRouter struct {
	mu     sync.Mutex
	routed []string
	fail   string // a movement id whose routing fails
}

func (r *fakeRouter) Route(_ context.Context, mv zerohash.Movement) (Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mv.MovementID == r.fail {
		return "", errors.New("temporal unavailable")
	}
	r.routed = append(r.routed, mv.MovementID)
	switch mv.MovementID[0] {
	case 'a':
		return OutcomeApplied, nil
	case 'k':
		return OutcomeAlreadyKnown, nil
	case 'u':
		return OutcomeUnmatched, nil
	}
	return OutcomeNotOurs, nil
}

func mv(id, typ string, ts int64) zerohash.Movement {
	return zerohash.Movement{MovementID: id, MovementType: typ, Change: "1", MovementTimestamp: ts}
}

func activityEnv() *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	return s.NewTestActivityEnvironment()
}

var clock = time.UnixMilli(10_000_000)

func TestMovementsPagesEveryTypeAndCounts(t *testing.T) {
	ledger := &fakeLedger{byType: map[string][]zerohash.Movement{
		"deposit": {mv("a1", "deposit", 9_000_000), mv("k1", "deposit", 8_999_000), mv("seen-before", "deposit", 8_998_000),
			mv("u1", "deposit", 8_997_000), mv("a1", "deposit", 9_000_000)}, // a1 twice: pages shifted under a new movement
		"withdrawal": {mv("a2", "withdrawal", 8_990_000), mv("n1", "trade", 8_980_000)},
	}}
	router := &fakeRouter{}
	a := &Activities{ZeroHash: ledger, Router: router, Now: func() time.Time { return clock }}
	e := activityEnv()
	e.RegisterActivity(a.Movements)
	in := workflows.ReconcileMovementsInput{
		Input: workflows.ReconcileInput{PageSize: 2, Overlap: time.Minute, MovementTypes: []string{"deposit", "withdrawal"}},
		Cursor: workflows.ReconcileCursor{HighWaterMS: 8_998_500,
			Recent: []workflows.SeenMovement{{ID: "seen-before", Type: "deposit", TimestampMS: 8_998_000}}},
	}
	v, err := e.ExecuteActivity(a.Movements, in)
	require.NoError(t, err)
	var res workflows.ReconcileMovementsResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, []string{"a1", "k1", "u1", "a2"}, router.routed, "seen-before and the repeated a1 are not routed again; n1 is another type")
	s := res.Summary
	require.Equal(t, workflows.ReconcileSummary{Pages: 4, Seen: 4, Applied: 2, AlreadyKnown: 1, Unmatched: 1, SinceMS: 8_938_500}, s)
	require.Len(t, res.Seen, 4)
	for _, q := range ledger.queries {
		require.Equal(t, int64(8_938_500), q.SinceMillis, "high water minus the overlap")
		require.Equal(t, 2, q.PageSize)
	}
}

func TestMovementsFirstRunLooksBack(t *testing.T) {
	ledger := &fakeLedger{}
	a := &Activities{ZeroHash: ledger, Router: &fakeRouter{}, Now: func() time.Time { return clock }}
	e := activityEnv()
	e.RegisterActivity(a.Movements)
	_, err := e.ExecuteActivity(a.Movements, workflows.ReconcileMovementsInput{Input: workflows.ReconcileInput{
		PageSize: 100, InitialLookback: time.Hour, MovementTypes: []string{"deposit"}}})
	require.NoError(t, err)
	require.Len(t, ledger.queries, 1)
	require.Equal(t, clock.Add(-time.Hour).UnixMilli(), ledger.queries[0].SinceMillis)
}

func TestMovementsResumesFromItsHeartbeat(t *testing.T) {
	var many []zerohash.Movement
	for i := range 5 {
		many = append(many, mv(fmt.Sprintf("a%d", i), "deposit", int64(9_000_000-i)))
	}
	ledger := &fakeLedger{byType: map[string][]zerohash.Movement{"deposit": many}}
	router := &fakeRouter{}
	a := &Activities{ZeroHash: ledger, Router: router, Now: func() time.Time { return clock }}
	e := activityEnv()
	e.RegisterActivity(a.Movements)
	// A previous attempt handled page 1 (a0, a1) and heartbeated.
	e.SetHeartbeatDetails(progress{TypeIndex: 0, NextPage: 2, SinceMS: 1,
		Summary: workflows.ReconcileSummary{Pages: 1, Seen: 2, Applied: 2, SinceMS: 1},
		Seen:    []workflows.SeenMovement{{ID: "a0", Type: "deposit", TimestampMS: 9_000_000}, {ID: "a1", Type: "deposit", TimestampMS: 8_999_999}}})
	v, err := e.ExecuteActivity(a.Movements, workflows.ReconcileMovementsInput{Input: workflows.ReconcileInput{
		PageSize: 2, MovementTypes: []string{"deposit"}}})
	require.NoError(t, err)
	var res workflows.ReconcileMovementsResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, []string{"a2", "a3", "a4"}, router.routed)
	require.Equal(t, 3, res.Summary.Pages)
	require.Equal(t, 5, res.Summary.Applied)
	require.Len(t, res.Seen, 5)
	require.Equal(t, 2, ledger.queries[0].Page)
}

func TestMovementsErrorsFollowTheClientsRetryRules(t *testing.T) {
	rateLimited := &zerohash.APIError{StatusCode: http.StatusTooManyRequests, Message: "rate limited", Retryable: true, RetryAfter: 3 * time.Second}
	tests := []struct {
		name      string
		err       error
		retryable bool
		typ       string
	}{
		{"429", rateLimited, true, "ZeroHashMovementsRateLimited"},
		{"500", &zerohash.APIError{StatusCode: 500, Message: "boom", Retryable: true}, true, "ZeroHashMovementsServerError"},
		{"403", &zerohash.APIError{StatusCode: 403, Message: "no"}, false, "ZeroHashMovementsHTTP403"},
		{"invalid query", errors.New("zerohash: movements query: page_size 500 is outside 1..100"), false, "ZeroHashInvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledger := &fakeLedger{fail: map[int]error{1: tt.err}}
			a := &Activities{ZeroHash: ledger, Router: &fakeRouter{}, Now: func() time.Time { return clock }}
			e := activityEnv()
			e.RegisterActivity(a.Movements)
			_, err := e.ExecuteActivity(a.Movements, workflows.ReconcileMovementsInput{Input: workflows.ReconcileInput{
				PageSize: 100, MovementTypes: []string{"deposit"}}})
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, tt.typ, appErr.Type())
			require.Equal(t, !tt.retryable, appErr.NonRetryable())
			if tt.name == "429" {
				require.Equal(t, 3*time.Second, appErr.NextRetryDelay())
			}
		})
	}
}

func TestMovementsRoutingFailureFailsTheAttempt(t *testing.T) {
	ledger := &fakeLedger{byType: map[string][]zerohash.Movement{"deposit": {mv("a1", "deposit", 9_000_000), mv("a2", "deposit", 8_000_000)}}}
	a := &Activities{ZeroHash: ledger, Router: &fakeRouter{fail: "a2"}, Now: func() time.Time { return clock }}
	e := activityEnv()
	e.RegisterActivity(a.Movements)
	_, err := e.ExecuteActivity(a.Movements, workflows.ReconcileMovementsInput{Input: workflows.ReconcileInput{
		PageSize: 100, MovementTypes: []string{"deposit"}}})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.False(t, appErr.NonRetryable())
	require.True(t, strings.Contains(err.Error(), "a2"), "%v", err)
}

// TestMovementsReturnsOnlyWhatTheCursorKeeps: a run over hours of movements returns the newest and those within
// the overlap before it, not every id it saw.
func TestMovementsReturnsOnlyWhatTheCursorKeeps(t *testing.T) {
	ledger := &fakeLedger{byType: map[string][]zerohash.Movement{"deposit": {
		mv("a-new", "deposit", 9_000_000), mv("a-close", "deposit", 8_970_000), mv("a-old", "deposit", 1_000_000)}}}
	a := &Activities{ZeroHash: ledger, Router: &fakeRouter{}, Now: func() time.Time { return clock }}
	e := activityEnv()
	e.RegisterActivity(a.Movements)
	v, err := e.ExecuteActivity(a.Movements, workflows.ReconcileMovementsInput{Input: workflows.ReconcileInput{
		PageSize: 100, Overlap: time.Minute, MovementTypes: []string{"deposit"}}})
	require.NoError(t, err)
	var res workflows.ReconcileMovementsResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, 3, res.Summary.Applied)
	var ids []string
	for _, s := range res.Seen {
		ids = append(ids, s.ID)
	}
	require.ElementsMatch(t, []string{"a-new", "a-close"}, ids)
}
