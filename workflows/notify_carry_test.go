package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
)

// A transfer under both transfer-edge-rules and platform-notifications that continues as new hands its next run
// the notifications not yet acknowledged (the one in flight and the ones queued) and its sequence: the next run
// delivers them under the same webhook-ids, numbers the next status change after them, and does not ask the
// worker's settings again.
func TestContinuedRunKeepsItsNotifications(t *testing.T) {
	e := newEnv(t)
	e.sessionOK()
	e.OnActivity(act.PlatformNotifications, mock.Anything).Return(
		activities.PlatformConfig{Enabled: true, RetryFor: time.Hour}, nil)
	// The platform is down for the first run: its first notification is still being retried at the hand-over.
	e.OnActivity(act.NotifyPlatform, mock.Anything, mock.Anything).Return(errors.New("platform down")).Maybe()
	in := deposit()
	in.SignalsPerRun = 3
	e.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated))
	e.signalAt(time.Minute, SignalSDKEvent, SDKEvent{Type: SDKTypeEvent, Detail: "flood", DedupeKey: "flood-0"},
		SDKEvent{Type: SDKTypeEvent, Detail: "flood", DedupeKey: "flood-1"})
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.True(t, e.IsWorkflowCompleted())
	next := e.continuedAs()
	require.NotNil(t, next.Carry)
	require.NotNil(t, next.Carry.Notify, "the notification state is carried")
	require.Equal(t, time.Hour, next.Carry.Notify.RetryFor)
	wid := next.Carry.State.WorkflowID
	var carried []string
	for _, n := range next.Carry.Notify.Outbox {
		carried = append(carried, n.WebhookID)
	}
	require.Equal(t, []string{WebhookID(wid, 1), WebhookID(wid, 2)}, carried, "in flight and queued, in order")
	require.NotNil(t, next.Carry.State.Notifications)
	require.Equal(t, 2, next.Carry.State.Notifications.Sequence)
	require.Equal(t, 0, next.Carry.State.Notifications.Acknowledged)

	e2 := newEnv(t)
	// Asked again, the worker would say off: the continued run must keep its first run's answer.
	e2.OnActivity(act.PlatformNotifications, mock.Anything).Return(activities.PlatformConfig{}, nil).Maybe()
	var mu sync.Mutex
	var sent []string
	e2.OnActivity(act.NotifyPlatform, mock.Anything, mock.Anything).Return(
		func(_ context.Context, n activities.Notification) error {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, n.WebhookID+" "+n.Data.Status)
			return nil
		})
	e2.signalAt(time.Minute, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusConfirmed))
	e2.ExecuteWorkflow(TransferWorkflow, next)
	r := e2.result()
	require.Equal(t, StatusConfirmed, r.Status)
	require.Equal(t, []string{
		WebhookID(wid, 1) + " " + string(StatusAwaitingUser),
		WebhookID(wid, 2) + " " + string(StatusInitiated),
		WebhookID(wid, 3) + " " + string(StatusConfirmed),
	}, sent)
	require.Equal(t, 3, r.Notifications.Sequence)
	require.Equal(t, 3, r.Notifications.Acknowledged)
	require.Equal(t, PlatformNotifiedDelivered, r.Notifications.PlatformNotified)
}
