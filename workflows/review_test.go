package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
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

func (e env) redeliver(at time.Duration, r Redelivery, done func(error)) {
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(UpdateRedeliver, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   done,
			OnComplete: func(_ any, err error) { done(err) },
		}, r)
	}, at)
}

// TestReviewRedeliversHeldEvent: the redeliver update sends the held event to the transfer with the bridge's
// signal and payload, records who and why, and closes the review; what the review cannot deliver is refused.
func TestReviewRedeliversHeldEvent(t *testing.T) {
	e := newEnv(t)
	confirmed := ev(connect.KindDeposit, connect.StatusConfirmed)
	confirmed.Event.Metadata = map[string]string{MetadataTransferID: "t1", MetadataKind: "deposit"}
	e.signalAt(time.Minute, SignalReviewEvent, confirmed, confirmed)
	var sent []EventSignal
	e.OnSignalExternalWorkflow(mock.Anything, "deposit-gone", "", SignalConnectEvent, mock.Anything).Return(
		temporal.NewApplicationError("unknown external workflow execution", "x")).Maybe()
	e.OnSignalExternalWorkflow(mock.Anything, "deposit-t1", "", SignalConnectEvent, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error { sent = append(sent, arg.(EventSignal)); return nil }).Once()
	refusals := []struct {
		r    Redelivery
		want string
	}{
		{Redelivery{Reason: "x", TransferWorkflowID: "deposit-t1"}, "operator: required"},
		{Redelivery{Operator: "ana", TransferWorkflowID: "deposit-t1"}, "reason: required"},
		{Redelivery{Operator: "ana", Reason: "x", TransferWorkflowID: "review-x"}, "transfer_workflow_id: must be"},
		{Redelivery{Operator: "ana", Reason: "x", TransferWorkflowID: "withdrawal-t1"}, "is a withdrawal"},
		{Redelivery{Operator: "ana", Reason: "x", TransferWorkflowID: "deposit-gone"}, "signal deposit-gone"},
	}
	refused := 0
	for i, c := range refusals {
		e.redeliver(time.Duration(2+i)*time.Minute, c.r, func(err error) {
			require.ErrorContains(t, err, c.want)
			refused++
		})
	}
	// Three decisions in one moment: the first redelivery is taken, and while it signals the transfer, neither a
	// second redelivery nor a resolve is.
	accepted, again, resolveAfter := error(errNotCalled), error(errNotCalled), error(errNotCalled)
	e.RegisterDelayedCallback(func() {
		for _, u := range []struct {
			name string
			arg  any
			got  *error
		}{
			{UpdateRedeliver, Redelivery{Operator: "ana", Reason: "transfer t1 started late", TransferWorkflowID: "deposit-t1"}, &accepted},
			{UpdateRedeliver, Redelivery{Operator: "bo", Reason: "again", TransferWorkflowID: "deposit-t1"}, &again},
			{UpdateResolve, Resolution{Operator: "bo", Outcome: StatusFailed, Reason: "x"}, &resolveAfter},
		} {
			e.UpdateWorkflow(u.name, "", &testsuite.TestUpdateCallback{
				OnAccept: func() {}, OnReject: func(err error) { *u.got = err },
				OnComplete: func(_ any, err error) { *u.got = err },
			}, u.arg)
		}
	}, 10*time.Minute)
	e.ExecuteWorkflow(ReviewWorkflow, ReviewInput{Reason: ReviewNoTransfer, Kind: connect.KindDeposit, ConnectTransferID: "cx-1"})

	require.NoError(t, accepted)
	require.Equal(t, len(refusals), refused)
	require.ErrorContains(t, again, "in progress")
	require.ErrorContains(t, resolveAfter, "in progress")
	require.NoError(t, e.GetWorkflowError())
	var st ReviewState
	require.NoError(t, e.GetWorkflowResult(&st))
	require.Equal(t, StatusRedelivered, st.Status)
	require.Nil(t, st.Resolution)
	r := st.Redelivery
	require.NotNil(t, r)
	require.Equal(t, "ana", r.Operator)
	require.Equal(t, "transfer t1 started late", r.Reason)
	require.Equal(t, SignalConnectEvent, r.Signal)
	require.Equal(t, "deposit:cx-1:confirmed", r.DedupeKey)
	require.False(t, r.At.IsZero())
	require.Len(t, sent, 1)
	require.Equal(t, confirmed.Event, sent[0].Event) // the bridge's payload, dedupe key included
}

// TestReviewRedeliversLedgerMovement: a movement is sent as the bridge's ledger signal, keyed on its id.
func TestReviewRedeliversLedgerMovement(t *testing.T) {
	e := newEnv(t)
	m := LedgerMovement{MovementID: "m-7", MovementType: "deposit", Asset: "BTC", Change: "0.013"}
	e.signalAt(time.Minute, SignalLedger, m)
	var sent []LedgerMovement
	e.OnSignalExternalWorkflow(mock.Anything, "deposit-t2", "", SignalLedger, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error { sent = append(sent, arg.(LedgerMovement)); return nil }).Once()
	var accepted error = errNotCalled
	e.redeliver(2*time.Minute, Redelivery{Operator: "ana", Reason: "t2 settles it", TransferWorkflowID: "deposit-t2"},
		func(err error) { accepted = err })
	e.ExecuteWorkflow(ReviewWorkflow, ReviewInput{Reason: ReviewUnmatchedLedger, Kind: connect.KindDeposit, ConnectTransferID: "cx-2"})
	require.NoError(t, accepted)
	var st ReviewState
	require.NoError(t, e.GetWorkflowResult(&st))
	require.Equal(t, StatusRedelivered, st.Status)
	require.Equal(t, "ledger:m-7", st.Redelivery.DedupeKey)
	require.Equal(t, []LedgerMovement{m}, sent)
}

// TestRedeliverableRefusesWhatNoTransferTakes: each reason a review is not deliverable for is refused by name.
func TestRedeliverableRefusesWhatNoTransferTakes(t *testing.T) {
	held := func(s EventSignal) []ReviewedEvent { return []ReviewedEvent{{Event: &s.Event}} }
	confirmed := held(ev(connect.KindDeposit, connect.StatusConfirmed))
	for _, c := range []struct {
		st   ReviewState
		want string // "" deliverable
	}{
		{ReviewState{Input: ReviewInput{Reason: ReviewNoTransfer}, Events: confirmed}, ""},
		{ReviewState{Input: ReviewInput{Reason: ReviewClosedConflict}, Events: confirmed}, ""},
		{ReviewState{Input: ReviewInput{Reason: ReviewUnmatchedLedger}, Events: []ReviewedEvent{{Ledger: &LedgerMovement{MovementID: "m"}}}}, ""},
		{ReviewState{Input: ReviewInput{Reason: ReviewUnexpected}, Events: held(ev(connect.KindDeposit, connect.StatusUnexpected))}, "unexpected_deposit"},
		{ReviewState{Input: ReviewInput{Reason: ReviewNoTransfer}, Events: held(ev(connect.KindDeposit, connect.StatusUnknown))}, `"unknown" event moves no transfer`},
		{ReviewState{Input: ReviewInput{Reason: ReviewTransferConflict, TransferWorkflowID: "deposit-t"}, Events: confirmed}, "deposit-t took this event"},
		{ReviewState{Input: ReviewInput{Reason: ReviewSessionConflict}, Events: confirmed}, "session_conflict"},
		{ReviewState{Input: ReviewInput{Reason: ReviewLedgerMismatch}, Events: confirmed}, "ledger_mismatch"},
		{ReviewState{Input: ReviewInput{Reason: ReviewPlatformUndelivered}, Events: confirmed}, "platform_undelivered"},
		{ReviewState{Input: ReviewInput{Reason: ReviewNoTransfer}}, "holds 0 events"},
		{ReviewState{Input: ReviewInput{Reason: ReviewNoTransfer}, Events: []ReviewedEvent{{}}}, "holds no event"},
	} {
		err := Redeliverable(c.st)
		if c.want == "" {
			require.NoError(t, err, c.st.Input.Reason)
			continue
		}
		require.ErrorContains(t, err, c.want)
		require.ErrorContains(t, err, "not deliverable")
	}
}
