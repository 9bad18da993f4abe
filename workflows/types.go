// Package workflows holds connectflow's Temporal workflows: one durable workflow per Connect transfer, a short
// onboarding-token workflow, and the names (signals, updates, queries, search attributes) clients use to reach them.
package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
)

// DefaultTaskQueue is where workers poll and starters start unless configured otherwise.
const DefaultTaskQueue = "connect-transfers"

// Names clients use to talk to a running transfer workflow.
const (
	SignalConnectEvent = "connect-event" // a verified Connect webhook: EventSignal
	SignalSDKEvent     = "sdk-event"     // an Auth SDK callback relayed by the frontend: SDKEvent
	SignalLedger       = "ledger"        // a Zero Hash balance movement for this transfer: LedgerMovement
	SignalSupersede    = "supersede"     // a newer transfer for the same reference opened its session: Supersede
	UpdateSession      = "session"       // waits for the Connect session and returns SessionInfo
	QueryState         = "state"         // returns TransferState
)

// Metadata keys of ours put into every session, so webhooks route back to the workflow.
const (
	MetadataTransferID = "connectflow_transfer_id"
	MetadataKind       = "connectflow_kind"
)

// Search attributes kept current on every transfer workflow. None of them carries PII.
var (
	SearchTransferKind       = temporal.NewSearchAttributeKeyKeyword("TransferKind")
	SearchTransferStatus     = temporal.NewSearchAttributeKeyKeyword("TransferStatus")
	SearchConnectSessionID   = temporal.NewSearchAttributeKeyKeyword("ConnectSessionID")
	SearchConnectReferenceID = temporal.NewSearchAttributeKeyKeyword("ConnectReferenceID")
	SearchConnectTransferID  = temporal.NewSearchAttributeKeyKeyword("ConnectTransferID")
)

// SearchAttributeNames lists the custom search attributes a namespace needs (all Keyword).
var SearchAttributeNames = []string{"TransferKind", "TransferStatus", "ConnectSessionID", "ConnectReferenceID", "ConnectTransferID",
	"PlatformNotified"}

// Defaults for the per-transfer timeouts.
const (
	DefaultStallTimeout  = 24 * time.Hour
	DefaultReviewHorizon = 7 * 24 * time.Hour
)

// Timeouts are per transfer; zero values take the defaults.
type Timeouts struct {
	// SessionExpiry overrides the session JWT's expiry as the deadline for the user to initiate.
	SessionExpiry time.Duration `json:"session_expiry,omitempty"`
	// Stall is how long after initiation a transfer may go without a final event before it is stalled.
	Stall time.Duration `json:"stall,omitempty"`
	// ReviewHorizon is how long after initiation a transfer may stay open before it ends timed_out.
	ReviewHorizon time.Duration `json:"review_horizon,omitempty"`
	// CloseGrace is how long after the Auth SDK's close a transfer still awaiting its user waits for a Connect
	// event before it ends abandoned; default DefaultCloseGrace. Transfers under ChangeEdgeRules only.
	CloseGrace time.Duration `json:"close_grace,omitempty"`
}

// TransferInput starts a transfer workflow.
type TransferInput struct {
	Kind         connect.Kind      `json:"kind"`
	TransferID   string            `json:"transfer_id"` // the platform's own id for this transfer
	ReferenceID  string            `json:"reference_id"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	AccountLabel string            `json:"account_label,omitempty"`
	Asset        string            `json:"asset,omitempty"`
	Network      string            `json:"network,omitempty"`
	Amount       string            `json:"amount,omitempty"`
	// AwaitLedger keeps a confirmed transfer open until its Zero Hash balance movement arrives (then settled).
	AwaitLedger bool     `json:"await_ledger,omitempty"`
	Timeouts    Timeouts `json:"timeouts,omitzero"`
	// IfBusy says what starting does when another transfer for the same reference still awaits its user:
	// supersede it (the default: Connect keeps one session per reference) or refuse to start (transfer.ErrBusy).
	IfBusy IfBusy `json:"if_busy,omitempty"`
	// SignalsPerRun is how many signals one run takes before the transfer continues as new, so a flood never
	// brings it near Temporal's per-execution signal limit (10,000 by default); default DefaultSignalsPerRun.
	// Transfers under ChangeEdgeRules only.
	SignalsPerRun int `json:"signals_per_run,omitempty"`
	// Carry is set only by the transfer itself when it continues as new: the state its next run resumes from.
	Carry *TransferCarry `json:"carry,omitempty"`
}

// DefaultSignalsPerRun is well below Temporal's default per-execution signal limit of 10,000.
const DefaultSignalsPerRun = 2000

// TransferCarry is what a transfer hands its next run when it continues as new (TransferInput.Carry): its state
// (the session included, so the session update still answers), its clock, the search attribute values it
// upserted, and a deferred close's grace end.
type TransferCarry struct {
	State      TransferState `json:"state"`
	Clock      Clock         `json:"clock"`
	Indexed    [6]string     `json:"indexed"`
	CloseUntil time.Time     `json:"close_until,omitzero"` // a deferred close's grace end; zero when none pends
	CloseIndex int           `json:"close_index,omitempty"`
	Runs       int           `json:"runs"` // runs before this one
	// Notify is set when the transfer notifies the platform (ChangePlatformNotifications): the notifications
	// queued or in flight, which the next run delivers with the same webhook-ids. The sequence numbers carry
	// in State.Notifications.
	Notify *NotifyCarry `json:"notify,omitempty"`
	// Pending is the background work still running when the run handed over (ChangeCarryPendingWork): the next
	// run starts each again. Both are idempotent: a review is one workflow per event, and a superseded transfer
	// dedupes the supersede by its key.
	Pending []PendingWork `json:"pending,omitempty"`
}

// PendingWork is one background activity a run handed over unfinished: a review to open or the older transfers
// to supersede.
type PendingWork struct {
	Review    *activities.ReviewRequest         `json:"review,omitempty"`
	Supersede *activities.SignalMatchingRequest `json:"supersede,omitempty"`
	Summary   string                            `json:"summary,omitempty"` // the activity's summary in the UI
}

// IfBusy is a start option: what to do when the reference has a transfer awaiting its user.
type IfBusy string

const (
	IfBusySupersede IfBusy = "supersede" // the default: the older transfer ends superseded
	IfBusyRefuse    IfBusy = "refuse"    // nothing starts; the caller gets transfer.ErrBusy naming the busy transfer
)

// Validate reports the first thing wrong with the input, naming the field.
func (in TransferInput) Validate() error {
	switch {
	case !in.Kind.Valid():
		return fmt.Errorf("kind: must be %q or %q, got %q", connect.KindDeposit, connect.KindWithdrawal, in.Kind)
	case in.TransferID == "":
		return fmt.Errorf("transfer_id: required")
	case in.ReferenceID == "":
		return fmt.Errorf("reference_id: required")
	case in.Kind == connect.KindWithdrawal && (in.Asset == "" || in.Network == "" || in.Amount == ""):
		return fmt.Errorf("asset, network, amount: required for a withdrawal")
	}
	for _, k := range []string{MetadataTransferID, MetadataKind} {
		if _, taken := in.Metadata[k]; taken {
			return fmt.Errorf("metadata: key %q is reserved by connectflow", k)
		}
	}
	if in.IfBusy != "" && in.IfBusy != IfBusySupersede && in.IfBusy != IfBusyRefuse {
		return fmt.Errorf("if_busy: must be %q or %q, got %q", IfBusySupersede, IfBusyRefuse, in.IfBusy)
	}
	if in.SignalsPerRun < 0 {
		return fmt.Errorf("signals_per_run: must not be negative")
	}
	if in.Timeouts.SessionExpiry < 0 || in.Timeouts.Stall < 0 || in.Timeouts.ReviewHorizon < 0 || in.Timeouts.CloseGrace < 0 {
		return fmt.Errorf("timeouts: must not be negative")
	}
	return nil
}

// WorkflowID is the one workflow id of a transfer: "deposit-<transfer id>" or "withdrawal-<transfer id>".
func WorkflowID(kind connect.Kind, transferID string) string {
	return string(kind) + "-" + transferID
}

// SessionInfo is what the frontend needs to open the Auth SDK.
type SessionInfo struct {
	SessionID string    `json:"session_id"`
	AccountID string    `json:"account_id,omitempty"`
	JWT       string    `json:"jwt"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EventSignal carries one verified Connect webhook to its transfer.
type EventSignal struct {
	Event      connect.Event `json:"event"`
	ReceivedAt time.Time     `json:"received_at,omitzero"` // when the bridge received it
}

// SDK callback types relayed from the frontend.
const (
	SDKTypeClose      = "close"
	SDKTypeEvent      = "event"
	SDKTypeDeposit    = "deposit"
	SDKTypeWithdrawal = "withdrawal"
	SDKTypeError      = "error"
)

// Bounds on a relayed SDK callback's detail and id, in characters, as the bridge's /v1/sdk-events and the transfer
// API's sdk-events route both take them: the frontend relays short codes and ids, never documents.
const (
	MaxSDKDetail = 256
	MaxSDKID     = 128
)

// SDKEvent is an Auth SDK callback. It is informational except close, which abandons an uninitiated transfer.
type SDKEvent struct {
	Type      string `json:"type"`
	Detail    string `json:"detail,omitempty"` // e.g. "deposit.submitted", an error code, a COMPLETED/FAILED value
	DedupeKey string `json:"dedupe_key"`
}

// Supersede tells a transfer still awaiting its user that a newer transfer for the same reference opened a
// session, which invalidated this one's at Connect.
type Supersede struct {
	WorkflowID string `json:"workflow_id"` // the superseding transfer
	DedupeKey  string `json:"dedupe_key"`  // one per superseding transfer: "supersede:<its workflow id>"
	// SessionOpened is when the superseding transfer's session opened (ChangeSupersedeAfterSession; zero before):
	// a transfer whose own session is newer ignores the signal.
	SessionOpened time.Time `json:"session_opened,omitzero"`
}

// LedgerMovement is the Zero Hash balance movement that settles a transfer.
type LedgerMovement struct {
	MovementID   string    `json:"movement_id"`
	MovementType string    `json:"movement_type,omitempty"`
	Asset        string    `json:"asset,omitempty"`
	Change       string    `json:"change,omitempty"`
	At           time.Time `json:"at,omitzero"`
	Via          string    `json:"via,omitempty"` // LedgerViaWebhook or LedgerViaReconciliation; "" from before
}

// EventRecord is one distinct event as the workflow received it. Redeliveries only bump Duplicates.
type EventRecord struct {
	Source     string    `json:"source"` // "connect", "sdk", "ledger", "timer"
	Name       string    `json:"name"`
	Status     string    `json:"status,omitempty"`
	DedupeKey  string    `json:"dedupe_key,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	// Effect says what the event did: "applied", "late" (behind the current state), "ignored", "conflict".
	Effect     string `json:"effect"`
	Duplicates int    `json:"duplicates,omitempty"`
}

// TransferState is the workflow's whole record: QueryState returns it, and a finished workflow returns it as its
// result without the session (so without the JWT). Its JSON is a superset of what closed workflows returned
// before (TransferResult's fields and names are unchanged): workflows/result_test.go checks it against the
// recorded histories.
type TransferState struct {
	WorkflowID        string          `json:"workflow_id,omitempty"`
	Kind              connect.Kind    `json:"kind"`
	TransferID        string          `json:"transfer_id"`
	ReferenceID       string          `json:"reference_id,omitempty"`
	Status            Status          `json:"status"`
	Session           *SessionInfo    `json:"session,omitempty"` // in query answers only: it holds the JWT
	SessionID         string          `json:"session_id,omitempty"`
	ConnectTransferID string          `json:"connect_transfer_id,omitempty"`
	Asset             string          `json:"asset,omitempty"`
	Network           string          `json:"network,omitempty"`
	Amount            string          `json:"amount,omitempty"`
	TxHash            string          `json:"tx_hash,omitempty"`
	FailureReason     string          `json:"failure_reason,omitempty"`
	Ledger            *LedgerMovement `json:"ledger,omitempty"`
	AwaitLedger       bool            `json:"await_ledger,omitempty"`
	InitiatedAt       time.Time       `json:"initiated_at,omitzero"`
	ConfirmedAt       time.Time       `json:"confirmed_at,omitzero"`
	SupersededBy      string          `json:"superseded_by,omitempty"` // the workflow id of the newer transfer
	Resolution        *Resolution     `json:"resolution,omitempty"`
	// UserSubmitted: the Auth SDK reported the user submitted the deposit or withdrawal, so closing the widget
	// does not abandon the transfer (ChangeEdgeRules).
	UserSubmitted bool `json:"user_submitted,omitempty"`
	// Notifications is set when the transfer notifies the platform (PLATFORM_WEBHOOK_URL): what was sent and
	// acknowledged, and whether the final outcome is still waiting for the platform.
	Notifications *NotificationState `json:"notifications,omitempty"`
	Events        []EventRecord      `json:"events"`
}

// TransferResult is what a finished transfer workflow returns: its state without the session JWT.
type TransferResult = TransferState

// Facts are the state's facts the machine's transitions depend on.
func (st TransferState) Facts() Facts {
	return Facts{AwaitLedger: st.AwaitLedger, HasLedger: st.Ledger != nil, Resolved: st.Resolution != nil}
}

// Final reports whether the transfer will not change any more (machine.go's Final).
func (st TransferState) Final() bool { return Final(st.Status, st.Facts()) }

// Progress is how far along the transfer is, derived from its status.
func (st TransferState) Progress() int { return Progress(st.Status) }
