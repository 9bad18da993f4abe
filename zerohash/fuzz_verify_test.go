package zerohash_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

// FuzzConstructBalanceEvent checks the balance webhook verifier with any signature header and body: it never
// panics, passes only a signature that is the HMAC of exactly this body, names a rejection 400 or 403, never
// repeats the secret, and with the genuine signature fails only for the payload itself.
// Seeds: the cases below and testdata/fuzz/FuzzConstructBalanceEvent.
func FuzzConstructBalanceEvent(f *testing.F) {
	body := readTestdata(f, "balance_deposit_completed.json")
	f.Add(body, depositSampleSig, "n-1", zerohash.PayloadTypeBalanceChanged)
	f.Add(body, strings.ToUpper(depositSampleSig), "n-1", "")
	f.Add(body, depositSampleSig[:63], "", "account_balance.changed")
	f.Add(append(body, ' '), depositSampleSig, "n-2", zerohash.PayloadTypeBalanceChanged)
	f.Add([]byte(`{}`), "", "", "other.type")
	f.Add([]byte(`not json`), "zz"+depositSampleSig[2:], "n-3", "")
	f.Fuzz(func(t *testing.T, body []byte, signature, notification, payloadType string) {
		h := http.Header{}
		h.Set(zerohash.HeaderHookSignature, signature)
		h.Set(zerohash.HeaderHookNotificationID, notification)
		h.Set(zerohash.HeaderPayloadType, payloadType)
		ev, err := zerohash.ConstructBalanceEvent(testWebhookSecret, h, body)
		genuine := hmacHex(body)
		sent, decErr := hex.DecodeString(strings.TrimSpace(h.Get(zerohash.HeaderHookSignature)))
		want, _ := hex.DecodeString(genuine)
		switch {
		case err == nil && (decErr != nil || !hmac.Equal(sent, want)):
			t.Fatalf("accepted signature %q for a body it does not sign", signature)
		case err == nil && ev.NotificationID != h.Get(zerohash.HeaderHookNotificationID):
			t.Fatalf("notification id %q, header says %q", ev.NotificationID, h.Get(zerohash.HeaderHookNotificationID))
		case err != nil && zerohash.VerifyStatus(err) != http.StatusBadRequest && zerohash.VerifyStatus(err) != http.StatusForbidden:
			t.Fatalf("rejection %v maps to HTTP %d, want 400 or 403", err, zerohash.VerifyStatus(err))
		case err != nil && strings.Contains(err.Error(), testWebhookSecret):
			t.Fatalf("error repeats the webhook secret: %v", err)
		}
		h.Set(zerohash.HeaderHookSignature, genuine)
		if _, err := zerohash.ConstructBalanceEvent(testWebhookSecret, h, body); err != nil &&
			!errors.Is(err, zerohash.ErrInvalidPayload) {
			t.Fatalf("genuine signature rejected: %v", err)
		}
	})
}

func hmacHex(body []byte) string {
	m := hmac.New(sha256.New, []byte(testWebhookSecret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// fuzzCreds are the platform credentials FuzzVerifyRequest checks against.
var fuzzCreds = zerohash.Credentials{APIKey: "fuzz-api-key-0001", APISecret: []byte("fuzz-platform-api-secret-0032"),
	Passphrase: "fuzz-passphrase-01"}

// FuzzVerifyRequest checks the X-SCX request verifier the sandbox uses with any headers, method, path and body: it
// never panics, accepts only the genuine signature with the right key, passphrase and a fresh timestamp, maps
// every rejection to 400 or 403, and never repeats a credential in an error.
func FuzzVerifyRequest(f *testing.F) {
	now := time.Unix(1753371727, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"email":"user@example.com"}`)
	sig := zerohash.Sign(fuzzCreds.APISecret, ts, http.MethodPost, "/participants/onboarding_token", body)
	f.Add(http.MethodPost, "/participants/onboarding_token", body, fuzzCreds.APIKey, fuzzCreds.Passphrase, ts, sig)
	f.Add(http.MethodPost, "/participants/onboarding_token?x=1", body, fuzzCreds.APIKey, fuzzCreds.Passphrase, ts, sig)
	f.Add(http.MethodGet, "/participants/onboarding_token", []byte{}, fuzzCreds.APIKey, fuzzCreds.Passphrase, "+"+ts, sig)
	f.Add(http.MethodPost, "/", body, "other-key", fuzzCreds.Passphrase, "99999999999999999999", "%%%")
	f.Add(http.MethodPost, "/participants/onboarding_token", body, fuzzCreds.APIKey, "", ts, sig[:10])
	f.Fuzz(func(t *testing.T, method, path string, body []byte, key, passphrase, timestamp, signature string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return // not a request line a server could have read
		}
		r := httptest.NewRequest(http.MethodPost, "http://zh.example.com/", bytes.NewReader(body))
		r.Method, r.RequestURI = method, path
		r.Header.Set(zerohash.HeaderAPIKey, key)
		r.Header.Set(zerohash.HeaderPassphrase, passphrase)
		r.Header.Set(zerohash.HeaderTimestamp, timestamp)
		r.Header.Set(zerohash.HeaderSigned, signature)
		err := zerohash.VerifyRequest(r, body, fuzzCreds, now)
		if err == nil {
			genuine, _ := base64.StdEncoding.DecodeString(zerohash.Sign(fuzzCreds.APISecret, timestamp, method, path, body))
			sent, decErr := base64.StdEncoding.DecodeString(signature)
			if key != fuzzCreds.APIKey || passphrase != fuzzCreds.Passphrase || decErr != nil || !hmac.Equal(sent, genuine) {
				t.Fatalf("accepted key %q passphrase %q signature %q", key, passphrase, signature)
			}
			signedAt, perr := strconv.ParseInt(timestamp, 10, 64)
			if perr != nil || signedAt < now.Add(-zerohash.ClockWindow).Unix() || signedAt > now.Add(zerohash.ClockWindow).Unix() {
				t.Fatalf("accepted timestamp %q", timestamp)
			}
			return
		}
		if s := zerohash.VerifyStatus(err); s != http.StatusBadRequest && s != http.StatusForbidden {
			t.Fatalf("rejection %v maps to HTTP %d, want 400 or 403", err, s)
		}
		for _, secret := range []string{fuzzCreds.APIKey, fuzzCreds.Passphrase, string(fuzzCreds.APISecret)} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error repeats a credential: %v", err)
			}
		}
	})
}
