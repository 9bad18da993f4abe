package zerohash_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

// testSecretB64 is base64("zerohash-test-secret-0123456789abcdef"), shaped like a Zero Hash API secret.
const (
	testSecretB64  = "emVyb2hhc2gtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
	testAPIKey     = "test-public-key"
	testPassphrase = "test-passphrase"
)

func testSecret(t testing.TB) []byte {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(testSecretB64)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func testCreds(t testing.TB) zerohash.Credentials {
	return zerohash.Credentials{APIKey: testAPIKey, APISecret: testSecret(t), Passphrase: testPassphrase}
}

// inlineSign recomputes X-SCX-SIGNED from the published formula, sharing no code with the package.
func inlineSign(secret []byte, payload string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(payload))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestSignKnownAnswer(t *testing.T) {
	// The want values were derived once by running Zero Hash's sample JavaScript (crypto.createHmac('sha256',
	// Buffer.from(apiSecret, 'base64')).update(timestamp + METHOD + path + body).digest('base64')) under Node with
	// apiSecret = testSecretB64, timestamp = 1700000000; the GET signs '{}' as its body.
	const postBody = `{"email":"alice@example.com","phone_number":"33512345678"}`
	tests := []struct {
		name, method, path string
		body               []byte
		signedBody         string // what the formula puts after the path
		want               string
	}{
		{"POST onboarding token", "POST", "/participants/onboarding_token", []byte(postBody), postBody, "kWBIKWOxLOhWZoJv1ExTguSW7da7q8jkP/IstWmg66c="},
		{"lower-case method", "post", "/participants/onboarding_token", []byte(postBody), postBody, "kWBIKWOxLOhWZoJv1ExTguSW7da7q8jkP/IstWmg66c="},
		{"GET nil body signs {}", "GET", "/accounts?asset=BTC", nil, "{}", "jUo049bXkEOC8kGzjT6XnMMz0ijWS1o6ASlCH+zmFIQ="},
		{"GET empty body signs {}", "GET", "/accounts?asset=BTC", []byte{}, "{}", "jUo049bXkEOC8kGzjT6XnMMz0ijWS1o6ASlCH+zmFIQ="},
	}
	secret := testSecret(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := zerohash.Sign(secret, "1700000000", tt.method, tt.path, tt.body)
			inline := inlineSign(secret, "1700000000"+strings.ToUpper(tt.method)+tt.path+tt.signedBody)
			if inline != tt.want {
				t.Fatalf("inline recomputation = %s, hard-coded vector = %s: the test itself is wrong", inline, tt.want)
			}
			if got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSignCoversEveryPart(t *testing.T) {
	secret := testSecret(t)
	base := zerohash.Sign(secret, "1700000000", "POST", "/p?a=1", []byte(`{}`))
	variants := map[string]string{
		"timestamp":                 zerohash.Sign(secret, "1700000001", "POST", "/p?a=1", []byte(`{}`)),
		"method":                    zerohash.Sign(secret, "1700000000", "PUT", "/p?a=1", []byte(`{}`)),
		"path":                      zerohash.Sign(secret, "1700000000", "POST", "/q?a=1", []byte(`{}`)),
		"query":                     zerohash.Sign(secret, "1700000000", "POST", "/p?a=2", []byte(`{}`)),
		"body":                      zerohash.Sign(secret, "1700000000", "POST", "/p?a=1", []byte(`{ }`)),
		"secret":                    zerohash.Sign([]byte("other"), "1700000000", "POST", "/p?a=1", []byte(`{}`)),
		"POST empty body is not {}": zerohash.Sign(secret, "1700000000", "POST", "/p?a=1", nil),
	}
	for part, sig := range variants {
		if sig == base {
			t.Errorf("changing the %s did not change the signature", part)
		}
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // decoded, when no error
		wantErr  string
	}{
		{name: "padded", in: testSecretB64, want: "zerohash-test-secret-0123456789abcdef"},
		{name: "unpadded", in: strings.TrimRight(testSecretB64, "="), want: "zerohash-test-secret-0123456789abcdef"},
		{name: "surrounding newline", in: testSecretB64 + "\n", want: "zerohash-test-secret-0123456789abcdef"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "blank", in: "   ", wantErr: "empty"},
		{name: "not base64", in: "s3cr3t!value$", wantErr: "not valid base64"},
		{name: "url alphabet", in: "ab-_cd", wantErr: "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := zerohash.ParseSecret(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if strings.TrimSpace(tt.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Errorf("error %q echoes the secret", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("ParseSecret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// signedRequest builds a request signed at signedAt with the test credentials, as a Zero Hash client sends it.
func signedRequest(t *testing.T, method, target string, body []byte, signedAt time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	ts := strconv.FormatInt(signedAt.Unix(), 10)
	r.Header.Set(zerohash.HeaderAPIKey, testAPIKey)
	r.Header.Set(zerohash.HeaderPassphrase, testPassphrase)
	r.Header.Set(zerohash.HeaderTimestamp, ts)
	r.Header.Set(zerohash.HeaderSigned, zerohash.Sign(testSecret(t), ts, method, target, body))
	return r
}

func TestVerifyRequest(t *testing.T) {
	signedAt := time.Unix(1700000000, 0)
	body := []byte(`{"email":"alice@example.com"}`)
	const target = "/participants/onboarding_token"
	tests := []struct {
		name       string
		method     string
		target     string
		mutate     func(r *http.Request)
		verifyBody []byte // body handed to VerifyRequest; nil means the signed body
		now        time.Time
		creds      func(c *zerohash.Credentials)
		wantErr    error
		wantStatus int
		wantText   string
	}{
		{name: "valid", now: signedAt},
		{name: "valid 60s later", now: signedAt.Add(60 * time.Second)},
		{name: "valid 60s earlier", now: signedAt.Add(-60 * time.Second)},
		{name: "valid 60.9s later: whole seconds", now: signedAt.Add(60*time.Second + 900*time.Millisecond)},
		{name: "61s later", now: signedAt.Add(61 * time.Second), wantErr: zerohash.ErrStaleTimestamp, wantStatus: 403},
		{name: "61s earlier (future timestamp)", now: signedAt.Add(-61 * time.Second), wantErr: zerohash.ErrStaleTimestamp, wantStatus: 403},
		{name: "GET with empty body", method: "GET", target: "/accounts?asset=BTC", verifyBody: []byte{}, now: signedAt},
		{name: "missing api key", mutate: del(zerohash.HeaderAPIKey), now: signedAt, wantErr: zerohash.ErrMissingHeader, wantStatus: 400, wantText: zerohash.HeaderAPIKey},
		{name: "missing signature", mutate: del(zerohash.HeaderSigned), now: signedAt, wantErr: zerohash.ErrMissingHeader, wantStatus: 400, wantText: zerohash.HeaderSigned},
		{name: "missing timestamp", mutate: del(zerohash.HeaderTimestamp), now: signedAt, wantErr: zerohash.ErrMissingHeader, wantStatus: 400, wantText: zerohash.HeaderTimestamp},
		{name: "missing passphrase", mutate: del(zerohash.HeaderPassphrase), now: signedAt, wantErr: zerohash.ErrMissingHeader, wantStatus: 400, wantText: zerohash.HeaderPassphrase},
		{name: "wrong api key", mutate: set(zerohash.HeaderAPIKey, "other-key"), now: signedAt, wantErr: zerohash.ErrCredentialsMismatch, wantStatus: 403},
		{name: "wrong passphrase", mutate: set(zerohash.HeaderPassphrase, "other-pass"), now: signedAt, wantErr: zerohash.ErrCredentialsMismatch, wantStatus: 403},
		{name: "api key prefix", mutate: set(zerohash.HeaderAPIKey, testAPIKey[:4]), now: signedAt, wantErr: zerohash.ErrCredentialsMismatch, wantStatus: 403},
		{name: "tampered body", verifyBody: []byte(`{"email":"mallory@example.com"}`), now: signedAt, wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "timestamp changed after signing", mutate: set(zerohash.HeaderTimestamp, "1700000001"), now: signedAt, wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "signed path differs", mutate: func(r *http.Request) { r.RequestURI = "/participants/other" }, now: signedAt, wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "signed for another secret", creds: func(c *zerohash.Credentials) { c.APISecret = []byte("another secret") }, now: signedAt, wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "timestamp with sign", mutate: set(zerohash.HeaderTimestamp, "+1700000000"), now: signedAt, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400, wantText: zerohash.HeaderTimestamp},
		{name: "timestamp in milliseconds", mutate: set(zerohash.HeaderTimestamp, "1700000000000"), now: signedAt, wantErr: zerohash.ErrStaleTimestamp, wantStatus: 403},
		{name: "timestamp not a number", mutate: set(zerohash.HeaderTimestamp, "yesterday"), now: signedAt, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400, wantText: zerohash.HeaderTimestamp},
		{name: "timestamp overflows", mutate: set(zerohash.HeaderTimestamp, "99999999999999999999"), now: signedAt, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400},
		{name: "signature not base64", mutate: set(zerohash.HeaderSigned, "%%%"), now: signedAt, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400, wantText: zerohash.HeaderSigned},
		{name: "verifier without secret", creds: func(c *zerohash.Credentials) { c.APISecret = nil }, now: signedAt, wantStatus: 500, wantText: "incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, tgt := "POST", target
			if tt.method != "" {
				method, tgt = tt.method, tt.target
			}
			signedBody := body
			if method == "GET" {
				signedBody = nil
			}
			r := signedRequest(t, method, tgt, signedBody, signedAt)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			creds := testCreds(t)
			if tt.creds != nil {
				tt.creds(&creds)
			}
			verifyBody := signedBody
			if tt.verifyBody != nil {
				verifyBody = tt.verifyBody
			}
			err := zerohash.VerifyRequest(r, verifyBody, creds, tt.now)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("VerifyRequest: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("VerifyRequest accepted the request")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got := zerohash.VerifyStatus(err); got != tt.wantStatus {
				t.Errorf("VerifyStatus = %d, want %d", got, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err = %q, want it to name %q", err, tt.wantText)
			}
			for _, secret := range []string{testPassphrase, testSecretB64, string(testSecret(t))} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks a secret", err)
				}
			}
		})
	}
}

func del(name string) func(*http.Request) { return func(r *http.Request) { r.Header.Del(name) } }

func set(name, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(name, v) } }
