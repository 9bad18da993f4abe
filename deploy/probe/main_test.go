package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		case "/created":
			w.WriteHeader(http.StatusNoContent)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not_ready","detail":"temporal: unavailable"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"ready", []string{srv.URL + "/readyz"}, 0, ""},
		{"any 2xx", []string{srv.URL + "/created"}, 0, ""},
		{"not ready quotes the answer", []string{srv.URL + "/down"}, 1, "503 Service Unavailable: {\"status\":\"not_ready\""},
		{"not found", []string{srv.URL + "/nope"}, 1, "404 Not Found"},
		{"nothing listening", []string{closedURL + "/readyz"}, 1, "connection refused"},
		{"no url", nil, 2, "usage: probe URL"},
		{"two urls", []string{srv.URL, srv.URL}, 2, "usage: probe URL"},
		{"relative url", []string{"/readyz"}, 2, "not an absolute http(s) URL"},
		{"other scheme", []string{"ftp://127.0.0.1/readyz"}, 2, "not an absolute http(s) URL"},
		{"unknown flag", []string{"-x", srv.URL}, 2, "usage: probe URL"},
		{"version", []string{"-version"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if tt.wantErr == "" && stderr.Len() > 0 {
				t.Fatalf("stderr %q, want none", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tt.wantErr)
			}
		})
	}
}
