package connect

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"time"
)

// Header names Connect uses on webhooks and expects on the organization's signed requests.
const (
	HeaderSignature   = "signature"
	HeaderTimestamp   = "timestamp"
	HeaderClientID    = "client-id"
	HeaderPayloadType = "x-zh-hook-payload-type"
	DefaultTolerance  = 300 * time.Second
)

// Sentinel errors of Sign and Verify; each is wrapped with detail and maps to one VerifyFailureReason label.
var (
	ErrMissingTimestamp     = errors.New("connect: missing timestamp")
	ErrMissingSignature     = errors.New("connect: missing signature")
	ErrBadTimestamp         = errors.New("connect: timestamp is not decimal Unix seconds")
	ErrTimestampOutOfWindow = errors.New("connect: timestamp outside the tolerance window")
	ErrBadSignatureEncoding = errors.New("connect: signature is not valid standard base64")
	ErrSignatureMismatch    = errors.New("connect: signature does not match any key")
	ErrNoKeys               = errors.New("connect: no verification keys")
)

const (
	// maxUnixSeconds is the last second of year 9999; later values are not seconds (likely milliseconds).
	maxUnixSeconds = 253402300799
	// maxTimestampDigits is the digit count of maxUnixSeconds, checked before parsing.
	maxTimestampDigits = 12
	// maxSignatureLen bounds the base64 text: 1368 chars is a 8192-bit RSA signature, far above real keys.
	maxSignatureLen = 1368
	// shownValueLen caps how much of a rejected timestamp an error echoes, so errors stay one short line.
	shownValueLen = 24
	// stackSigningLen fits the signing string of a typical webhook, so hashing it needs no heap allocation.
	stackSigningLen = 4096
	// stackSignatureLen fits a decoded signature of up to 4096-bit keys without a heap allocation.
	stackSignatureLen = 512
)

// Canonical header keys, computed once so VerifyWebhook looks them up without allocating.
var (
	canonicalTimestamp = textproto.CanonicalMIMEHeaderKey(HeaderTimestamp)
	canonicalSignature = textproto.CanonicalMIMEHeaderKey(HeaderSignature)
)

// PublicKey is one verification key, with its JWKS key id when known.
type PublicKey struct {
	KID string
	Key *rsa.PublicKey
}

// VerifyOptions tunes Verify; the zero value is ready to use.
type VerifyOptions struct {
	Tolerance time.Duration    // default DefaultTolerance; applies to past AND future
	Now       func() time.Time // default time.Now
	KID       string           // when set, the key with this kid is tried first, then every other RSA key
}

// SigningString returns the bytes Connect signs: timestamp, upper-cased method, full URL and raw body, concatenated.
func SigningString(timestamp, method, url string, body []byte) []byte {
	return appendSigningString(make([]byte, 0, len(timestamp)+len(method)+len(url)+len(body)), timestamp, method, url, body)
}

// appendSigningString is the one definition of the signed string, shared by SigningString, Sign and Verify.
func appendSigningString(dst []byte, timestamp, method, url string, body []byte) []byte {
	dst = append(dst, timestamp...)
	for i := 0; i < len(method); i++ {
		c := method[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, url...)
	return append(dst, body...)
}

// signingDigest hashes the signing string, building it on the stack when it fits.
func signingDigest(timestamp, method, url string, body []byte) [sha256.Size]byte {
	var buf [stackSigningLen]byte
	return sha256.Sum256(appendSigningString(buf[:0], timestamp, method, url, body))
}

// Sign returns the base64 RSA PKCS#1 v1.5 SHA-256 signature of SigningString(timestamp, method, url, body).
func Sign(key *rsa.PrivateKey, timestamp, method, url string, body []byte) (string, error) {
	if key == nil {
		return "", errors.New("connect: sign: nil private key")
	}
	if err := checkRequest(method, url); err != nil {
		return "", fmt.Errorf("connect: sign: %w", err)
	}
	if _, err := parseTimestamp(timestamp); err != nil {
		return "", err
	}
	digest := signingDigest(timestamp, method, url, body)
	// PKCS#1 v1.5 signing is deterministic, so no randomness source is needed.
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("connect: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a signature over SigningString(timestamp, method, url, body) against keys, within the time window.
func Verify(keys []PublicKey, method, url, timestamp, signature string, body []byte, opts VerifyOptions) error {
	// An empty key set is checked first: it is our configuration fault, whatever the request carries.
	if !hasUsableKey(keys) {
		return fmt.Errorf("%w: the key set holds no RSA public key", ErrNoKeys)
	}
	if err := checkRequest(method, url); err != nil {
		return fmt.Errorf("connect: verify: %w", err)
	}
	if timestamp == "" {
		return ErrMissingTimestamp
	}
	if signature == "" {
		return ErrMissingSignature
	}
	signedAt, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	if err := checkWindow(signedAt, opts); err != nil {
		return err
	}
	if len(signature) > maxSignatureLen {
		return fmt.Errorf("%w: %d characters, longer than any supported key", ErrBadSignatureEncoding, len(signature))
	}
	var sigBuf [stackSignatureLen]byte
	sig, err := base64.StdEncoding.AppendDecode(sigBuf[:0], []byte(signature))
	if err != nil {
		// The base64 error names only an offset, never the signature text.
		return fmt.Errorf("%w: %v", ErrBadSignatureEncoding, err)
	}
	digest := signingDigest(timestamp, method, url, body)
	var tried int
	matched := eachCandidateKey(keys, opts.KID, func(k *rsa.PublicKey) bool {
		tried++
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	})
	if !matched {
		return fmt.Errorf("%w: tried %d key(s)", ErrSignatureMismatch, tried)
	}
	return nil
}

// VerifyWebhook reads HeaderTimestamp and HeaderSignature from h and verifies a POST to url.
// url must be the full URL registered with Connect (the public one, not the Host a proxy forwards).
func VerifyWebhook(keys []PublicKey, url string, h http.Header, body []byte, opts VerifyOptions) error {
	return Verify(keys, http.MethodPost, url, headerValue(h, canonicalTimestamp, HeaderTimestamp),
		headerValue(h, canonicalSignature, HeaderSignature), body, opts)
}

// VerifyFailureReason maps an error from Verify to a short stable label for metrics; nil maps to "".
func VerifyFailureReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrMissingTimestamp):
		return "missing_timestamp"
	case errors.Is(err, ErrMissingSignature):
		return "missing_signature"
	case errors.Is(err, ErrBadTimestamp):
		return "bad_timestamp"
	case errors.Is(err, ErrTimestampOutOfWindow):
		return "timestamp_out_of_window"
	case errors.Is(err, ErrBadSignatureEncoding):
		return "bad_signature_encoding"
	case errors.Is(err, ErrSignatureMismatch):
		return "signature_mismatch"
	case errors.Is(err, ErrNoKeys):
		return "no_keys"
	default:
		return "other"
	}
}

// headerValue reads the first value under the canonical key, then under the raw lower-case key
// (a header map built by hand, not by net/http, may hold it that way).
func headerValue(h http.Header, canonical, raw string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	if v := h[raw]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// checkRequest rejects a request that cannot have been signed meaningfully.
func checkRequest(method, url string) error {
	if method == "" {
		return errors.New("empty method")
	}
	if url == "" {
		return errors.New("empty URL")
	}
	return nil
}

// parseTimestamp accepts only plain decimal digits, so the signed text has exactly one spelling per instant.
func parseTimestamp(timestamp string) (int64, error) {
	if timestamp == "" {
		return 0, ErrMissingTimestamp
	}
	for i := 0; i < len(timestamp); i++ {
		if c := timestamp[i]; c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrBadTimestamp, shorten(timestamp))
		}
	}
	if len(timestamp) > maxTimestampDigits {
		return 0, fmt.Errorf("%w: %d digits is past year 9999 (milliseconds?)", ErrBadTimestamp, len(timestamp))
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || secs > maxUnixSeconds {
		return 0, fmt.Errorf("%w: %s is past year 9999 (milliseconds?)", ErrBadTimestamp, timestamp)
	}
	return secs, nil
}

// checkWindow compares whole seconds: the header has one-second resolution, so the clock is truncated to match.
func checkWindow(signedAt int64, opts VerifyOptions) error {
	tolerance := opts.Tolerance
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance < 0 {
		return fmt.Errorf("connect: verify: negative tolerance %v", tolerance)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	// Both sides are within years 1..9999 (or any time.Time), far from int64 limits, so this cannot overflow.
	skew := now().Unix() - signedAt
	limit := int64(tolerance / time.Second)
	if skew > limit {
		return fmt.Errorf("%w: signed %ds ago, tolerance %v", ErrTimestampOutOfWindow, skew, tolerance)
	}
	if -skew > limit {
		return fmt.Errorf("%w: signed %ds in the future, tolerance %v", ErrTimestampOutOfWindow, -skew, tolerance)
	}
	return nil
}

// hasUsableKey reports whether keys holds at least one non-nil RSA key.
func hasUsableKey(keys []PublicKey) bool {
	for _, k := range keys {
		if k.Key != nil {
			return true
		}
	}
	return false
}

// eachCandidateKey calls try with the keys whose KID equals kid, then every other key, skipping nil keys,
// and stops at the first try that returns true. It reports whether any did.
func eachCandidateKey(keys []PublicKey, kid string, try func(*rsa.PublicKey) bool) bool {
	if kid != "" {
		for _, k := range keys {
			if k.Key != nil && k.KID == kid && try(k.Key) {
				return true
			}
		}
	}
	for _, k := range keys {
		if k.Key != nil && (kid == "" || k.KID != kid) && try(k.Key) {
			return true
		}
	}
	return false
}

// shorten caps an echoed value so a hostile header cannot blow up a log line.
func shorten(s string) string {
	if len(s) <= shownValueLen {
		return s
	}
	return s[:shownValueLen] + "..."
}
