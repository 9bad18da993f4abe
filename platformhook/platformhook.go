// Package platformhook signs and verifies connectflow's notifications to the platform in the Standard Webhooks
// format (https://www.standardwebhooks.com, spec/standard-webhooks.md, symmetric scheme "v1"):
//
//	webhook-id:        a stable id per message; a redelivery carries the same id (dedupe on it)
//	webhook-timestamp: Unix seconds when this attempt was signed
//	webhook-signature: space-separated "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>",
//	                   one per secret while secrets rotate
//
// Secrets are "whsec_" + standard base64 of 24 to 64 random bytes. Because the format is the standard's, a
// platform may verify with the official Standard Webhooks libraries instead of this package.
package platformhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and constants of the Standard Webhooks specification.
const (
	HeaderID         = "webhook-id"
	HeaderTimestamp  = "webhook-timestamp"
	HeaderSignature  = "webhook-signature"
	SecretPrefix     = "whsec_"
	SignatureVersion = "v1"
	DefaultTolerance = 5 * time.Minute
	MinSecretBytes   = 24
	MaxSecretBytes   = 64
	// MaxSignatures is the most signatures Verify reads in one webhook-signature header (it bounds the work one
	// request can cause: rotation needs two or three, not hundreds), and so the most secrets ParseSecrets takes and
	// Sign signs with: each secret adds one signature to every message.
	MaxSignatures = 8
	// maxIDLen bounds webhook-id; ours are "<workflow id>:<sequence>".
	maxIDLen = 512
)

// strictBase64 decodes secrets and signatures: standard base64 whose unused trailing bits are zero, so each key
// or signature has exactly one text (the one Sign and NewSecret write) and no altered text verifies.
var strictBase64 = base64.StdEncoding.Strict()

// Sentinel errors, each wrapped with detail by the function that returns it.
var (
	ErrBadSecret         = errors.New("platformhook: bad secret")
	ErrNoSecrets         = errors.New("platformhook: no secrets")
	ErrBadID             = errors.New("platformhook: bad webhook-id")
	ErrMissingHeader     = errors.New("platformhook: missing header")
	ErrBadTimestamp      = errors.New("platformhook: webhook-timestamp is not Unix seconds")
	ErrTimestampOutside  = errors.New("platformhook: webhook-timestamp outside the tolerance")
	ErrNoValidSignature  = errors.New("platformhook: no signature matches")
	ErrTooManySignatures = errors.New("platformhook: too many signatures")
	ErrTooManySecrets    = errors.New("platformhook: too many secrets")
)

// Secret is one signing key. Its String never shows the key.
type Secret struct{ key []byte }

// String hides the key so a Secret can be logged by accident without leaking.
func (Secret) String() string { return SecretPrefix + "…" }

// ParseSecret reads "whsec_<base64>" (the prefix is required; standard base64, padded, its unused bits zero)
// holding 24 to 64 bytes.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	raw, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: must start with %q", ErrBadSecret, SecretPrefix)
	}
	key, err := strictBase64.DecodeString(raw)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: not canonical standard base64 after %q", ErrBadSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("%w: %d bytes, want %d to %d", ErrBadSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return Secret{key: key}, nil
}

// ParseSecrets reads a list of 1 to MaxSignatures secrets separated by commas or whitespace, newest first; more
// is ErrTooManySecrets, since a message signed with each would carry more signatures than Verify reads. Rotation:
// add the new secret in front, deploy, let the platform accept it, then drop the old one.
func ParseSecrets(list string) ([]Secret, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
	if len(fields) == 0 {
		return nil, ErrNoSecrets
	}
	if err := checkCount(len(fields)); err != nil {
		return nil, err
	}
	out := make([]Secret, 0, len(fields))
	for i, f := range fields {
		s, err := ParseSecret(f)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
		}
		out = append(out, s)
	}
	return out, nil
}

// NewSecret returns a fresh random secret in its "whsec_" form, for dev stacks and tests.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+); it panics instead
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// checkCount refuses more secrets than a verifier reads signatures.
func checkCount(n int) error {
	if n > MaxSignatures {
		return fmt.Errorf("%w: %d, at most %d (each signs every message, and Verify reads at most %d signatures)",
			ErrTooManySecrets, n, MaxSignatures, MaxSignatures)
	}
	return nil
}

// checkID refuses ids the signed string could not tell apart: empty, too long, or holding "." (the separator).
func checkID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadID)
	case len(id) > maxIDLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadID, len(id), maxIDLen)
	case strings.ContainsAny(id, ". \t\r\n"):
		return fmt.Errorf("%w: must not contain '.' or whitespace", ErrBadID)
	}
	return nil
}

func mac(key []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature header value: one "v1,<base64>" per secret, space-separated. More than
// MaxSignatures secrets is ErrTooManySecrets: Verify would refuse the message.
func Sign(secrets []Secret, id string, at time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", ErrNoSecrets
	}
	if err := checkCount(len(secrets)); err != nil {
		return "", err
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = SignatureVersion + "," + base64.StdEncoding.EncodeToString(mac(s.key, id, ts, body))
	}
	return strings.Join(sigs, " "), nil
}

// SetHeaders signs body and sets the three headers on h.
func SetHeaders(h http.Header, secrets []Secret, id string, at time.Time, body []byte) error {
	sig, err := Sign(secrets, id, at, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// VerifyOptions tunes Verify; the zero value is ready to use.
type VerifyOptions struct {
	Tolerance time.Duration    // default DefaultTolerance; applies to past and future
	Now       func() time.Time // default time.Now
}

// Verify checks the headers against the raw body with any of the secrets and returns the webhook-id, which the
// caller must use as its idempotency key. Signatures of other versions (e.g. "v1a") are skipped, not errors; a
// "v1" signature whose base64 is not canonical (unused bits set) matches nothing.
func Verify(secrets []Secret, h http.Header, body []byte, opts VerifyOptions) (string, error) {
	if len(secrets) == 0 {
		return "", ErrNoSecrets
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	for _, hv := range [...][2]string{{HeaderID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sigs}} {
		if hv[1] == "" {
			return "", fmt.Errorf("%w: %s", ErrMissingHeader, hv[0])
		}
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || len(ts) > 12 {
		return "", fmt.Errorf("%w: %.24q", ErrBadTimestamp, ts)
	}
	tol, now := opts.Tolerance, time.Now
	if tol <= 0 {
		tol = DefaultTolerance
	}
	if opts.Now != nil {
		now = opts.Now
	}
	if d := now().Sub(time.Unix(sec, 0)); d > tol || d < -tol {
		return "", fmt.Errorf("%w: %s off, tolerance %s", ErrTimestampOutside, d.Round(time.Second), tol)
	}
	fields := strings.Fields(sigs)
	if len(fields) > MaxSignatures {
		return "", fmt.Errorf("%w: %d, at most %d", ErrTooManySignatures, len(fields), MaxSignatures)
	}
	want := make([][]byte, len(secrets))
	for i, s := range secrets {
		want[i] = mac(s.key, id, ts, body)
	}
	for _, f := range fields {
		version, b64, ok := strings.Cut(f, ",")
		if !ok || version != SignatureVersion {
			continue
		}
		got, err := strictBase64.DecodeString(b64)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) {
				return id, nil
			}
		}
	}
	return "", ErrNoValidSignature
}
