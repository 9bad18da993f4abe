package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// connectWebhook verifies a Connect transfer webhook, parses it, and routes it by its session metadata.
func (b *Bridge) connectWebhook(ctx context.Context, route routeID, r *http.Request, body []byte) result {
	if reason := b.verify.webhook(ctx, r.Header, b.webhookAt[route], body); reason != "" {
		return result{outcome: outcomeUnauthorized, reason: reason}
	}
	ev, err := connect.ParseEvent(body)
	if err != nil {
		return result{outcome: outcomeMalformed, err: err}
	}
	m := connectMessage(ev, b.now())
	res := b.deliver(ctx, &m)
	res.event, res.key = ev.Name, ev.DedupeKey
	return res
}

// connectMessage routes an event to the workflow its session metadata names, else by its session or transfer id;
// events no transfer can take (unexpected deposits, unknown names) go straight to review.
func connectMessage(ev connect.Event, receivedAt time.Time) message {
	var sig any = workflows.EventSignal{Event: ev, ReceivedAt: receivedAt} // boxed once for both uses
	m := message{
		sessionID: ev.SessionID,
		connectID: ev.TransferID,
		signal:    workflows.SignalConnectEvent,
		arg:       sig,
		status:    ev.Status,
		review: &review{
			key:    ev.DedupeKey,
			signal: workflows.SignalReviewEvent,
			arg:    sig,
			input:  workflows.ReviewInput{Kind: ev.Kind, ConnectTransferID: ev.TransferID, SessionID: ev.SessionID},
		},
	}
	if id := ev.Metadata[workflows.MetadataTransferID]; id != "" {
		if kind := connect.Kind(ev.Metadata[workflows.MetadataKind]); kind.Valid() {
			m.target = workflows.WorkflowID(kind, id)
		}
	}
	switch ev.Status {
	case connect.StatusUnexpected:
		m.review.input.Reason, m.review.now = workflows.ReviewUnexpected, true
	case connect.StatusUnknown:
		m.review.input.Reason, m.review.now = workflows.ReviewUnknownEvent, true
	}
	return m
}

// balanceWebhook verifies a Zero Hash account_balance.changed webhook and signals each movement that names a
// Connect transfer to it.
func (b *Bridge) balanceWebhook(ctx context.Context, _ routeID, r *http.Request, body []byte) result {
	ev, err := zerohash.ConstructBalanceEvent(b.zhSecret, r.Header, body)
	switch {
	case errors.Is(err, zerohash.ErrInvalidPayload):
		return result{outcome: outcomeMalformed, err: err}
	case err != nil:
		return result{outcome: outcomeUnauthorized, reason: balanceFailureReason(err)}
	}
	res := result{outcome: outcomeAcknowledged, event: zerohash.PayloadTypeBalanceChanged, key: ev.NotificationID}
	for _, mv := range ev.Movements {
		m, ok := ledgerMessage(ev.Asset, mv)
		if !ok {
			continue // not a Connect transfer's movement (a trade, a fee): nothing of ours to settle
		}
		got := b.deliver(ctx, &m)
		res.routed, res.routedIn = true, res.routedIn+got.routedIn
		if got.outcome.worse(res.outcome) {
			res.outcome, res.workflowID, res.err = got.outcome, got.workflowID, got.err
		}
		if got.outcome == outcomeUnavailable {
			break // the whole webhook is redelivered; its other movements are signalled then (deduped by id)
		}
	}
	return res
}

// ledgerMessage routes a balance movement to the transfer whose ConnectTransferID it names.
func ledgerMessage(asset string, mv zerohash.Movement) (message, bool) {
	kind, ref := connect.KindDeposit, mv.DepositReferenceID
	if ref == "" {
		kind, ref = connect.KindWithdrawal, mv.WithdrawalRequestID
	}
	if ref == "" {
		return message{}, false
	}
	var lm any = workflows.LedgerMovement{MovementID: mv.MovementID, MovementType: mv.MovementType, Asset: asset,
		Change: mv.Change, At: mv.Time()}
	return message{
		connectID: ref,
		signal:    workflows.SignalLedger,
		arg:       lm,
		status:    connect.StatusConfirmed, // the ledger moved; covered() decides which closed transfers cover it
		review: &review{
			key:    "ledger:" + mv.MovementID,
			signal: workflows.SignalLedger,
			arg:    lm,
			input:  workflows.ReviewInput{Reason: workflows.ReviewUnmatchedLedger, Kind: kind, ConnectTransferID: ref},
		},
	}, true
}

// worse orders outcomes of one balance webhook's movements: the answer is the least settled one.
func (o outcome) worse(than outcome) bool {
	rank := func(o outcome) int {
		switch o {
		case outcomeUnavailable:
			return 3
		case outcomeReview, outcomeReviewClosed:
			return 2
		case outcomeSignaled:
			return 1
		}
		return 0
	}
	return rank(o) > rank(than)
}

func balanceFailureReason(err error) string {
	switch {
	case errors.Is(err, zerohash.ErrMissingHeader):
		return reasonZHMissing
	case errors.Is(err, zerohash.ErrMalformedHeader):
		return reasonZHMalformed
	case errors.Is(err, zerohash.ErrSignatureMismatch):
		return reasonZHMismatch
	}
	return "other"
}

// sdkRelay is the body of POST /v1/sdk-events.
type sdkRelay struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	ID     string `json:"id"`
}

// Bounds on SDK relay fields: the frontend relays short codes and ids, never documents.
const (
	maxSDKDetail = 256
	maxSDKID     = 128
)

// sdkEvent verifies a relayed Auth SDK callback by its session JWT and signals it to the session's transfer.
func (b *Bridge) sdkEvent(ctx context.Context, _ routeID, r *http.Request, body []byte) result {
	sessionID, reason := b.verify.session(ctx, r.Header)
	if reason != "" {
		return result{outcome: outcomeUnauthorized, reason: reason}
	}
	in, err := parseSDKRelay(body)
	if err != nil {
		return result{outcome: outcomeMalformed, err: err}
	}
	e := workflows.SDKEvent{Type: in.Type, Detail: in.Detail, DedupeKey: sdkDedupeKey(sessionID, in)}
	m := message{sessionID: sessionID, signal: workflows.SignalSDKEvent, arg: e}
	res := b.deliver(ctx, &m)
	res.event, res.key = "sdk."+in.Type, e.DedupeKey
	return res
}

func parseSDKRelay(body []byte) (sdkRelay, error) {
	var in sdkRelay
	if err := json.Unmarshal(body, &in); err != nil {
		return in, fmt.Errorf("body must be a JSON object {type, detail, id} of strings: %w", err)
	}
	switch in.Type {
	case workflows.SDKTypeClose, workflows.SDKTypeEvent, workflows.SDKTypeDeposit, workflows.SDKTypeWithdrawal,
		workflows.SDKTypeError:
	default:
		return in, fmt.Errorf("type: must be one of close, event, deposit, withdrawal, error")
	}
	if len(in.Detail) > maxSDKDetail {
		return in, fmt.Errorf("detail: longer than %d bytes", maxSDKDetail)
	}
	if len(in.ID) > maxSDKID {
		return in, fmt.Errorf("id: longer than %d bytes", maxSDKID)
	}
	return in, nil
}

// sdkDedupeKey is the same for every relay of one callback: session, type, and a hash of detail and id (hashed so
// a ':' in either cannot make two callbacks collide).
func sdkDedupeKey(sessionID string, in sdkRelay) string {
	h := sha256.New()
	h.Write([]byte(in.Detail))
	h.Write([]byte{0})
	h.Write([]byte(in.ID))
	return "sdk:" + sessionID + ":" + in.Type + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// deliver routes a verified message and times Temporal's part.
func (b *Bridge) deliver(ctx context.Context, m *message) result {
	start := time.Now()
	o, workflowID, err := b.router.deliver(ctx, m)
	return result{outcome: o, workflowID: workflowID, err: err, routed: true, routedIn: time.Since(start)}
}
