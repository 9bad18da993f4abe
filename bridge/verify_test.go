package bridge_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/zerohash"
)

// TestBadRequestsNeverSignal sends requests that must be refused, each to a fresh bridge with a real JWKS over
// HTTP and real RSA keys, and checks the status, the failure reason counted, and that nothing reached Temporal.
func TestBadRequestsNeverSignal(t *testing.T) {
	now := time.Now()
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	good := func(t *testing.T) webhook {
		return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now)
	}
	withJWT := func(t *testing.T, w webhook, token string) webhook {
		w.header.Set("Authorization", "Bearer "+token)
		return w
	}
	pubPEM := func(t *testing.T) []byte {
		der, err := x509.MarshalPKIXPublicKey(&testKey(t, 0).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}

	cases := []struct {
		name   string
		req    func(t *testing.T) webhook
		status int
		reason string // the verification failure counted, "" for none
		opts   harnessOptions
	}{
		{"missing signature header", func(t *testing.T) webhook {
			w := good(t)
			w.header.Del(connect.HeaderSignature)
			return w
		}, 401, "missing_signature", harnessOptions{}},
		{"missing timestamp header", func(t *testing.T) webhook {
			w := good(t)
			w.header.Del(connect.HeaderTimestamp)
			return w
		}, 401, "missing_timestamp", harnessOptions{}},
		{"signature+jwt: missing bearer JWT", func(t *testing.T) webhook {
			return good(t)
		}, 401, "jwt_missing", harnessOptions{auth: bridge.AuthSignatureJWT}},
		{"signature+jwt: bearer JWT by a key outside the JWKS", func(t *testing.T) webhook {
			return withBearer(t, good(t), testKey(t, 2), kidA, now)
		}, 401, "jwt_signature", harnessOptions{auth: bridge.AuthSignatureJWT}},
		{"bearer without a token", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set("Authorization", "Bearer")
			return w
		}, 401, "jwt_missing", harnessOptions{}},
		{"valid bearer JWT, no signature", func(t *testing.T) webhook {
			w := withBearer(t, good(t), testKey(t, 0), kidA, now)
			w.header.Del(connect.HeaderSignature)
			return w
		}, 401, "missing_signature", harnessOptions{}},
		{"payload type of withdrawals on the deposit route", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderPayloadType, bridge.PayloadTypeConnectWithdrawal)
			return w
		}, 400, "", harnessOptions{}},
		{"payload type unknown", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderPayloadType, "account_balance.changed")
			return w
		}, 400, "", harnessOptions{}},
		{"payload type empty", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderPayloadType, "")
			return w
		}, 400, "", harnessOptions{}},
		{"withdrawal event on the deposit route under the deposit payload type", func(t *testing.T) webhook {
			b := eventBody(t, "connect.withdrawal.confirmed", "cx-1", "sess-1", routed(connect.KindWithdrawal, "T1"))
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, b, now)
		}, 400, "", harnessOptions{}},
		{"deposit event on the withdrawal route under the withdrawal payload type", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectWithdrawals, withdrawalURL, body, now)
		}, 400, "", harnessOptions{}},
		{"client-id of another organization", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderClientID, "someone-elses-client-id")
			return w
		}, 400, "", harnessOptions{clientID: "our-client-id"}},
		{"client-id empty", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderClientID, "")
			return w
		}, 400, "", harnessOptions{clientID: "our-client-id"}},
		{"signature not base64", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderSignature, "not*base64!")
			return w
		}, 401, "bad_signature_encoding", harnessOptions{}},
		{"signature by a key outside the JWKS", func(t *testing.T) webhook {
			w := signedWith(t, testKey(t, 2), kidA, bridge.PathConnectDeposits, depositsURL, body, now)
			return withJWT(t, w, signJWT(t, testKey(t, 0), kidA, webhookClaims(now)))
		}, 401, "signature_mismatch", harnessOptions{}},
		{"JWT by a key outside the JWKS claiming its kid", func(t *testing.T) webhook {
			return withJWT(t, good(t), signJWT(t, testKey(t, 2), kidA, webhookClaims(now)))
		}, 401, "jwt_signature", harnessOptions{}},
		{"one byte of body changed", func(t *testing.T) webhook {
			w := good(t)
			w.body = bytes.Replace(w.body, []byte(`"0.013"`), []byte(`"0.014"`), 1)
			return w
		}, 401, "signature_mismatch", harnessOptions{}},
		{"timestamp too old", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now.Add(-connect.DefaultTolerance-10*time.Second))
		}, 401, "timestamp_out_of_window", harnessOptions{}},
		{"timestamp too far ahead", func(t *testing.T) webhook {
			w := good(t)
			ts := strconv.FormatInt(now.Add(connect.DefaultTolerance+10*time.Second).Unix(), 10)
			sig, err := connect.Sign(testKey(t, 0), ts, http.MethodPost, depositsURL, body)
			if err != nil {
				t.Fatal(err)
			}
			w.header.Set(connect.HeaderTimestamp, ts)
			w.header.Set(connect.HeaderSignature, sig)
			return w
		}, 401, "timestamp_out_of_window", harnessOptions{}},
		{"JWT alg none", func(t *testing.T) webhook {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, webhookClaims(now))
			tok.Header["kid"] = kidA
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return withJWT(t, good(t), s)
		}, 401, "jwt_algorithm", harnessOptions{}},
		{"JWT HS256 keyed with the public key", func(t *testing.T) webhook {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, webhookClaims(now))
			tok.Header["kid"] = kidA
			s, err := tok.SignedString(pubPEM(t))
			if err != nil {
				t.Fatal(err)
			}
			return withJWT(t, good(t), s)
		}, 401, "jwt_algorithm", harnessOptions{}},
		{"JWT from another issuer", func(t *testing.T) webhook {
			c := webhookClaims(now)
			c["iss"] = "zerohash"
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_issuer", harnessOptions{}},
		{"JWT expired", func(t *testing.T) webhook {
			c := webhookClaims(now.Add(-time.Hour))
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_expired", harnessOptions{}},
		{"JWT issued in the future", func(t *testing.T) webhook {
			c := webhookClaims(now)
			c["iat"] = now.Add(10 * time.Minute).Unix()
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_issued_at", harnessOptions{}},
		{"JWT without expiry", func(t *testing.T) webhook {
			c := webhookClaims(now)
			delete(c, "exp")
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_claim_missing", harnessOptions{}},
		{"JWT not a JWT", func(t *testing.T) webhook { return withJWT(t, good(t), "abc.def") }, 401, "jwt_malformed", harnessOptions{}},
		{"JWT naming a kid the JWKS does not hold", func(t *testing.T) webhook {
			return withJWT(t, good(t), signJWT(t, testKey(t, 2), "forged-kid", webhookClaims(now)))
		}, 401, "jwt_unknown_key", harnessOptions{}},
		{"browser-held session JWT as a webhook bearer", func(t *testing.T) webhook {
			return withJWT(t, good(t), sessionJWT(t, "sess-1", now))
		}, 401, "jwt_session_token", harnessOptions{}},
		{"signature replayed onto another URL", func(t *testing.T) webhook {
			w := good(t)
			w.path = bridge.PathConnectWithdrawals
			return w
		}, 401, "signature_mismatch", harnessOptions{}},
		{"signature over the Host the request reached, not the public URL", func(t *testing.T) webhook {
			// The harness server is on 127.0.0.1; a bridge that built the URL from Host would accept this.
			return signedWebhook(t, bridge.PathConnectDeposits, "http://127.0.0.1"+bridge.PathConnectDeposits, body, now)
		}, 401, "signature_mismatch", harnessOptions{}},
		{"oversized body with Content-Length", func(t *testing.T) webhook {
			big := append(bytes.Repeat([]byte(" "), bridge.DefaultMaxBody), body...)
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, big, now)
		}, 413, "", harnessOptions{}},
		{"wrong content type", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set("Content-Type", "text/plain")
			return w
		}, 415, "", harnessOptions{}},
		{"malformed JSON, validly signed", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, []byte(`{"event":"connect.deposit.confirmed",`), now)
		}, 400, "", harnessOptions{}},
		{"JSON without an event name, validly signed", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, []byte(`{"deposit":{"id":"cx-1"}}`), now)
		}, 400, "", harnessOptions{}},
		{"balance webhook with a wrong HMAC", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.header.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook("another-secret", w.body))
			return w
		}, 401, "zh_signature_mismatch", harnessOptions{}},
		{"balance webhook without a signature", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			for _, k := range []string{zerohash.HeaderHookSignature, zerohash.HeaderHookTimedSignature} {
				w.header.Del(k)
			}
			return w
		}, 401, "zh_missing_signature", harnessOptions{}},
		{"balance webhook: timed HMAC wrong, legacy right", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.header.Set(zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook("another-secret", w.body, w.header.Get(zerohash.HeaderHookTimestamp)))
			return w
		}, 401, "zh_signature_mismatch", harnessOptions{}},
		{"balance webhook: timed HMAC replayed after the tolerance", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			ts := strconv.FormatInt(time.Now().Add(-zerohash.DefaultWebhookTolerance-time.Minute).UnixMilli(), 10)
			w.header.Set(zerohash.HeaderHookTimestamp, ts)
			w.header.Set(zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook(zhSecret, w.body, ts))
			return w
		}, 401, "zh_stale_timestamp", harnessOptions{}},
		{"balance webhook: timed HMAC without its timestamp", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.header.Del(zerohash.HeaderHookTimestamp)
			return w
		}, 401, "zh_missing_signature", harnessOptions{}},
		{"balance webhook: legacy only when timestamps are required", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.header.Del(zerohash.HeaderHookTimedSignature)
			return w
		}, 401, "zh_missing_signature", harnessOptions{zhRequireTS: true}},
		{"balance webhook: RSA-only bridge, HMAC-signed webhook", func(t *testing.T) webhook {
			return balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
		}, 401, "zh_missing_signature", harnessOptions{zhSecret: "-", zhKey: &testKey(t, 1).PublicKey}},
		{"balance webhook: RSA signature by another key", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			sig, err := zerohash.SignRSAWebhook(testKey(t, 2), w.body, "")
			if err != nil {
				t.Fatal(err)
			}
			w.header.Set(zerohash.HeaderHookRSASignature, sig)
			return w
		}, 401, "zh_signature_mismatch", harnessOptions{zhSecret: "-", zhKey: &testKey(t, 1).PublicKey}},
		{"balance webhook on a bridge with no Zero Hash scheme", func(t *testing.T) webhook {
			return balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
		}, 404, "", harnessOptions{zhSecret: "-"}},
		{"balance webhook, validly signed, missing required fields", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.body = []byte(`{"movements":[]}`)
			w.header.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook(zhSecret, w.body))
			w.header.Set(zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook(zhSecret, w.body, w.header.Get(zerohash.HeaderHookTimestamp)))
			return w
		}, 400, "", harnessOptions{}},
		{"SDK event without a session JWT", func(t *testing.T) webhook {
			w := sdkRelay(t, "sess-1", `{"type":"close"}`)
			w.header.Del("Authorization")
			return w
		}, 401, "jwt_missing", harnessOptions{}},
		{"SDK event with a webhook JWT, which names no session", func(t *testing.T) webhook {
			w := sdkRelay(t, "sess-1", `{"type":"close"}`)
			w.header.Set("Authorization", "Bearer "+signJWT(t, testKey(t, 0), kidA, webhookClaims(now)))
			return w
		}, 401, "jwt_no_session", harnessOptions{}},
		{"SDK event of an unknown type", func(t *testing.T) webhook {
			return sdkRelay(t, "sess-1", `{"type":"teleport"}`)
		}, 400, "", harnessOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.opts)
			got := h.send(t, c.req(t))
			if got.status != c.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.body, c.status)
			}
			h.temporal.requireNoSignal(t)
			if c.status == http.StatusUnauthorized && got.body != `{"error":"unauthorized"}` {
				t.Errorf("401 body %q says more than unauthorized", got.body)
			}
			if c.reason != "" {
				if n := metric(t, h.reg, bridge.MetricVerificationFailures, map[string]string{"reason": c.reason}); n != 1 {
					t.Errorf("verification failures{reason=%q} = %v, want 1", c.reason, n)
				}
			}
		})
	}
}

// TestOversizedChunkedBody: without a Content-Length the limit applies while reading.
func TestOversizedChunkedBody(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	big := strings.Repeat(" ", bridge.DefaultMaxBody+1)
	w := signedWebhook(t, bridge.PathConnectDeposits, depositsURL, []byte(big), time.Now())
	req, err := http.NewRequest(http.MethodPost, h.server.URL+w.path, strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = w.header
	req.ContentLength = -1 // unknown: sent chunked
	if got := do(t, req); got.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%s), want 413", got.status, got.body)
	}
	h.temporal.requireNoSignal(t)
}

// TestUnknownKIDRefreshesOnceThenRateLimited: a forged kid costs one JWKS fetch on the request path and one on the
// background rotation path, not one per request.
func TestUnknownKIDRefreshesOnceThenRateLimited(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	if n := h.jwks.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}
	for i, kid := range []string{"forged-1", "forged-2", "forged-3"} {
		w := signedWith(t, testKey(t, 2), kid, bridge.PathConnectDeposits, depositsURL, body, time.Now())
		w = withBearer(t, w, testKey(t, 2), kid, time.Now()) // the bearer's kid is what asks the JWKS
		if got := h.send(t, w); got.status != http.StatusUnauthorized {
			t.Fatalf("kid %s: status %d, want 401", kid, got.status)
		}
		// The background refresh runs on its own; give it a moment before counting.
		time.Sleep(100 * time.Millisecond)
		if n, want := h.jwks.hits.Load(), int64(3); n != want {
			t.Fatalf("after unknown kid #%d: JWKS fetched %d times, want %d (one refresh per path, then rate-limited)", i+1, n, want)
		}
	}
	h.temporal.requireNoSignal(t)
	if n := metric(t, h.reg, bridge.MetricVerificationFailures, map[string]string{"reason": "jwt_unknown_key"}); n != 3 {
		t.Fatalf("jwt_unknown_key failures = %v, want 3", n)
	}
}

// TestRotatedKeyIsFetchedOnItsFirstWebhook: a key published after start verifies at once, in each auth mode.
func TestRotatedKeyIsFetchedOnItsFirstWebhook(t *testing.T) {
	for _, c := range []struct {
		mode   bridge.AuthMode
		bearer bool
	}{{bridge.AuthSignatureJWT, true}, {bridge.AuthSignature, true}, {bridge.AuthSignature, false}} {
		t.Run(fmt.Sprintf("%s bearer=%v", c.mode, c.bearer), func(t *testing.T) {
			h := newHarness(t, harnessOptions{auth: c.mode})
			h.jwks.publish(kidB, &testKey(t, 1).PublicKey)
			body := eventBody(t, "connect.deposit.initiated", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
			w := signedWith(t, testKey(t, 1), kidB, bridge.PathConnectDeposits, depositsURL, body, time.Now())
			if c.bearer {
				w = withBearer(t, w, testKey(t, 1), kidB, time.Now())
			}
			if got := h.send(t, w); got.status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", got.status, got.body)
			}
			if signals, _ := h.temporal.calls(); len(signals) != 1 {
				t.Fatalf("signals %+v, want one", signals)
			}
		})
	}
}

// TestAuthModes: signature (the default) requires the signature and verifies a bearer only when one is sent;
// signature+jwt requires both.
func TestAuthModes(t *testing.T) {
	body := eventBody(t, "connect.deposit.initiated", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	now := time.Now()
	strip := func(headers ...string) func(webhook) webhook {
		return func(w webhook) webhook {
			for _, k := range headers {
				w.header.Del(k)
			}
			return w
		}
	}
	bearer := func(key int) func(webhook) webhook {
		return func(w webhook) webhook { return withBearer(t, w, testKey(t, key), kidA, now) }
	}
	cases := []struct {
		mode   bridge.AuthMode
		spoil  func(webhook) webhook
		status int
	}{
		{"", strip(), 200}, // the default is signature: the published header set, no bearer
		{"", bearer(0), 200},
		{"", bearer(2), 401},
		{"", strip(connect.HeaderSignature), 401},
		{bridge.AuthSignature, strip(), 200},
		{bridge.AuthSignature, bearer(0), 200},
		{bridge.AuthSignature, bearer(2), 401},
		{bridge.AuthSignature, func(w webhook) webhook { w.header.Set("Authorization", "Basic dXNlcjpwYXNz"); return w }, 200},
		{bridge.AuthSignatureJWT, bearer(0), 200},
		{bridge.AuthSignatureJWT, strip(), 401},
		{bridge.AuthSignatureJWT, bearer(2), 401},
		{bridge.AuthSignatureJWT, func(w webhook) webhook { return strip(connect.HeaderSignature)(bearer(0)(w)) }, 401},
	}
	for i, c := range cases {
		h := newHarness(t, harnessOptions{auth: c.mode})
		w := c.spoil(signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now))
		got := h.send(t, w)
		if got.status != c.status {
			t.Errorf("case %d, mode %q: status %d (%s), want %d", i, c.mode, got.status, got.body, c.status)
		}
		signals, _ := h.temporal.calls()
		if want := map[bool]int{true: 1, false: 0}[c.status == 200]; len(signals) != want {
			t.Errorf("case %d, mode %q: %d signals, want %d", i, c.mode, len(signals), want)
		}
	}
}

func TestParseAuthMode(t *testing.T) {
	for _, s := range []string{"signature", "signature+jwt"} {
		if m, err := bridge.ParseAuthMode(s); err != nil || string(m) != s {
			t.Errorf("ParseAuthMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := bridge.ParseAuthMode("jwt"); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf(`ParseAuthMode("jwt"): error %v should say the mode was removed`, err)
	}
	for _, s := range []string{"", "none", "JWT", "jwt", "jwt+signature"} {
		if _, err := bridge.ParseAuthMode(s); err == nil || !strings.Contains(err.Error(), "signature+jwt") {
			t.Errorf("ParseAuthMode(%q): error %v should list the modes", s, err)
		}
	}
}

// sessionJWTWith is a session JWT like sessionJWT, signed by key under kid ("" for a header without kid).
func sessionJWTWith(tb testing.TB, key *rsa.PrivateKey, kid, sessionID string, now time.Time) string {
	tb.Helper()
	return signJWT(tb, key, kid, jwt.MapClaims{
		"iss": bridge.ConnectIssuer, "sub": "acct-1", "jti": uuid.NewString(),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"organization": map[string]string{"id": "org-1"},
		"session":      map[string]string{"id": sessionID},
	})
}

// TestRotatedKeyWithoutKIDIsFetched: Connect rotates to key B (published after the bridge's first fetch). A
// credential that names no kid, or names a known kid while the other credential is B's, makes the bridge refetch
// the JWKS (rate-limited) and verify again, so the first webhook after the rotation is taken: a bearer JWT without
// kid (the guide's sample JWT header has none) in both modes, a body signature by B beside a bearer by A's kid,
// and an SDK relay whose session JWT has no kid.
func TestRotatedKeyWithoutKIDIsFetched(t *testing.T) {
	body := eventBody(t, "connect.deposit.initiated", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	webhookCase := func(mode bridge.AuthMode, bearerKey int, bearerKID string) func(t *testing.T, h *harness) answer {
		return func(t *testing.T, h *harness) answer {
			w := signedWith(t, testKey(t, 1), kidB, bridge.PathConnectDeposits, depositsURL, body, time.Now())
			return h.send(t, withBearer(t, w, testKey(t, bearerKey), bearerKID, time.Now()))
		}
	}
	cases := []struct {
		name string
		mode bridge.AuthMode
		send func(t *testing.T, h *harness) answer
	}{
		{"signature: bearer without kid", bridge.AuthSignature, webhookCase(bridge.AuthSignature, 1, "")},
		{"signature+jwt: bearer without kid", bridge.AuthSignatureJWT, webhookCase(bridge.AuthSignatureJWT, 1, "")},
		{"signature+jwt: bearer by known kid A, body signed by new key B", bridge.AuthSignatureJWT, webhookCase(bridge.AuthSignatureJWT, 0, kidA)},
		{"signature: bearer by known kid A, body signed by new key B", bridge.AuthSignature, webhookCase(bridge.AuthSignature, 0, kidA)},
		{"SDK relay: session JWT without kid", "", func(t *testing.T, h *harness) answer {
			h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectSessionID = 'sess-9'", "deposit-T9")
			w := sdkRelay(t, "sess-9", `{"type":"close"}`)
			w.header.Set("Authorization", "Bearer "+sessionJWTWith(t, testKey(t, 1), "", "sess-9", time.Now()))
			return h.send(t, w)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{auth: c.mode})
			h.jwks.publish(kidB, &testKey(t, 1).PublicKey) // after the bridge's first fetch: a rotation
			if got := c.send(t, h); got.status != http.StatusOK {
				t.Fatalf("first request after the rotation: %d %s; JWKS fetched %d times", got.status, got.body, h.jwks.hits.Load())
			}
			if signals, _ := h.temporal.calls(); len(signals) != 1 {
				t.Fatalf("signals %+v, want one", signals)
			}
		})
	}
}

// TestForgedCredentialsCannotForceJWKSFetches: a stream of requests that no key verifies (kid-less bearers, body
// signatures and session JWTs by a key outside the JWKS), each of which asks for a refresh, costs Connect's JWKS at
// most one fetch on the request path and one on the background rotation path per limiter period, not one each.
func TestForgedCredentialsCannotForceJWKSFetches(t *testing.T) {
	for _, mode := range []bridge.AuthMode{bridge.AuthSignature, bridge.AuthSignatureJWT} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{auth: mode})
			body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
			forgeries := []func() webhook{
				func() webhook { // kid-less bearer by the attacker's key
					w := signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, time.Now())
					return withBearer(t, w, testKey(t, 2), "", time.Now())
				},
				func() webhook { // a good bearer, the body signed by the attacker's key
					w := signedWith(t, testKey(t, 2), kidA, bridge.PathConnectDeposits, depositsURL, body, time.Now())
					return withBearer(t, w, testKey(t, 0), kidA, time.Now())
				},
				func() webhook { // no bearer, the body signed by the attacker's key
					return signedWith(t, testKey(t, 2), kidA, bridge.PathConnectDeposits, depositsURL, body, time.Now())
				},
				func() webhook { // an SDK relay with a kid-less session JWT by the attacker's key
					w := sdkRelay(t, "sess-1", `{"type":"close"}`)
					w.header.Set("Authorization", "Bearer "+sessionJWTWith(t, testKey(t, 2), "", "sess-1", time.Now()))
					return w
				},
			}
			const rounds = 10
			for i := range rounds {
				for j, forge := range forgeries {
					if got := h.send(t, forge()); got.status != http.StatusUnauthorized {
						t.Fatalf("round %d forgery %d: %d %s, want 401", i, j, got.status, got.body)
					}
				}
			}
			time.Sleep(200 * time.Millisecond) // the background refresh runs on its own
			// 1 at start, 1 forced on the request path, 1 on the background rotation path (RotationEvery 10 s).
			if n := h.jwks.hits.Load(); n > 3 {
				t.Fatalf("%d forged requests fetched the JWKS %d times, want at most 3", rounds*len(forgeries), n)
			}
			h.temporal.requireNoSignal(t)
		})
	}
}

// TestJWKSOutageAnswers503: while no Connect key could be loaded (the JWKS down since start), a genuinely signed
// webhook, one with a bearer, and an SDK relay are our outage, not bad requests: 503 jwks_unavailable with
// Retry-After so the sender delivers again, counted under its own outcome and never as a verification failure, no
// signal; the outage's refreshes stay rate-limited however many requests arrive.
func TestJWKSOutageAnswers503(t *testing.T) {
	now := time.Now()
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	cases := []struct {
		name string
		mode bridge.AuthMode
		req  func(t *testing.T) webhook
	}{
		{"signature, no bearer", bridge.AuthSignature, func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now)
		}},
		{"signature+jwt, bearer with kid", bridge.AuthSignatureJWT, func(t *testing.T) webhook {
			return withBearer(t, signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now), testKey(t, 0), kidA, now)
		}},
		{"signature+jwt, bearer without kid", bridge.AuthSignatureJWT, func(t *testing.T) webhook {
			return withBearer(t, signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now), testKey(t, 0), "", now)
		}},
		{"SDK relay", "", func(t *testing.T) webhook { return sdkRelay(t, "sess-1", `{"type":"close"}`) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{auth: c.mode, jwksDown: true})
			const requests = 20
			route := c.req(t).path
			for i := range requests {
				got := h.send(t, c.req(t))
				if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") != "5" ||
					got.body != `{"error":"jwks_unavailable"}` {
					t.Fatalf("request %d: %d %s (Retry-After %q), want 503 jwks_unavailable with Retry-After 5",
						i, got.status, got.body, got.header.Get("Retry-After"))
				}
			}
			h.temporal.requireNoSignal(t)
			if n := metric(t, h.reg, bridge.MetricRequests, map[string]string{"route": route, "outcome": "jwks_unavailable"}); n != requests {
				t.Errorf("requests{outcome=jwks_unavailable} = %v, want %d", n, requests)
			}
			if n := metric(t, h.reg, bridge.MetricRequests, map[string]string{"route": route, "outcome": "unauthorized"}); n != 0 {
				t.Errorf("requests{outcome=unauthorized} = %v, want 0", n)
			}
			families, err := h.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range families {
				if f.GetName() == bridge.MetricVerificationFailures && len(f.GetMetric()) > 0 {
					t.Errorf("verification failures counted during the outage: %v", f.GetMetric())
				}
			}
			time.Sleep(200 * time.Millisecond) // the background refresh runs on its own
			// 1 at start, 1 on the request path, 1 on the background rotation path: the limiters hold.
			if n := h.jwks.hits.Load(); n > 3 {
				t.Errorf("%d requests during the outage fetched the JWKS %d times, want at most 3", requests, n)
			}
		})
	}
}

// TestMissingContentTypeIsJSON: Connect publishes no Content-Type among its webhook headers, so a request without
// one is read as JSON (it is verified and parsed anyway): a genuine Connect webhook and an SDK relay are taken, a
// forged one is still 401; a Content-Type that is present and not JSON stays 415 (TestBadRequestsNeverSignal).
func TestMissingContentTypeIsJSON(t *testing.T) {
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	h := newHarness(t, harnessOptions{})
	h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectSessionID = 'sess-7'", "deposit-T7")
	for _, c := range []struct {
		name   string
		req    webhook
		status int
	}{
		{"Connect webhook", signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, time.Now()), http.StatusOK},
		{"SDK relay", sdkRelay(t, "sess-7", `{"type":"close"}`), http.StatusOK},
		{"Connect webhook signed by a key outside the JWKS", signedWith(t, testKey(t, 2), kidA, bridge.PathConnectDeposits,
			depositsURL, body, time.Now()), http.StatusUnauthorized},
	} {
		c.req.header.Del("Content-Type")
		if got := h.send(t, c.req); got.status != c.status {
			t.Errorf("%s without Content-Type: %d %s, want %d", c.name, got.status, got.body, c.status)
		}
	}
	if signals, _ := h.temporal.calls(); len(signals) != 2 {
		t.Fatalf("signals %+v, want the webhook's and the relay's", signals)
	}
}
