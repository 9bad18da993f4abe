// Package config reads and checks the command line of `go run ./bench`.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectflow/connectflow/internal/buildinfo"
)

// Scenario names, for -scenarios.
const (
	ScenarioIngest    = "ingest"
	ScenarioTransfers = "transfers"
	// ScenarioNotifications: the same full transfers with notifications to a platform off and on (worker.go's
	// second worker), and the commands they add per transfer.
	ScenarioNotifications = "notifications"
	ScenarioWaiting       = "waiting"
	ScenarioVerify        = "verify"
)

// Scenarios lists every scenario in the order the command runs them.
var Scenarios = []string{ScenarioIngest, ScenarioTransfers, ScenarioNotifications, ScenarioWaiting, ScenarioVerify}

// Bounds on sizes, so a typo cannot start a million workflows.
const (
	MaxOperations  = 1_000_000
	MaxConcurrency = 1_000
	MinTokenTTL    = time.Second // the sandbox's floor
	MaxWorkers     = 64
)

// Config is the checked command line.
type Config struct {
	Scenarios   []string
	Signals     int           // signals per side in the ingest scenario
	Workflows   int           // waiting transfers each ingest side signals into
	Transfers   int           // transfers per side
	Concurrency int           // operations in flight at once, the same for the ceiling and ours
	Rounds      int           // times the ceiling and ours alternate within a scenario
	Waiting     int           // transfers left waiting in one worker
	Probes      int           // responsiveness probes, idle and loaded
	Workers     int           // worker processes sharing the task queue (ingest and transfers; waiting measures one)
	BenchTime   time.Duration // per verification benchmark
	TokenTTL    time.Duration // the sandbox's access-token lifetime
	JSONFile    string        // where the JSON goes; empty prints it to stdout after the tables
	CPUProfile  string        // folder for CPU profiles of this process and of the worker; empty writes none
	// ServerPIDs are an external Temporal server's processes, whose CPU time counts in the run's (Linux).
	ServerPIDs []int
	Tiny       bool
	Quiet      bool
}

// Defaults: about a minute on a 2-core machine.
var Defaults = Config{
	Scenarios:   Scenarios,
	Signals:     1500,
	Workflows:   100,
	Transfers:   150,
	Concurrency: 16,
	Rounds:      2,
	Waiting:     1000,
	Probes:      10,
	Workers:     1,
	BenchTime:   300 * time.Millisecond,
	TokenTTL:    time.Hour,
}

// Tiny sizes prove the command works, for CI; flags given explicitly still win.
var Tiny = Config{
	Signals:     40,
	Workflows:   4,
	Transfers:   8,
	Concurrency: 4,
	Rounds:      1,
	Waiting:     20,
	Probes:      2,
	BenchTime:   20 * time.Millisecond,
}

// ErrPrinted marks a syntax error the flag package has already printed with the usage.
var ErrPrinted = errors.New("bad command line")

// Parse reads args. For -h it prints the usage to output and returns flag.ErrHelp (for -version, the build on
// stdout and buildinfo.ErrVersion, which wraps it); every other error names the
// flag it is about.
func Parse(args []string, output io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "Usage: go run ./bench [flags]\n\n%s\n\nFlags:\n", usageIntro)
		fs.PrintDefaults()
	}
	c := Defaults
	scenarios := strings.Join(Defaults.Scenarios, ",")
	fs.StringVar(&scenarios, "scenarios", scenarios, "comma-separated scenarios to run: "+strings.Join(Scenarios, ", "))
	fs.IntVar(&c.Signals, "signals", c.Signals, "ingest: signals per side (raw SignalWorkflow, and webhooks through the bridge)")
	fs.IntVar(&c.Workflows, "workflows", c.Workflows, "ingest: waiting transfers each side signals into")
	fs.IntVar(&c.Transfers, "transfers", c.Transfers, "transfers: transfers per side (minimal workflow, and full transfers)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "operations in flight at once, the same for the ceiling and ours")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "times the ceiling and ours alternate within a scenario, so drift hits both")
	fs.IntVar(&c.Waiting, "waiting", c.Waiting, "waiting: transfers left waiting for webhooks in the one worker")
	fs.IntVar(&c.Probes, "probes", c.Probes, "waiting: transfers completed through the bridge to time responsiveness, idle and loaded")
	fs.IntVar(&c.Workers, "workers", c.Workers, "worker processes sharing the task queue (ingest and transfers only), e.g. to measure how throughput grows with workers against a cluster")
	fs.DurationVar(&c.BenchTime, "benchtime", c.BenchTime, "verify: run time of each verification benchmark (each runs 3 times; the fastest counts)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "lifetime of the sandbox's access tokens (Connect documents 1h)")
	fs.StringVar(&c.JSONFile, "json", "", "write the JSON report to this file instead of after the tables on stdout")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write CPU profiles of the whole run into this folder: bench.pprof (server, sandbox, bridge, load) and worker.pprof")
	var serverPIDs string
	fs.StringVar(&serverPIDs, "server-pids", "", "comma-separated PIDs of an external Temporal server's processes (bench/cluster.sh's nodes and PostgreSQL's postmaster): their CPU time and their children's counts in the run's, so CPU per operation covers the server and its database as with the embedded one (Linux, from /proc)")
	fs.BoolVar(&c.Tiny, "tiny", false, "tiny sizes that only prove the command works (CI); explicit flags still win")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines on stderr")
	version := buildinfo.Flag(fs, os.Stdout)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return Config{}, err
	} else if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrPrinted, err)
	}
	if err := version(); err != nil {
		return Config{}, err // buildinfo.ErrVersion wraps flag.ErrHelp: exit 0
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (every setting is a flag; see -h)", fs.Arg(0))
	}
	if c.Tiny {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		c.applyTiny(set)
	}
	c.Scenarios = splitList(scenarios)
	for _, p := range splitList(serverPIDs) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid < 1 {
			return Config{}, fmt.Errorf("-server-pids: %q is not a process id", p)
		}
		c.ServerPIDs = append(c.ServerPIDs, pid)
	}
	return c, c.Validate()
}

// applyTiny takes Tiny's value for every size flag not in set.
func (c *Config) applyTiny(set map[string]bool) {
	for _, f := range []struct {
		name     string
		dst, val *int
	}{
		{"signals", &c.Signals, &Tiny.Signals}, {"workflows", &c.Workflows, &Tiny.Workflows},
		{"transfers", &c.Transfers, &Tiny.Transfers}, {"concurrency", &c.Concurrency, &Tiny.Concurrency},
		{"rounds", &c.Rounds, &Tiny.Rounds}, {"waiting", &c.Waiting, &Tiny.Waiting},
		{"probes", &c.Probes, &Tiny.Probes},
	} {
		if !set[f.name] {
			*f.dst = *f.val
		}
	}
	if !set["benchtime"] {
		c.BenchTime = Tiny.BenchTime
	}
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Validate reports every bad setting, each naming its flag.
func (c Config) Validate() error {
	var problems []error
	bad := func(flagName, format string, args ...any) {
		problems = append(problems, fmt.Errorf("-%s: %s", flagName, fmt.Sprintf(format, args...)))
	}
	if len(c.Scenarios) == 0 {
		bad("scenarios", "names no scenario; choose from %s", strings.Join(Scenarios, ", "))
	}
	seen := map[string]bool{}
	for _, s := range c.Scenarios {
		switch {
		case !slices.Contains(Scenarios, s):
			bad("scenarios", "%q is not one of %s", s, strings.Join(Scenarios, ", "))
		case seen[s]:
			bad("scenarios", "%q is named twice", s)
		}
		seen[s] = true
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"signals", c.Signals}, {"workflows", c.Workflows}, {"transfers", c.Transfers}, {"waiting", c.Waiting},
		{"probes", c.Probes}, {"rounds", c.Rounds},
	} {
		if n.v < 1 || n.v > MaxOperations {
			bad(n.name, "%d is outside 1..%d", n.v, MaxOperations)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		bad("concurrency", "%d is outside 1..%d", c.Concurrency, MaxConcurrency)
	}
	if c.Rounds > 0 && c.Rounds <= MaxOperations {
		if c.Rounds > c.Signals && c.Has(ScenarioIngest) {
			bad("rounds", "%d is more than -signals %d: a round would have no signal", c.Rounds, c.Signals)
		}
		if c.Rounds > c.Transfers && c.Has(ScenarioTransfers) {
			bad("rounds", "%d is more than -transfers %d: a round would have no transfer", c.Rounds, c.Transfers)
		}
	}
	if c.BenchTime <= 0 {
		bad("benchtime", "%v must be positive", c.BenchTime)
	}
	if c.TokenTTL < MinTokenTTL {
		bad("token-ttl", "%v is under %v", c.TokenTTL, MinTokenTTL)
	}
	switch {
	case c.Workers < 1 || c.Workers > MaxWorkers:
		bad("workers", "%d is outside 1..%d", c.Workers, MaxWorkers)
	case c.Workers > 1 && c.Has(ScenarioWaiting):
		bad("workers", "the waiting scenario measures one worker: choose -scenarios ingest,transfers with -workers %d", c.Workers)
	}
	return errors.Join(problems...)
}

// Has reports whether scenario s is to run.
func (c Config) Has(s string) bool { return slices.Contains(c.Scenarios, s) }

// NeedsWorker reports whether any chosen scenario runs workflows.
func (c Config) NeedsWorker() bool {
	return c.Has(ScenarioIngest) || c.Has(ScenarioTransfers) || c.Has(ScenarioNotifications) || c.Has(ScenarioWaiting)
}

const usageIntro = `Measures connectflow against its ceilings on the same Temporal server in one run, and prints markdown
tables and a JSON report: (1) signal ingest, webhooks through the bridge vs raw SignalWorkflow; (2) full
transfers vs a minimal workflow of the same shape; (3) access tokens per transfer and per token lifetime;
(4) transfers waiting in one worker: start rate, memory per transfer, responsiveness; (5) the CPU cost of
verifying a webhook vs the RSA verify floor.

Temporal: TEMPORAL_ADDRESS (and the worker's other TEMPORAL_* settings) when set, else an embedded server with
SQLite in memory. The Connect sandbox, the webhook bridge and the load run in this process; the worker runs in a
child process of this binary, so its memory is measured alone.`
