package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/zerohash"
)

// sender posts what the suite itself sends the bridge: Auth SDK callbacks a frontend relays and Zero Hash balance
// webhooks. Like their real senders it resends until a 2xx, and it keeps every answer for the checks.
type sender struct {
	bridgeURL     string
	webhookSecret string
	hc            *http.Client
	// ledger is the sandbox: while dropping (a bridge outage), Zero Hash gives up on balance webhooks, so the
	// suite hands each movement to the sandbox's ledger (drop switch on) instead of to the bridge; reconciliation
	// (GET /movements) must then settle it.
	ledger   *sandboxAPI
	dropping atomic.Bool

	mu      sync.Mutex
	posts   []post
	dropped map[string]bool // movement ids handed to the ledger while dropping
}

// post is one request the suite sent the bridge and its answer.
type post struct {
	Route   string
	Subject string // the transfer workflow id, or the movement id for a ledger post
	Key     string // the SDK type, or the movement id
	At      time.Time
	Status  int // 0: no answer
	Outcome string
	Probe   bool // sent while Temporal was down, to check the 503
}

func newSender(bridgeURL, webhookSecret string) *sender {
	return &sender{bridgeURL: bridgeURL, webhookSecret: webhookSecret, hc: &http.Client{Timeout: 30 * time.Second}}
}

// resendPause is how long a sender waits before resending a message the bridge did not take.
const resendPause = time.Second

// sdkEvent relays one Auth SDK callback with the session JWT, until the bridge answers 2xx.
func (s *sender) sdkEvent(ctx context.Context, subject, jwt, typ, detail string) error {
	body, err := json.Marshal(map[string]string{"type": typ, "detail": detail})
	if err != nil {
		return err
	}
	return s.until2xx(ctx, func() post {
		p := post{Route: bridge.PathSDKEvents, Subject: subject, Key: typ}
		s.send(ctx, &p, body, http.Header{"Authorization": {"Bearer " + jwt}})
		return p
	})
}

// balance sends one account_balance.changed webhook carrying mv under notification id, until a 2xx.
func (s *sender) balance(ctx context.Context, subject string, mv zerohash.Movement, notification string) error {
	if s.dropping.Load() && s.ledger != nil {
		return s.drop(ctx, mv)
	}
	body, h, err := s.balanceRequest(mv, notification)
	if err != nil {
		return err
	}
	return s.until2xx(ctx, func() post {
		p := post{Route: bridge.PathZeroHashBalances, Subject: subject, Key: mv.MovementID}
		s.send(ctx, &p, body, s.stamp(h, body)) // a fresh timestamp per attempt, as Zero Hash signs each one
		return p
	})
}

// setDropping switches the sandbox's balance-webhook drop and the suite's own balance webhooks together.
func (s *sender) setDropping(ctx context.Context, on bool) error {
	if s.ledger == nil {
		return nil
	}
	if on {
		s.dropping.Store(true)
	}
	err := s.ledger.call(ctx, http.MethodPost, "/sandbox/balance-webhooks/drop", map[string]bool{"drop": on}, http.StatusNoContent, nil)
	if !on {
		s.dropping.Store(false)
	}
	return err
}

// drop hands mv to the sandbox's ledger as a balance webhook Zero Hash gave up on: announced, never delivered.
func (s *sender) drop(ctx context.Context, mv zerohash.Movement) error {
	s.mu.Lock()
	seen := s.dropped[mv.MovementID]
	s.mu.Unlock()
	if seen {
		return nil // every copy of a dropped webhook is dropped: the ledger has the movement once
	}
	ev := zerohash.BalanceEvent{AccountGroup: "chaos", AccountLabel: "general", AccountType: "available", Asset: "BTC",
		Balance: "1.0", ParticipantCode: "CHAOS1", RunID: "1", RunType: "deposit", Movements: []zerohash.Movement{mv}}
	if err := retry(ctx, 10, func() error {
		return s.ledger.call(ctx, http.MethodPost, "/sandbox/balances", ev, http.StatusOK, nil)
	}); err != nil {
		return fmt.Errorf("hand movement %s to the sandbox ledger: %w", mv.MovementID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped == nil {
		s.dropped = map[string]bool{}
	}
	s.dropped[mv.MovementID] = true
	return nil
}

// droppedMovements lists the movements whose balance webhooks were dropped.
func (s *sender) droppedMovements() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.dropped)
}

// stamp returns h with a fresh x-zh-hook-timestamp and the timed x-zh-hook-signature over body + it (the
// replay-protected scheme; see zerohash.WebhookVerifier).
func (s *sender) stamp(h http.Header, body []byte) http.Header {
	h = h.Clone()
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	h.Set(zerohash.HeaderHookTimestamp, ts)
	h.Set(zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook(s.webhookSecret, body, ts))
	return h
}

// balanceRequest builds a signed account_balance.changed webhook carrying mv.
func (s *sender) balanceRequest(mv zerohash.Movement, notification string) ([]byte, http.Header, error) {
	ev := zerohash.BalanceEvent{AccountGroup: "chaos", AccountLabel: "general", AccountType: "available", Asset: "BTC",
		Balance: "1.0", ParticipantCode: "CHAOS1", RunID: "1", RunType: "deposit", Timestamp: time.Now().UnixMilli(),
		Movements: []zerohash.Movement{mv}}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{}
	h.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook(s.webhookSecret, body))
	h.Set(zerohash.HeaderHookNotificationID, notification)
	h.Set(zerohash.HeaderPayloadType, zerohash.PayloadTypeBalanceChanged)
	return body, s.stamp(h, body), nil
}

// probeSDK relays one informational SDK callback once, marked as sent while Temporal was down.
func (s *sender) probeSDK(ctx context.Context, subject, jwt string) post {
	body := []byte(`{"type":"event","detail":"deposit.submitted"}`)
	p := post{Route: bridge.PathSDKEvents, Subject: subject, Key: "event", Probe: true}
	s.send(ctx, &p, body, http.Header{"Authorization": {"Bearer " + jwt}})
	return p
}

// probeLedger sends one balance webhook once, marked as sent while Temporal was down.
func (s *sender) probeLedger(ctx context.Context, mv zerohash.Movement) post {
	p := post{Route: bridge.PathZeroHashBalances, Subject: mv.MovementID, Key: mv.MovementID, Probe: true}
	body, h, err := s.balanceRequest(mv, uuid.NewString())
	if err != nil {
		return p
	}
	s.send(ctx, &p, body, h)
	return p
}

// maxResends bounds one message's resends: a bridge that never takes it is a failed check, not a hung suite.
const maxResends = 120

func (s *sender) until2xx(ctx context.Context, try func() post) error {
	var last post
	for range maxResends {
		last = try()
		if last.Status >= 200 && last.Status < 300 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(resendPause):
		}
	}
	return fmt.Errorf("%s %s: no 2xx after %d tries (last HTTP %d)", last.Route, last.Subject, maxResends, last.Status)
}

// send makes one POST and records it with its answer.
func (s *sender) send(ctx context.Context, p *post, body []byte, h http.Header) {
	p.At = time.Now()
	defer func() {
		s.mu.Lock()
		s.posts = append(s.posts, *p)
		s.mu.Unlock()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.bridgeURL+p.Route, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", uuid.NewString())
	resp, err := s.hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	p.Status = resp.StatusCode
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	p.Outcome = answerOutcome(answer)
}

func (s *sender) all() []post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]post(nil), s.posts...)
}

// answerOutcome reads the bridge's {"outcome": ...} or {"error": ...} answer body.
func answerOutcome(body []byte) string {
	var a struct {
		Outcome string
		Error   string
	}
	if json.Unmarshal(body, &a) != nil {
		return ""
	}
	if a.Outcome != "" {
		return a.Outcome
	}
	return a.Error
}
