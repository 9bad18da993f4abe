package connect

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The token is reused until RefreshAhead before its expires_in, then fetched again.
func TestTokenRefreshedAheadOfExpiry(t *testing.T) {
	tests := []struct {
		name         string
		expiresIn    any
		refreshAhead time.Duration
		refreshAfter time.Duration // time after issue when the next call must fetch a new token
	}{
		{"1 h token, default margin 60 s", 3600, 0, 3540 * time.Second},
		{"24 h token, default margin 60 s", 86400, 0, 86340 * time.Second},
		{"5 min token, default margin lifetime/10", 300, 0, 270 * time.Second},
		{"1 h token, configured 5 min", 3600, 5 * time.Minute, 55 * time.Minute},
		{"60 s token, configured margin capped at half", 60, 5 * time.Minute, 30 * time.Second},
		{"no expires_in means the documented 1 h", nil, 0, 3540 * time.Second},
		{"fractional expires_in", 90.5, 0, 81450 * time.Millisecond},
		{"absurd expires_in is capped at 30 days", 1e30, 0, 30*24*time.Hour - time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConnect(t)
			f.set(func(f *fakeConnect) { f.expiresIn = tt.expiresIn })
			clock := newFakeClock()
			issued := clock.Now()
			c := newTestClient(t, f, func(o *Options) { o.Now = clock.Now; o.RefreshAhead = tt.refreshAhead })
			call := func(at time.Duration) {
				t.Helper()
				clock.Set(issued.Add(at))
				if _, err := c.CreateSession(context.Background(), depositRequest("req")); err != nil {
					t.Fatalf("CreateSession at +%v: %v", at, err)
				}
			}
			call(0)
			call(tt.refreshAfter - time.Millisecond)
			if n := f.tokenCalls.Load(); n != 1 {
				t.Fatalf("token requests just before the refresh point = %d, want 1", n)
			}
			call(tt.refreshAfter)
			if n := f.tokenCalls.Load(); n != 2 {
				t.Fatalf("token requests at the refresh point = %d, want 2", n)
			}
			call(tt.refreshAfter + time.Second)
			if n := f.tokenCalls.Load(); n != 2 {
				t.Fatalf("token requests right after refreshing = %d, want 2", n)
			}
		})
	}
}

func TestRefreshMargin(t *testing.T) {
	tests := []struct {
		configured, lifetime, want time.Duration
	}{
		{0, time.Hour, time.Minute},
		{0, 24 * time.Hour, time.Minute},
		{0, 5 * time.Minute, 30 * time.Second},
		{10 * time.Second, time.Hour, 10 * time.Second},
		{time.Hour, time.Hour, 30 * time.Minute},
	}
	for _, tt := range tests {
		if got := refreshMargin(tt.configured, tt.lifetime); got != tt.want {
			t.Errorf("refreshMargin(%v, %v) = %v, want %v", tt.configured, tt.lifetime, got, tt.want)
		}
	}
}

// Token failures are APIErrors with Op "token"; bad credentials are not retryable.
func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name          string
		secret        string
		answer        func(w http.ResponseWriter)
		wantStatus    int
		wantCode      string
		wantMessage   string
		wantRetryable bool
	}{
		{
			name: "wrong secret, 401 invalid_client", secret: "not-the-secret-but-long-enough",
			wantStatus: 401, wantCode: "invalid_client", wantMessage: "Client authentication failed",
		},
		{
			name: "400 invalid_client",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, 400, map[string]any{"error": "invalid_client", "error_description": "unknown client"})
			},
			wantStatus: 400, wantCode: "invalid_client", wantMessage: "unknown client",
		},
		{
			name: "503 is retryable",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, 503, map[string]any{"error": "unavailable", "error_description": "try later"})
			},
			wantStatus: 503, wantCode: "unavailable", wantMessage: "try later", wantRetryable: true,
		},
		{
			name: "200 without access_token",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 3600})
			},
			wantStatus: 200, wantCode: "bad_answer", wantMessage: "answer has no access_token",
		},
		{
			name: "200 with a non-bearer token_type",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, 200, map[string]any{"access_token": "mac-token-value", "token_type": "mac", "expires_in": 3600})
			},
			wantStatus: 200, wantCode: "bad_answer", wantMessage: `unsupported token_type "mac"`,
		},
		{
			name: "200 with a negative expires_in",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, 200, map[string]any{"access_token": "at-negative-lifetime", "token_type": "Bearer", "expires_in": -5})
			},
			wantStatus: 200, wantCode: "bad_answer", wantMessage: "expires_in -5 is not positive",
		},
		{
			name:       "200 that is not JSON",
			answer:     func(w http.ResponseWriter) { w.WriteHeader(200); _, _ = w.Write([]byte("<html>ok</html>")) },
			wantStatus: 200, wantCode: "bad_answer", wantMessage: "answer is not a JSON token object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConnect(t)
			if tt.answer != nil {
				f.set(func(f *fakeConnect) {
					f.onToken = func(w http.ResponseWriter, _ *http.Request) bool { tt.answer(w); return true }
				})
			}
			c := newTestClient(t, f, func(o *Options) {
				if tt.secret != "" {
					o.ClientSecret = tt.secret
				}
			})
			_, err := c.CreateSession(context.Background(), depositRequest("req"))
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if apiErr.Op != OpToken || apiErr.StatusCode != tt.wantStatus || apiErr.ErrorCode != tt.wantCode ||
				!strings.HasPrefix(apiErr.Message, tt.wantMessage) || apiErr.Retryable != tt.wantRetryable {
				t.Fatalf("err = %#v\nwant op %q status %d code %q message %q retryable %v",
					apiErr, OpToken, tt.wantStatus, tt.wantCode, tt.wantMessage, tt.wantRetryable)
			}
			if f.sessionCalls.Load() != 0 {
				t.Fatal("a session call was made without a token")
			}
			assertNoCredentials(t, f, err)
			for _, secret := range []string{tt.secret, "mac-token-value", "at-negative-lifetime"} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q leaks %q", err, secret)
				}
			}
		})
	}
}

// A failed fetch is not cached: the next call tries again.
func TestTokenFailureIsNotCached(t *testing.T) {
	f := newFakeConnect(t)
	f.set(func(f *fakeConnect) {
		f.onToken = func(w http.ResponseWriter, _ *http.Request) bool {
			writeJSON(w, 500, map[string]any{"error": "server_error"})
			return true
		}
	})
	c := newTestClient(t, f, nil)
	if _, err := c.CreateSession(context.Background(), depositRequest("req")); err == nil {
		t.Fatal("want an error while the token endpoint fails")
	}
	f.set(func(f *fakeConnect) { f.onToken = nil })
	if _, err := c.CreateSession(context.Background(), depositRequest("req")); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
}
