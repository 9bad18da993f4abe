package connect

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// sigTestURL is the webhook URL registered with Connect in these tests (a public URL, not the test server's).
	sigTestURL = "https://hooks.example.com/connect/deposits"
	// sigTestTimestamp is the timestamp the OpenSSL golden signature was made with.
	sigTestTimestamp = "1753371727"
	// sigTestBody is small so the mutation test can flip every byte of it.
	sigTestBody = `{"event":"connect.deposit.confirmed","deposit":{"id":"f2d4a13e"}}`
)

// sigTestKey loads a fixed test-only RSA key from testdata/keys.
func sigTestKey(tb testing.TB, name string) *rsa.PrivateKey {
	tb.Helper()
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "keys", name))
	if err != nil {
		tb.Fatalf("read test key: %v", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		tb.Fatalf("test key %s holds no PEM block", name)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatalf("parse test key %s: %v", name, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		tb.Fatalf("test key %s is %T, want RSA", name, parsed)
	}
	return key
}

// sigTestKeys returns key A (kid "a") and key B (kid "b") and a key set holding only A's public half.
func sigTestKeys(tb testing.TB) (a, b *rsa.PrivateKey, onlyA []PublicKey) {
	tb.Helper()
	a, b = sigTestKey(tb, "test_rsa_a.pem"), sigTestKey(tb, "test_rsa_b.pem")
	return a, b, []PublicKey{{KID: "a", Key: &a.PublicKey}}
}

// sigTestAt returns options whose clock reads the given Unix second.
func sigTestAt(unix int64) VerifyOptions {
	return VerifyOptions{Now: func() time.Time { return time.Unix(unix, 0) }}
}

func sigTestSign(tb testing.TB, key *rsa.PrivateKey, timestamp, method, url string, body []byte) string {
	tb.Helper()
	sig, err := Sign(key, timestamp, method, url, body)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return sig
}

func mustUnix(tb testing.TB, timestamp string) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		tb.Fatalf("parse %q: %v", timestamp, err)
	}
	return n
}

func TestSigningString(t *testing.T) {
	tests := []struct {
		name, timestamp, method, url, body, want string
	}{
		{"webhook", "1753371727", "POST", sigTestURL, `{"a":1}`, "1753371727POST" + sigTestURL + `{"a":1}`},
		{"method upper-cased", "1", "post", "https://x/y", "b", "1POSThttps://x/yb"},
		{"mixed-case method", "1", "PaTcH", "https://x/y", "", "1PATCHhttps://x/y"},
		{"query kept", "2", "GET", "https://x/y?q=1&r=2", "", "2GEThttps://x/y?q=1&r=2"},
		{"body bytes verbatim", "3", "POST", "u", "  {\n\"é\": 1 }\n", "3POSTu  {\n\"é\": 1 }\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(SigningString(tt.timestamp, tt.method, tt.url, []byte(tt.body))); got != tt.want {
				t.Errorf("SigningString = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignMatchesOpenSSL checks Sign against a signature OpenSSL made over the guide's confirmed-deposit sample.
func TestSignMatchesOpenSSL(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	body, err := os.ReadFile(filepath.Join("testdata", "events", "guide_deposit_confirmed.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "keys", "golden_signature.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, body)
	if want := strings.TrimSpace(string(golden)); got != want {
		t.Fatalf("Sign differs from OpenSSL:\n got %s\nwant %s", got, want)
	}
	if err := Verify(keys, "POST", sigTestURL, sigTestTimestamp, got, body, sigTestAt(mustUnix(t, sigTestTimestamp))); err != nil {
		t.Fatalf("Verify(golden) = %v", err)
	}
	// The same bytes through crypto/rsa directly: SigningString is what is hashed.
	raw, err := base64.StdEncoding.DecodeString(got)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(SigningString(sigTestTimestamp, "post", sigTestURL, body))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], raw); err != nil {
		t.Fatalf("rsa.VerifyPKCS1v15 over SigningString: %v", err)
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	key, _, _ := sigTestKeys(t)
	tests := []struct {
		name                   string
		key                    *rsa.PrivateKey
		timestamp, method, url string
		want                   error
		wantText               string
	}{
		{"nil key", nil, sigTestTimestamp, "POST", sigTestURL, nil, "nil private key"},
		{"empty timestamp", key, "", "POST", sigTestURL, ErrMissingTimestamp, ""},
		{"non-numeric timestamp", key, "soon", "POST", sigTestURL, ErrBadTimestamp, ""},
		{"millisecond timestamp", key, "1753371727000", "POST", sigTestURL, ErrBadTimestamp, ""},
		{"empty method", key, sigTestTimestamp, "", sigTestURL, nil, "empty method"},
		{"empty url", key, sigTestTimestamp, "POST", "", nil, "empty URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := Sign(tt.key, tt.timestamp, tt.method, tt.url, []byte(sigTestBody))
			if err == nil {
				t.Fatalf("Sign = %q, want an error", sig)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Sign error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Sign error = %q, want it to mention %q", err, tt.wantText)
			}
		})
	}
}

func TestVerifyAcceptsGenuineSignature(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	body := []byte(sigTestBody)
	sig := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, body)
	opts := sigTestAt(mustUnix(t, sigTestTimestamp))
	for _, method := range []string{"POST", "post", "Post"} {
		if err := Verify(keys, method, sigTestURL, sigTestTimestamp, sig, body, opts); err != nil {
			t.Errorf("Verify(method %q) = %v, want nil (method is case-insensitive)", method, err)
		}
	}
	h := http.Header{}
	h.Set(HeaderTimestamp, sigTestTimestamp)
	h.Set(HeaderSignature, sig)
	if err := VerifyWebhook(keys, sigTestURL, h, body, opts); err != nil {
		t.Errorf("VerifyWebhook = %v", err)
	}
	empty := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, nil)
	if err := Verify(keys, "POST", sigTestURL, sigTestTimestamp, empty, nil, opts); err != nil {
		t.Errorf("Verify(empty body) = %v", err)
	}
}

// flipEach returns every variant of s with exactly one byte changed (XOR 0x01 and XOR 0x80 at each position).
func flipEach(s string) []string {
	var out []string
	for i := range len(s) {
		for _, mask := range []byte{0x01, 0x80} {
			b := []byte(s)
			b[i] ^= mask
			out = append(out, string(b))
		}
	}
	return out
}

func TestVerifyRejectsAnySingleByteChange(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	body := sigTestBody
	sig := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, []byte(body))
	now := mustUnix(t, sigTestTimestamp)
	expectMismatch := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("%s: Verify = %v, want %v", what, err, ErrSignatureMismatch)
		}
	}

	t.Run("body", func(t *testing.T) {
		variants := append(flipEach(body), body[:len(body)-1], body+" ", " "+body)
		for _, v := range variants {
			expectMismatch(t, fmt.Sprintf("body %q", v), Verify(keys, "POST", sigTestURL, sigTestTimestamp, sig, []byte(v), sigTestAt(now)))
		}
	})
	t.Run("url", func(t *testing.T) {
		variants := append(flipEach(sigTestURL), sigTestURL+"/", "http://hooks.example.com/connect/deposits")
		for _, v := range variants {
			expectMismatch(t, fmt.Sprintf("url %q", v), Verify(keys, "POST", v, sigTestTimestamp, sig, []byte(body), sigTestAt(now)))
		}
	})
	t.Run("method", func(t *testing.T) {
		// flipEach never flips only the case bit (0x20), the one change the upper-cased signing string erases.
		variants := append(flipEach("POST"), "PUT", "POSTS", "POS")
		for _, v := range variants {
			expectMismatch(t, fmt.Sprintf("method %q", v), Verify(keys, v, sigTestURL, sigTestTimestamp, sig, []byte(body), sigTestAt(now)))
		}
	})
	t.Run("timestamp", func(t *testing.T) {
		for i := range len(sigTestTimestamp) {
			b := []byte(sigTestTimestamp)
			b[i] = '0' + (b[i]-'0'+1)%10
			mutated := string(b)
			// The clock reads the mutated time, so the window passes and only the signature can reject it.
			expectMismatch(t, "timestamp "+mutated, Verify(keys, "POST", sigTestURL, mutated, sig, []byte(body), sigTestAt(mustUnix(t, mutated))))
			if err := Verify(keys, "POST", sigTestURL, mutated, sig, []byte(body), sigTestAt(now)); err == nil {
				t.Errorf("timestamp %s accepted at the original clock", mutated)
			}
		}
	})
}

func TestVerifyRejectsWrongKey(t *testing.T) {
	keyA, keyB, _ := sigTestKeys(t)
	body := []byte(sigTestBody)
	sig := sigTestSign(t, keyA, sigTestTimestamp, "POST", sigTestURL, body)
	err := Verify([]PublicKey{{KID: "b", Key: &keyB.PublicKey}}, "POST", sigTestURL, sigTestTimestamp, sig, body, sigTestAt(mustUnix(t, sigTestTimestamp)))
	if !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("Verify with the wrong key = %v, want %v", err, ErrSignatureMismatch)
	}
}

func TestVerifyKeySelection(t *testing.T) {
	keyA, keyB, _ := sigTestKeys(t)
	body := []byte(sigTestBody)
	sig := sigTestSign(t, keyA, sigTestTimestamp, "POST", sigTestURL, body)
	pubA := PublicKey{KID: "a", Key: &keyA.PublicKey}
	pubB := PublicKey{KID: "b", Key: &keyB.PublicKey}
	tests := []struct {
		name string
		keys []PublicKey
		kid  string
		want error
	}{
		{"kid names the signing key", []PublicKey{pubB, pubA}, "a", nil},
		{"kid names another key, fallback finds the signer", []PublicKey{pubB, pubA}, "b", nil},
		{"kid not in the set, fallback finds the signer", []PublicKey{pubB, pubA}, "rotated-away", nil},
		{"no kid, every key tried", []PublicKey{pubB, pubA}, "", nil},
		{"signer's kid reused by a wrong key", []PublicKey{{KID: "a", Key: &keyB.PublicKey}, {KID: "z", Key: &keyA.PublicKey}}, "a", nil},
		{"nil keys skipped", []PublicKey{{KID: "a"}, {}, pubA}, "a", nil},
		{"signer absent", []PublicKey{pubB}, "a", ErrSignatureMismatch},
		{"signer absent, no kid", []PublicKey{pubB, {KID: "x"}}, "", ErrSignatureMismatch},
		{"only nil keys", []PublicKey{{KID: "a"}, {}}, "a", ErrNoKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := sigTestAt(mustUnix(t, sigTestTimestamp))
			opts.KID = tt.kid
			err := Verify(tt.keys, "POST", sigTestURL, sigTestTimestamp, sig, body, opts)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestEachCandidateKeyOrder pins the order Verify tries keys in: the kid's keys first, then every other one, once each.
func TestEachCandidateKeyOrder(t *testing.T) {
	k1, k2, k3, k5 := &rsa.PublicKey{}, &rsa.PublicKey{}, &rsa.PublicKey{}, &rsa.PublicKey{}
	keys := []PublicKey{{KID: "x", Key: k1}, {KID: "y", Key: k2}, {KID: "x", Key: k3}, {KID: "x"}, {KID: "z", Key: k5}}
	tests := []struct {
		name   string
		kid    string
		stopAt *rsa.PublicKey
		want   []*rsa.PublicKey
	}{
		{"kid first, then the rest in order", "x", nil, []*rsa.PublicKey{k1, k3, k2, k5}},
		{"kid in the middle", "y", nil, []*rsa.PublicKey{k2, k1, k3, k5}},
		{"no kid", "", nil, []*rsa.PublicKey{k1, k2, k3, k5}},
		{"unknown kid", "nope", nil, []*rsa.PublicKey{k1, k2, k3, k5}},
		{"stops at the first match", "x", k3, []*rsa.PublicKey{k1, k3}},
		{"stops in the fallback pass", "x", k2, []*rsa.PublicKey{k1, k3, k2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []*rsa.PublicKey
			matched := eachCandidateKey(keys, tt.kid, func(k *rsa.PublicKey) bool {
				got = append(got, k)
				return k == tt.stopAt
			})
			if matched != (tt.stopAt != nil) {
				t.Errorf("matched = %v, want %v", matched, tt.stopAt != nil)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("tried %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("attempt %d tried the wrong key", i)
				}
			}
		})
	}
}

func TestVerifyToleranceWindow(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	body := []byte(sigTestBody)
	sig := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, body)
	signedAt := time.Unix(mustUnix(t, sigTestTimestamp), 0)
	tests := []struct {
		name      string
		skew      time.Duration // clock minus signing time
		tolerance time.Duration
		want      error
	}{
		{"same second", 0, 0, nil},
		{"default: exactly at the past edge", 300 * time.Second, 0, nil},
		{"default: 1s past the edge", 301 * time.Second, 0, ErrTimestampOutOfWindow},
		{"default: exactly at the future edge", -300 * time.Second, 0, nil},
		{"default: 1s beyond the future edge", -301 * time.Second, 0, ErrTimestampOutOfWindow},
		{"default: sub-second past the edge still the edge second", 300*time.Second + 999*time.Millisecond, 0, nil},
		{"custom: past edge", 10 * time.Second, 10 * time.Second, nil},
		{"custom: 1s past", 11 * time.Second, 10 * time.Second, ErrTimestampOutOfWindow},
		{"custom: future edge", -10 * time.Second, 10 * time.Second, nil},
		{"custom: 1s future", -11 * time.Second, 10 * time.Second, ErrTimestampOutOfWindow},
		{"a day old", 24 * time.Hour, 0, ErrTimestampOutOfWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := VerifyOptions{Tolerance: tt.tolerance, Now: func() time.Time { return signedAt.Add(tt.skew) }}
			err := Verify(keys, "POST", sigTestURL, sigTestTimestamp, sig, body, opts)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("negative tolerance is an error", func(t *testing.T) {
		opts := VerifyOptions{Tolerance: -time.Second, Now: func() time.Time { return signedAt }}
		err := Verify(keys, "POST", sigTestURL, sigTestTimestamp, sig, body, opts)
		if err == nil || !strings.Contains(err.Error(), "negative tolerance") {
			t.Fatalf("Verify = %v, want a negative tolerance error", err)
		}
	})
}

func TestVerifyWebhookHeaders(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	body := []byte(sigTestBody)
	sig := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, body)
	opts := sigTestAt(mustUnix(t, sigTestTimestamp))
	tests := []struct {
		name       string
		header     http.Header
		wantReason string
	}{
		{"canonical keys", http.Header{"Timestamp": {sigTestTimestamp}, "Signature": {sig}}, ""},
		{"raw lower-case keys", http.Header{"timestamp": {sigTestTimestamp}, "signature": {sig}}, ""},
		{"first value wins", http.Header{"Timestamp": {sigTestTimestamp}, "Signature": {sig, "AAAA"}}, ""},
		{"no headers", http.Header{}, "missing_timestamp"},
		{"nil header", nil, "missing_timestamp"},
		{"missing timestamp", http.Header{"Signature": {sig}}, "missing_timestamp"},
		{"empty timestamp", http.Header{"Timestamp": {""}, "Signature": {sig}}, "missing_timestamp"},
		{"missing signature", http.Header{"Timestamp": {sigTestTimestamp}}, "missing_signature"},
		{"empty signature", http.Header{"Timestamp": {sigTestTimestamp}, "Signature": {""}}, "missing_signature"},
		{"signature under another name", http.Header{"Timestamp": {sigTestTimestamp}, "X-Signature": {sig}}, "missing_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyWebhook(keys, sigTestURL, tt.header, body, opts)
			if got := VerifyFailureReason(err); got != tt.wantReason {
				t.Fatalf("VerifyWebhook = %v (reason %q), want reason %q", err, got, tt.wantReason)
			}
		})
	}
}

func TestVerifyRejectsMalformedInput(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	body := []byte(sigTestBody)
	sig := sigTestSign(t, key, sigTestTimestamp, "POST", sigTestURL, body)
	urlSafe := strings.NewReplacer("+", "-", "/", "_").Replace(sig)
	if urlSafe == sig {
		t.Fatal("test signature has no + or /; pick another body so the URL-safe case means something")
	}
	tests := []struct {
		name, timestamp, signature string
		keys                       []PublicKey
		want                       error
	}{
		{"not base64", sigTestTimestamp, "not base64 at all!", keys, ErrBadSignatureEncoding},
		{"URL-safe alphabet", sigTestTimestamp, urlSafe, keys, ErrBadSignatureEncoding},
		{"padding stripped", sigTestTimestamp, strings.TrimRight(sig, "="), keys, ErrBadSignatureEncoding},
		{"absurdly long", sigTestTimestamp, strings.Repeat("A", 4000), keys, ErrBadSignatureEncoding},
		{"valid base64, wrong length", sigTestTimestamp, "AAAA", keys, ErrSignatureMismatch},
		{"letters", "soon", sig, keys, ErrBadTimestamp},
		{"negative", "-1753371727", sig, keys, ErrBadTimestamp},
		{"plus sign", "+1753371727", sig, keys, ErrBadTimestamp},
		{"fraction", "1753371727.5", sig, keys, ErrBadTimestamp},
		{"leading space", " 1753371727", sig, keys, ErrBadTimestamp},
		{"milliseconds", "1753371727000", sig, keys, ErrBadTimestamp},
		{"overflow", "99999999999999999999999", sig, keys, ErrBadTimestamp},
		{"RFC 3339 instead of seconds", "2025-07-24T15:42:07Z", sig, keys, ErrBadTimestamp},
		{"nil key set", sigTestTimestamp, sig, nil, ErrNoKeys},
		{"empty key set", sigTestTimestamp, sig, []PublicKey{}, ErrNoKeys},
		{"key set of nil keys", sigTestTimestamp, sig, []PublicKey{{KID: "a"}}, ErrNoKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.keys, "POST", sigTestURL, tt.timestamp, tt.signature, body, sigTestAt(mustUnix(t, sigTestTimestamp)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, method, url string }{{"empty method", "", sigTestURL}, {"empty url", "POST", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(keys, tt.method, tt.url, sigTestTimestamp, sig, body, sigTestAt(mustUnix(t, sigTestTimestamp)))
			if err == nil || VerifyFailureReason(err) != "other" {
				t.Fatalf("Verify = %v, want an error labelled other", err)
			}
		})
	}
}

// TestVerifyErrorsNeverEchoSignatureOrBody runs every failure path and checks what the error text could leak.
func TestVerifyErrorsNeverEchoSignatureOrBody(t *testing.T) {
	keyA, keyB, keys := sigTestKeys(t)
	body := []byte(`{"event":"connect.deposit.confirmed","secret_marker":"BODY-MUST-NOT-LEAK"}`)
	sig := sigTestSign(t, keyA, sigTestTimestamp, "POST", sigTestURL, body)
	wrongSig := sigTestSign(t, keyB, sigTestTimestamp, "POST", sigTestURL, body)
	at := sigTestAt(mustUnix(t, sigTestTimestamp))
	late := sigTestAt(mustUnix(t, sigTestTimestamp) + 3600)
	cases := []struct {
		name string
		err  error
	}{
		{"mismatch", Verify(keys, "POST", sigTestURL, sigTestTimestamp, wrongSig, body, at)},
		{"tampered body", Verify(keys, "POST", sigTestURL, sigTestTimestamp, sig, append(body, ' '), at)},
		{"bad encoding", Verify(keys, "POST", sigTestURL, sigTestTimestamp, sig[:len(sig)-3]+"!!!", body, at)},
		{"out of window", Verify(keys, "POST", sigTestURL, sigTestTimestamp, sig, body, late)},
		{"bad timestamp", Verify(keys, "POST", sigTestURL, "soon", sig, body, at)},
		{"no keys", Verify(nil, "POST", sigTestURL, sigTestTimestamp, sig, body, at)},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: Verify accepted", c.name)
			continue
		}
		msg := c.err.Error()
		for _, secret := range []string{sig[:16], wrongSig[:16], sig[len(sig)-16:], "BODY-MUST-NOT-LEAK"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: error %q contains %q", c.name, msg, secret)
			}
		}
	}
}

func TestVerifyFailureReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrMissingTimestamp, "missing_timestamp"},
		{ErrMissingSignature, "missing_signature"},
		{fmt.Errorf("detail: %w", ErrBadTimestamp), "bad_timestamp"},
		{fmt.Errorf("detail: %w", ErrTimestampOutOfWindow), "timestamp_out_of_window"},
		{fmt.Errorf("detail: %w", ErrBadSignatureEncoding), "bad_signature_encoding"},
		{fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", ErrSignatureMismatch)), "signature_mismatch"},
		{fmt.Errorf("detail: %w", ErrNoKeys), "no_keys"},
		{errors.New("connect: something else"), "other"},
		{io.ErrUnexpectedEOF, "other"},
	}
	for _, tt := range tests {
		if got := VerifyFailureReason(tt.err); got != tt.want {
			t.Errorf("VerifyFailureReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestVerifyWebhookOverHTTP sends signed webhooks over loopback to a handler that verifies them against the
// registered public URL, as the bridge will, with the real clock and default options.
func TestVerifyWebhookOverHTTP(t *testing.T) {
	key, _, keys := sigTestKeys(t)
	const registeredURL = "https://hooks.example.com/connect/deposits"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventSize))
		if err != nil {
			http.Error(w, "read body", http.StatusRequestEntityTooLarge)
			return
		}
		if err := VerifyWebhook(keys, registeredURL, r.Header, body, VerifyOptions{}); err != nil {
			w.Header().Set("X-Reject-Reason", VerifyFailureReason(err))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	body, err := os.ReadFile(filepath.Join("testdata", "events", "guide_deposit_confirmed.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	tests := []struct {
		name       string
		signedURL  string
		signedBody []byte
		sentBody   []byte
		timestamp  string
		omitSig    bool
		wantStatus int
		wantReason string
	}{
		{"genuine", registeredURL, body, body, now, false, http.StatusNoContent, ""},
		{"body changed in transit", registeredURL, body, bytes.Replace(body, []byte("0.013"), []byte("1.013"), 1), now, false, http.StatusUnauthorized, "signature_mismatch"},
		{"signed for the server's own address, not the registered URL", srv.URL + "/connect/deposits", body, body, now, false, http.StatusUnauthorized, "signature_mismatch"},
		{"replayed an hour later", registeredURL, body, body, strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), false, http.StatusUnauthorized, "timestamp_out_of_window"},
		{"unsigned", registeredURL, body, body, now, true, http.StatusUnauthorized, "missing_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/connect/deposits", bytes.NewReader(tt.sentBody))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(HeaderClientID, "Connect")
			req.Header.Set(HeaderPayloadType, "connect_deposit.status_changed")
			req.Header.Set(HeaderTimestamp, tt.timestamp)
			if !tt.omitSig {
				req.Header.Set(HeaderSignature, sigTestSign(t, key, tt.timestamp, http.MethodPost, tt.signedURL, tt.signedBody))
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Reject-Reason") != tt.wantReason {
				t.Fatalf("status %d reason %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Reject-Reason"), tt.wantStatus, tt.wantReason)
			}
		})
	}
}
