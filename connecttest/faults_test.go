package connecttest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connecttest"
)

func TestFaultStatuses(t *testing.T) {
	tests := []struct {
		name       string
		endpoint   connecttest.Endpoint
		fault      connecttest.Fault
		status     int
		retryAfter string
		errorKey   string // a key of the endpoint's own error shape
	}{
		{"token 429 with Retry-After", connecttest.EndpointToken, connecttest.Fault{Status: 429, RetryAfter: 1500 * time.Millisecond}, 429, "2", "error_description"},
		{"sessions 503", connecttest.EndpointSessions, connecttest.Fault{Status: 503}, 503, "", "code"},
		{"jwks 500", connecttest.EndpointJWKS, connecttest.Fault{Status: 500}, 500, "", "code"},
		{"onboarding 503", connecttest.EndpointOnboarding, connecttest.Fault{Status: 503, RetryAfter: time.Second}, 503, "1", "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSandbox(t, connecttest.Options{})
			token := accessToken(t, srv) // before the fault is armed
			if err := srv.Fail(tt.endpoint, tt.fault); err != nil {
				t.Fatal(err)
			}
			send := func() answer { return sendTo(t, srv, tt.endpoint, token) }
			for range 2 { // Times 0: the fault stays until cleared
				a := send()
				if a.status != tt.status {
					t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
				}
				if got := a.header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
				}
				if _, ok := decode[map[string]any](t, a)[tt.errorKey]; !ok {
					t.Errorf("fault body %s lacks the endpoint's %q", a.body, tt.errorKey)
				}
				if tt.endpoint == connecttest.EndpointOnboarding && a.header.Get("zh-allow-retry") != "true" {
					t.Error("platform 503 without zh-allow-retry: true")
				}
			}
			srv.ClearFaults()
			if a := send(); a.status == tt.status {
				t.Fatalf("after ClearFaults still %d: %s", a.status, a.body)
			}
			if got := srv.Count(tt.endpoint); got < 3 {
				t.Errorf("Count(%s) = %d, want faulted requests counted too", tt.endpoint, got)
			}
		})
	}
}

// sendTo makes one request to an endpoint; the answer is whatever the endpoint says to it.
func sendTo(t testing.TB, srv *connecttest.Server, ep connecttest.Endpoint, token string) answer {
	t.Helper()
	switch ep {
	case connecttest.EndpointToken:
		return doJSON(t, http.MethodPost, srv.URL+"/api/v1/oauth/token",
			tokenBody(srv, connecttest.DefaultClientID, connecttest.DefaultClientSecret), nil)
	case connecttest.EndpointSessions:
		return doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody("", "FAULT"), bearer(token))
	case connecttest.EndpointJWKS:
		return doJSON(t, http.MethodGet, srv.URL+"/api/v1/jwks", nil, nil)
	default:
		return doJSON(t, http.MethodPost, srv.URL+"/participants/onboarding_token", []byte(`{}`), nil)
	}
}

func TestFaultTimes(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	// Faults stack in order: two 503s, then one 429, then normal service.
	if err := srv.Fail(connecttest.EndpointToken, connecttest.Fault{Status: 503, Times: 2}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Fail(connecttest.EndpointToken, connecttest.Fault{Status: 429, Times: 1}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 4 {
		got = append(got, sendTo(t, srv, connecttest.EndpointToken, "").status)
	}
	if want := []int{503, 503, 429, 200}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if n := srv.Count(connecttest.EndpointToken); n != 4 {
		t.Errorf("Count(token) = %d, want 4", n)
	}
}

func TestFaultDrop(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	if err := srv.Fail(connecttest.EndpointJWKS, connecttest.Fault{Drop: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/api/v1/jwks")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request got an answer: %d", resp.StatusCode)
	}
	if keys := fetchJWKS(t, srv); len(keys) != 1 {
		t.Fatalf("after the drop: %d keys", len(keys))
	}
}

func TestFaultLatency(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	const latency = 150 * time.Millisecond
	if err := srv.Fail(connecttest.EndpointJWKS, connecttest.Fault{Latency: latency, Times: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	keys := fetchJWKS(t, srv) // latency alone delays, then serves
	if elapsed := time.Since(start); elapsed < latency {
		t.Fatalf("answered after %v, before the %v latency", elapsed, latency)
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys after a latency-only fault", len(keys))
	}

	// Latency before a status: the client sees the status after the wait.
	if err := srv.Fail(connecttest.EndpointJWKS, connecttest.Fault{Latency: latency, Status: 502, Times: 1}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if a := sendTo(t, srv, connecttest.EndpointJWKS, ""); a.status != 502 || time.Since(start) < latency {
		t.Fatalf("status %d after %v, want 502 after at least %v", a.status, time.Since(start), latency)
	}
}

func TestFaultRateIsSeeded(t *testing.T) {
	pattern := func(seed uint64) string {
		srv := newSandbox(t, connecttest.Options{})
		if err := srv.Fail(connecttest.EndpointJWKS, connecttest.Fault{Status: 503, Rate: 0.3, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 100 {
			if sendTo(t, srv, connecttest.EndpointJWKS, "").status == 503 {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, other := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Fatalf("same seed, different fault patterns:\n%s\n%s", a, b)
	}
	if a == other {
		t.Fatalf("seeds 7 and 8 gave the same pattern %s", a)
	}
	// 100 draws at 0.3: far outside 10..50 would mean the rate is not applied.
	if hits := strings.Count(a, "x"); hits < 10 || hits > 50 {
		t.Fatalf("%d of 100 requests faulted at rate 0.3: %s", hits, a)
	}
}

func TestFailRejectsBadFaults(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	tests := []struct {
		name  string
		ep    connecttest.Endpoint
		fault connecttest.Fault
		want  string
	}{
		{"unknown endpoint", "webhooks", connecttest.Fault{Status: 500}, "unknown endpoint"},
		{"nothing to do", connecttest.EndpointToken, connecttest.Fault{}, "needs a status"},
		{"not an error status", connecttest.EndpointToken, connecttest.Fault{Status: 204}, "not an error"},
		{"not a status", connecttest.EndpointToken, connecttest.Fault{Status: 999}, "not an HTTP status"},
		{"status and drop", connecttest.EndpointToken, connecttest.Fault{Status: 500, Drop: true}, "both"},
		{"rate above 1", connecttest.EndpointToken, connecttest.Fault{Status: 500, Rate: 1.5}, "rate"},
		{"negative times", connecttest.EndpointToken, connecttest.Fault{Status: 500, Times: -1}, "times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.Fail(tt.ep, tt.fault); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}
