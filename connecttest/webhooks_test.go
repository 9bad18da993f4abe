package connecttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/zerohash"
)

// received is one webhook as the test receiver saw it, already verified.
type received struct {
	header http.Header
	body   []byte
	event  connect.Event // parsed by the project's own parser
	kid    string        // of the Authorization JWT
}

// receiver plays the organization's webhook endpoint: it verifies every delivery like a real one must (signature
// over the registered URL, bearer JWT from the JWKS) and answers 500 to the first failFirst requests.
type receiver struct {
	t         *testing.T
	sandbox   *connecttest.Server
	url       string // the exact URL registered with the sandbox
	failFirst int
	bearer    bool // expect the guide's bearer JWT (Options.WebhookBearer); else refuse any Authorization header

	mu      sync.Mutex
	calls   int
	got     []received
	jtis    map[string]bool
	arrived chan struct{} // one send per verified delivery
}

func newReceiver(t *testing.T, sandbox *connecttest.Server, failFirst int) *receiver {
	rc := &receiver{t: t, sandbox: sandbox, failFirst: failFirst, jtis: map[string]bool{}, arrived: make(chan struct{}, 1000)}
	hs := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(hs.Close)
	// A query string makes sure the signature covers the registered URL exactly, not just the path.
	rc.url = hs.URL + "/hooks/connect?org=acme"
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: read body: %v", err)
		return
	}
	got, err := rc.verify(r, body)
	if err != nil {
		rc.t.Errorf("receiver: delivery rejected: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.calls++
	fail := rc.calls <= rc.failFirst
	if !fail {
		rc.got = append(rc.got, got)
	}
	rc.mu.Unlock()
	if fail {
		http.Error(w, "try again later", http.StatusInternalServerError)
		return
	}
	rc.arrived <- struct{}{}
	w.WriteHeader(http.StatusOK)
}

// verify checks one delivery against the sandbox's served JWKS.
func (rc *receiver) verify(r *http.Request, body []byte) (received, error) {
	keys, err := loadJWKS(rc.sandbox.URL + "/api/v1/jwks")
	if err != nil {
		return received{}, err
	}
	if err := connect.VerifyWebhook(keys, rc.url, r.Header, body, connect.VerifyOptions{}); err != nil {
		return received{}, fmt.Errorf("signature: %w", err)
	}
	if got := r.Header.Get(connect.HeaderClientID); got != "Connect" {
		return received{}, fmt.Errorf("client-id %q, want Connect", got)
	}
	ev, err := connect.ParseEvent(body)
	if err != nil {
		return received{}, fmt.Errorf("body: %w", err)
	}
	wantType := connecttest.PayloadTypeDeposit
	if ev.Kind == connect.KindWithdrawal {
		wantType = connecttest.PayloadTypeWithdrawal
	}
	if got := r.Header.Get(connect.HeaderPayloadType); got != wantType {
		return received{}, fmt.Errorf("%s %q, want %q", connect.HeaderPayloadType, got, wantType)
	}
	if !rc.bearer {
		// Connect's published webhook headers are client-id, timestamp, signature, x-zh-hook-payload-type.
		if auth := r.Header.Get("Authorization"); auth != "" {
			return received{}, errors.New("an Authorization header the published webhook does not have")
		}
		return received{header: r.Header.Clone(), body: body, event: ev}, nil
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return received{}, errors.New("no bearer JWT")
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(raw, &claims, keyfuncFor(keys), jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer("connect"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		return received{}, fmt.Errorf("bearer JWT: %w", err)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life <= 0 || life > 5*time.Minute {
		return received{}, fmt.Errorf("bearer JWT lives %v, want at most 5 min", life)
	}
	rc.mu.Lock()
	seen := rc.jtis[claims.ID]
	rc.jtis[claims.ID] = true
	rc.mu.Unlock()
	if claims.ID == "" || seen {
		return received{}, fmt.Errorf("bearer JWT jti %q is empty or reused", claims.ID)
	}
	kid, _ := tok.Header["kid"].(string)
	return received{header: r.Header.Clone(), body: body, event: ev, kid: kid}, nil
}

func (rc *receiver) events() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// await waits for n more verified deliveries; the long timeout only guards against a hung test.
func (rc *receiver) await(n int) {
	rc.t.Helper()
	for range n {
		select {
		case <-rc.arrived:
		case <-time.After(30 * time.Second):
			rc.t.Fatalf("timed out waiting for webhooks; got %d", len(rc.events()))
		}
	}
}

func names(rs []received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.event.Name
	}
	return out
}

// openSession opens a session through the HTTP API and returns what the sandbox recorded for it.
func openSession(t *testing.T, srv *connecttest.Server, body []byte) connecttest.SessionInfo {
	t.Helper()
	a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", body, bearer(accessToken(t, srv)))
	if a.status != http.StatusOK {
		t.Fatalf("open session: %d %s", a.status, a.body)
	}
	claims, _ := verifySessionJWT(t, sessionJWT(t, a), srv.PublicKeys())
	info, ok := srv.Session(claims.Session.ID)
	if !ok {
		t.Fatalf("session %s not recorded", claims.Session.ID)
	}
	return info
}

// fastRedelivery keeps retry tests quick.
var fastRedelivery = connecttest.Redelivery{Base: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 5}

func TestPlayLives(t *testing.T) {
	tests := []struct {
		name       string
		body       []byte
		play       connecttest.Play
		want       []string
		finished   bool
		asset      string
		amount     string
		failReason string
	}{
		{"deposit confirmed", depositBody("d", "U1"), connecttest.Play{},
			[]string{"connect.deposit.initiated", "connect.deposit.broadcasted", "connect.deposit.confirmed"}, true, "BTC", "0.013", ""},
		{"deposit failed", depositBody("d", "U1"), connecttest.Play{Outcome: connecttest.OutcomeFailed, FailureReason: "insufficient funds"},
			[]string{"connect.deposit.initiated", "connect.deposit.broadcasted", "connect.deposit.failed"}, true, "BTC", "0.013", "insufficient funds"},
		{"deposit failed, default reason", depositBody("d", "U1"), connecttest.Play{Outcome: connecttest.OutcomeFailed},
			[]string{"connect.deposit.initiated", "connect.deposit.broadcasted", "connect.deposit.failed"}, true, "BTC", "0.013", connecttest.DefaultFailureReason},
		{"deposit unexpected", depositBody("d", "U1"), connecttest.Play{Outcome: connecttest.OutcomeUnexpected},
			[]string{"connect.deposit.initiated", "connect.deposit.broadcasted", "connect.deposit.unexpected"}, true, "BTC", "0.013", ""},
		{"deposit that never ends", depositBody("d", "U1"), connecttest.Play{Outcome: connecttest.OutcomeNone},
			[]string{"connect.deposit.initiated", "connect.deposit.broadcasted"}, false, "BTC", "0.013", ""},
		{"withdrawal confirmed", withdrawalBody("w", "U2"), connecttest.Play{},
			[]string{"connect.withdrawal.initiated", "connect.withdrawal.broadcasted", "connect.withdrawal.confirmed"}, true, "ETH", "1.25", ""},
		{"withdrawal failed", withdrawalBody("w", "U2"), connecttest.Play{Outcome: connecttest.OutcomeFailed},
			[]string{"connect.withdrawal.initiated", "connect.withdrawal.broadcasted", "connect.withdrawal.failed"}, true, "ETH", "1.25", connecttest.DefaultFailureReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSandbox(t, connecttest.Options{})
			rc := newReceiver(t, srv, 0)
			if err := srv.SetWebhookURLs(rc.url, rc.url, ""); err != nil {
				t.Fatal(err)
			}
			info := openSession(t, srv, tt.body)
			deliveries, err := srv.Play(context.Background(), info.ID, tt.play)
			if err != nil {
				t.Fatalf("Play: %v", err)
			}
			got := rc.events()
			if !slices.Equal(names(got), tt.want) {
				t.Fatalf("received %v, want %v", names(got), tt.want)
			}
			if len(deliveries) != len(tt.want) {
				t.Fatalf("Play reported %d deliveries, want %d", len(deliveries), len(tt.want))
			}
			var hash string
			for i, r := range got {
				ev := r.event
				if ev.TransferID != info.TransferID || ev.SessionID != info.ID || ev.ReferenceID != info.ReferenceID ||
					ev.Asset != tt.asset || ev.Amount != tt.amount || ev.Kind != info.Kind {
					t.Errorf("%s parsed as %+v; session %+v", ev.Name, ev, info)
				}
				var shape struct {
					Deposit *struct {
						Source      *string `json:"source"`
						Transaction *struct {
							Hash        string `json:"hash"`
							BlockNumber string `json:"block_number"`
						} `json:"transaction"`
						CreatedAt string `json:"created_at"`
						UpdatedAt string `json:"updated_at"`
					} `json:"deposit"`
					Withdrawal json.RawMessage `json:"withdrawal"`
					Session    struct {
						Metadata json.RawMessage `json:"metadata"`
					} `json:"session"`
				}
				if err := json.Unmarshal(r.body, &shape); err != nil || shape.Deposit == nil {
					t.Fatalf("%s body %s: want the transfer under \"deposit\" (%v)", ev.Name, r.body, err)
				}
				if shape.Withdrawal != nil {
					t.Errorf("%s carries a \"withdrawal\" key; the guide puts every transfer under \"deposit\"", ev.Name)
				}
				if string(shape.Session.Metadata) != string(info.Metadata) {
					t.Errorf("%s metadata %s, want %s as sent", ev.Name, shape.Session.Metadata, info.Metadata)
				}
				if i == 0 {
					if shape.Deposit.Transaction != nil || shape.Deposit.Source == nil {
						t.Errorf("initiated body %s: want transaction null and a source", r.body)
					}
					continue
				}
				tx := shape.Deposit.Transaction
				if tx == nil || tx.Hash == "" || ev.TxHash != tx.Hash || (hash != "" && tx.Hash != hash) {
					t.Fatalf("%s body %s: want one tx hash on every event after initiated", ev.Name, r.body)
				}
				hash = tx.Hash
				if _, err := time.Parse(time.RFC3339Nano, tx.BlockNumber); err != nil {
					t.Errorf("%s block_number %q is not the guide's timestamp string", ev.Name, tx.BlockNumber)
				}
				if ev.Status == connect.StatusConfirmed && !ev.UpdatedAt.Before(ev.CreatedAt) {
					t.Errorf("confirmed updated_at %v is not before created_at %v, unlike the guide", ev.UpdatedAt, ev.CreatedAt)
				}
			}
			if last := got[len(got)-1].event; last.FailureReason != tt.failReason {
				t.Errorf("final failure reason %q, want %q", last.FailureReason, tt.failReason)
			}
			if after, _ := srv.Session(info.ID); after.Finished != tt.finished {
				t.Errorf("session finished = %v, want %v", after.Finished, tt.finished)
			}
			for _, d := range deliveries {
				if !d.Delivered || len(d.Attempts) != 1 || d.Attempts[0].Status != http.StatusOK || d.URL != rc.url {
					t.Errorf("delivery %+v: want one 200 attempt to %s", d, rc.url)
				}
			}
		})
	}
}

func TestPlayDuplicatesShuffleLate(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	rc := newReceiver(t, srv, 0)
	if err := srv.SetWebhookURLs(rc.url, rc.url, ""); err != nil {
		t.Fatal(err)
	}
	play := connecttest.Play{Duplicates: 2, Shuffle: true, Late: true, Seed: 42}
	first := openSession(t, srv, depositBody("a", "DUP1"))
	if _, err := srv.Play(context.Background(), first.ID, play); err != nil {
		t.Fatal(err)
	}
	got := rc.events()
	life := []string{"connect.deposit.initiated", "connect.deposit.broadcasted", "connect.deposit.confirmed"}
	if len(got) != 3*3+3 {
		t.Fatalf("received %d webhooks, want 12 (3 events x 3 copies + 3 late): %v", len(got), names(got))
	}
	bodies := map[string]string{}
	for _, r := range got {
		if prev, ok := bodies[r.event.Name]; ok && prev != string(r.body) {
			t.Errorf("copies of %s differ:\n%s\n%s", r.event.Name, prev, r.body)
		}
		bodies[r.event.Name] = string(r.body)
	}
	for _, name := range life {
		if n := strings.Count(strings.Join(names(got), " "), name); n != 4 {
			t.Errorf("%s arrived %d times, want 4", name, n)
		}
	}
	shuffled, late := names(got[:9]), names(got[9:])
	if !slices.Equal(late, life) {
		t.Errorf("late replay %v, want %v after the rest", late, life)
	}
	if slices.IsSortedFunc(shuffled, func(a, b string) int { return slices.Index(life, a) - slices.Index(life, b) }) {
		t.Errorf("shuffled deliveries %v came in life order", shuffled)
	}

	// The same seed gives the same order: a chaos failure can be replayed.
	if err := srv.FinishSession(first.ID); err != nil {
		t.Fatal(err)
	}
	second := openSession(t, srv, depositBody("b", "DUP2"))
	if _, err := srv.Play(context.Background(), second.ID, play); err != nil {
		t.Fatal(err)
	}
	if replay := names(rc.events()[12:]); !slices.Equal(replay, names(got)) {
		t.Errorf("same seed, different order:\n%v\n%v", replay, names(got))
	}
}

func TestRedelivery(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{Redelivery: fastRedelivery})
	rc := newReceiver(t, srv, 2) // answers 500 twice
	if err := srv.SetWebhookURLs(rc.url, "", ""); err != nil {
		t.Fatal(err)
	}
	info := openSession(t, srv, depositBody("r", "RETRY"))
	deliveries, err := srv.Play(context.Background(), info.ID, connecttest.Play{Outcome: connecttest.OutcomeNone})
	if err != nil {
		t.Fatalf("Play: %v", err)
	}
	d := deliveries[0]
	var statuses []int
	for _, a := range d.Attempts {
		statuses = append(statuses, a.Status)
	}
	if !slices.Equal(statuses, []int{500, 500, 200}) || !d.Delivered {
		t.Fatalf("first event attempts %v (delivered %v), want [500 500 200]", statuses, d.Delivered)
	}
	if !strings.Contains(d.Attempts[0].Answer, "try again later") {
		t.Errorf("attempt answer %q: want the receiver's body recorded", d.Attempts[0].Answer)
	}
	if len(deliveries[1].Attempts) != 1 {
		t.Errorf("second event took %d attempts, want 1", len(deliveries[1].Attempts))
	}
	if got := names(rc.events()); !slices.Equal(got, []string{"connect.deposit.initiated", "connect.deposit.broadcasted"}) {
		t.Errorf("received %v", got)
	}
	if all := srv.Deliveries(); len(all) != 2 || len(all[0].Attempts) != 3 {
		t.Errorf("Deliveries() = %d records, first with %d attempts; want 2 and 3", len(all), len(all[0].Attempts))
	}
	if st := srv.Stats(); st.Deliveries != 2 || st.Delivered != 2 || st.DeliveryAttempts != 4 {
		t.Errorf("stats %+v: want 2 deliveries, 2 delivered, 4 attempts", st)
	}
}

// TestBalanceWebhooksHaveTheirOwnSchedule: a balance webhook is retried on Options.BalanceRedelivery, a Connect
// webhook on Options.Redelivery.
func TestBalanceWebhooksHaveTheirOwnSchedule(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{
		Redelivery:        connecttest.Redelivery{Base: time.Millisecond, Max: time.Millisecond, Attempts: 5},
		BalanceRedelivery: connecttest.Redelivery{Base: time.Millisecond, Max: time.Millisecond, Attempts: 3},
	})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	if err := srv.SetWebhookURLs(down.URL, "", down.URL+"/balance"); err != nil {
		t.Fatal(err)
	}
	d, err := srv.EmitBalance(context.Background(), zerohash.BalanceEvent{AccountGroup: "PLAT01", Asset: "BTC", Balance: "1",
		ParticipantCode: "PART01", Movements: []zerohash.Movement{{Change: "1", MovementType: "deposit"}}})
	if err == nil || len(d.Attempts) != 3 || d.Delivered {
		t.Errorf("balance webhook: %d attempts, delivered %v, err %v; want 3 attempts and an error", len(d.Attempts), d.Delivered, err)
	}
	info := openSession(t, srv, depositBody("own", "OWNSCHEDULE"))
	deliveries, err := srv.Play(context.Background(), info.ID, connecttest.Play{Outcome: connecttest.OutcomeNone})
	if err == nil || len(deliveries) == 0 || len(deliveries[0].Attempts) != 5 {
		t.Errorf("Connect webhook: deliveries %d, err %v; want the first with 5 attempts and an error", len(deliveries), err)
	}
}

func TestRedeliveryGivesUp(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{Redelivery: connecttest.Redelivery{Base: time.Millisecond, Max: time.Millisecond, Attempts: 3}})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens here any more: a network error

	tests := []struct {
		name   string
		url    string
		status int
	}{
		{"receiver answers 503", down.URL, http.StatusServiceUnavailable},
		{"receiver unreachable", gone.URL, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.SetWebhookURLs(tt.url, "", ""); err != nil {
				t.Fatal(err)
			}
			info := openSession(t, srv, depositBody(fmt.Sprint("g", i), fmt.Sprint("GIVEUP", i)))
			deliveries, err := srv.Play(context.Background(), info.ID, connecttest.Play{Outcome: connecttest.OutcomeNone})
			if err == nil || !strings.Contains(err.Error(), "not delivered after 3 attempts") {
				t.Fatalf("Play err %v, want one reporting 3 attempts", err)
			}
			if len(deliveries) != 2 {
				t.Fatalf("%d deliveries, want both events tried", len(deliveries))
			}
			for _, d := range deliveries {
				if d.Delivered || len(d.Attempts) != 3 {
					t.Fatalf("delivery %+v: want 3 failed attempts", d)
				}
				for _, a := range d.Attempts {
					if a.Status != tt.status || (tt.status == 0) != (a.Error != "") || a.Timestamp == "" {
						t.Fatalf("attempt %+v: want status %d and an error exactly when there was no answer", a, tt.status)
					}
				}
			}
		})
	}
}

func TestPlayRejects(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	withdrawal := openSession(t, srv, withdrawalBody("w", "REJ1"))
	deposit := openSession(t, srv, depositBody("d", "REJ2"))
	tests := []struct {
		name    string
		session string
		play    connecttest.Play
		want    string
	}{
		{"unknown session", "nope", connecttest.Play{}, "no session"},
		{"no webhook URL", deposit.ID, connecttest.Play{}, "no deposit webhook URL"},
		{"unexpected withdrawal", withdrawal.ID, connecttest.Play{Outcome: connecttest.OutcomeUnexpected}, "deposits only"},
		{"unknown outcome", deposit.ID, connecttest.Play{Outcome: "exploded"}, "exploded"},
		{"negative duplicates", deposit.ID, connecttest.Play{Duplicates: -1}, "duplicates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := srv.Play(context.Background(), tt.session, tt.play); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := srv.SetWebhookURLs("not a url", "", ""); err == nil {
		t.Error("SetWebhookURLs accepted a relative URL")
	}
}

// TestWebhooksFollowKeyRotation runs with the guide's bearer JWT (Options.WebhookBearer): its kid names the key.
func TestWebhooksFollowKeyRotation(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{WebhookBearer: true})
	rc := newReceiver(t, srv, 0)
	rc.bearer = true
	if err := srv.SetWebhookURLs(rc.url, "", ""); err != nil {
		t.Fatal(err)
	}
	before := srv.CurrentKeyID()
	first := openSession(t, srv, depositBody("a", "ROT1"))
	if _, err := srv.Play(context.Background(), first.ID, connecttest.Play{Outcome: connecttest.OutcomeNone}); err != nil {
		t.Fatal(err)
	}
	after, err := srv.RotateKey(testKey(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	second := openSession(t, srv, depositBody("b", "ROT2"))
	if _, err := srv.Play(context.Background(), second.ID, connecttest.Play{Outcome: connecttest.OutcomeNone}); err != nil {
		t.Fatal(err)
	}
	got := rc.events()
	for i, r := range got {
		want := before
		if i >= 2 {
			want = after
		}
		if r.kid != want {
			t.Errorf("webhook %d signed by %q, want %q", i, r.kid, want)
		}
	}
	// The signature uses the same key as the JWT: only the new key verifies it.
	last := got[len(got)-1]
	onlyOld := []connect.PublicKey{srv.PublicKeys()[0]}
	if err := connect.VerifyWebhook(onlyOld, rc.url, last.header, last.body, connect.VerifyOptions{}); !errors.Is(err, connect.ErrSignatureMismatch) {
		t.Errorf("post-rotation webhook verified with the old key alone: %v", err)
	}
}

func TestEmitBalance(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{WebhookSecret: "whsec-test"})
	var (
		mu  sync.Mutex
		got []zerohash.BalanceEvent
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read: %v", err)
			return
		}
		ev, err := zerohash.ConstructBalanceEvent("whsec-test", r.Header, body)
		if err != nil {
			t.Errorf("balance webhook rejected: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Every published scheme, each on its own: HMAC timed, RSA timed, RSA legacy.
		pub, err := srv.ZeroHashWebhookPublicKey()
		if err != nil {
			t.Error(err)
		}
		for name, v := range map[string]zerohash.WebhookVerifier{
			"HMAC, timestamp required": {Secret: "whsec-test", RequireTimestamp: true},
			"RSA, timestamp required":  {PublicKey: pub, RequireTimestamp: true},
			"RSA":                      {PublicKey: pub},
		} {
			if err := v.Verify(r.Header, body); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		for _, k := range []string{zerohash.HeaderHookTimestamp, zerohash.HeaderHookSignature, zerohash.HeaderHookTimedSignature,
			zerohash.HeaderHookRSASignature, zerohash.HeaderHookTimedRSASignature} {
			if r.Header.Get(k) == "" {
				t.Errorf("no %s", k)
			}
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	if err := srv.SetWebhookURLs("", "", hook.URL+"/balance"); err != nil {
		t.Fatal(err)
	}
	d, err := srv.EmitBalance(context.Background(), zerohash.BalanceEvent{
		AccountGroup: "PLAT01", Asset: "BTC", Balance: "0.013", ParticipantCode: "PART01", RunType: "deposit",
		NotificationID: "n-1",
		Movements:      []zerohash.Movement{{Change: "0.013", MovementType: "deposit", DepositReferenceID: "dep-1"}},
	})
	if err != nil {
		t.Fatalf("EmitBalance: %v", err)
	}
	if !d.Delivered || d.ID != "n-1" || d.PayloadType != zerohash.PayloadTypeBalanceChanged {
		t.Fatalf("delivery %+v", d)
	}
	if strings.Contains(string(d.Body), "notification_id") {
		t.Errorf("body %s carries the notification id; it belongs in the header", d.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("receiver got %d balance events", len(got))
	}
	ev := got[0]
	if ev.NotificationID != "n-1" || ev.AccountType != "available" || ev.Timestamp == 0 || ev.RunID == "" ||
		len(ev.Movements) != 1 || ev.Movements[0].MovementID == "" || ev.Movements[0].DepositReferenceID != "dep-1" {
		t.Fatalf("balance event %+v: want defaults filled and fields kept", ev)
	}

	if _, err := srv.EmitBalance(context.Background(), zerohash.BalanceEvent{Asset: "BTC", Balance: "1"}); err == nil || !strings.Contains(err.Error(), "participant_code") {
		t.Errorf("EmitBalance without participant_code: err %v, want one naming it", err)
	}
}

func TestAutoPlayAndAsync(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{AutoPlay: &connecttest.Play{}, AutoPlayAfter: time.Millisecond})
	rc := newReceiver(t, srv, 0)
	if err := srv.SetWebhookURLs(rc.url, rc.url, ""); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, nil, nil)
	s, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: "auto-1", Kind: connect.KindDeposit, ReferenceID: "AUTO"})
	if err != nil {
		t.Fatal(err)
	}
	rc.await(3)
	for _, r := range rc.events() {
		if r.event.SessionID != s.ID {
			t.Errorf("auto-played event for session %q, want %q", r.event.SessionID, s.ID)
		}
	}

	pb := srv.PlayAsync(s.ID, connecttest.Play{Outcome: connecttest.OutcomeNone})
	deliveries, err := pb.Wait()
	if err != nil || len(deliveries) != 2 {
		t.Fatalf("PlayAsync: %d deliveries, err %v", len(deliveries), err)
	}
	select {
	case <-pb.Done():
	default:
		t.Fatal("Done not closed after Wait returned")
	}
}

func TestCloseStopsPendingPlays(t *testing.T) {
	srv, err := connecttest.New(connecttest.Options{SigningKey: testKey(t, 0), DepositWebhookURL: "http://127.0.0.1:1/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	info := openSession(t, srv, depositBody("c", "CLOSE"))
	pb := srv.PlayAsync(info.ID, connecttest.Play{Delay: time.Hour})
	srv.Close()
	if _, err := pb.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("a play cut short by Close: err %v, want context.Canceled", err)
	}
	if _, err := srv.PlayAsync(info.ID, connecttest.Play{}).Wait(); err == nil {
		t.Fatal("PlayAsync after Close: no error")
	}
}
