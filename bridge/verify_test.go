package bridge_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
	}{
		{"missing signature header", func(t *testing.T) webhook {
			w := good(t)
			w.header.Del(connect.HeaderSignature)
			return w
		}, 401, "missing_signature"},
		{"missing timestamp header", func(t *testing.T) webhook {
			w := good(t)
			w.header.Del(connect.HeaderTimestamp)
			return w
		}, 401, "missing_timestamp"},
		{"missing bearer JWT", func(t *testing.T) webhook {
			w := good(t)
			w.header.Del("Authorization")
			return w
		}, 401, "jwt_missing"},
		{"signature not base64", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set(connect.HeaderSignature, "not*base64!")
			return w
		}, 401, "bad_signature_encoding"},
		{"signature by a key outside the JWKS", func(t *testing.T) webhook {
			w := signedWith(t, testKey(t, 2), kidA, bridge.PathConnectDeposits, depositsURL, body, now)
			return withJWT(t, w, signJWT(t, testKey(t, 0), kidA, webhookClaims(now)))
		}, 401, "signature_mismatch"},
		{"JWT by a key outside the JWKS claiming its kid", func(t *testing.T) webhook {
			return withJWT(t, good(t), signJWT(t, testKey(t, 2), kidA, webhookClaims(now)))
		}, 401, "jwt_signature"},
		{"one byte of body changed", func(t *testing.T) webhook {
			w := good(t)
			w.body = bytes.Replace(w.body, []byte(`"0.013"`), []byte(`"0.014"`), 1)
			return w
		}, 401, "signature_mismatch"},
		{"timestamp too old", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, now.Add(-connect.DefaultTolerance-10*time.Second))
		}, 401, "timestamp_out_of_window"},
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
		}, 401, "timestamp_out_of_window"},
		{"JWT alg none", func(t *testing.T) webhook {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, webhookClaims(now))
			tok.Header["kid"] = kidA
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return withJWT(t, good(t), s)
		}, 401, "jwt_algorithm"},
		{"JWT HS256 keyed with the public key", func(t *testing.T) webhook {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, webhookClaims(now))
			tok.Header["kid"] = kidA
			s, err := tok.SignedString(pubPEM(t))
			if err != nil {
				t.Fatal(err)
			}
			return withJWT(t, good(t), s)
		}, 401, "jwt_algorithm"},
		{"JWT from another issuer", func(t *testing.T) webhook {
			c := webhookClaims(now)
			c["iss"] = "zerohash"
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_issuer"},
		{"JWT expired", func(t *testing.T) webhook {
			c := webhookClaims(now.Add(-time.Hour))
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_expired"},
		{"JWT issued in the future", func(t *testing.T) webhook {
			c := webhookClaims(now)
			c["iat"] = now.Add(10 * time.Minute).Unix()
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_issued_at"},
		{"JWT without expiry", func(t *testing.T) webhook {
			c := webhookClaims(now)
			delete(c, "exp")
			return withJWT(t, good(t), signJWT(t, testKey(t, 0), kidA, c))
		}, 401, "jwt_claim_missing"},
		{"JWT not a JWT", func(t *testing.T) webhook { return withJWT(t, good(t), "abc.def") }, 401, "jwt_malformed"},
		{"JWT naming a kid the JWKS does not hold", func(t *testing.T) webhook {
			return withJWT(t, good(t), signJWT(t, testKey(t, 2), "forged-kid", webhookClaims(now)))
		}, 401, "jwt_unknown_key"},
		{"browser-held session JWT as a webhook bearer", func(t *testing.T) webhook {
			return withJWT(t, good(t), sessionJWT(t, "sess-1", now))
		}, 401, "jwt_session_token"},
		{"signature replayed onto another URL", func(t *testing.T) webhook {
			w := good(t)
			w.path = bridge.PathConnectWithdrawals
			return w
		}, 401, "signature_mismatch"},
		{"signature over the Host the request reached, not the public URL", func(t *testing.T) webhook {
			// The harness server is on 127.0.0.1; a bridge that built the URL from Host would accept this.
			return signedWebhook(t, bridge.PathConnectDeposits, "http://127.0.0.1"+bridge.PathConnectDeposits, body, now)
		}, 401, "signature_mismatch"},
		{"oversized body with Content-Length", func(t *testing.T) webhook {
			big := append(bytes.Repeat([]byte(" "), bridge.DefaultMaxBody), body...)
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, big, now)
		}, 413, ""},
		{"wrong content type", func(t *testing.T) webhook {
			w := good(t)
			w.header.Set("Content-Type", "text/plain")
			return w
		}, 415, ""},
		{"malformed JSON, validly signed", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, []byte(`{"event":"connect.deposit.confirmed",`), now)
		}, 400, ""},
		{"JSON without an event name, validly signed", func(t *testing.T) webhook {
			return signedWebhook(t, bridge.PathConnectDeposits, depositsURL, []byte(`{"deposit":{"id":"cx-1"}}`), now)
		}, 400, ""},
		{"balance webhook with a wrong HMAC", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.header.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook("another-secret", w.body))
			return w
		}, 401, "zh_signature_mismatch"},
		{"balance webhook without a signature", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.header.Del(zerohash.HeaderHookSignature)
			return w
		}, 401, "zh_missing_signature"},
		{"balance webhook, validly signed, missing required fields", func(t *testing.T) webhook {
			w := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
			w.body = []byte(`{"movements":[]}`)
			w.header.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook(zhSecret, w.body))
			return w
		}, 400, ""},
		{"SDK event without a session JWT", func(t *testing.T) webhook {
			w := sdkRelay(t, "sess-1", `{"type":"close"}`)
			w.header.Del("Authorization")
			return w
		}, 401, "jwt_missing"},
		{"SDK event with a webhook JWT, which names no session", func(t *testing.T) webhook {
			w := sdkRelay(t, "sess-1", `{"type":"close"}`)
			w.header.Set("Authorization", "Bearer "+signJWT(t, testKey(t, 0), kidA, webhookClaims(now)))
			return w
		}, 401, "jwt_no_session"},
		{"SDK event of an unknown type", func(t *testing.T) webhook {
			return sdkRelay(t, "sess-1", `{"type":"teleport"}`)
		}, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
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

// TestUnknownKIDRefreshesOnceThenRateLimited: a forged kid costs one JWKS fetch, not one per request.
func TestUnknownKIDRefreshesOnceThenRateLimited(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	if n := h.jwks.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}
	for i, kid := range []string{"forged-1", "forged-2", "forged-3"} {
		w := signedWith(t, testKey(t, 2), kid, bridge.PathConnectDeposits, depositsURL, body, time.Now())
		if got := h.send(t, w); got.status != http.StatusUnauthorized {
			t.Fatalf("kid %s: status %d, want 401", kid, got.status)
		}
		if n, want := h.jwks.hits.Load(), int64(2); n != want {
			t.Fatalf("after unknown kid #%d: JWKS fetched %d times, want %d (one refresh, then rate-limited)", i+1, n, want)
		}
	}
	h.temporal.requireNoSignal(t)
	if n := metric(t, h.reg, bridge.MetricVerificationFailures, map[string]string{"reason": "jwt_unknown_key"}); n != 3 {
		t.Fatalf("jwt_unknown_key failures = %v, want 3", n)
	}
}

// TestRotatedKeyIsFetchedOnItsFirstWebhook: a key published after start verifies at once, in each auth mode.
func TestRotatedKeyIsFetchedOnItsFirstWebhook(t *testing.T) {
	for _, mode := range []bridge.AuthMode{bridge.AuthSignatureJWT, bridge.AuthJWT, bridge.AuthSignature} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, harnessOptions{auth: mode})
			h.jwks.publish(kidB, &testKey(t, 1).PublicKey)
			body := eventBody(t, "connect.deposit.initiated", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
			w := signedWith(t, testKey(t, 1), kidB, bridge.PathConnectDeposits, depositsURL, body, time.Now())
			if got := h.send(t, w); got.status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", got.status, got.body)
			}
			if signals, _ := h.temporal.calls(); len(signals) != 1 {
				t.Fatalf("signals %+v, want one", signals)
			}
		})
	}
}

// TestAuthModes: each mode demands its credential and ignores the other.
func TestAuthModes(t *testing.T) {
	body := eventBody(t, "connect.deposit.initiated", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	strip := func(headers ...string) func(webhook) webhook {
		return func(w webhook) webhook {
			for _, k := range headers {
				w.header.Del(k)
			}
			return w
		}
	}
	cases := []struct {
		mode   bridge.AuthMode
		spoil  func(webhook) webhook
		status int
	}{
		{bridge.AuthSignatureJWT, strip(), 200},
		{bridge.AuthSignatureJWT, strip("Authorization"), 401},
		{bridge.AuthSignatureJWT, strip(connect.HeaderSignature), 401},
		{bridge.AuthSignature, strip("Authorization"), 200},
		{bridge.AuthSignature, strip(connect.HeaderSignature), 401},
		{bridge.AuthJWT, strip(connect.HeaderSignature, connect.HeaderTimestamp), 200},
		{bridge.AuthJWT, strip("Authorization"), 401},
	}
	for _, c := range cases {
		h := newHarness(t, harnessOptions{auth: c.mode})
		w := c.spoil(signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, time.Now()))
		got := h.send(t, w)
		if got.status != c.status {
			t.Errorf("mode %s, headers %v: status %d (%s), want %d", c.mode, w.header, got.status, got.body, c.status)
		}
		signals, _ := h.temporal.calls()
		if want := map[bool]int{true: 1, false: 0}[c.status == 200]; len(signals) != want {
			t.Errorf("mode %s: %d signals, want %d", c.mode, len(signals), want)
		}
	}
}

func TestParseAuthMode(t *testing.T) {
	for _, s := range []string{"signature", "jwt", "signature+jwt"} {
		if m, err := bridge.ParseAuthMode(s); err != nil || string(m) != s {
			t.Errorf("ParseAuthMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "none", "JWT", "jwt+signature"} {
		if _, err := bridge.ParseAuthMode(s); err == nil || !strings.Contains(err.Error(), "signature+jwt") {
			t.Errorf("ParseAuthMode(%q): error %v should list the modes", s, err)
		}
	}
}
