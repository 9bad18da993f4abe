// Package webhook builds Connect transfer webhooks in the guide's shape, signs them and delivers them as Connect
// does, so the benchmark sends the bridge exactly what Connect would, with the signing done before the clock starts.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// Values Connect puts on every webhook.
const (
	clientID              = "Connect"
	payloadTypeDeposit    = "connect_deposit.status_changed"
	payloadTypeWithdrawal = "connect_withdrawal.status_changed"
	issuer                = "connect"
	// bearerTTL is the bearer JWT's lifetime, as the sandbox's webhooks have it.
	bearerTTL = 5 * time.Minute
	// bearerReuse is how long one bearer is reused. Connect signs one per delivery; the bridge verifies every
	// bearer in full, so reusing it changes nothing there and keeps RSA signing off the sender's hot path.
	bearerReuse = time.Minute
	guideTime   = "2006-01-02T15:04:05.000000000Z07:00"
)

// Transfer is what a webhook says about one transfer.
type Transfer struct {
	Kind        connect.Kind
	TransferID  string // the platform's transfer id, echoed back in the session metadata
	ConnectID   string // Connect's deposit or withdrawal id
	SessionID   string
	ReferenceID string
	Asset       string
	Network     string
	Amount      string
}

// Body returns the webhook for t reaching status, in the guide's shape: the transfer under "deposit" for both
// kinds, a transaction once broadcast, and the session metadata that routes it back to its workflow.
func Body(t Transfer, status connect.Status, at time.Time) ([]byte, error) {
	if !t.Kind.Valid() {
		return nil, fmt.Errorf("webhook: kind %q is not deposit or withdrawal", t.Kind)
	}
	if t.TransferID == "" || t.ConnectID == "" || t.SessionID == "" {
		return nil, errors.New("webhook: TransferID, ConnectID and SessionID are required")
	}
	stamp := at.UTC().Format(guideTime)
	type transaction struct {
		Hash        string `json:"hash"`
		BlockNumber string `json:"block_number"`
		Status      string `json:"status"`
	}
	var w struct {
		Event   string `json:"event"`
		Deposit struct {
			ID            string       `json:"id"`
			Asset         string       `json:"asset"`
			Network       string       `json:"network"`
			Amount        string       `json:"amount"`
			FailureReason string       `json:"failure_reason,omitempty"`
			CreatedAt     string       `json:"created_at"`
			UpdatedAt     string       `json:"updated_at"`
			Transaction   *transaction `json:"transaction"`
		} `json:"deposit"`
		Account struct {
			ReferenceID string `json:"reference_id"`
		} `json:"account"`
		Session struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"session"`
	}
	w.Event = "connect." + string(t.Kind) + "." + string(status)
	d := &w.Deposit
	d.ID, d.Asset, d.Network, d.Amount, d.CreatedAt, d.UpdatedAt = t.ConnectID, t.Asset, t.Network, t.Amount, stamp, stamp
	if status != connect.StatusInitiated {
		d.Transaction = &transaction{Hash: "0x" + t.ConnectID, BlockNumber: stamp, Status: "0x1"}
	}
	if status == connect.StatusFailed {
		d.FailureReason, d.Transaction.Status = "transaction failed on-chain", "0x0"
	}
	w.Account.ReferenceID = t.ReferenceID
	w.Session.ID = t.SessionID
	w.Session.Metadata = map[string]string{workflows.MetadataTransferID: t.TransferID, workflows.MetadataKind: string(t.Kind)}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode %s: %w", w.Event, err)
	}
	return body, nil
}

// PayloadType is the x-zh-hook-payload-type of a transfer webhook of kind k.
func PayloadType(k connect.Kind) string {
	if k == connect.KindWithdrawal {
		return payloadTypeWithdrawal
	}
	return payloadTypeDeposit
}

// Signer signs webhooks with Connect's private key, naming the key's JWKS kid in the bearer JWT.
type Signer struct {
	key *rsa.PrivateKey
	kid string
	now func() time.Time

	mu          sync.Mutex
	bearer      string
	bearerUntil time.Time
}

// NewSigner returns a Signer; now defaults to time.Now.
func NewSigner(key *rsa.PrivateKey, kid string, now func() time.Time) (*Signer, error) {
	if key == nil {
		return nil, errors.New("webhook: signer: nil private key")
	}
	if kid == "" {
		return nil, errors.New("webhook: signer: empty kid")
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: key, kid: kid, now: now}, nil
}

// Headers returns the headers Connect sends with body to url: client-id, payload type, timestamp, the signature
// over timestamp + POST + url + body, and a bearer JWT.
func (s *Signer) Headers(kind connect.Kind, url string, body []byte) (http.Header, error) {
	now := s.now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig, err := connect.Sign(s.key, ts, http.MethodPost, url, body)
	if err != nil {
		return nil, fmt.Errorf("webhook: sign: %w", err)
	}
	bearer, err := s.bearerAt(now)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(connect.HeaderClientID, clientID)
	h.Set(connect.HeaderPayloadType, PayloadType(kind))
	h.Set(connect.HeaderTimestamp, ts)
	h.Set(connect.HeaderSignature, sig)
	h.Set("Authorization", "Bearer "+bearer)
	return h, nil
}

// bearerAt returns a bearer JWT valid at now, signing a new one once the last is a bearerReuse old.
func (s *Signer) bearerAt(now time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bearer != "" && now.Before(s.bearerUntil) {
		return s.bearer, nil
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": issuer,
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(now.Add(bearerTTL)),
		"jti": rand.Text(),
	})
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("webhook: sign bearer JWT: %w", err)
	}
	s.bearer, s.bearerUntil = signed, now.Add(bearerReuse)
	return signed, nil
}

// Delivery is one signed webhook, ready to send.
type Delivery struct {
	URL    string
	Body   []byte
	Header http.Header
}

// Delivery behavior of Connect's sender, as far as the benchmark needs it.
const (
	// DeliveryAttempts is how many times Deliver sends one webhook at most.
	DeliveryAttempts = 3
	// MaxRetryAfter caps the wait a 503's Retry-After asks for.
	MaxRetryAfter = 10 * time.Second
	// defaultRetryAfter is the wait after a 503 without a usable Retry-After.
	defaultRetryAfter = time.Second
	// maxAnswerBytes is how much of an answer Deliver keeps.
	maxAnswerBytes = 512
)

// Deliver POSTs d as Connect delivers webhooks: again after Retry-After when the receiver answers 503 (it could
// not hand the webhook on in time), up to DeliveryAttempts times. It returns the start of the 2xx answer and how
// many times it sent d again; any other answer is an error that quotes it.
func Deliver(ctx context.Context, c *http.Client, d Delivery) (answer []byte, resent int, err error) {
	for attempt := 1; ; attempt++ {
		answer, retryAfter, err := deliverOnce(ctx, c, d)
		if err == nil || retryAfter == 0 || attempt == DeliveryAttempts {
			return answer, resent, err
		}
		select {
		case <-ctx.Done():
			return nil, resent, ctx.Err()
		case <-time.After(retryAfter):
		}
		resent++
	}
}

// deliverOnce makes one attempt; after a 503 it also says how long to wait before the next.
func deliverOnce(ctx context.Context, c *http.Client, d Delivery) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return nil, 0, fmt.Errorf("webhook: %w", err)
	}
	req.Header = d.Header
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("webhook: post: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("webhook: read the answer: %w", err)
	}
	// Drain a little more so the connection can carry the next webhook.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes)) // only connection reuse is at stake
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answer, 0, nil
	}
	err = fmt.Errorf("webhook: receiver answered %s: %s", resp.Status, answer)
	if resp.StatusCode != http.StatusServiceUnavailable {
		return nil, 0, err
	}
	wait := defaultRetryAfter
	if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
		wait = min(time.Duration(secs)*time.Second, MaxRetryAfter)
	}
	return nil, wait, err
}
