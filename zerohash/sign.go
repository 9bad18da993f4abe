// Package zerohash talks to the Zero Hash platform API: HMAC-signed requests (and their verification, for the
// sandbox), the KYC onboarding token, and the signed account-balance webhooks.
package zerohash

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and values Zero Hash publishes.
const (
	HeaderAPIKey     = "X-SCX-API-KEY"
	HeaderSigned     = "X-SCX-SIGNED"
	HeaderTimestamp  = "X-SCX-TIMESTAMP"
	HeaderPassphrase = "X-SCX-PASSPHRASE"
	HeaderRequestID  = "X-REQUEST-ID"

	HeaderHookSignature      = "x-zh-hook-signature-256"
	HeaderHookTimestamp      = "x-zh-hook-timestamp"
	HeaderHookNotificationID = "x-zh-hook-notification-id"
	HeaderPayloadType        = "x-zh-hook-payload-type"

	PayloadTypeBalanceChanged = "account_balance.changed"

	// ClockWindow is how far X-SCX-TIMESTAMP may be from the server's clock, either way.
	ClockWindow = 60 * time.Second
)

// emptyGETBody is what a bodiless GET signs, per Zero Hash's authentication docs.
const emptyGETBody = "{}"

// Verification errors. A server maps them to a status with VerifyStatus: the malformed ones (the request cannot be
// checked) are 400 Bad Request; the rejected ones (the request was checked and failed) are 403 Forbidden.
var (
	// ErrMissingHeader (400): a required header is absent or empty; the error text names it.
	ErrMissingHeader = errors.New("missing header")
	// ErrMalformedHeader (400): a header is present but not in its documented format; the error text names it.
	ErrMalformedHeader = errors.New("malformed header")
	// ErrCredentialsMismatch (403): the API key or the passphrase is not the expected one.
	ErrCredentialsMismatch = errors.New("api key or passphrase does not match")
	// ErrStaleTimestamp (403): the signed timestamp is more than ClockWindow away from the server's clock.
	ErrStaleTimestamp = errors.New("timestamp outside the clock window")
	// ErrSignatureMismatch (403): the signature does not match the request.
	ErrSignatureMismatch = errors.New("signature does not match")
)

// Credentials are the platform API credentials a request is signed with (and checked against).
type Credentials struct {
	APIKey     string
	APISecret  []byte // base64-decoded; see ParseSecret
	Passphrase string
}

// Sign returns base64(HMAC-SHA256(secret, timestamp+METHOD+pathWithQuery+body)), Zero Hash's X-SCX-SIGNED.
// secret is the base64-decoded API secret; a GET with no body signs "{}" as its body.
func Sign(secret []byte, timestamp, method, pathWithQuery string, body []byte) string {
	return base64.StdEncoding.EncodeToString(mac(secret, timestamp, method, pathWithQuery, body))
}

// mac is the raw HMAC behind Sign, shared with VerifyRequest so both sides build the payload the same way.
func mac(secret []byte, timestamp, method, pathWithQuery string, body []byte) []byte {
	method = strings.ToUpper(method)
	if method == http.MethodGet && len(body) == 0 {
		body = []byte(emptyGETBody)
	}
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte(method))
	h.Write([]byte(pathWithQuery))
	h.Write(body)
	return h.Sum(nil)
}

// ParseSecret decodes the base64 API secret Zero Hash issues. Unpadded input is accepted too, as Node's
// Buffer.from(secret, "base64") in Zero Hash's sample accepts it. The error never contains the secret.
func ParseSecret(b64 string) ([]byte, error) {
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return nil, errors.New("zerohash: API secret is empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if secret, err := enc.DecodeString(b64); err == nil && len(secret) > 0 {
			return secret, nil
		}
	}
	return nil, errors.New("zerohash: API secret is not valid base64")
}

// VerifyRequest checks a signed platform API request as Zero Hash would: all four X-SCX headers present, API key
// and passphrase equal to creds (constant time), X-SCX-TIMESTAMP (Unix seconds) within ClockWindow of now, and
// X-SCX-SIGNED equal to the HMAC of timestamp+method+path-with-query+body. body is the raw request body.
// Errors wrap the sentinels above; VerifyStatus turns one into 400 or 403.
func VerifyRequest(r *http.Request, body []byte, creds Credentials, now time.Time) error {
	if creds.APIKey == "" || len(creds.APISecret) == 0 || creds.Passphrase == "" {
		return errors.New("zerohash: VerifyRequest: credentials are incomplete")
	}
	values := make(map[string]string, 4)
	for _, name := range []string{HeaderAPIKey, HeaderSigned, HeaderTimestamp, HeaderPassphrase} {
		v := r.Header.Get(name)
		if v == "" {
			return fmt.Errorf("zerohash: %w %s", ErrMissingHeader, name)
		}
		values[name] = v
	}
	timestamp := values[HeaderTimestamp]
	signedAt, err := parseUnixDigits(timestamp)
	if err != nil {
		return fmt.Errorf("zerohash: %w %s: %v", ErrMalformedHeader, HeaderTimestamp, err)
	}
	got, err := base64.StdEncoding.DecodeString(values[HeaderSigned])
	if err != nil {
		return fmt.Errorf("zerohash: %w %s: not base64", ErrMalformedHeader, HeaderSigned)
	}
	// Both compares always run so the response does not reveal which of the two was wrong.
	keyOK := equalSecret(values[HeaderAPIKey], creds.APIKey)
	passOK := equalSecret(values[HeaderPassphrase], creds.Passphrase)
	if !keyOK || !passOK {
		return fmt.Errorf("zerohash: %w", ErrCredentialsMismatch)
	}
	// Whole seconds on both sides: the client truncates to seconds, so sub-second drift must not count.
	if skew := now.Unix() - signedAt; skew > int64(ClockWindow/time.Second) || skew < -int64(ClockWindow/time.Second) {
		return fmt.Errorf("zerohash: %w: %ds away from server time", ErrStaleTimestamp, skew)
	}
	want := mac(creds.APISecret, timestamp, r.Method, requestURI(r), body)
	if !hmac.Equal(got, want) {
		return fmt.Errorf("zerohash: %w", ErrSignatureMismatch)
	}
	return nil
}

// VerifyStatus is the HTTP status a server answers for an error from VerifyRequest, VerifyBalanceWebhook or
// ConstructBalanceEvent: 400 when the request was malformed, 403 when it was checked and rejected, 500 otherwise
// (a server misconfiguration such as empty credentials); 200 for nil.
func VerifyStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrMissingHeader), errors.Is(err, ErrMalformedHeader), errors.Is(err, ErrInvalidPayload):
		return http.StatusBadRequest
	case errors.Is(err, ErrCredentialsMismatch), errors.Is(err, ErrStaleTimestamp), errors.Is(err, ErrSignatureMismatch):
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// requestURI is the path and query the client signed: the raw request line on a server, the URL on a client.
func requestURI(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// parseUnixDigits accepts only decimal digits, unlike strconv.ParseInt which also takes a sign.
func parseUnixDigits(s string) (int64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal Unix time")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// equalSecret compares in constant time; hashing first keeps the secret's length from leaking too.
func equalSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
