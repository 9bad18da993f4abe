package report

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[99-i] = i + 1 // 100 down to 1: Summarize must sort
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"none", nil, Latency{}},
		{"one", ms(7), Latency{Count: 1, P50: 7, P90: 7, P99: 7, Max: 7, Mean: 7}},
		{"two", ms(10, 2), Latency{Count: 2, P50: 2, P90: 10, P99: 10, Max: 10, Mean: 6}},
		{"1..100", ms(hundred...), Latency{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]time.Duration(nil), tc.samples...)
			if got := Summarize(tc.samples); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !equalDurations(before, tc.samples) {
				t.Error("Summarize reordered its input")
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCompareRatioAndAddedLatency(t *testing.T) {
	ceiling := NewSide("raw", []time.Duration{time.Millisecond, 3 * time.Millisecond}, 0, time.Second, 20*time.Millisecond)
	ours := NewSide("bridge", []time.Duration{2 * time.Millisecond}, 1, time.Second, 30*time.Millisecond)
	c := Compare("signal", 4, ceiling, ours)
	if c.Ceiling.PerSecond != 2 || c.Ours.PerSecond != 1 || c.Ratio != 0.5 {
		t.Errorf("rates %v %v, ratio %v", c.Ceiling.PerSecond, c.Ours.PerSecond, c.Ratio)
	}
	if c.AddedP50Ms != 1 || c.AddedP99Ms != -1 {
		t.Errorf("added p50 %v p99 %v, want 1 and -1", c.AddedP50Ms, c.AddedP99Ms)
	}
	if c.Ours.Errors != 1 || c.Ours.Count != 1 {
		t.Errorf("ours count %d errors %d", c.Ours.Count, c.Ours.Errors)
	}
	// CPU per operation counts failed operations too: they used the CPU.
	if c.Ceiling.CPUMsPerOp != 10 || c.Ours.CPUMsPerOp != 15 || c.CPURatio != 1.5 {
		t.Errorf("CPU per op %v and %v, ratio %v; want 10, 15, 1.5", c.Ceiling.CPUMsPerOp, c.Ours.CPUMsPerOp, c.CPURatio)
	}
	if z := Compare("x", 1, NewSide("a", nil, 0, 0, 0), ours); z.Ratio != 0 || z.Ceiling.PerSecond != 0 || z.CPURatio != 0 {
		t.Errorf("an empty ceiling must not divide by zero: %+v", z)
	}
}

func TestTokensPerLifetime(t *testing.T) {
	for _, tc := range []struct {
		name                string
		requests, transfers int64
		ttl, uptime         time.Duration
		lifetimes           int
		perLifetime, per1k  float64
	}{
		{"one token, run shorter than its life", 1, 500, time.Hour, time.Minute, 1, 1, 2},
		{"uptime spans three lifetimes", 3, 1000, 10 * time.Second, 25 * time.Second, 3, 1, 3},
		{"exactly one lifetime", 2, 0, time.Minute, time.Minute, 1, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NewTokens(tc.requests, tc.transfers, tc.ttl, tc.uptime, 1)
			if got.Lifetimes != tc.lifetimes || got.PerLifetimePerWorker != tc.perLifetime || got.Per1000 != tc.per1k {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestWaitingPerTransfer(t *testing.T) {
	before := Memory{RSSBytes: 100 << 20, HeapBytes: 10 << 20, StackBytes: 1 << 20, Goroutines: 30}
	after := Memory{RSSBytes: 100<<20 + 4000*50<<10, HeapBytes: 10<<20 + 4000*20<<10, StackBytes: 1<<20 + 4000*8<<10,
		Goroutines: 4030}
	w := NewWaiting(4000, 2, 16, 80*time.Second, before, after)
	want := PerTransfer{RSSBytes: 50 << 10, HeapBytes: 20 << 10, StackBytes: 8 << 10, Goroutines: 1}
	if w.PerTransfer != want || w.StartPerSecond != 50 {
		t.Errorf("per transfer %+v, rate %v", w.PerTransfer, w.StartPerSecond)
	}
	shrunk := NewWaiting(10, 0, 1, time.Second, after, before)
	if shrunk.PerTransfer.RSSBytes >= 0 {
		t.Errorf("a shrinking process must give a negative delta, not wrap around: %v", shrunk.PerTransfer.RSSBytes)
	}
}

func TestVerificationFloorMultiple(t *testing.T) {
	v := NewVerification(50_000, []Benchmark{
		{Name: "floor", NsPerOp: 50_000, RSAVerifies: 1},
		{Name: "both", NsPerOp: 120_000, RSAVerifies: 2},
		{Name: "none", NsPerOp: 10},
	})
	got := []float64{v.Benchmarks[0].FloorMultiple, v.Benchmarks[1].FloorMultiple, v.Benchmarks[2].FloorMultiple}
	if got[0] != 1 || math.Abs(got[1]-1.2) > 1e-9 || got[2] != 0 {
		t.Errorf("floor multiples %v, want [1 1.2 0]", got)
	}
}

// sample is a report with every scenario; ours misses the ingest goals and meets the rest.
func sample() *Report {
	lat := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	r := &Report{
		Machine:  Machine{CPUs: 2, GOMAXPROCS: 2, CPUModel: "Test CPU", MemoryBytes: 4 << 30, GoVersion: "go1.26.8", GOOS: "linux", GOARCH: "amd64"},
		Temporal: "embedded",
		Command:  "go run ./bench -tiny",
		Started:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Seconds:  61,
	}
	r.Ingest = Compare("signal", 16, NewSide("raw", lat(4, 5, 6), 0, 3*time.Millisecond, 0),
		NewSide("bridge", lat(5, 7, 9), 0, 4*time.Millisecond, 0))
	r.IngestSerial = Compare("signal", 1, NewSide("raw", lat(2, 3), 0, 5*time.Millisecond, 0),
		NewSide("bridge", lat(2, 3, 4), 0, 10*time.Millisecond, 0))
	r.Transfers = Compare("transfer", 16, NewSide("minimal", lat(100, 200), 0, 100*time.Millisecond, 100*time.Millisecond),
		NewSide("full", lat(110, 220), 0, 110*time.Millisecond, 120*time.Millisecond))
	r.Transfers.Ours.SigningMsPerOp = 4.5
	r.IngestSerial.Ours.Errors, r.IngestSerial.Ours.FirstError = 1, "bridge answered 503 Service Unavailable"
	r.IngestSerial.Ours.Redelivered = 2
	r.Tokens = NewTokens(1, 300, time.Hour, time.Minute, 1)
	r.Waiting = NewWaiting(1000, 0, 16, 20*time.Second, Memory{RSSBytes: 100 << 20}, Memory{RSSBytes: 150 << 20, Goroutines: 1000})
	r.Waiting.ProbeIdle, r.Waiting.ProbeLoaded = Summarize(lat(40, 50)), Summarize(lat(45, 140))
	r.Verify = NewVerification(40_000, []Benchmark{{Name: "RSAVerifyFloor", What: "rsa", NsPerOp: 40_000, RSAVerifies: 1}})
	return r
}

func TestGoals(t *testing.T) {
	r := sample()
	r.CheckGoals()
	met := map[string]bool{}
	for _, g := range r.Goals {
		met[g.Name] = g.Met
	}
	want := map[string]bool{
		"signal ingest throughput":               false, // 0.75x
		"signal ingest added p99, 16 at a time":  false, // +3 ms
		"signal ingest added p99, one at a time": false, // +1 ms, but a signal failed
		"transfer throughput":                    true,  // 0.91x
		"transfer throughput (issue 12)":         false, // 0.91x < 0.95x
		"CPU per transfer (issue 12)":            false, // 1.20x > 1.15x
		"token requests":                         true,
		"waiting transfers":                      true,
	}
	if len(met) != len(want) {
		t.Fatalf("goals %v, want %v", met, want)
	}
	for name, w := range want {
		if met[name] != w {
			t.Errorf("goal %q met=%v, want %v", name, met[name], w)
		}
	}
	if r.Failed() != 1 {
		t.Errorf("sample has %d failures, want 1", r.Failed())
	}
	r.Transfers.Ours.Errors = 1
	r.Waiting.Errors = 2
	if r.Failed() != 4 {
		t.Errorf("Failed() = %d, want 4", r.Failed())
	}
	r.CheckGoals()
	for _, g := range r.Goals {
		if g.Name == "transfer throughput" && g.Met {
			t.Error("a run with failed transfers met the throughput goal")
		}
	}
	empty := &Report{}
	if empty.CheckGoals(); len(empty.Goals) != 0 {
		t.Errorf("a report without scenarios has goals %+v", empty.Goals)
	}
}

func TestMarkdownNamesTheCPUScope(t *testing.T) {
	r := sample()
	r.CPUScope = CPUScopeWithoutServer
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	want := "| 2 | CPU per transfer, " + CPUScopeWithoutServer + " | 50.00 ms | 60.00 ms | 1.20x the CPU |"
	if md := buf.String(); !strings.Contains(md, want) || strings.Contains(md, "all of the run's processes") {
		t.Fatalf("markdown does not name the CPU's scope as %q:\n%s", want, md)
	}
}

func TestMarkdownHasEveryScenario(t *testing.T) {
	var buf bytes.Buffer
	if err := sample().WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"2 CPUs (GOMAXPROCS 2), Test CPU, 4.00 GiB RAM, go1.26.8 linux/amd64",
		"`go run ./bench -tiny`",
		"| 1 | signals/s, 16 at a time | 1000.0 | 750.0 | 0.75x |",
		"| 1 | p99 signal latency, 16 at a time | 6.00 ms | 9.00 ms | +3.00 ms |",
		"| 1 | p50 signal latency, one at a time | 2.00 ms | 3.00 ms | +1.00 ms |",
		"| 1 | p99 signal latency, one at a time | 3.00 ms | 4.00 ms | +1.00 ms |",
		"| 2 | transfers/s, 16 at a time | 20.0 | 18.2 | 0.91x |",
		"| 2 | CPU per transfer, all of the run's processes | 50.00 ms | 60.00 ms | 1.20x the CPU |",
		"| 2 | of which signing webhooks as Connect, per transfer | 0.00 ms | 4.50 ms | |",
		"| 1 | failed signals, one at a time | 0 | 1 | |",
		"| 1 | webhooks resent after a 503, one at a time | | 2 | |",
		"- signal ours, one at a time: 1 failed, the first with: bridge answered 503 Service Unavailable",
		"| 3 | token requests per 1,000 transfers (1 requests, 300 transfers) | | 3.33 | |",
		"| 3 | token requests per token lifetime per worker (TTL 1h0m0s, uptime 60 s, 1 worker) | | 1.00 | |",
		"#### 4. 1000 transfers waiting for webhooks in one worker",
		"| RSS (VmRSS) | 100.0 MiB | 150.0 MiB | 51.2 KiB |",
		"| 1000 transfers waiting (2 probes) | 45.0 ms | 140.0 ms | 140.0 ms |",
		"| RSAVerifyFloor | rsa | 40000 | 0 | 0 | 1.00x of 1 |",
		"| signal ingest throughput | >= 0.80x the raw signal ceiling | 0.75x | **no** |",
		"| signal ingest added p99, one at a time | <= 2 ms | +1.00 ms | **no** |",
		"| signal ingest added p99, 16 at a time | <= 2 ms | +3.00 ms | **no** |",
		"| transfer throughput | >= 0.80x the minimal workflow | 0.91x | yes |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "|") && !strings.HasSuffix(line, "|") {
			t.Errorf("broken table row %q", line)
		}
	}
}

func TestMarkdownSkipsScenariosThatDidNotRun(t *testing.T) {
	var buf bytes.Buffer
	r := &Report{Verify: NewVerification(1, nil)}
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"| 1 |", "| 2 |", "| 3 |", "#### 4.", "| goal |", "ceiling:"} {
		if strings.Contains(buf.String(), absent) {
			t.Errorf("markdown has %q for a scenario that did not run", absent)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sample()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `\u003e`) {
		t.Error("JSON escapes > in goal targets")
	}
	var got Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ingest.Ratio != r.Ingest.Ratio || got.Waiting.PerTransfer != r.Waiting.PerTransfer ||
		got.Tokens.PerLifetimePerWorker != 1 || len(got.Goals) != 8 || !got.Started.Equal(r.Started) {
		t.Errorf("round trip lost data: %+v", got)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"machine", "signal_ingest", "signal_ingest_one_at_a_time", "transfers", "token_economy", "waiting", "verification", "goals"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("JSON lacks %q", key)
		}
	}
}
