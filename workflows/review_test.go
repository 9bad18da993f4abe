package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/connectflow/connectflow/connect"
)

func (e env) resolve(at time.Duration, r Resolution, done func(error)) {
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(UpdateResolve, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   done,
			OnComplete: func(_ any, err error) { done(err) },
		}, r)
	}, at)
}

func TestReviewKeepsEventsUntilResolved(t *testing.T) {
	e := newEnv(t)
	unexpected := ev(connect.KindDeposit, connect.StatusUnexpected)
	e.signalAt(time.Minute, SignalReviewEvent, unexpected, unexpected)
	e.signalAt(2*time.Minute, SignalLedger, LedgerMovement{MovementID: "m-9"})
	refusals := map[string]Resolution{
		"operator":      {Outcome: StatusConfirmed, Reason: "credited by hand"},
		"outcome":       {Operator: "ana", Outcome: StatusExpired, Reason: "x"},
		"reason":        {Operator: "ana", Outcome: StatusFailed, Reason: "  "},
		"operator: req": {},
	}
	i, refused := 0, 0
	for want, r := range refusals {
		i++
		e.resolve(time.Duration(2+i)*time.Minute, r, func(err error) {
			require.ErrorContains(t, err, want)
			refused++
		})
	}
	e.RegisterDelayedCallback(func() {
		v, err := e.QueryWorkflow(QueryState)
		require.NoError(t, err)
		var st ReviewState
		require.NoError(t, v.Get(&st))
		require.Equal(t, StatusNeedsReview, st.Status)
		require.Len(t, st.Events, 2)
		require.Equal(t, 1, st.Events[0].Duplicates)
	}, 9*time.Minute)
	var accepted error = errNotCalled
	e.resolve(10*time.Minute, Resolution{Operator: "ana", Outcome: StatusConfirmed, Reason: "ticket 123: credited"}, func(err error) { accepted = err })
	e.ExecuteWorkflow(ReviewWorkflow, ReviewInput{Reason: ReviewUnexpected, Kind: connect.KindDeposit, ConnectTransferID: "cx-1"})

	require.NoError(t, accepted)
	require.Equal(t, len(refusals), refused)
	require.NoError(t, e.GetWorkflowError())
	var st ReviewState
	require.NoError(t, e.GetWorkflowResult(&st))
	require.Equal(t, StatusResolved, st.Status)
	require.Equal(t, "ana", st.Resolution.Operator)
	require.Equal(t, StatusConfirmed, st.Resolution.Outcome)
	require.False(t, st.Resolution.At.IsZero())
	require.Equal(t, "cx-1", st.Events[0].Event.TransferID)
	require.Equal(t, "m-9", st.Events[1].Ledger.MovementID)
}

type sentinel string

func (s sentinel) Error() string { return string(s) }

const errNotCalled = sentinel("update callback not called")
