package connecttest

import (
	"bytes"
	"cmp"
	"context"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/zerohash"
)

// Webhook constants from the guide and Zero Hash's docs.
const (
	PayloadTypeDeposit    = "connect_deposit.status_changed"
	PayloadTypeWithdrawal = "connect_withdrawal.status_changed"
	// webhookClientID is the client-id header Connect sends on its webhooks ("Always Connect.", per
	// docs.zerohash.com/reference/connect-webhooks).
	webhookClientID = "Connect"
	// webhookJWTTTL is the lifetime of the Authorization JWT on a webhook.
	webhookJWTTTL = 5 * time.Minute
	// DefaultFailureReason is what a failed transfer's webhook says when Play.FailureReason is empty.
	DefaultFailureReason = "transaction failed on-chain"
	// maxAnswerBytes is how much of a receiver's answer an Attempt keeps.
	maxAnswerBytes = 512
	// maxDrainBytes is how much more of an answer is read and dropped to keep the connection reusable.
	maxDrainBytes = 64 << 10
	// maxDuplicates bounds Play.Duplicates so a typo cannot flood a receiver.
	maxDuplicates = 100
)

// Redelivery is a webhook retry schedule: the emitter waits Base before each of the first Flat retries (the first
// retry at least), twice the previous wait before each later one, capped at Max, until Attempts attempts were made.
type Redelivery struct {
	Base     time.Duration // default 250 ms
	Max      time.Duration // default 30 s
	Attempts int           // attempts per delivery, the first included; default 8
	// Flat is how many retries wait Base before the doubling starts; 0 and 1 both double from the second retry.
	Flat int
}

// ZeroHashRedelivery is Zero Hash's published schedule for its webhooks (connect-facts.md): four retries 250 ms
// apart, then three with exponential backoff, then the notification is dropped. The sandbox's balance webhooks
// follow it unless Options.BalanceRedelivery says otherwise, so a bridge outage of a few seconds loses a movement
// here as it does against Zero Hash, and only the reconciliation brings it back.
var ZeroHashRedelivery = Redelivery{Base: 250 * time.Millisecond, Max: 30 * time.Second, Attempts: 8, Flat: 4}

func (r *Redelivery) fill() {
	if r.Base == 0 {
		r.Base = 250 * time.Millisecond
	}
	if r.Max == 0 {
		r.Max = 30 * time.Second
	}
	if r.Attempts == 0 {
		r.Attempts = 8
	}
}

func (r Redelivery) validate() error {
	if r.Base < 0 || r.Max < r.Base || r.Attempts < 1 || r.Flat < 0 {
		return fmt.Errorf("%+v: want 0 <= Base <= Max, Attempts >= 1 and Flat >= 0", r)
	}
	return nil
}

// backoff is the wait after failed attempt n (1-based): Base for the first max(Flat, 1) retries, each later one
// twice the one before, capped at Max.
func (r Redelivery) backoff(n int) time.Duration {
	d := r.Base
	for i := max(r.Flat, 1); i < n && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Outcome is how a played transfer ends.
type Outcome string

const (
	OutcomeConfirmed  Outcome = "confirmed"  // initiated, broadcasted, confirmed
	OutcomeFailed     Outcome = "failed"     // initiated, broadcasted, failed (with a failure reason)
	OutcomeUnexpected Outcome = "unexpected" // initiated, broadcasted, connect.deposit.unexpected; deposits only
	OutcomeNone       Outcome = "none"       // initiated, broadcasted, then nothing: a transfer that never ends
)

// Play says how to play a session's transfer life as webhooks. The zero value plays a clean confirmed life.
type Play struct {
	Outcome    Outcome       // default OutcomeConfirmed
	Duplicates int           // extra copies of each event
	Shuffle    bool          // deliver the events (and copies) in a Seed-determined random order
	Delay      time.Duration // pause between deliveries
	Late       bool          // after the last event, deliver every event once more, in order
	Seed       uint64
	// FailureReason is the failed event's reason; default DefaultFailureReason.
	FailureReason string
}

func (p Play) validate() error {
	switch p.Outcome {
	case "", OutcomeConfirmed, OutcomeFailed, OutcomeUnexpected, OutcomeNone:
	default:
		return fmt.Errorf("outcome %q is not confirmed, failed, unexpected or none", p.Outcome)
	}
	if p.Duplicates < 0 || p.Duplicates > maxDuplicates {
		return fmt.Errorf("duplicates %d is outside 0..%d", p.Duplicates, maxDuplicates)
	}
	if p.Delay < 0 {
		return fmt.Errorf("delay %v is negative", p.Delay)
	}
	return nil
}

// Delivery is one webhook the sandbox sent (one copy of one event), with every attempt and its answer.
type Delivery struct {
	// ID is unique per delivery; balance webhooks send it as x-zh-hook-notification-id.
	ID          string          `json:"id"`
	PayloadType string          `json:"payload_type"`
	Event       string          `json:"event"` // e.g. connect.deposit.confirmed, account_balance.changed
	SessionID   string          `json:"session_id,omitempty"`
	TransferID  string          `json:"transfer_id,omitempty"`
	URL         string          `json:"url"`
	Body        json.RawMessage `json:"body"`
	Attempts    []Attempt       `json:"attempts"`
	Delivered   bool            `json:"delivered"` // some attempt got a 2xx
	// Dropped: a balance webhook the sandbox was told to drop (DropBalanceWebhooks): never sent, in the ledger.
	Dropped bool `json:"dropped,omitempty"`
}

// Attempt is one try at a Delivery and the receiver's answer.
type Attempt struct {
	At        time.Time `json:"at"`
	Timestamp string    `json:"timestamp"`        // the signed timestamp header value
	Status    int       `json:"status,omitempty"` // 0 when no answer came
	Error     string    `json:"error,omitempty"`  // the network error when no answer came
	Answer    string    `json:"answer,omitempty"` // the start of the answer body
}

// hookLog records every delivery, in the order they started.
type hookLog struct {
	mu         sync.Mutex
	deliveries []*Delivery
}

func (l *hookLog) start(d *Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries = append(l.deliveries, d)
}

// addAttempt records a finished attempt and returns a snapshot of the delivery.
func (l *hookLog) addAttempt(d *Delivery, a Attempt) Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	d.Attempts = append(d.Attempts, a)
	d.Delivered = d.Delivered || is2xx(a.Status)
	return d.snapshot()
}

func (d *Delivery) snapshot() Delivery {
	c := *d
	c.Attempts = slices.Clone(d.Attempts)
	return c
}

// Deliveries returns every webhook delivery so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	out := make([]Delivery, len(s.hooks.deliveries))
	for i, d := range s.hooks.deliveries {
		out[i] = d.snapshot()
	}
	return out
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// webhookURLs are the current webhook targets.
type webhookURLs struct{ deposit, withdrawal, balance string }

// check reports the first set URL that is not an absolute http(s) URL, and its kind ("Deposit", ...).
func (u webhookURLs) check() (kind string, err error) {
	for _, t := range []struct{ kind, url string }{{"Deposit", u.deposit}, {"Withdrawal", u.withdrawal}, {"Balance", u.balance}} {
		if t.url == "" {
			continue
		}
		if err := checkURL(t.url); err != nil {
			return t.kind, err
		}
	}
	return "", nil
}

// SetWebhookURLs replaces all three webhook targets; an empty URL disables that kind of webhook.
func (s *Server) SetWebhookURLs(deposit, withdrawal, balance string) error {
	urls := webhookURLs{deposit: deposit, withdrawal: withdrawal, balance: balance}
	if kind, err := urls.check(); err != nil {
		return fmt.Errorf("connecttest: %s webhook URL: %w", strings.ToLower(kind), err)
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	s.state.hookURLs = urls
	return nil
}

func (s *Server) webhookURLs() webhookURLs {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.hookURLs
}

// Play emits a session's transfer life to its kind's webhook URL and returns every delivery, blocking until each
// was delivered or ran out of attempts, or ctx ended. Deliveries that exhaust their attempts are reported in the
// joined error; the later events are still sent.
func (s *Server) Play(ctx context.Context, sessionID string, p Play) ([]Delivery, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("connecttest: play: %w", err)
	}
	info, ok := s.Session(sessionID)
	if !ok {
		return nil, fmt.Errorf("connecttest: play: no session %q", sessionID)
	}
	if info.Invalidated() {
		return nil, fmt.Errorf("%w: play %s (replaced by %s)", ErrSessionInvalidated, sessionID, info.ReplacedBy)
	}
	if p.Outcome == OutcomeUnexpected && info.Kind != connect.KindDeposit {
		return nil, errors.New("connecttest: play: outcome unexpected applies to deposits only")
	}
	urls := s.webhookURLs()
	target, payloadType := urls.deposit, PayloadTypeDeposit
	if info.Kind == connect.KindWithdrawal {
		target, payloadType = urls.withdrawal, PayloadTypeWithdrawal
	}
	if target == "" {
		return nil, fmt.Errorf("connecttest: play: no %s webhook URL configured", info.Kind)
	}
	events, err := lifeEvents(info, p, s.now().UTC())
	if err != nil {
		return nil, err
	}
	var out []Delivery
	var undelivered []error
	for i, ev := range p.schedule(events) {
		if i > 0 && p.Delay > 0 && !sleep(ctx, p.Delay) {
			return out, fmt.Errorf("connecttest: play %s: %w", sessionID, ctx.Err())
		}
		if ev.final {
			s.state.finish(sessionID)
		}
		d := &Delivery{ID: uuid.NewString(), PayloadType: payloadType, Event: ev.name, SessionID: info.ID,
			TransferID: info.TransferID, URL: target, Body: ev.body}
		got, err := s.deliver(ctx, d, s.opts.Redelivery, s.connectHeaders(payloadType, target))
		out = append(out, got)
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			undelivered = append(undelivered, err)
		}
	}
	return out, errors.Join(undelivered...)
}

// Playback is a play running in the background.
type Playback struct {
	done       chan struct{}
	deliveries []Delivery
	err        error
}

// Done is closed when the play has finished.
func (pb *Playback) Done() <-chan struct{} { return pb.done }

// Wait blocks until the play has finished and returns what Play would have.
func (pb *Playback) Wait() ([]Delivery, error) {
	<-pb.done
	return pb.deliveries, pb.err
}

// PlayAsync runs Play in the background until it finishes or the server closes.
func (s *Server) PlayAsync(sessionID string, p Play) *Playback { return s.startPlay(sessionID, p, 0) }

func (s *Server) startPlay(sessionID string, p Play, after time.Duration) *Playback {
	pb := &Playback{done: make(chan struct{})}
	s.playMu.Lock()
	defer s.playMu.Unlock()
	if s.ctx.Err() != nil {
		pb.err = errors.New("connecttest: play: server is closed")
		close(pb.done)
		return pb
	}
	s.plays.Add(1)
	go func() {
		defer s.plays.Done()
		defer close(pb.done)
		if !sleep(s.ctx, after) {
			pb.err = fmt.Errorf("connecttest: play %s: %w", sessionID, s.ctx.Err())
			return
		}
		pb.deliveries, pb.err = s.Play(s.ctx, sessionID, p)
		if pb.err != nil {
			s.log.Warn("background play failed", "session_id", sessionID, "err", pb.err)
		}
	}()
	return pb
}

// lifeEvent is one event of a transfer's life, its body built once so every copy is byte-identical.
type lifeEvent struct {
	name  string
	body  json.RawMessage
	final bool
}

// schedule orders the events' deliveries: copies, shuffle, then the late replay.
func (p Play) schedule(events []lifeEvent) []lifeEvent {
	var seq []lifeEvent
	for _, ev := range events {
		for range p.Duplicates + 1 {
			seq = append(seq, ev)
		}
	}
	if p.Shuffle {
		rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x5851f42d4c957f2d))
		rng.Shuffle(len(seq), func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
	}
	if p.Late {
		seq = append(seq, events...)
	}
	return seq
}

// Guide sample values for the parts of a transaction the sandbox does not model.
const (
	sampleFrom  = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"
	sampleTo    = "0x7d1afa7b718fb893db30a3abc0cfc608aacfebb0"
	sampleValue = "1000000000000000000"
	// guideUpdatedSkew reproduces the guide's confirmed sample, whose updated_at is 7 min before created_at.
	guideUpdatedSkew = -7 * time.Minute
)

// wireWebhook is the guide's webhook body; withdrawals carry their transfer under "deposit" too (the guide's quirk).
type wireWebhook struct {
	Event   string       `json:"event"`
	Deposit wireTransfer `json:"deposit"`
	Account struct {
		ReferenceID string `json:"reference_id"`
	} `json:"account"`
	Session struct {
		ID        string          `json:"id"`
		CreatedAt string          `json:"created_at,omitempty"`
		Metadata  json.RawMessage `json:"metadata"`
	} `json:"session"`
}

type wireTransfer struct {
	ID            string           `json:"id"`
	Asset         string           `json:"asset"`
	Network       string           `json:"network"`
	Amount        string           `json:"amount"`
	Source        string           `json:"source,omitempty"`
	FailureReason string           `json:"failure_reason,omitempty"`
	CreatedAt     string           `json:"created_at"`
	UpdatedAt     string           `json:"updated_at"`
	Transaction   *wireTransaction `json:"transaction"` // null until broadcast, as in the guide
}

type wireTransaction struct {
	Hash              string `json:"hash"`
	BlockNumber       string `json:"block_number"` // a timestamp string in the guide, kept so
	Timestamp         string `json:"timestamp"`
	From              string `json:"from"`
	To                string `json:"to"`
	Value             string `json:"value"`
	Gas               int    `json:"gas"`
	GasPrice          string `json:"gas_price"`
	Nonce             int    `json:"nonce"`
	Input             string `json:"input"`
	Status            string `json:"status"`
	GasUsed           int    `json:"gas_used"`
	CumulativeGasUsed int    `json:"cumulative_gas_used"`
}

// lifeEvents builds the events of one transfer life in order.
func lifeEvents(info SessionInfo, p Play, now time.Time) ([]lifeEvent, error) {
	statuses := []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted}
	switch p.Outcome {
	case "", OutcomeConfirmed:
		statuses = append(statuses, connect.StatusConfirmed)
	case OutcomeFailed:
		statuses = append(statuses, connect.StatusFailed)
	case OutcomeUnexpected:
		statuses = append(statuses, connect.StatusUnexpected)
	}
	source := "coinbase" // the guide's samples: a deposit comes from an exchange, a withdrawal from "XYZ"
	if info.Kind == connect.KindWithdrawal {
		source = "XYZ"
	}
	hash := sha256.Sum256([]byte("tx:" + info.TransferID))
	stamp := now.Format(guideTime)
	events := make([]lifeEvent, 0, len(statuses))
	for _, st := range statuses {
		var w wireWebhook
		w.Event = "connect." + string(info.Kind) + "." + string(st)
		w.Deposit = wireTransfer{ID: info.TransferID, Asset: info.Asset, Network: info.Network, Amount: info.Amount,
			CreatedAt: stamp, UpdatedAt: stamp}
		w.Account.ReferenceID = info.ReferenceID
		w.Session.ID = info.ID
		w.Session.Metadata = info.Metadata
		switch st {
		case connect.StatusInitiated:
			w.Deposit.Source = source
		default:
			w.Session.CreatedAt = info.CreatedAt.UTC().Format(guideTime)
			w.Deposit.Transaction = &wireTransaction{Hash: "0x" + hex.EncodeToString(hash[:]), BlockNumber: stamp,
				Timestamp: stamp, From: sampleFrom, To: sampleTo, Value: sampleValue, Gas: 21000,
				GasPrice: "30000000000", Nonce: 102, Input: "0x", Status: "0x1", GasUsed: 21000,
				CumulativeGasUsed: 105000}
		}
		switch st {
		case connect.StatusConfirmed:
			w.Deposit.UpdatedAt = now.Add(guideUpdatedSkew).Format(guideTime)
		case connect.StatusFailed:
			w.Deposit.FailureReason = cmp.Or(p.FailureReason, DefaultFailureReason)
			w.Deposit.Transaction.Status = "0x0"
		}
		body, err := json.Marshal(w)
		if err != nil {
			return nil, fmt.Errorf("connecttest: encode %s: %w", w.Event, err)
		}
		events = append(events, lifeEvent{name: w.Event, body: body, final: st != connect.StatusInitiated && st != connect.StatusBroadcasted})
	}
	return events, nil
}

// headerSigner sets a delivery attempt's authentication headers for the moment it is sent and returns the
// timestamp it signed.
type headerSigner func(h http.Header, body []byte, now time.Time) (string, error)

// connectHeaders signs like Connect's webhook page publishes: client-id "Connect", x-zh-hook-payload-type,
// timestamp (Unix seconds) and signature over ts+POST+url+body, from the current key. With Options.WebhookBearer it
// adds the guide's short-lived bearer JWT too.
func (s *Server) connectHeaders(payloadType, target string) headerSigner {
	return func(h http.Header, body []byte, now time.Time) (string, error) {
		k := s.keys.current()
		ts := strconv.FormatInt(now.Unix(), 10)
		sig, err := connect.Sign(k.key, ts, http.MethodPost, target, body)
		if err != nil {
			return "", err
		}
		h.Set(connect.HeaderClientID, webhookClientID)
		h.Set(connect.HeaderPayloadType, payloadType)
		h.Set(connect.HeaderTimestamp, ts)
		h.Set(connect.HeaderSignature, sig)
		if s.bearer.Load() {
			bearer, err := signJWT(k, jwt.MapClaims{
				"iss": "connect",
				"iat": jwt.NewNumericDate(now),
				"exp": jwt.NewNumericDate(now.Add(webhookJWTTTL)),
				"jti": uuid.NewString(),
			})
			if err != nil {
				return "", err
			}
			h.Set("Authorization", "Bearer "+bearer)
		}
		return ts, nil
	}
}

// SetWebhookBearer turns the guide's bearer JWT on Connect webhooks on or off from the next attempt on.
func (s *Server) SetWebhookBearer(on bool) { s.bearer.Store(on) }

// zeroHashKey is the RSA key that signs balance webhooks: Options.ZeroHashWebhookKey, else one generated once.
func (s *Server) zeroHashKey() (*rsa.PrivateKey, error) {
	s.zhKeyOnce.Do(func() {
		s.zhKey = s.opts.ZeroHashWebhookKey
		if s.zhKey == nil {
			s.zhKey, s.zhKeyErr = rsa.GenerateKey(cryptorand.Reader, 2048)
		}
	})
	return s.zhKey, s.zhKeyErr
}

// ZeroHashWebhookPublicKey is the public half of the key that RSA-signs balance webhooks, for a receiver's
// ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE (ZeroHashWebhookPublicKeyPEM writes it as PEM).
func (s *Server) ZeroHashWebhookPublicKey() (*rsa.PublicKey, error) {
	k, err := s.zeroHashKey()
	if err != nil {
		return nil, fmt.Errorf("connecttest: Zero Hash webhook key: %w", err)
	}
	return &k.PublicKey, nil
}

// ZeroHashWebhookPublicKeyPEM is ZeroHashWebhookPublicKey as a PEM "PUBLIC KEY" block.
func (s *Server) ZeroHashWebhookPublicKeyPEM() ([]byte, error) {
	pub, err := s.ZeroHashWebhookPublicKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("connecttest: encode Zero Hash webhook key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// balanceHeaders signs a balance webhook with every scheme Zero Hash's webhook-security page lists, as during its
// transition: x-zh-hook-timestamp (Unix ms, fresh per attempt), the legacy x-zh-hook-signature-256 and the timed
// x-zh-hook-signature (HMAC, when a secret is set), and the legacy x-zh-hook-rsa-signature-256 and the timed
// x-zh-hook-rsa-signature (RSA). The timed names and signed string are zerohash's documented assumption.
func (s *Server) balanceHeaders(id string) headerSigner {
	return func(h http.Header, body []byte, now time.Time) (string, error) {
		key, err := s.zeroHashKey()
		if err != nil {
			return "", err
		}
		ts := strconv.FormatInt(now.UnixMilli(), 10)
		legacyRSA, err := zerohash.SignRSAWebhook(key, body, "")
		if err != nil {
			return "", err
		}
		timedRSA, err := zerohash.SignRSAWebhook(key, body, ts)
		if err != nil {
			return "", err
		}
		if s.opts.WebhookSecret != "" {
			h.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook(s.opts.WebhookSecret, body))
			h.Set(zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook(s.opts.WebhookSecret, body, ts))
		}
		h.Set(zerohash.HeaderHookRSASignature, legacyRSA)
		h.Set(zerohash.HeaderHookTimedRSASignature, timedRSA)
		h.Set(zerohash.HeaderHookNotificationID, id)
		h.Set(zerohash.HeaderPayloadType, zerohash.PayloadTypeBalanceChanged)
		h.Set(zerohash.HeaderHookTimestamp, ts)
		return ts, nil
	}
}

// deliver sends d until a 2xx, the attempt cap, or ctx ends, re-signing each attempt with a fresh timestamp.
func (s *Server) deliver(ctx context.Context, d *Delivery, r Redelivery, sign headerSigner) (Delivery, error) {
	s.hooks.start(d)
	for n := 1; ; n++ {
		snap := s.hooks.addAttempt(d, s.attempt(ctx, d, sign))
		last := snap.Attempts[len(snap.Attempts)-1]
		s.log.Info("webhook attempt", "event", d.Event, "session_id", d.SessionID, "attempt", n, "result", last.summary())
		if is2xx(last.Status) {
			return snap, nil
		}
		if n >= r.Attempts {
			return snap, fmt.Errorf("connecttest: %s to %s not delivered after %d attempts (last: %s)", d.Event, d.URL, n, last.summary())
		}
		if !sleep(ctx, r.backoff(n)) {
			return snap, fmt.Errorf("connecttest: %s to %s: %w", d.Event, d.URL, ctx.Err())
		}
	}
}

func (a Attempt) summary() string {
	if a.Status == 0 {
		return a.Error
	}
	return "HTTP " + strconv.Itoa(a.Status)
}

// attempt makes one signed POST of d and records the answer.
func (s *Server) attempt(ctx context.Context, d *Delivery, sign headerSigner) Attempt {
	now := s.now()
	a := Attempt{At: now}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		a.Error = err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Timestamp, err = sign(req.Header, d.Body, now); err != nil {
		a.Error = "sign: " + err.Error()
		return a
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err == nil {
		// Drain a bounded remainder so the connection can be reused.
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
	}
	if err != nil {
		a.Error = "read answer: " + err.Error()
	}
	a.Answer = string(answer)
	return a
}

// finish marks a session done once its final event goes out, freeing its reference id.
func (st *state) finish(sessionID string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ss, ok := st.byID[sessionID]; ok {
		ss.Finished = true
	}
}

// EmitBalance sends an account_balance.changed webhook to the balance URL, signed with every published scheme
// (balanceHeaders), and retries it like any delivery. Its movements go into the ledger GET /movements serves, even
// when the webhook is never delivered; while DropBalanceWebhooks is on, the webhook is recorded as Dropped and not
// sent. Empty fields get defaults: account_type "available", timestamp now (ms), a run id,
// movement ids and times; ev.NotificationID (default a fresh id) goes in x-zh-hook-notification-id, not the body.
// The body must then be a valid balance event (zerohash.ParseBalanceEvent); the error names what is missing.
func (s *Server) EmitBalance(ctx context.Context, ev zerohash.BalanceEvent) (Delivery, error) {
	target := s.webhookURLs().balance
	now := s.now()
	drop := s.ledger.dropping(now)
	if target == "" && !drop {
		return Delivery{}, errors.New("connecttest: emit balance: no balance webhook URL configured")
	}
	ev.AccountType = cmp.Or(ev.AccountType, "available")
	if ev.Timestamp == 0 {
		ev.Timestamp = now.UnixMilli()
	}
	if ev.RunID == "" {
		ev.RunID = strconv.FormatInt(now.UnixNano()%1e7, 10)
	}
	ev.Movements = slices.Clone(ev.Movements)
	for i := range ev.Movements {
		m := &ev.Movements[i]
		m.MovementID = cmp.Or(m.MovementID, uuid.NewString())
		if m.MovementTimestamp == 0 {
			m.MovementTimestamp = now.UnixMilli()
		}
	}
	fillAccountIDs(&ev)
	id := cmp.Or(ev.NotificationID, uuid.NewString())
	ev.NotificationID = "" // a header, not part of the payload
	body, err := json.Marshal(ev)
	if err != nil {
		return Delivery{}, fmt.Errorf("connecttest: encode balance event: %w", err)
	}
	if _, err := zerohash.ParseBalanceEvent(body); err != nil {
		return Delivery{}, &invalidBalanceError{err: err}
	}
	s.announce(ev) // in the ledger GET /movements serves, whether the webhook is then sent or dropped
	d := &Delivery{ID: id, PayloadType: zerohash.PayloadTypeBalanceChanged, Event: zerohash.PayloadTypeBalanceChanged,
		URL: target, Body: body}
	if drop {
		return s.dropDelivery(d), nil
	}
	return s.deliver(ctx, d, s.opts.BalanceRedelivery, s.balanceHeaders(id))
}
