package workflows

import (
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/telemetry/signalspan"
)

// ChangePlatformNotifications is the change id (workflow.GetVersion) under which a transfer posts each of its
// status changes to the platform (PLATFORM_WEBHOOK_URL): version 1 asks its worker once, with a local activity,
// whether notifications are on, then runs one NotifyPlatform activity per status change, in order, and does not
// close before its final notification is acknowledged (or went to review). Transfers started before it
// (workflow.DefaultVersion) send none. docs/versioning.md.
const ChangePlatformNotifications = "platform-notifications"

// SearchPlatformNotified says, on a transfer in its final status, whether the platform acknowledged its final
// notification: "pending" (the workflow is open, still delivering), "delivered", or "failed" (a notification
// exhausted its retry window and went to review). Unset while the transfer is not final or notifications are off.
var SearchPlatformNotified = temporal.NewSearchAttributeKeyKeyword("PlatformNotified")

// Values of PlatformNotified (the search attribute and NotificationState.PlatformNotified).
const (
	PlatformNotifiedPending   = "pending"
	PlatformNotifiedDelivered = "delivered"
	PlatformNotifiedFailed    = "failed"
)

// QueryPlatformPending lists the transfers whose final outcome the platform has not acknowledged yet.
const QueryPlatformPending = "PlatformNotified = 'pending'"

// ReviewPlatformUndelivered: a notification exhausted PLATFORM_WEBHOOK_RETRY_FOR; the platform may not know the outcome.
const ReviewPlatformUndelivered = "platform_undelivered"

// NotifyActivityOptions bound one notification: an attempt is cut off after the HTTP client's own timeout
// plus a margin, and retried with backoff (or after the platform's Retry-After) until ScheduleToCloseTimeout,
// which the workflow sets to the worker's PLATFORM_WEBHOOK_RETRY_FOR.
var NotifyActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Minute,
	},
}

// platformConfigOptions bound the local activity that reads the worker's notification settings.
var platformConfigOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
}

// NotificationState is what the transfer's state shows about its notifications to the platform.
type NotificationState struct {
	Sequence     int `json:"sequence"`     // the last status change queued (1, 2, 3, ...)
	Acknowledged int `json:"acknowledged"` // the last one the platform acknowledged with a 2xx
	// Failed are the sequences that exhausted their retry window; each went to review.
	Failed []int `json:"failed,omitempty"`
	// PlatformNotified mirrors the search attribute: "pending", "delivered", "failed" once the transfer is final.
	PlatformNotified string `json:"platform_notified,omitempty"`
	// Waiting is the webhook-id being delivered now, if any.
	Waiting string `json:"waiting,omitempty"`
}

// WebhookID is the webhook-id of a transfer's sequence-th notification: "<workflow_id>:<sequence>". The Standard
// Webhooks signature joins id, timestamp and body with '.', so an id may not hold '.' or whitespace: those bytes
// (and '%') in a workflow id are percent-encoded ("%2E" for '.'), every other workflow id appears as it is. The
// id is the same for every redelivery. The body's data.workflow_id always carries the workflow id unencoded.
func WebhookID(workflowID string, sequence int) string {
	var b strings.Builder
	for i := 0; i < len(workflowID); i++ {
		c := workflowID[i]
		if c == '.' || c == '%' || c <= ' ' || c == 0x7f {
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String() + ":" + strconv.Itoa(sequence)
}

// statusChange is one status change the next sync turns into a notification.
type statusChange struct {
	from, to Status
	at       time.Time
	span     any // the trace span of what caused it (signalspan): its notification is traced under it
	// data is the notification's data as of the change's own event (freezeNotifications); nil: as of the sync.
	data *activities.NotificationData
}

// queued is one notification in the outbox, with the span of the change that caused it (nil after a
// continue-as-new: a span is not carried).
type queued struct {
	activities.Notification
	span any
}

// notifier delivers a transfer's notifications, one at a time, in order.
type notifier struct {
	enabled  bool
	retryFor time.Duration
	changes  []statusChange // since the last sync
	outbox   []queued       // queued and in flight (the first), in sequence order
}

// startNotifications decides, once per transfer, whether it notifies the platform (a new execution asks its
// worker; an execution started before the change never does), and starts the coroutine that delivers them.
func (t *transfer) startNotifications(ctx workflow.Context) {
	if t.machine == MachineV1 && workflow.GetVersion(ctx, ChangePlatformNotifications, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	var cfg activities.PlatformConfig
	lctx := workflow.WithLocalActivityOptions(ctx, platformConfigOptions)
	if err := workflow.ExecuteLocalActivity(lctx, act.PlatformNotifications).Get(ctx, &cfg); err != nil {
		// Cannot happen with a registered worker; the transfer itself matters more than its notifications.
		workflow.GetLogger(ctx).Error("platform notification settings not read: notifications off", "error", err)
		return
	}
	if !cfg.Enabled {
		return
	}
	t.notify.enabled = true
	t.notify.retryFor = cfg.RetryFor
	t.state.Notifications = &NotificationState{}
	workflow.Go(ctx, t.deliver)
}

// changed notes a status change for the platform (step calls it).
func (t *transfer) changed(ctx workflow.Context, from, to Status) {
	if t.notify.enabled {
		t.notify.changes = append(t.notify.changes, statusChange{from: from, to: to, at: workflow.Now(ctx),
			span: signalspan.Span(ctx)})
	}
}

// freezeNotifications fixes the data of the status changes not yet frozen as the state is now, so that when
// several signals are taken before one sync each change is notified with its own event's data (an event's tx hash
// or failure reason is absorbed after its step). It queues nothing: the outbox, which the delivery coroutine
// reads, changes only at queueNotifications, so no command moves to an earlier workflow task.
func (t *transfer) freezeNotifications() {
	if !t.notify.enabled {
		return
	}
	for i := range t.notify.changes {
		if c := &t.notify.changes[i]; c.data == nil {
			d := t.notificationData(*c)
			c.data = &d
		}
	}
}

// notificationData is a change's notification data (all but its sequence number) with the state as it is now.
func (t *transfer) notificationData(c statusChange) activities.NotificationData {
	resolvedBy := ""
	if r := t.state.Resolution; r != nil {
		resolvedBy = r.Operator
	}
	return activities.NotificationData{
		WorkflowID: t.state.WorkflowID, Kind: string(t.in.Kind), TransferID: t.in.TransferID,
		ReferenceID: t.in.ReferenceID, Status: string(c.to), PreviousStatus: string(c.from),
		Asset: t.state.Asset, Network: t.state.Network, Amount: t.state.Amount,
		TxHash: t.state.TxHash, ConnectTransferID: t.state.ConnectTransferID,
		FailureReason: t.state.FailureReason, ResolvedBy: resolvedBy,
	}
}

// queueNotifications turns the status changes since the last sync into notifications, each with its frozen data,
// or with the state as it is now (so an event's tx hash or failure reason, absorbed after the step, is in them).
func (t *transfer) queueNotifications() {
	if !t.notify.enabled {
		return
	}
	t.freezeNotifications()
	for _, c := range t.notify.changes {
		ns := t.state.Notifications
		ns.Sequence++
		data := *c.data
		data.Sequence = ns.Sequence
		t.notify.outbox = append(t.notify.outbox, queued{span: c.span, Notification: activities.Notification{
			WebhookID: WebhookID(t.state.WorkflowID, ns.Sequence),
			Type:      string(t.in.Kind) + "." + string(c.to),
			Timestamp: c.at,
			Data:      data,
		}})
	}
	t.notify.changes = t.notify.changes[:0]
	t.state.Notifications.PlatformNotified = t.platformNotified()
}

// platformNotified is the PlatformNotified value: empty until the transfer is final.
func (t *transfer) platformNotified() string {
	switch {
	case !t.notify.enabled || !t.state.Final():
		return ""
	case len(t.notify.outbox) > 0:
		return PlatformNotifiedPending
	case len(t.state.Notifications.Failed) > 0:
		return PlatformNotifiedFailed
	}
	return PlatformNotifiedDelivered
}

// notificationsIdle reports whether every queued notification was acknowledged or went to review.
func (t *transfer) notificationsIdle() bool {
	return len(t.notify.outbox) == 0 && len(t.notify.changes) == 0
}

// deliver runs one NotifyPlatform activity per notification, in sequence order, each retried for the worker's
// retry window; one that exhausts it goes to review and the next one is sent.
func (t *transfer) deliver(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return len(t.notify.outbox) > 0 }); err != nil {
			return
		}
		n := t.notify.outbox[0].Notification
		actx := signalspan.With(ctx, t.notify.outbox[0].span) // traced under what caused the change
		ns := t.state.Notifications
		ns.Waiting = n.WebhookID
		opts := NotifyActivityOptions
		opts.ScheduleToCloseTimeout = t.notify.retryFor
		opts.Summary = "Notify platform: " + n.Type + " (" + n.WebhookID + ")"
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(actx, opts), act.NotifyPlatform, n).Get(ctx, nil)
		if temporal.IsCanceledError(err) {
			return // the workflow was cancelled: nothing more is sent
		}
		if err != nil {
			ns.Failed = append(ns.Failed, n.Data.Sequence)
			workflow.GetLogger(ctx).Error("platform notification undelivered: sent to review", "webhook_id", n.WebhookID, "error", err)
			t.toReview(actx, "platform:"+n.WebhookID, SignalReviewEvent, EventSignal{
				Event: connect.Event{
					Name: "connectflow.platform.undelivered", Kind: t.in.Kind, Status: connect.Status(n.Data.Status),
					TransferID: t.state.ConnectTransferID, SessionID: t.state.SessionID, ReferenceID: t.in.ReferenceID,
					Asset: n.Data.Asset, Network: n.Data.Network, Amount: n.Data.Amount, TxHash: n.Data.TxHash,
					FailureReason: "notification " + n.WebhookID + " (" + n.Type + ") not acknowledged within " +
						t.notify.retryFor.String() + ": " + err.Error(),
					DedupeKey: n.WebhookID,
				},
				ReceivedAt: workflow.Now(ctx),
			}, ReviewInput{Reason: ReviewPlatformUndelivered, Kind: t.in.Kind,
				ConnectTransferID: t.state.ConnectTransferID, SessionID: t.state.SessionID})
		} else {
			ns.Acknowledged = n.Data.Sequence
		}
		ns.Waiting = ""
		t.notify.outbox = t.notify.outbox[1:]
		t.sync(ctx)
	}
}

// awaitNotifications keeps a final transfer open until every notification was acknowledged or went to review,
// recording whatever is signalled meanwhile (a late redelivery, a conflict for review), as the main loop does.
// Under ChangeEveryConflictReviewed it stops taking signals once the run has taken SignalsPerRun (asked only
// then), as finish does: a platform down for its whole retry window must not grow one history without bound.
func (t *transfer) awaitNotifications(ctx workflow.Context) error {
	capped := false
	for !t.notificationsIdle() {
		if err := workflow.Await(ctx, func() bool { return t.notificationsIdle() || (!capped && t.inbox.waiting() > 0) }); err != nil {
			return err
		}
		if capped || t.inbox.waiting() == 0 {
			continue
		}
		if !t.mayTakeLate(ctx) {
			capped = true // finish logs what stays unread
			continue
		}
		t.drainSignals(ctx)
		t.sync(ctx)
	}
	return nil
}

// NotifyCarry is the notification state a transfer hands its next run when it continues as new
// (TransferCarry.Notify): notifications stay on with the same retry window, and the ones queued or in flight
// (the first) are delivered by the next run, under the same webhook-ids and sequence numbers.
type NotifyCarry struct {
	RetryFor time.Duration             `json:"retry_for"`
	Outbox   []activities.Notification `json:"outbox,omitempty"`
}

// carryNotifications is the notification state for the next run; nil when this transfer does not notify.
// Status changes not yet queued are queued first, so none is lost or renumbered.
func (t *transfer) carryNotifications() *NotifyCarry {
	if !t.notify.enabled {
		return nil
	}
	t.queueNotifications()
	outbox := make([]activities.Notification, 0, len(t.notify.outbox))
	for _, q := range t.notify.outbox {
		outbox = append(outbox, q.Notification)
	}
	return &NotifyCarry{RetryFor: t.notify.retryFor, Outbox: outbox}
}

// resumeNotifications is startNotifications for a run continued from an earlier one: whether the transfer
// notifies was decided by its first run and is carried (c.Notify), so the worker's settings are not asked again.
// A transfer that did not notify before (notifications off, or continued by code older than the change) does
// not start notifying mid-way. The notification state itself (sequence, acknowledged) is in c.State.
func (t *transfer) resumeNotifications(ctx workflow.Context, c *TransferCarry) {
	if t.machine == MachineV1 && workflow.GetVersion(ctx, ChangePlatformNotifications, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	n := c.Notify
	if n == nil || c.State.Notifications == nil {
		return
	}
	t.notify.enabled = true
	t.notify.retryFor = n.RetryFor
	for _, o := range n.Outbox {
		t.notify.outbox = append(t.notify.outbox, queued{Notification: o})
	}
	workflow.Go(ctx, t.deliver)
}
