package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// connectWebhook verifies a Connect transfer webhook, checks its client-id and payload type, parses it, and routes
// it by its session metadata. A redelivery of an event id this bridge answered 2xx lately is answered duplicate
// without asking Temporal again (the transfer would dedupe it on transfer + status anyway).
func (b *Bridge) connectWebhook(ctx context.Context, route routeID, r *http.Request, body []byte) result {
	if reason := b.verify.webhook(ctx, r.Header, b.webhookAt[route], body); reason != "" {
		return unverified(reason)
	}
	if err := b.checkClientID(r.Header); err != nil {
		return result{outcome: outcomeMalformed, err: err}
	}
	ev, err := connect.ParseEvent(body)
	if err != nil {
		return result{outcome: outcomeMalformed, err: err}
	}
	if err := checkPayloadType(route, r.Header, ev); err != nil {
		return result{outcome: outcomeMalformed, err: err, event: ev.Name, key: ev.DedupeKey}
	}
	var seenKey string
	if id := ev.IdempotencyKey(); id != "" {
		seenKey = string(routeKind(route)) + ":" + id
		if b.recent.has(seenKey) {
			return result{outcome: outcomeDuplicate, event: ev.Name, key: ev.DedupeKey}
		}
	}
	m := connectMessage(ev, b.now())
	res := b.deliver(ctx, &m)
	res.event, res.key = ev.Name, ev.DedupeKey
	if seenKey != "" && res.outcome.status() == http.StatusOK {
		b.recent.add(seenKey)
	}
	return res
}

// errJWKSUnavailable is logged with a jwks_unavailable answer.
var errJWKSUnavailable = errors.New("no Connect JWKS key loaded (JWKS unreachable since start, or empty): nothing can verify")

// unverified is the result of a request whose Connect credentials did not verify: 401 with the reason counted, or,
// when no key is loaded at all (our outage, not the request's fault), 503 jwks_unavailable, counted apart from the
// verification failures so the sender retries and attack alerting sees only real failures.
func unverified(reason string) result {
	if reason == reasonJWKSUnavailable {
		return result{outcome: outcomeJWKSUnavailable, err: errJWKSUnavailable}
	}
	return result{outcome: outcomeUnauthorized, reason: reason}
}

// Connect's published payload types (x-zh-hook-payload-type) of its two webhook routes.
const (
	PayloadTypeConnectDeposit    = "connect_deposit.status_changed"
	PayloadTypeConnectWithdrawal = "connect_withdrawal.status_changed"
	// ConnectWebhookClientID is the client-id header value Connect's webhook page publishes ("Always Connect.").
	ConnectWebhookClientID = "Connect"
)

// routeKind is the transfer kind a Connect webhook route takes.
func routeKind(route routeID) connect.Kind {
	if route == routeConnectWithdrawals {
		return connect.KindWithdrawal
	}
	return connect.KindDeposit
}

// checkPayloadType: x-zh-hook-payload-type, when present, must be the route's type, and the event's kind (when its
// name has one) must agree. Absent is accepted: the guide's webhooks carry no such header.
func checkPayloadType(route routeID, h http.Header, ev connect.Event) error {
	pt, ok := h[http.CanonicalHeaderKey(connect.HeaderPayloadType)]
	if !ok {
		return nil
	}
	want := PayloadTypeConnectDeposit
	if routeKind(route) == connect.KindWithdrawal {
		want = PayloadTypeConnectWithdrawal
	}
	got := strings.TrimSpace(strings.Join(pt, ","))
	switch {
	case got != want:
		return fmt.Errorf("header %s is %q; %s takes %q", connect.HeaderPayloadType, clip(got), routePaths[route], want)
	case ev.Kind != "" && ev.Kind != routeKind(route):
		return fmt.Errorf("event %q is a %s event; header %s and route %s say %s", clip(ev.Name), ev.Kind,
			connect.HeaderPayloadType, routePaths[route], routeKind(route))
	}
	return nil
}

// checkClientID: when ConnectClientID is set, a client-id header that is present must be Connect's published
// value or our client id. Absent is accepted (the guide's webhooks carry none).
func (b *Bridge) checkClientID(h http.Header) error {
	values, ok := h[http.CanonicalHeaderKey(connect.HeaderClientID)]
	if b.clientID == "" || !ok {
		return nil
	}
	got := strings.TrimSpace(strings.Join(values, ","))
	if got == ConnectWebhookClientID || got == b.clientID {
		return nil
	}
	return fmt.Errorf("header %s is not %q nor this organization's Connect client id (CONNECT_CLIENT_ID)",
		connect.HeaderClientID, ConnectWebhookClientID)
}

// clip shortens a header value for an error message.
func clip(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		return s[:maxLen] + "..."
	}
	return s
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

// balanceWebhook verifies a Zero Hash account_balance.changed webhook with every configured scheme and routes each
// movement that names a Connect transfer through the LedgerRouter.
func (b *Bridge) balanceWebhook(ctx context.Context, _ routeID, r *http.Request, body []byte) result {
	if !b.zhOn {
		return result{outcome: outcomeNotConfigured}
	}
	ev, err := b.zh.Construct(r.Header, body)
	switch {
	case errors.Is(err, zerohash.ErrInvalidPayload):
		return result{outcome: outcomeMalformed, err: err}
	case err != nil:
		return result{outcome: outcomeUnauthorized, reason: balanceFailureReason(err), err: err}
	}
	res := result{outcome: outcomeAcknowledged, event: zerohash.PayloadTypeBalanceChanged, key: ev.NotificationID}
	for _, mv := range ev.Movements {
		start := time.Now()
		route, err := b.ledger.RouteMovement(ctx, ev.Asset, mv)
		if route.Outcome == LedgerNotOurs {
			continue // not a Connect transfer's movement (a trade, a fee): nothing of ours to settle
		}
		got := outcomeUnavailable
		switch {
		case err != nil:
		case route.Outcome == LedgerSignaled:
			got = outcomeSignaled
		case route.Outcome == LedgerAcknowledged:
			got = outcomeAcknowledged
		case route.Outcome == LedgerReview:
			got = outcomeReview
		case route.Outcome == LedgerReviewClosed:
			got = outcomeReviewClosed
		}
		res.routed, res.routedIn = true, res.routedIn+time.Since(start)
		if got.worse(res.outcome) {
			res.outcome, res.workflowID, res.err = got, route.WorkflowID, err
		}
		if got == outcomeUnavailable {
			break // the whole webhook is redelivered; its other movements are signalled then (deduped by id)
		}
	}
	return res
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
	case errors.Is(err, zerohash.ErrStaleTimestamp):
		return reasonZHStale
	}
	return "other"
}

// sdkRelay is the body of POST /v1/sdk-events.
type sdkRelay struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	ID     string `json:"id"`
}

// sdkEvent verifies a relayed Auth SDK callback by its session JWT and signals it to the session's transfer.
func (b *Bridge) sdkEvent(ctx context.Context, _ routeID, r *http.Request, body []byte) result {
	sessionID, reason := b.verify.session(ctx, r.Header)
	if reason != "" {
		return unverified(reason)
	}
	in, err := parseSDKRelay(body)
	if err != nil {
		return result{outcome: outcomeMalformed, err: err}
	}
	e := workflows.SDKEvent{Type: in.Type, Detail: in.Detail, DedupeKey: sdkDedupeKey(sessionID, in)}
	event := "sdk." + in.Type
	if !sdkChangesState(in.Type) {
		// event and error callbacks change nothing a transfer decides on: no signal spent on them.
		return result{outcome: outcomeNotForwarded, event: event, key: e.DedupeKey}
	}
	if b.recentSDK.has(e.DedupeKey) {
		return result{outcome: outcomeDuplicate, event: event, key: e.DedupeKey}
	}
	if !b.sdkLimits.allow(sessionID) {
		return result{outcome: outcomeRateLimited, event: event, key: e.DedupeKey}
	}
	m := message{sessionID: sessionID, signal: workflows.SignalSDKEvent, arg: e}
	res := b.deliver(ctx, &m)
	res.event, res.key = event, e.DedupeKey
	if res.outcome.status() == http.StatusOK {
		b.recentSDK.add(e.DedupeKey)
	}
	return res
}

// sdkChangesState reports whether an SDK callback type can change a transfer: close (may abandon it), deposit and
// withdrawal (the user submitted: the transfer must not be abandoned). Only these are signalled.
func sdkChangesState(typ string) bool {
	return typ == workflows.SDKTypeClose || typ == workflows.SDKTypeDeposit || typ == workflows.SDKTypeWithdrawal
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
	if utf8.RuneCountInString(in.Detail) > workflows.MaxSDKDetail {
		return in, fmt.Errorf("detail: longer than %d characters", workflows.MaxSDKDetail)
	}
	if utf8.RuneCountInString(in.ID) > workflows.MaxSDKID {
		return in, fmt.Errorf("id: longer than %d characters", workflows.MaxSDKID)
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
