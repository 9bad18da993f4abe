package workerapp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestMetricsExposeCountersGaugesTimers(t *testing.T) {
	m := NewMetrics(slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(m.HTTP)
	defer srv.Close()

	m.Handler.Counter("transfers_started").Inc(2)
	m.Handler.WithTags(map[string]string{"kind": "deposit"}).Gauge("open_transfers").Update(3)
	m.Handler.Timer("session_latency").Record(1500 * time.Millisecond)

	// Registration is immediate: the names are there before the first report.
	_, before := scrape(t, srv.URL)
	for _, want := range []string{"transfers_started_total", "open_transfers", "session_latency_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(before, want) {
			t.Errorf("/metrics lacks %s before reporting:\n%s", want, before)
		}
	}
	// Close reports the last values: no waiting for the report interval.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	status, after := scrape(t, srv.URL)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{
		"transfers_started_total 2",
		`open_transfers{kind="deposit"} 3`,
		"session_latency_seconds_count 1",
		"session_latency_seconds_sum 1.5",
	} {
		if !strings.Contains(after, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, after)
		}
	}
}

func TestMetricsConflictIsLoggedNotFatal(t *testing.T) {
	var logs bytes.Buffer
	m := NewMetrics(slog.New(slog.NewJSONHandler(&logs, nil)))
	defer m.Close()
	m.Handler.Counter("polls").Inc(1)
	m.Handler.WithTags(map[string]string{"task_queue": "q"}).Counter("polls").Inc(1) // same name, other labels
	if !strings.Contains(logs.String(), "metric not registered") {
		t.Fatalf("conflict not logged: %s", logs.String())
	}
}

func TestMetricsServeOnlyMetricsPath(t *testing.T) {
	m := NewMetrics(nil)
	defer m.Close()
	m.Handler.Counter("served").Inc(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := m.Serve(ln)
	base := "http://" + ln.Addr().String()
	if status, body := scrape(t, base+MetricsPath); status != http.StatusOK || !strings.Contains(body, "served_total") {
		t.Fatalf("GET %s = %d:\n%s", MetricsPath, status, body)
	}
	if status, _ := scrape(t, base+"/debug/pprof/"); status != http.StatusNotFound {
		t.Fatalf("GET /debug/pprof/ = %d, want 404", status)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + MetricsPath); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}
