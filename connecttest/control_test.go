package connecttest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connecttest"
)

func TestControlAPI(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	rc := newReceiver(t, srv, 0)
	if err := srv.SetWebhookURLs(rc.url, rc.url, ""); err != nil {
		t.Fatal(err)
	}
	info := openSession(t, srv, depositBody("ctl", "CTL"))

	listed := decode[[]connecttest.SessionInfo](t, doJSON(t, http.MethodGet, srv.URL+"/sandbox/sessions", nil, nil))
	if len(listed) != 1 || listed[0].ID != info.ID || listed[0].TransferID != info.TransferID || string(listed[0].Metadata) != string(info.Metadata) {
		t.Fatalf("GET /sandbox/sessions = %+v, want the one session %+v", listed, info)
	}

	tests := []struct {
		name   string
		path   string
		body   string
		status int
	}{
		{"bad outcome", "/sandbox/sessions/" + info.ID + "/play", `{"outcome":"boom"}`, http.StatusBadRequest},
		{"not JSON", "/sandbox/sessions/" + info.ID + "/play", `outcome=failed`, http.StatusBadRequest},
		{"unknown session", "/sandbox/sessions/nope/play", `{}`, http.StatusNotFound},
		{"play", "/sandbox/sessions/" + info.ID + "/play", `{"outcome":"failed","duplicates":1,"delay_ms":1,"failure_reason":"user cancelled"}`, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := doJSON(t, http.MethodPost, srv.URL+tt.path, []byte(tt.body), nil); a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
		})
	}
	rc.await(6)
	// The receiver has answered; wait until the sandbox has recorded the last answer too.
	waitFor(t, "all 6 deliveries recorded", func() bool { return srv.Stats().Delivered == 6 })
	got := rc.events()
	if last := got[len(got)-1].event; last.Name != "connect.deposit.failed" || last.FailureReason != "user cancelled" {
		t.Fatalf("last event %+v, want the failed event with the requested reason", last)
	}

	deliveries := decode[[]connecttest.Delivery](t, doJSON(t, http.MethodGet, srv.URL+"/sandbox/deliveries", nil, nil))
	if len(deliveries) != 6 {
		t.Fatalf("GET /sandbox/deliveries: %d records, want 6", len(deliveries))
	}

	if a := doJSON(t, http.MethodPost, srv.URL+"/sandbox/faults", []byte(`{"endpoint":"token","status":503,"times":1,"retry_after_ms":2000}`), nil); a.status != http.StatusNoContent {
		t.Fatalf("POST /sandbox/faults: %d %s", a.status, a.body)
	}
	if a := sendTo(t, srv, connecttest.EndpointToken, ""); a.status != 503 || a.header.Get("Retry-After") != "2" {
		t.Fatalf("token after arming a fault over HTTP: %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if a := doJSON(t, http.MethodPost, srv.URL+"/sandbox/faults", []byte(`{"endpoint":"nowhere","status":503}`), nil); a.status != http.StatusBadRequest {
		t.Fatalf("a fault on an unknown endpoint: %d", a.status)
	}
	if a := doJSON(t, http.MethodPost, srv.URL+"/sandbox/faults", []byte(`{"endpoint":"jwks","status":500}`), nil); a.status != http.StatusNoContent {
		t.Fatalf("arm jwks fault: %d", a.status)
	}
	if a := doJSON(t, http.MethodDelete, srv.URL+"/sandbox/faults", nil, nil); a.status != http.StatusNoContent {
		t.Fatalf("DELETE /sandbox/faults: %d", a.status)
	}
	if a := sendTo(t, srv, connecttest.EndpointJWKS, ""); a.status != http.StatusOK {
		t.Fatalf("jwks after clearing faults: %d", a.status)
	}

	stats := decode[connecttest.Stats](t, doJSON(t, http.MethodGet, srv.URL+"/sandbox/stats", nil, nil))
	if stats.SessionsCreated != 1 || stats.SessionsByReference["CTL"] != 1 || stats.Deliveries != 6 || stats.Delivered != 6 ||
		stats.Requests[connecttest.EndpointToken] != 2 || stats.TokensIssued != 1 || stats.Requests[connecttest.EndpointSessions] != 1 {
		t.Fatalf("GET /sandbox/stats = %+v", stats)
	}
}

// waitFor polls cond until it holds; the long deadline only guards against a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
