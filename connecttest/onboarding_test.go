package connecttest_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/zerohash"
)

// Test addresses, spelled with \x40 so no tool rewrites them as text.
const (
	testEmail  = "jane.doe\x40example.com"
	otherEmail = "john.roe\x40example.com"
)

// platformSecret is DefaultAPISecret decoded, to sign requests by hand.
func platformSecret(t testing.TB) []byte {
	t.Helper()
	secret, err := zerohash.ParseSecret(connecttest.DefaultAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// signedOnboarding builds the X-SCX headers for body signed at ts with secret.
func signedOnboarding(ts time.Time, secret []byte, apiKey, passphrase, requestID string, body []byte) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set(zerohash.HeaderAPIKey, apiKey)
	h.Set(zerohash.HeaderPassphrase, passphrase)
	h.Set(zerohash.HeaderTimestamp, stamp)
	h.Set(zerohash.HeaderSigned, zerohash.Sign(secret, stamp, http.MethodPost, "/participants/onboarding_token", body))
	h.Set(zerohash.HeaderRequestID, requestID)
	return h
}

func TestOnboardingRequests(t *testing.T) {
	clock := newFakeClock(time.Now())
	srv := newSandbox(t, connecttest.Options{Now: clock.Now})
	secret := platformSecret(t)
	body := []byte(`{"email":"` + testEmail + `","phone_number":"33512345678"}`)
	now := clock.Now()
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		status  int
		inError string // for 400: in the "errors" list; for 403: in "message"
	}{
		{"signed", signedOnboarding(now, secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body), body, http.StatusOK, ""},
		{"30 s skew is inside the window", signedOnboarding(now.Add(-30*time.Second), secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body), body, http.StatusOK, ""},
		{"clock skew 61 s behind", signedOnboarding(now.Add(-61*time.Second), secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body), body, http.StatusForbidden, "clock window"},
		{"clock skew 90 s ahead", signedOnboarding(now.Add(90*time.Second), secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body), body, http.StatusForbidden, "clock window"},
		{"wrong secret", signedOnboarding(now, []byte("another secret"), connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body), body, http.StatusForbidden, "signature"},
		{"wrong passphrase", signedOnboarding(now, secret, connecttest.DefaultAPIKey, "guess", uuid.NewString(), body), body, http.StatusForbidden, "passphrase"},
		{"body changed after signing", signedOnboarding(now, secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body), []byte(`{"email":"` + otherEmail + `"}`), http.StatusForbidden, "signature"},
		{"missing signature header", func() http.Header {
			h := signedOnboarding(now, secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), body)
			h.Del(zerohash.HeaderSigned)
			return h
		}(), body, http.StatusBadRequest, zerohash.HeaderSigned},
		{"no email", signedOnboarding(now, secret, connecttest.DefaultAPIKey, connecttest.DefaultPassphrase, uuid.NewString(), []byte(`{"phone_number":"1"}`)), []byte(`{"phone_number":"1"}`), http.StatusBadRequest, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := doJSON(t, http.MethodPost, srv.URL+"/participants/onboarding_token", tt.body, tt.header)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			switch tt.status {
			case http.StatusOK:
				ok := decode[struct {
					Message struct{ Email, Token string } `json:"message"`
				}](t, a)
				if ok.Message.Email != testEmail || ok.Message.Token == "" {
					t.Fatalf("answer %s: want message.email and message.token", a.body)
				}
				if got := a.header.Get(zerohash.HeaderRequestID); got != tt.header.Get(zerohash.HeaderRequestID) {
					t.Errorf("X-REQUEST-ID echoed %q, want %q", got, tt.header.Get(zerohash.HeaderRequestID))
				}
			case http.StatusBadRequest:
				e := decode[struct{ Errors []string }](t, a)
				if len(e.Errors) != 1 || !strings.Contains(e.Errors[0], tt.inError) {
					t.Fatalf("400 body %s: want an errors list naming %q", a.body, tt.inError)
				}
			case http.StatusForbidden:
				e := decode[struct {
					Error   bool
					Message string
				}](t, a)
				if !e.Error || !strings.Contains(e.Message, tt.inError) {
					t.Fatalf("403 body %s: want error true and a message naming %q", a.body, tt.inError)
				}
			}
		})
	}
}

func TestOnboardingClientIdempotent(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	c := newPlatformClient(t, srv)
	ctx := context.Background()
	id := uuid.NewString()
	first, err := c.OnboardingToken(ctx, id, testEmail, "+33512345678")
	if err != nil {
		t.Fatalf("OnboardingToken: %v", err)
	}
	again, err := c.OnboardingToken(ctx, id, testEmail, "+33512345678")
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if first != again {
		t.Fatal("a retry with the same X-REQUEST-ID got a different token")
	}
	other, err := c.OnboardingToken(ctx, uuid.NewString(), testEmail, "+33512345678")
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Fatal("a new X-REQUEST-ID got the same token")
	}
	var apiErr *zerohash.APIError
	if _, err := c.OnboardingToken(ctx, id, otherEmail, ""); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		t.Fatalf("same X-REQUEST-ID with another body: err %v, want a 409", err)
	}
	// The token is a JWT the sandbox signed.
	if _, err := jwt.Parse(first, keyfuncFor(fetchJWKS(t, srv)), jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("zerohash")); err != nil {
		t.Fatalf("onboarding token does not verify: %v", err)
	}
}

func TestOnboardingConfiguredFailures(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	c := newPlatformClient(t, srv)
	tests := []struct {
		status    int
		retryable bool
	}{
		{http.StatusBadRequest, false},        // platform does not exist
		{http.StatusForbidden, false},         // platform not configured for this KYC track
		{http.StatusServiceUnavailable, true}, // with zh-allow-retry: true
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			if err := srv.Fail(connecttest.EndpointOnboarding, connecttest.Fault{Status: tt.status, Times: 1}); err != nil {
				t.Fatal(err)
			}
			_, err := c.OnboardingToken(context.Background(), uuid.NewString(), testEmail, "")
			var apiErr *zerohash.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status || apiErr.Retryable != tt.retryable {
				t.Fatalf("err %v, want an APIError %d retryable=%v", err, tt.status, tt.retryable)
			}
			if _, err := c.OnboardingToken(context.Background(), uuid.NewString(), testEmail, ""); err != nil {
				t.Fatalf("after the one-time fault: %v", err)
			}
		})
	}
}

func newPlatformClient(t testing.TB, srv *connecttest.Server) *zerohash.Client {
	t.Helper()
	c, err := zerohash.New(zerohash.Options{BaseURL: srv.URL, APIKey: connecttest.DefaultAPIKey,
		APISecret: connecttest.DefaultAPISecret, Passphrase: connecttest.DefaultPassphrase})
	if err != nil {
		t.Fatalf("zerohash.New: %v", err)
	}
	return c
}
