// Package report holds what `go run ./bench` measured and renders it as markdown tables and as JSON. Every
// throughput figure sits beside its ceiling from the same run, because on a shared machine only ratios mean much.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Goals of issue 7, checked by CheckGoals.
const (
	IngestRatioGoal       = 0.8
	IngestAddedP99GoalMs  = 2.0
	TransferRatioGoal     = 0.8
	TokensPerLifetimeGoal = 1.0
)

// Goals of issue 12 for transfers against the minimal workflow, checked by CheckGoals beside issue 7's.
const (
	TransferRatioGoal12 = 0.95
	TransferCPUGoal12   = 1.15
)

// Report.CPUScope of a run against an external server, without and with its processes (-server-pids).
const (
	CPUScopeWithoutServer = "the bench's and the workers' processes, not the external server's (see -server-pids)"
	CPUScopeWithServer    = "the bench's, the workers' and the given server processes with their children (-server-pids)"
)

// Report is one run of the benchmark command. A scenario that was not run is nil.
type Report struct {
	Machine  Machine `json:"machine"`
	Temporal string  `json:"temporal"` // which server: embedded, or the address of an external one
	// CPUScope names the processes CPU per operation covers when not all of them: CPUScopeWithoutServer or
	// CPUScopeWithServer with an external server. "" means every process of the run (the embedded server).
	CPUScope string    `json:"cpu_scope,omitempty"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	// LoadAverage is the machine's 1-minute load average before and after the run: others' work skews both sides.
	LoadAverage [2]float64 `json:"load_average_before_after"`

	Ingest *Comparison `json:"signal_ingest,omitempty"`
	// IngestSerial is ingest one signal at a time: latency with no queue for a saturated machine in it.
	IngestSerial *Comparison `json:"signal_ingest_one_at_a_time,omitempty"`
	Transfers    *Comparison `json:"transfers,omitempty"`
	// Notifications is full transfers with notifications to a platform off (ceiling) and on (ours).
	Notifications    *Comparison       `json:"notifications,omitempty"`
	NotificationCost *NotificationCost `json:"notification_cost,omitempty"`
	Tokens           *Tokens           `json:"token_economy,omitempty"`
	Waiting          *Waiting          `json:"waiting,omitempty"`
	Verify           *Verification     `json:"verification,omitempty"`
	// Actions is the cost per transfer in Temporal Cloud Actions, from the transfers scenario's histories.
	Actions *Actions `json:"actions_per_transfer,omitempty"`
	Goals   []Goal   `json:"goals"`
}

// Machine is what the run ran on.
type Machine struct {
	CPUs        int    `json:"cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	CPUModel    string `json:"cpu_model,omitempty"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	GoVersion   string `json:"go_version"`
	GOOS        string `json:"goos"`
	GOARCH      string `json:"goarch"`
}

// Side is one way of doing the same operations: the ceiling (bare Temporal) or ours (connectflow).
type Side struct {
	What   string `json:"what"`
	Count  int    `json:"count"` // operations that succeeded
	Errors int    `json:"errors"`
	// FirstError says why the first failed operation failed; empty when none did.
	FirstError string `json:"first_error,omitempty"`
	// Redelivered counts webhooks sent again, as Connect resends them, after the bridge answered 503 because
	// Temporal did not take the signal within the bridge's timeout.
	Redelivered int64   `json:"redelivered,omitempty"`
	Seconds     float64 `json:"seconds"` // wall time of the measured rounds
	PerSecond   float64 `json:"per_second"`
	Latency     Latency `json:"latency"`
	// CPUMsPerOp is the CPU time every process of the run (server, worker, bridge, sandbox, load) used per
	// operation: less swayed than throughput by what else the machine runs. 0 when not measured.
	CPUMsPerOp float64 `json:"cpu_ms_per_op"`
	// SigningMsPerOp is the part of each operation spent signing webhooks as Connect would, on this machine: CPU
	// that a deployment spends at Connect, not here. 0 when signing happened before the clock started.
	SigningMsPerOp float64 `json:"signing_ms_per_op,omitempty"`
}

// NewSide summarizes the successful operations' latencies, the failures, the wall time and the CPU time they took.
func NewSide(what string, latencies []time.Duration, errors int, elapsed, cpu time.Duration) Side {
	s := Side{What: what, Count: len(latencies), Errors: errors, Seconds: elapsed.Seconds(), Latency: Summarize(latencies)}
	if elapsed > 0 {
		s.PerSecond = float64(s.Count) / elapsed.Seconds()
	}
	if ops := s.Count + s.Errors; ops > 0 {
		s.CPUMsPerOp = ms(cpu) / float64(ops)
	}
	return s
}

// Comparison is a ceiling and ours doing the same operations at the same concurrency on the same server.
type Comparison struct {
	Unit        string  `json:"unit"` // one operation, e.g. "signal"
	Concurrency int     `json:"concurrency"`
	Ceiling     Side    `json:"ceiling"`
	Ours        Side    `json:"ours"`
	Ratio       float64 `json:"ratio"` // ours per second over the ceiling's
	AddedP50Ms  float64 `json:"added_p50_ms"`
	AddedP99Ms  float64 `json:"added_p99_ms"`
	// CPURatio is ours' CPU per operation over the ceiling's; 0 when not measured.
	CPURatio float64 `json:"cpu_ratio"`
}

// Compare puts two sides side by side.
func Compare(unit string, concurrency int, ceiling, ours Side) *Comparison {
	c := &Comparison{Unit: unit, Concurrency: concurrency, Ceiling: ceiling, Ours: ours,
		AddedP50Ms: ours.Latency.P50 - ceiling.Latency.P50, AddedP99Ms: ours.Latency.P99 - ceiling.Latency.P99}
	if ceiling.PerSecond > 0 {
		c.Ratio = ours.PerSecond / ceiling.PerSecond
	}
	if ceiling.CPUMsPerOp > 0 {
		c.CPURatio = ours.CPUMsPerOp / ceiling.CPUMsPerOp
	}
	return c
}

// Tokens is the access-token economy of the worker's Connect client over the run.
type Tokens struct {
	Requests             int64   `json:"token_requests"`
	Transfers            int64   `json:"transfers"` // sessions the worker opened
	Per1000              float64 `json:"requests_per_1000_transfers"`
	TokenTTLSeconds      float64 `json:"token_ttl_s"`
	WorkerSeconds        float64 `json:"worker_uptime_s"`
	Lifetimes            int     `json:"token_lifetimes"` // token lifetimes the worker's uptime touched
	Workers              int     `json:"workers"`
	PerLifetimePerWorker float64 `json:"requests_per_lifetime_per_worker"`
}

// NewTokens relates token requests to transfers and to the token lifetimes the workers' uptime spanned.
func NewTokens(requests, transfers int64, ttl, uptime time.Duration, workers int) *Tokens {
	t := &Tokens{Requests: requests, Transfers: transfers, TokenTTLSeconds: ttl.Seconds(),
		WorkerSeconds: uptime.Seconds(), Workers: workers, Lifetimes: 1}
	if transfers > 0 {
		t.Per1000 = float64(requests) * 1000 / float64(transfers)
	}
	if ttl > 0 {
		t.Lifetimes = max(1, int((uptime+ttl-1)/ttl))
	}
	if workers > 0 {
		t.PerLifetimePerWorker = float64(requests) / float64(t.Lifetimes*workers)
	}
	return t
}

// Memory is the worker process's footprint at one moment, after a forced GC.
type Memory struct {
	RSSBytes   uint64 `json:"rss_bytes"`   // VmRSS
	HeapBytes  uint64 `json:"heap_bytes"`  // live heap objects (HeapAlloc after GC)
	StackBytes uint64 `json:"stack_bytes"` // goroutine stacks (StackInuse)
	Goroutines int    `json:"goroutines"`
}

// PerTransfer is a Memory delta divided by the transfers that caused it.
type PerTransfer struct {
	RSSBytes   float64 `json:"rss_bytes"`
	HeapBytes  float64 `json:"heap_bytes"`
	StackBytes float64 `json:"stack_bytes"`
	Goroutines float64 `json:"goroutines"`
}

// Waiting is many transfers waiting for their webhooks in one worker.
type Waiting struct {
	Transfers      int         `json:"transfers"` // started and waiting
	Errors         int         `json:"errors"`    // failed to start
	Concurrency    int         `json:"concurrency"`
	StartSeconds   float64     `json:"start_s"`
	StartPerSecond float64     `json:"starts_per_second"`
	StickyCached   int         `json:"sticky_cached"` // workflows in the worker's sticky cache after the start
	Before         Memory      `json:"before"`
	After          Memory      `json:"after"`
	PerTransfer    PerTransfer `json:"per_transfer"`
	// ProbeIdle and ProbeLoaded time three webhooks through the bridge to a completed transfer, with the worker
	// idle and then with every transfer waiting.
	ProbeIdle   Latency `json:"probe_idle"`
	ProbeLoaded Latency `json:"probe_loaded"`
}

// NewWaiting computes the start rate and the per-transfer memory of n started transfers.
func NewWaiting(n, errors, concurrency int, took time.Duration, before, after Memory) *Waiting {
	w := &Waiting{Transfers: n, Errors: errors, Concurrency: concurrency, StartSeconds: took.Seconds(),
		Before: before, After: after}
	if took > 0 {
		w.StartPerSecond = float64(n) / took.Seconds()
	}
	if n > 0 {
		per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
		w.PerTransfer = PerTransfer{
			RSSBytes:   per(before.RSSBytes, after.RSSBytes),
			HeapBytes:  per(before.HeapBytes, after.HeapBytes),
			StackBytes: per(before.StackBytes, after.StackBytes),
			Goroutines: float64(after.Goroutines-before.Goroutines) / float64(n),
		}
	}
	return w
}

// Verification is the CPU cost of checking one webhook's credentials, beside the RSA verify floor.
type Verification struct {
	FloorNsPerOp float64     `json:"rsa_floor_ns_per_op"`
	Benchmarks   []Benchmark `json:"benchmarks"`
}

// Benchmark is one testing.Benchmark result.
type Benchmark struct {
	Name        string  `json:"name"`
	What        string  `json:"what"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	RSAVerifies int     `json:"rsa_verifies"` // RSA verifications one operation needs
	// FloorMultiple is ns/op over RSAVerifies times the floor: how far above pure RSA the check is.
	FloorMultiple float64 `json:"x_rsa_floor,omitempty"`
}

// NewVerification relates each benchmark to the floor's ns/op.
func NewVerification(floorNsPerOp float64, benchmarks []Benchmark) *Verification {
	for i := range benchmarks {
		if b := &benchmarks[i]; b.RSAVerifies > 0 && floorNsPerOp > 0 {
			b.FloorMultiple = b.NsPerOp / (float64(b.RSAVerifies) * floorNsPerOp)
		}
	}
	return &Verification{FloorNsPerOp: floorNsPerOp, Benchmarks: benchmarks}
}

// Goal is one of the goals and whether this run met it.
type Goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// CheckGoals fills r.Goals from the scenarios that ran.
func (r *Report) CheckGoals() {
	r.Goals = nil
	add := func(name, target, measured string, met bool) {
		r.Goals = append(r.Goals, Goal{Name: name, Target: target, Measured: measured, Met: met})
	}
	if c := r.Ingest; c != nil {
		add("signal ingest throughput", fmt.Sprintf(">= %.2fx the raw signal ceiling", IngestRatioGoal),
			fmt.Sprintf("%.2fx", c.Ratio), c.Ratio >= IngestRatioGoal && c.Ours.Errors == 0)
	}
	for _, c := range []*Comparison{r.IngestSerial, r.Ingest} {
		if c != nil {
			add(fmt.Sprintf("signal ingest added p99, %s", atATime(c.Concurrency)),
				fmt.Sprintf("<= %.0f ms", IngestAddedP99GoalMs), fmt.Sprintf("%+.2f ms", c.AddedP99Ms),
				c.AddedP99Ms <= IngestAddedP99GoalMs && c.Ours.Errors == 0)
		}
	}
	if c := r.Transfers; c != nil {
		add("transfer throughput", fmt.Sprintf(">= %.2fx the minimal workflow", TransferRatioGoal),
			fmt.Sprintf("%.2fx", c.Ratio), c.Ratio >= TransferRatioGoal && c.Ours.Errors == 0)
		add("transfer throughput (issue 12)", fmt.Sprintf(">= %.2fx the minimal workflow", TransferRatioGoal12),
			fmt.Sprintf("%.2fx", c.Ratio), c.Ratio >= TransferRatioGoal12 && c.Ours.Errors == 0)
		if c.CPURatio > 0 {
			add("CPU per transfer (issue 12)", fmt.Sprintf("<= %.2fx the minimal workflow's", TransferCPUGoal12),
				fmt.Sprintf("%.2fx", c.CPURatio), c.CPURatio <= TransferCPUGoal12)
		}
	}
	if t := r.Tokens; t != nil {
		add("token requests", fmt.Sprintf("<= %.0f per token lifetime per worker", TokensPerLifetimeGoal),
			fmt.Sprintf("%.2f", t.PerLifetimePerWorker), t.PerLifetimePerWorker <= TokensPerLifetimeGoal)
	}
	if w := r.Waiting; w != nil {
		add("waiting transfers", fmt.Sprintf("%d waiting in one worker, memory per transfer shown", w.Transfers+w.Errors),
			fmt.Sprintf("%d waiting, %d failed to start, %s RSS each", w.Transfers, w.Errors,
				bytesText(w.PerTransfer.RSSBytes)), w.Errors == 0)
	}
}

// Failed counts the operations that failed in every scenario.
func (r *Report) Failed() int {
	n := 0
	for _, c := range []*Comparison{r.Ingest, r.IngestSerial, r.Transfers} {
		if c != nil {
			n += c.Ceiling.Errors + c.Ours.Errors
		}
	}
	if r.Waiting != nil {
		n += r.Waiting.Errors
	}
	return n
}

// atATime says how many operations ran at once.
func atATime(concurrency int) string {
	if concurrency == 1 {
		return "one at a time"
	}
	return fmt.Sprintf("%d at a time", concurrency)
}

// WriteJSON writes r, goals checked, as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	r.CheckGoals()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // goals read ">= 0.80x", not "\u003e= 0.80x"
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: encode JSON: %w", err)
	}
	return nil
}

// NotificationCost is what one confirmed deposit's history holds with notifications off and on: commands by kind
// ("activities", "timers", "upserts", "markers") and "workflow tasks".
type NotificationCost struct {
	Off map[string]int `json:"off"`
	On  map[string]int `json:"on"`
}
