// Command chaos is connectflow's fault-injection suite. It builds the real binaries, runs each as its own process
// (the dev command's embedded Temporal in -server-only mode, workers, the webhook bridge, the Connect sandbox),
// drives transfers through them while it breaks things, then proves from Temporal's records that every transfer
// ended where it should and that nothing was lost, applied twice, or answered 2xx without being accepted.
//
//	go run ./tests/chaos -small        # CI size: 30 transfers, ~300 webhook deliveries, every fault at least once
//	go run ./tests/chaos               # issue size: 1,000 transfers, ~10,000 webhook deliveries
//	go run ./tests/chaos -topology cluster -small   # the same on PostgreSQL, 3 Temporal nodes behind a balancer
//
// With -topology cluster, Temporal is a throwaway PostgreSQL (deploy/postgres/throwaway.sh) and -nodes nodes of
// dev -server-only -postgres, every client reaching them through a loopback load balancer, and -bridges bridges
// behind another; on top of the faults below one node is SIGKILLed and one SIGTERMed mid-run, each restarted
// later, and the shard handover after each is timed (topology.go).
//
// While transfers are in flight it SIGKILLs a worker every few seconds and starts a new one, restarts the bridge
// (SIGKILL and SIGTERM), stops the Temporal server (SIGTERM and SIGKILL) while webhooks keep coming and restarts
// it on the same data, and makes the sandbox fail session creation (500, 429 with Retry-After, dropped
// connections). Afterwards it checks every transfer, event, session, review and 2xx answer, scans every log the
// processes wrote for secrets and PII, prints the tables, and exits 1 when any check fails (2 for bad flags).
// It never links the Temporal server: that lives only in the dev binary it starts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectflow/connectflow/internal/buildinfo"
	"github.com/connectflow/connectflow/workflows"
)

const (
	exitFailed = 1
	exitUsage  = 2
)

// config is the suite's size and fault schedule; defaults are the size, -small the CI size.
type config struct {
	transfers       int           // transfer workflows started
	deliveries      int           // Connect webhook deliveries the plan aims at
	orphans         int           // sessions opened at the sandbox that no transfer owns: their events need a review
	unmatchedLedger int           // balance movements naming no transfer: each needs a review
	onboardings     int           // onboarding-token workflows (they carry emails and phones: PII for the scan)
	workers         int           // worker processes kept running
	killEvery       time.Duration // mean pause between worker SIGKILLs
	bridgeRestarts  int           // bridge restarts, alternating SIGKILL and SIGTERM
	outages         int           // Temporal stops, alternating SIGTERM and SIGKILL
	outageFor       time.Duration // how long Temporal stays down
	sessionFaults   int           // faults armed on session creation, cycling 500, 429 and dropped connections
	startRate       float64       // transfers started per second
	concurrency     int           // transfer drivers at once
	sessionExpiry   time.Duration // the expired scenario's session window
	ledgerHorizon   time.Duration // how long the unsettled scenario waits for its ledger movement
	settle          time.Duration // bound on waiting for every transfer to reach its state after the storm
	timeout         time.Duration // bound on the whole run
	seed            uint64
	dir             string // run folder; default a new temporary folder
	bin             string // folder with prebuilt dev, worker, webhookbridge and sandbox binaries; default build them
	keep            bool   // keep the run folder even when every check passes
	topology        string // topologySingle or topologyCluster
	bridges         int    // bridges behind a balancer in the cluster topology
	nodes           int    // Temporal nodes of the cluster topology
	historyShards   int    // history shards of the cluster topology
}

// settleBound is how long the suite waits, after the storm, for every transfer and notification to finish: one
// whole notification retry interval (NotifyActivityOptions backs off up to MaximumInterval between attempts, and
// a notification unlucky with the platform's random failures and its outage can be there) plus two minutes. A run
// that converges sooner is not slowed by it.
var settleBound = workflows.NotifyActivityOptions.RetryPolicy.MaximumInterval + 2*time.Minute

func defaults(small bool) config {
	c := config{
		transfers: 1000, deliveries: 10000, orphans: 20, unmatchedLedger: 20, onboardings: 20,
		workers: 2, killEvery: 4 * time.Second, bridgeRestarts: 12, outages: 2, outageFor: 20 * time.Second,
		sessionFaults: 30, startRate: 8, concurrency: 64, sessionExpiry: 30 * time.Second, ledgerHorizon: 30 * time.Second,
		settle: settleBound, timeout: 60 * time.Minute,
		topology: topologySingle, nodes: 3, historyShards: 16, bridges: 2,
	}
	if small {
		c.transfers, c.deliveries, c.orphans, c.unmatchedLedger, c.onboardings = 30, 300, 2, 2, 2
		c.bridgeRestarts, c.outages, c.sessionFaults = 2, 2, 3
		c.startRate, c.concurrency, c.sessionExpiry, c.ledgerHorizon = 0.5, 8, 20*time.Second, 20*time.Second
		c.timeout = 15*time.Minute + settleBound
	}
	return c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	rep, err := suite(ctx, cfg, stdout)
	if rep != nil {
		rep.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return exitFailed
	}
	if rep.failed() {
		fmt.Fprintln(stderr, "chaos: FAILED: see the checks above")
		return exitFailed
	}
	fmt.Fprintln(stdout, "chaos: PASS")
	return 0
}

// parseFlags reads the command line. -small switches every default to the CI size; a flag given explicitly wins
// either way, so the arguments are parsed once to learn -small and again over the defaults it picks.
func parseFlags(args []string, output io.Writer) (config, error) {
	c, small, err := parseOver(defaults(false), args, output)
	if err != nil || !small {
		return c, err
	}
	c, _, err = parseOver(defaults(true), args, output)
	return c, err
}

// parseOver parses args over the defaults in c and reports whether -small was given.
func parseOver(c config, args []string, output io.Writer) (config, bool, error) {
	var small bool
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.BoolVar(&small, "small", false, "CI size: 30 transfers, 300 deliveries, each fault at least once, a few minutes")
	fs.IntVar(&c.transfers, "transfers", c.transfers, "transfer workflows to start")
	fs.IntVar(&c.deliveries, "deliveries", c.deliveries, "Connect webhook deliveries to aim at (duplicates and late copies included)")
	fs.IntVar(&c.orphans, "orphans", c.orphans, "sessions no transfer owns, whose events must land in reviews")
	fs.IntVar(&c.unmatchedLedger, "unmatched-ledger", c.unmatchedLedger, "balance movements naming no transfer")
	fs.IntVar(&c.onboardings, "onboardings", c.onboardings, "onboarding-token workflows (emails and phones for the PII scan)")
	fs.IntVar(&c.workers, "workers", c.workers, "worker processes kept running")
	fs.DurationVar(&c.killEvery, "kill-every", c.killEvery, "mean pause between worker SIGKILLs")
	fs.IntVar(&c.bridgeRestarts, "bridge-restarts", c.bridgeRestarts, "bridge restarts, alternating SIGKILL and SIGTERM")
	fs.IntVar(&c.outages, "outages", c.outages, "Temporal stops, alternating SIGTERM and SIGKILL, each restarted on the same data")
	fs.DurationVar(&c.outageFor, "outage-for", c.outageFor, "how long Temporal stays down each time")
	fs.IntVar(&c.sessionFaults, "session-faults", c.sessionFaults, "faults on session creation, cycling 500, 429+Retry-After, dropped connection")
	fs.Float64Var(&c.startRate, "start-rate", c.startRate, "transfers started per second")
	fs.IntVar(&c.concurrency, "concurrency", c.concurrency, "transfers driven at once")
	fs.DurationVar(&c.sessionExpiry, "session-expiry", c.sessionExpiry, "session window of the transfers meant to expire")
	fs.DurationVar(&c.ledgerHorizon, "ledger-horizon", c.ledgerHorizon, "how long the transfers meant to end unsettled wait for their ledger movement")
	fs.DurationVar(&c.settle, "settle", c.settle, "bound on the wait for every transfer to reach its state after the storm")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "bound on the whole run")
	fs.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "seed of the plan and the fault schedule (printed, to reproduce a run)")
	fs.StringVar(&c.dir, "dir", "", "run folder for binaries, data and logs (default: a new temporary folder, removed when every check passes)")
	fs.StringVar(&c.bin, "bin", "", "folder with prebuilt dev, worker, webhookbridge and sandbox binaries (default: build them)")
	fs.BoolVar(&c.keep, "keep", false, "keep the run folder even when every check passes")
	fs.StringVar(&c.topology, "topology", c.topology, "single: one Temporal server on SQLite; cluster: PostgreSQL, -nodes Temporal nodes behind a load balancer, one node SIGKILLed and one SIGTERMed mid-run")
	fs.IntVar(&c.nodes, "nodes", c.nodes, "Temporal nodes of the cluster topology")
	fs.IntVar(&c.historyShards, "history-shards", c.historyShards, "history shards of the cluster topology")
	fs.IntVar(&c.bridges, "bridges", c.bridges, "webhook bridges behind a balancer in the cluster topology")
	version := buildinfo.Flag(fs, os.Stdout)
	if err := fs.Parse(args); err != nil {
		return c, small, err
	}
	if err := version(); err != nil {
		return c, small, err // buildinfo.ErrVersion wraps flag.ErrHelp: exit 0
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if c.topology == topologyCluster && !explicit["workers"] {
		c.workers = clusterWorkers // the production shape runs more workers than the single server's default
	}
	if fs.NArg() > 0 {
		return c, small, fmt.Errorf("unexpected argument %q (every setting is a flag; see -h)", fs.Arg(0))
	}
	return c, small, c.validate()
}

func (c config) validate() error {
	var problems []error
	positive := func(name string, ok bool) {
		if !ok {
			problems = append(problems, fmt.Errorf("-%s: must be positive", name))
		}
	}
	positive("transfers", c.transfers > 0)
	positive("deliveries", c.deliveries > 0)
	positive("workers", c.workers > 0)
	positive("kill-every", c.killEvery > 0)
	positive("outage-for", c.outageFor > 0)
	positive("start-rate", c.startRate > 0)
	positive("concurrency", c.concurrency > 0)
	positive("session-expiry", c.sessionExpiry > 0)
	positive("ledger-horizon", c.ledgerHorizon > 0)
	positive("settle", c.settle > 0)
	positive("timeout", c.timeout > 0)
	for _, n := range []struct {
		name  string
		value int
	}{{"orphans", c.orphans}, {"unmatched-ledger", c.unmatchedLedger}, {"onboardings", c.onboardings},
		{"bridge-restarts", c.bridgeRestarts}, {"outages", c.outages}, {"session-faults", c.sessionFaults}} {
		if n.value < 0 {
			problems = append(problems, fmt.Errorf("-%s: must not be negative", n.name))
		}
	}
	if c.topology != topologySingle && c.topology != topologyCluster {
		problems = append(problems, fmt.Errorf("-topology: %q is not %s or %s", c.topology, topologySingle, topologyCluster))
	}
	if c.topology == topologyCluster && c.nodes < 2 {
		problems = append(problems, errors.New("-nodes: the cluster topology needs at least 2, so one can die"))
	}
	positive("history-shards", c.historyShards > 0)
	positive("bridges", c.bridges > 0)
	if c.outageFor <= 2*answerBound {
		problems = append(problems, fmt.Errorf("-outage-for: must be over %v, so some webhooks meet Temporal down for their whole request", 2*answerBound))
	}
	return errors.Join(problems...)
}
