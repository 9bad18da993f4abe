package tests

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/workflows"
)

const (
	alertsPath     = "../deploy/prometheus/alerts.yml"
	prometheusPath = "../deploy/prometheus/prometheus.yml"
)

// scrapeMetrics reads a /metrics endpoint: each sample's name and labels (as written) to its value.
type scrapeResult map[string]float64

func scrapeURL(t *testing.T, url string) (scrapeResult, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d, %v", url, resp.StatusCode, err)
	}
	out := scrapeResult{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad line %q", url, line)
		}
		out[line[:i]] = v
	}
	return out, string(body)
}

// names is every sample name in a scrape (histograms' _bucket, _sum and _count included).
func (r scrapeResult) names() map[string]bool {
	out := map[string]bool{}
	for k := range r {
		name, _, _ := strings.Cut(k, "{")
		out[name] = true
	}
	return out
}

// TestMetricsOnARealServer runs transfers through the real worker wiring and the real bridge on a real Temporal
// server, and reads both processes' /metrics: the business counters, the histogram and every gauge move as the
// transfers do; no label carries a transfer's data; and every metric alerts.yml names is one they export.
func TestMetricsOnARealServer(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	p := newPlatform(t)

	// The worker as worker/main.go builds it: its client carries the metrics handler, WatchVisibility keeps the gauges.
	m := workerapp.NewMetrics(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = m.Close() })
	c := s.server.NewClientWithOptions(client.Options{MetricsHandler: m.Handler})
	cfg := s.workerConfig()
	cfg.Platform = workerapp.PlatformConfig{URL: p.url, Secrets: p.secrets, RetryFor: time.Hour, Timeout: 2 * time.Second}
	w, err := workerapp.New(c, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m.WatchVisibility(ctx, c, workerapp.VisibilityOptions{Interval: 200 * time.Millisecond, Timeout: 5 * time.Second})
	workerMetrics := httptest.NewServer(m.HTTP)
	t.Cleanup(workerMetrics.Close)
	rig := s.startBridge(bridgeOptions{})
	bridgeAdmin := httptest.NewServer(rig.bridge.AdminHandler())
	t.Cleanup(bridgeAdmin.Close)

	worker := func() scrapeResult { r, _ := scrapeURL(t, workerMetrics.URL+workerapp.MetricsPath); return r }
	gaugeIs := func(name string, want float64) {
		t.Helper()
		eventually(t, name+" = "+strconv.FormatFloat(want, 'g', -1, 64), func() bool { return worker()[name] == want })
	}

	// 1. A deposit confirmed through the bridge's webhooks.
	ok := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "m-ok", ReferenceID: "USER91"})
	deliveries, err := s.sandbox.Play(s.ctx(), ok.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
	requireDelivered(t, deliveries, err)
	if r, err := s.result(connect.KindDeposit, "m-ok"); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("m-ok: %+v, %v", r, err)
	}

	// 2. A deposit that stalls, times out (the gauges show each), and is resolved by a person.
	late := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "m-late", ReferenceID: "USER92",
		Timeouts: workflows.Timeouts{Stall: time.Second, ReviewHorizon: 8 * time.Second}})
	s.signal(connect.KindDeposit, "m-late", event(connect.KindDeposit, connect.StatusInitiated, "cx-m-late", late.SessionID))
	gaugeIs(workerapp.MetricTransfersStalled, 1)
	gaugeIs(workerapp.MetricTransfersTimedOut, 1)
	gaugeIs(workerapp.MetricTransfersStalled, 0)
	if got := worker()[`connectflow_transfers_finished_total{kind="deposit",status="confirmed"}`]; got != 1 {
		t.Fatalf("a timed-out transfer is not finished: finished confirmed = %v, want 1", got)
	}
	if _, err := s.transfers.ResolveTransfer(s.ctx(), connect.KindDeposit, "m-late",
		workflows.Resolution{Operator: "ana", Outcome: workflows.StatusConfirmed, Reason: "seen on chain"}); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := s.result(connect.KindDeposit, "m-late"); err != nil {
		t.Fatal(err)
	}
	gaugeIs(workerapp.MetricTransfersTimedOut, 0)

	// 3. An unexpected webhook goes to a review: the review gauge counts it.
	rev := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "m-rev", ReferenceID: "USER93"})
	deliveries, err = s.sandbox.Play(s.ctx(), rev.SessionID, connecttest.Play{Outcome: connecttest.OutcomeUnexpected})
	requireDelivered(t, deliveries, err)
	gaugeIs(workerapp.MetricReviewsOpen, 1)

	// 4. A confirmed withdrawal the platform does not acknowledge while it is down: pending until it is back.
	p.SetDown(true)
	pend := s.start(workflows.TransferInput{Kind: connect.KindWithdrawal, TransferID: "m-pend", ReferenceID: "USER94"})
	deliveries, err = s.sandbox.Play(s.ctx(), pend.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
	requireDelivered(t, deliveries, err)
	gaugeIs(workerapp.MetricNotificationsPending, 1)
	p.SetDown(false)
	if r, err := s.result(connect.KindWithdrawal, "m-pend"); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("m-pend: %+v, %v", r, err)
	}
	gaugeIs(workerapp.MetricNotificationsPending, 0)

	// The counters and the histogram, as the worker's /metrics shows them.
	got, text := scrapeURL(t, workerMetrics.URL+workerapp.MetricsPath)
	for series, want := range map[string]float64{
		`connectflow_transfers_started_total{kind="deposit"}`:                        3,
		`connectflow_transfers_started_total{kind="withdrawal"}`:                     1,
		`connectflow_transfers_finished_total{kind="deposit",status="confirmed"}`:    2, // m-ok, m-late (resolved)
		`connectflow_transfers_finished_total{kind="withdrawal",status="confirmed"}`: 1,
		`connectflow_transfers_finished_total{kind="deposit",status="failed"}`:       0,
		// Only Connect's confirmations are timed: m-ok and m-pend, not the resolved m-late.
		`connectflow_transfer_session_to_confirmed_seconds_count{kind="deposit"}`:          1,
		`connectflow_transfer_session_to_confirmed_seconds_count{kind="withdrawal"}`:       1,
		`connectflow_transfer_session_to_confirmed_seconds_bucket{kind="deposit",le="30"}`: 1,
		`connectflow_visibility_count_errors_total{gauge="connectflow_reviews_open"}`:      0,
	} {
		if got[series] != want {
			t.Errorf("worker %s = %v, want %v", series, got[series], want)
		}
	}
	if got[workerapp.MetricVisibilityLastSuccess] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("%s = %v, want about now", workerapp.MetricVisibilityLastSuccess, got[workerapp.MetricVisibilityLastSuccess])
	}
	eventually(t, "the SDK's poller gauge", func() bool {
		for k, v := range worker() {
			if strings.HasPrefix(k, "temporal_num_pollers{") && strings.Contains(k, `poller_type="workflow_task"`) && v > 0 {
				return true
			}
		}
		return false
	})

	// 5. A forged webhook (no signature): the bridge refuses it and counts the failure.
	resp, err := http.Post(rig.url+bridge.PathConnectDeposits, "application/json",
		strings.NewReader(`{"event":"connect.deposit.confirmed","data":{"transfer_id":"forged"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook: status %d, want 401", resp.StatusCode)
	}

	b, btext := scrapeURL(t, bridgeAdmin.URL+bridge.PathMetrics)
	failures := 0.0
	for k, v := range b {
		if strings.HasPrefix(k, bridge.MetricVerificationFailures+"{") {
			failures += v
		}
	}
	if failures != 1 {
		t.Errorf("bridge %s = %v in all, want 1", bridge.MetricVerificationFailures, failures)
	}
	for series, want := range map[string]float64{
		bridge.MetricJWKSKeys:            1,
		bridge.MetricJWKSRefreshFailures: 0,
	} {
		if b[series] != want {
			t.Errorf("bridge %s = %v, want %v", series, b[series], want)
		}
	}
	if n := b[`connectflow_bridge_requests_total{outcome="signaled",route="`+bridge.PathConnectDeposits+`"}`]; n < 3 {
		t.Errorf("bridge signaled deposits = %v, want at least 3", n)
	}

	// No label value comes from a transfer's data: ids, references, sessions, amounts, operators.
	for _, secret := range []string{"m-ok", "m-late", "m-rev", "m-pend", "USER9", ok.SessionID, late.SessionID,
		pend.SessionID, s.connectID(ok.SessionID), "0.013", "0.5", "BTC", "bitcoin", "ana", "seen on chain"} {
		for what, body := range map[string]string{"worker": text, "bridge": btext} {
			for _, line := range strings.Split(body, "\n") {
				for _, l := range labelPairs.FindAllStringSubmatch(line, -1) {
					if l[1] != "le" && l[1] != "quantile" && strings.Contains(l[2], secret) {
						t.Errorf("%s /metrics carries %q in label %s: %s", what, secret, l[1], line)
					}
				}
			}
		}
	}

	// Every metric an alert names is one these processes export (or Prometheus's own up).
	exported := got.names()
	for n := range b.names() {
		exported[n] = true
	}
	exported["up"] = true
	if missing := unexportedAlertMetrics(t, exported); len(missing) > 0 {
		t.Errorf("alerts.yml names metrics nobody exports: %v", missing)
	}
}

// alertRules is the part of a Prometheus rule file the checks read.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlerts(t *testing.T) alertRules {
	t.Helper()
	data, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	return rules
}

// unexportedAlertMetrics lists the metric names alerts.yml's expressions use that exported lacks.
func unexportedAlertMetrics(t *testing.T, exported map[string]bool) []string {
	t.Helper()
	var missing []string
	for _, g := range readAlerts(t).Groups {
		for _, r := range g.Rules {
			for _, n := range promqlMetricNames(r.Expr) {
				if !exported[n] {
					missing = append(missing, r.Alert+": "+n)
				}
			}
		}
	}
	return missing
}

// labelPairs finds the name="value" pairs of a sample line.
var labelPairs = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlOffset    = regexp.MustCompile(`\boffset\s+\S+`)
	promqlIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promqlKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "inf": true, "nan": true}
	promqlDurations = regexp.MustCompile(`^[0-9]`)
)

// promqlMetricNames finds the metric names a PromQL expression selects: identifiers that are not functions,
// keywords, label names (in matchers and grouping), durations or strings. Enough for alert rules; a rule whose
// shape this misreads fails the checks, never passes them silently (TestPromQLMetricNames).
func promqlMetricNames(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, " ")
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	e = promqlOffset.ReplaceAllString(e, " ")
	var names []string
	for _, m := range promqlIdent.FindAllStringSubmatch(e, -1) {
		id := strings.TrimRight(strings.TrimSuffix(strings.TrimSpace(m[0]), "("), " ")
		if m[1] != "" || promqlKeywords[strings.ToLower(id)] || promqlDurations.MatchString(id) {
			continue // a function call, a keyword
		}
		names = append(names, id)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

func TestPromQLMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`absent(up{job="connectflow-worker"} == 1)`:                                                           {"up"},
		`sum(rate(a_total{outcome="unavailable"}[5m])) / sum(rate(a_total[5m])) > 0.05`:                       {"a_total"},
		`up{job="w"} == 1 unless on (instance) temporal_num_pollers{poller_type="workflow_task"} > 0`:         {"temporal_num_pollers", "up"},
		`max(x_stalled) > 0 and max(x_stalled) > max(x_stalled offset 1h)`:                                    {"x_stalled"},
		`histogram_quantile(0.95, sum by (le) (rate(h_seconds_bucket[1h]))) > 7200`:                           {"h_seconds_bucket"},
		`(time() - max(last_success_timestamp_seconds)) > 600`:                                                {"last_success_timestamp_seconds"},
		`increase(f_total[1h]) > 0 and (time() - g_seconds) > 2700`:                                           {"f_total", "g_seconds"},
		`sum(increase(connectflow_nobody_exports_this_total[10m])) > 0`:                                       {"connectflow_nobody_exports_this_total"},
		`sum without (instance) (rate(y_total{reason=~"jwt_.*"}[5m])) > 0.1 or vector(0) * ignoring(a) z_sum`: {"y_total", "z_sum"},
	} {
		if got := promqlMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

// The alert rules are complete enough to page on: every alert has a severity and its summary, description and
// runbook; names are unique.
func TestAlertRulesAreDocumented(t *testing.T) {
	seen := map[string]bool{}
	docs, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range readAlerts(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: alert %q is unnamed or repeated", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, sev)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			if !strings.Contains(string(docs), r.Alert) {
				t.Errorf("%s is not described in docs/metrics.md", r.Alert)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alerts")
	}
}

// metricsWorker runs the worker wiring on its own client with its own metrics registry, served on loopback.
func (s *stack) metricsWorker() (stop func(), scrape func() scrapeResult) {
	s.t.Helper()
	m := workerapp.NewMetrics(slog.New(slog.DiscardHandler))
	s.t.Cleanup(func() { _ = m.Close() })
	c := s.server.NewClientWithOptions(client.Options{MetricsHandler: m.Handler})
	w, err := workerapp.New(c, s.workerConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		s.t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(w.Stop) }
	s.t.Cleanup(stop)
	srv := httptest.NewServer(m.HTTP)
	s.t.Cleanup(srv.Close)
	return stop, func() scrapeResult { r, _ := scrapeURL(s.t, srv.URL+workerapp.MetricsPath); return r }
}

// A worker that takes over a transfer replays its history first: what the first worker counted is not counted
// again (the SDK's handler is silent during replay), and what happens after the takeover is counted once.
func TestMetricsNotCountedOnReplay(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	stopA, scrapeA := s.metricsWorker()
	st := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "m-replay", ReferenceID: "USER95"})
	s.signal(connect.KindDeposit, "m-replay", event(connect.KindDeposit, connect.StatusInitiated, "cx-m-replay", st.SessionID))
	eventually(t, "initiated", func() bool {
		cur, err := s.transfers.Status(s.ctx(), connect.KindDeposit, "m-replay")
		return err == nil && cur.Status == workflows.StatusInitiated
	})
	stopA()

	_, scrapeB := s.metricsWorker()
	s.signal(connect.KindDeposit, "m-replay", event(connect.KindDeposit, connect.StatusConfirmed, "cx-m-replay", st.SessionID))
	if r, err := s.result(connect.KindDeposit, "m-replay"); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("m-replay: %+v, %v", r, err)
	}
	a, b := scrapeA(), scrapeB()
	for _, c := range []struct {
		who    string
		got    scrapeResult
		series string
		want   float64
	}{
		{"first worker", a, `connectflow_transfers_started_total{kind="deposit"}`, 1},
		{"first worker", a, `connectflow_transfers_finished_total{kind="deposit",status="confirmed"}`, 0},
		{"worker that replayed", b, `connectflow_transfers_started_total{kind="deposit"}`, 0},
		{"worker that replayed", b, `connectflow_transfers_finished_total{kind="deposit",status="confirmed"}`, 1},
		{"worker that replayed", b, `connectflow_transfer_session_to_confirmed_seconds_count{kind="deposit"}`, 1},
	} {
		if c.got[c.series] != c.want {
			t.Errorf("%s: %s = %v, want %v", c.who, c.series, c.got[c.series], c.want)
		}
	}
}
