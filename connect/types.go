// Package connect is a client for the Zero Hash Connect API and the primitives for its webhooks:
// access tokens, sessions, request signatures, and typed transfer events.
package connect

import "time"

// Kind says which way a transfer moves crypto.
type Kind string

const (
	KindDeposit    Kind = "deposit"
	KindWithdrawal Kind = "withdrawal"
)

// Valid reports whether k is a kind this package knows.
func (k Kind) Valid() bool { return k == KindDeposit || k == KindWithdrawal }

// Scope is a Connect session scope.
type Scope string

const (
	// ScopeDepositSend lets the user send crypto in (guide and OpenAPI).
	ScopeDepositSend Scope = "user:deposit:send"
	// ScopeWithdrawalRequest lets the user request a withdrawal: the Connect OpenAPI's withdrawal scope, with which
	// session.withdrawal_details {asset, network, amount, account_label?} is required. The default.
	ScopeWithdrawalRequest Scope = "user:withdrawal:request"
	// ScopeWithdrawalSend is the seed guide's withdrawal scope; organizations set up from the guide may use it.
	ScopeWithdrawalSend Scope = "user:withdrawal:send"
	// ScopeRecoverySend is in the OpenAPI's enum; connectflow does not open recovery sessions.
	ScopeRecoverySend Scope = "user:recovery:send"
)

// DefaultWithdrawalScope is the withdrawal scope a Client asks for when Options.WithdrawalScope is empty.
const DefaultWithdrawalScope = ScopeWithdrawalRequest

// WithdrawalScopes are the withdrawal scopes a Client accepts in Options.WithdrawalScope, the default first.
var WithdrawalScopes = []Scope{ScopeWithdrawalRequest, ScopeWithdrawalSend}

// ScopeFor returns the default session scope for a transfer kind: user:deposit:send for deposits,
// DefaultWithdrawalScope for withdrawals. A Client uses its Options.WithdrawalScope instead.
func ScopeFor(k Kind) Scope {
	if k == KindWithdrawal {
		return DefaultWithdrawalScope
	}
	return ScopeDepositSend
}

// KindOfScope returns the transfer kind a session scope opens, and false for a scope that opens no transfer.
func KindOfScope(s Scope) (Kind, bool) {
	switch s {
	case ScopeDepositSend:
		return KindDeposit, true
	case ScopeWithdrawalRequest, ScopeWithdrawalSend:
		return KindWithdrawal, true
	}
	return "", false
}

// Status is a transfer event's normalized status.
type Status string

const (
	StatusInitiated   Status = "initiated"
	StatusBroadcasted Status = "broadcasted"
	StatusConfirmed   Status = "confirmed"
	StatusFailed      Status = "failed"
	StatusUnexpected  Status = "unexpected" // a deposit Connect did not expect (no matching session)
	StatusUnknown     Status = "unknown"    // an event name no alias maps; kept, never dropped
)

// Event is one Connect webhook, parsed from either shape the guide prints and normalized.
type Event struct {
	// Name is the event name exactly as received, e.g. "connect.deposits.pending".
	Name string `json:"name"`
	// Kind and Status are Name normalized through the alias table.
	Kind   Kind   `json:"kind"`
	Status Status `json:"status"`
	// TransferID is Connect's deposit or withdrawal id (withdrawals carry it under "deposit" too).
	TransferID  string `json:"transfer_id,omitempty"`
	SessionID   string `json:"session_id,omitempty"`
	ReferenceID string `json:"reference_id,omitempty"`
	// Metadata is the session metadata echoed back; non-string values are kept as their JSON text.
	Metadata      map[string]string `json:"metadata,omitempty"`
	Asset         string            `json:"asset,omitempty"`
	Network       string            `json:"network,omitempty"`
	Amount        string            `json:"amount,omitempty"`
	Source        string            `json:"source,omitempty"`
	TxHash        string            `json:"tx_hash,omitempty"`
	FailureReason string            `json:"failure_reason,omitempty"`
	Fees          *Fees             `json:"fees,omitempty"`
	// CreatedAt and UpdatedAt are zero when absent or unparseable; updated_at may precede created_at.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// DedupeKey is the same for every redelivery of one event: transfer id + normalized status.
	DedupeKey string `json:"dedupe_key"`
	// EventID is the payload's unique event id (top-level "event_id", else "id") when it carries one; Connect's
	// webhook page: "Each webhook has a unique event ID used for idempotency", without naming the field.
	// Redeliveries share it. Deduplicate on IdempotencyKey, not on it: an "id" may be the transfer's own.
	EventID string `json:"event_id,omitempty"`
	// eventIDFromID: EventID was read from the top-level "id", not from "event_id" (see IdempotencyKey).
	eventIDFromID bool
}

// IdempotencyKey is the key deliveries of e may be deduplicated on ahead of the transfer's own dedupe (DedupeKey:
// transfer + status), "" when e carries no event id. An "event_id" is the key as it is. A top-level "id" (read when
// there is no "event_id") is qualified with DedupeKey: the published page names no field, and were that id the
// transfer's own, every status of the transfer would share it and the next one would be taken for a redelivery and
// lost. Qualified, a real event id still tells its redeliveries apart from other events, and the key never joins
// two events the transfer itself would tell apart.
func (e Event) IdempotencyKey() string {
	switch {
	case e.EventID == "":
		return ""
	case e.eventIDFromID:
		return e.EventID + "|" + DedupeKey(e)
	}
	return e.EventID
}

// Fees is the optional fee object of newer payloads.
type Fees struct {
	Amount string `json:"amount,omitempty"`
	Asset  string `json:"asset,omitempty"`
	Type   string `json:"type,omitempty"` // NETTED or ADDITIVE
}

// SessionRequest is what the organization sends to open a Connect session.
// It is stored in Temporal history (the session activity's input), so its JSON names are fixed by tags, and
// UnmarshalJSON also reads the untagged form (Go field names) that histories recorded before the tags hold.
type SessionRequest struct {
	// RequestID is the caller's idempotency key; retries of one logical request reuse it.
	RequestID    string            `json:"request_id"`
	Kind         Kind              `json:"kind"`
	ReferenceID  string            `json:"reference_id"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	AccountLabel string            `json:"account_label,omitempty"`
	// Asset, Network and Amount go into withdrawal_details; deposits leave them empty.
	Asset   string `json:"asset,omitempty"`
	Network string `json:"network,omitempty"`
	Amount  string `json:"amount,omitempty"`
}

// Session is an opened Connect session: the JWT for the frontend and what its claims say.
type Session struct {
	JWT            string        `json:"jwt"`
	ExpiresIn      time.Duration `json:"expires_in"`
	ID             string        `json:"id"`
	AccountID      string        `json:"account_id"`
	ReferenceID    string        `json:"reference_id"`
	OrganizationID string        `json:"organization_id"`
	IssuedAt       time.Time     `json:"issued_at"`
	ExpiresAt      time.Time     `json:"expires_at"`
}
