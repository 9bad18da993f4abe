package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/connectflow/connectflow/connecttest"
)

// report is the run's result: the outcome checks, the faults injected, the traffic, and every problem.
type report struct {
	cfg      config
	dir      string
	duration time.Duration
	plan     plan

	checks       []*check
	tally        tally
	counts       map[string]int
	outages      []outage
	unarmed      int
	sweeps       int
	startRetries int
	// platformApplied and platformAttempts: notifications the chaos platform applied, and deliveries it saw.
	platformApplied, platformAttempts int
	stats                             connecttest.Stats
	secretsKept                       *secretSet
	scan                              scanResult
	crashes                           []string
	stormProblems                     []error
	driverProblems                    []error
	handovers                         []handover // cluster topology only
	balancer                          string     // cluster topology: how the balancer spread connections
}

// all is every check row, the process and scan ones included.
func (r *report) all() []*check {
	out := append([]*check(nil), r.checks...)
	leaks := &check{name: checkLeaks, examined: r.scan.lines}
	for _, f := range r.scan.findings {
		leaks.fail("%s", f)
	}
	crashes := &check{name: checkCrashes}
	for _, c := range r.crashes {
		crashes.fail("%s", c)
	}
	notInjected := &check{name: checkNotInjected}
	for _, want := range r.plannedFaults() {
		notInjected.examined++
		if r.counts[want] == 0 {
			notInjected.fail("%s: planned, never injected", want)
		}
	}
	if r.unarmed > 0 {
		notInjected.fail("%d session faults armed but never hit: no session request came", r.unarmed)
	}
	for _, err := range r.stormProblems {
		notInjected.fail("%v", err)
	}
	driverErrors := &check{name: checkDriverErrors}
	for _, err := range r.driverProblems {
		driverErrors.fail("%v", err)
	}
	return append(out, leaks, crashes, notInjected, driverErrors)
}

// plannedFaults are the faults the configuration asks for at least once.
func (r *report) plannedFaults() []string {
	c := r.cfg
	var out []string
	add := func(ok bool, f string) {
		if ok {
			out = append(out, f)
		}
	}
	add(true, faultWorkerKill)
	add(c.bridgeRestarts >= 1, faultBridgeKill)
	add(c.bridgeRestarts >= 2, faultBridgeTerm)
	add(c.outages >= 1, faultTemporalTerm)
	add(c.outages >= 2, faultTemporalKill)
	add(c.topology == topologyCluster, faultNodeKill)
	add(c.topology == topologyCluster && c.nodes >= 2, faultNodeTerm)
	add(c.topology == topologyCluster, faultNodeRestart)
	for i, k := range sessionFaultKinds {
		add(c.sessionFaults > i, k.name)
	}
	return out
}

func (r *report) failed() bool {
	for _, c := range r.all() {
		if c.failures > 0 {
			return true
		}
	}
	return r.checks == nil
}

// print writes the tables docs/reliability.md shows, and the first failures of every failed check.
func (r *report) print(w io.Writer) {
	size := fmt.Sprintf("-transfers %d -deliveries %d", r.cfg.transfers, r.cfg.deliveries)
	fmt.Fprintf(w, "\n## connectflow chaos run (seed %d, %s, %s)\n\n", r.cfg.seed, size, r.duration.Round(time.Second))
	if r.checks != nil {
		fmt.Fprintln(w, "| outcome | examined | failures |")
		fmt.Fprintln(w, "| --- | ---: | ---: |")
		for _, c := range r.all() {
			fmt.Fprintf(w, "| %s | %d | **%d** |\n", c.name, c.examined, c.failures)
		}
	}
	fmt.Fprintln(w, "\n| fault injected | count |")
	fmt.Fprintln(w, "| --- | ---: |")
	for _, f := range faultOrder {
		fmt.Fprintf(w, "| %s | %d |\n", f, r.counts[f])
	}
	if r.cfg.topology == topologyCluster {
		for _, f := range []string{faultNodeKill, faultNodeTerm, faultNodeRestart} {
			fmt.Fprintf(w, "| %s | %d |\n", f, r.counts[f])
		}
	}
	for _, o := range r.outages {
		fmt.Fprintf(w, "| Temporal down (%s) | %v |\n", o.How, o.Up.Sub(o.Down).Round(100*time.Millisecond))
	}
	t := r.tally
	fmt.Fprintf(w, "| webhook requests answered 503 while Temporal was down (probes: %d) | %d |\n", t.probes, t.answered503InOutage)
	fmt.Fprintf(w, "| webhook redelivery attempts by the sandbox | %d |\n", t.redeliveries)
	fmt.Fprintf(w, "| deliveries the sandbox gave up on after %d attempts | %d |\n", sandboxAttempts, t.givenUp)
	fmt.Fprintf(w, "| lives replayed for them, as Connect keeps redelivering | %d |\n", r.sweeps)
	fmt.Fprintf(w, "| transfer starts retried | %d |\n", r.startRetries)
	fmt.Fprintf(w, "| platform notifications applied / delivery attempts (%.0f%% failed at random, down %s mid-run) | %d / %d |\n",
		100*platformFailShare, r.cfg.outageFor, r.platformApplied, r.platformAttempts)

	r.printTopology(w)
	fmt.Fprintln(w, "\n| traffic | count |")
	fmt.Fprintln(w, "| --- | ---: |")
	scen := make([]string, 0, numScenarios)
	byScenario := map[scenario]int{}
	late := 0
	for _, tp := range r.plan.Transfers {
		byScenario[tp.Scenario]++
		if tp.Play.Late {
			late += lifeEvents
		}
	}
	for s := range numScenarios {
		scen = append(scen, fmt.Sprintf("%s %d", s, byScenario[s]))
	}
	fmt.Fprintf(w, "| transfers (%s) | %d |\n", strings.Join(scen, ", "), len(r.plan.Transfers))
	fmt.Fprintf(w, "| Connect webhook deliveries | %d |\n", t.deliveries)
	if t.deliveries > 0 {
		fmt.Fprintf(w, "| of which copies of an event already sent (duplicates, late replays) | %d (%.0f%%) |\n", t.copies, 100*float64(t.copies)/float64(t.deliveries))
	}
	fmt.Fprintf(w, "| of which late replays after the life's last event | %d |\n", late)
	fmt.Fprintf(w, "| distinct events | %d |\n", t.distinct)
	fmt.Fprintf(w, "| delivery attempts (redeliveries included) | %d |\n", t.attempts)
	for _, o := range sortedKeys(t.byOutcome) {
		fmt.Fprintf(w, "| 2xx answers: %s | %d |\n", o, t.byOutcome[o])
	}
	fmt.Fprintf(w, "| duplicates absorbed by transfer workflows | %d |\n", t.duplicatesAbsorbed)
	fmt.Fprintf(w, "| SDK callbacks relayed / balance webhooks sent | %d / %d |\n", t.sdkPosts, t.ledgerPosts)
	fmt.Fprintf(w, "| balance webhooks dropped during bridge outages / transfers settled through reconciliation | %d / %d |\n",
		t.ledgerDropped, t.ledgerReconciled)
	fmt.Fprintf(w, "| orphan sessions / unmatched movements / onboardings | %d / %d / %d |\n",
		len(r.plan.Orphans), len(r.plan.Unmatched), len(r.plan.Onboardings))
	fmt.Fprintf(w, "| sessions the sandbox opened | %d |\n", r.stats.SessionsCreated)
	fmt.Fprintf(w, "| session requests beyond one per session (faulted, or retried with the same request_id) | %d |\n",
		r.stats.Requests[connecttest.EndpointSessions]-r.stats.SessionsCreated)
	if r.secretsKept != nil {
		fmt.Fprintf(w, "| log lines scanned (%d files) for %d secret values, JWTs, emails, bearer credentials | %d |\n",
			r.scan.files, len(r.secretsKept.snapshot()), r.scan.lines)
	}

	for _, c := range r.all() {
		if c.failures == 0 {
			continue
		}
		fmt.Fprintf(w, "\nFAILED: %s (%d):\n", c.name, c.failures)
		for _, d := range c.details {
			fmt.Fprintf(w, "  - %s\n", d)
		}
	}
	if r.dir != "" {
		fmt.Fprintf(w, "\nRun folder (binaries, Temporal data, every process's log): %s\n", r.dir)
	}
}
