package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// Topologies the suite runs Temporal in.
const (
	// topologySingle is one dev -server-only process on SQLite.
	topologySingle = "single"
	// topologyCluster is the production shape: PostgreSQL (a throwaway cluster from deploy/postgres), several
	// dev -server-only -postgres nodes forming one Temporal cluster through the database, and every client
	// (workers, bridge, the suite) reaching them through one loopback load balancer.
	topologyCluster = "cluster"
)

// Node faults, injected only in the cluster topology.
const (
	faultNodeKill    = "Temporal node SIGKILL (the others take its shards; restarted later)"
	faultNodeTerm    = "Temporal node SIGTERM (the others take its shards; restarted later)"
	faultNodeRestart = "Temporal node restarted (rejoins and takes shards back)"
)

// postgresScript runs the throwaway PostgreSQL cluster; it installs Debian's package when missing.
const postgresScript = "deploy/postgres/throwaway.sh"

// handoverProbes is how many workflow ids the handover measurement describes: each maps to one history shard,
// and so many cover every shard of a 16-shard cluster with near certainty.
const handoverProbes = 256

// handoverBound bounds the wait for the cluster to serve every shard again after a node fault.
const handoverBound = 3 * time.Minute

// cluster is the cluster topology's parts: PostgreSQL, the nodes and the balancer in front of them.
type cluster struct {
	pgDir, dsn, pgPassword string
	script                 string
	nodeAddrs              []string
	nodes                  []*proc
	lb                     *balancer
	namespaceReady         bool // the first node has created the namespace and search attributes
	// The bridges behind their own balancer: Connect's webhooks reach them through one public address.
	bridgeAddrs []string
	bridges     []*proc
	bridgeLB    *balancer
}

// handover is one measured handover of shards after a node fault.
type handover struct {
	How      string        // the fault, e.g. "node-2 SIGKILL"
	Took     time.Duration // from the fault until every probed shard answered again
	Baseline time.Duration // one sweep of every probe before the fault, for scale
	Shards   string        // what the measurement covered
	Err      error
}

// startPostgres starts the throwaway PostgreSQL cluster in a folder of its own under the system's temporary
// folder (as root the cluster runs as nobody, who cannot enter the run folder) and keeps its DSN.
func (s *stack) startPostgres(ctx context.Context) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	s.cluster.script = filepath.Join(root, postgresScript)
	if s.cluster.pgDir == "" {
		if s.cluster.pgDir, err = os.MkdirTemp("", "connectflow-chaos-pg-"); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, s.cluster.script, "start", s.cluster.pgDir)
	stderr, err := os.Create(filepath.Join(s.logDir, "postgres-setup.stderr"))
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s start: %w (see %s)", postgresScript, err, stderr.Name())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	s.cluster.dsn = lines[len(lines)-1]
	if !strings.HasPrefix(s.cluster.dsn, "postgres://") {
		return fmt.Errorf("%s start printed no DSN", postgresScript)
	}
	pw, err := os.ReadFile(filepath.Join(s.cluster.pgDir, "password"))
	if err != nil {
		return err
	}
	s.cluster.pgPassword = strings.TrimSpace(string(pw))
	return nil
}

// removePostgres stops the PostgreSQL cluster and deletes its folder.
func (s *stack) removePostgres() error {
	if s.cluster == nil || s.cluster.pgDir == "" || s.cluster.script == "" {
		return nil
	}
	cmd := exec.Command(s.cluster.script, "remove", s.cluster.pgDir)
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s remove %s: %w", postgresScript, s.cluster.pgDir, err)
	}
	return nil
}

// startCluster brings up PostgreSQL, the balancer and every node not running. On the first start one node
// creates the namespace and search attributes before the others join; later starts run in parallel.
func (s *stack) startCluster(ctx context.Context) error {
	c := s.cluster
	if c.dsn == "" {
		if err := s.startPostgres(ctx); err != nil {
			return err
		}
	}
	if c.nodeAddrs == nil {
		addrs, lb, err := balanced(s.cfg.nodes)
		if err != nil {
			return err
		}
		c.nodeAddrs, c.nodes, c.lb = addrs, make([]*proc, len(addrs)), lb
		s.temporalAddr = lb.addr()
	}
	if !c.namespaceReady {
		if err := s.startNode(ctx, 0); err != nil {
			return err
		}
		c.namespaceReady = true
	}
	return s.startStopped(ctx, c.nodes, s.startNode)
}

// startStopped starts, at once, every process of procs that is not running, with start(ctx, its index), and
// returns every error. procs is read under s.mu: start stores the new process in it.
func (s *stack) startStopped(ctx context.Context, procs []*proc, start func(context.Context, int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i := range procs {
		s.mu.Lock()
		running := procs[i] != nil && !procs[i].exited()
		s.mu.Unlock()
		if !running {
			wg.Go(func() { errs[i] = start(ctx, i) })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startNode runs node i (dev -server-only -postgres) on its own frontend port and waits until it is ready.
func (s *stack) startNode(ctx context.Context, i int) error {
	c := s.cluster
	_, port, _ := net.SplitHostPort(c.nodeAddrs[i])
	p, err := s.start("dev", []string{"-server-only", "-postgres", c.dsn, "-history-shards", strconv.Itoa(s.cfg.historyShards),
		"-ip", "127.0.0.1", "-temporal-port", port, "-ui-port", "0", "-codec-port", "0", "-server-log-level", "warn", "-log-level", "info"}, nil)
	if err != nil {
		return err
	}
	if _, err := p.waitLine(ctx, "Ready.", startTimeout); err != nil {
		_ = p.stop(syscall.SIGKILL, stopGrace)
		return err
	}
	s.mu.Lock()
	c.nodes[i] = p
	s.mu.Unlock()
	return nil
}

// temporalProcs is every running Temporal process: the one server, or every cluster node.
func (s *stack) temporalProcs() []*proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster == nil {
		return []*proc{s.temporal}
	}
	var out []*proc
	for _, p := range s.cluster.nodes {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// temporalDown reports whether any Temporal process is not running.
func (s *stack) temporalDown() bool {
	if s.cluster != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.cluster.nodes {
			if p == nil || p.exited() {
				return true
			}
		}
		return false
	}
	return s.temporal.exited()
}

// stopTemporal stops all of Temporal with sig: the server, or every node at once (a whole-cluster outage).
func (s *stack) stopTemporal(sig syscall.Signal) error {
	procs := s.temporalProcs()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.stop(sig, stopGrace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// nodeSchedule adds the cluster's node faults to the storm: a node SIGKILLed, and later restarted; then another
// SIGTERMed, and later restarted. Each fault measures how long the others take to serve its shards.
func (s *storm) nodeSchedule() []scheduled {
	if s.st.cluster == nil || s.cfg.nodes < 2 {
		return nil
	}
	killed, termed := 1, 2%s.cfg.nodes
	return []scheduled{
		{at: 0.30, run: func(ctx context.Context) { s.nodeFault(ctx, killed, syscall.SIGKILL) }},
		{at: 0.45, run: func(ctx context.Context) { s.restartNode(ctx, killed) }},
		{at: 0.70, run: func(ctx context.Context) { s.nodeFault(ctx, termed, syscall.SIGTERM) }},
		{at: 0.85, run: func(ctx context.Context) { s.restartNode(ctx, termed) }},
	}
}

// nodeFault stops node i with sig and measures the handover of its shards.
func (s *storm) nodeFault(ctx context.Context, i int, sig syscall.Signal) {
	s.st.mu.Lock()
	p := s.st.cluster.nodes[i]
	s.st.mu.Unlock()
	if p == nil || p.exited() {
		s.problem(fmt.Errorf("node %d was not running when its %s was due", i+1, sig))
		return
	}
	baseline, _ := s.sweepShards(ctx, time.Minute) // every shard answers before the fault
	at := time.Now()
	if err := p.stop(sig, stopGrace); err != nil {
		s.problem(err)
	}
	if sig == syscall.SIGKILL {
		s.count(faultNodeKill, 1)
	} else {
		s.count(faultNodeTerm, 1)
	}
	h := handover{How: fmt.Sprintf("node %d (%s) %s", i+1, p.name, sig), Baseline: baseline,
		Shards: fmt.Sprintf("%d workflow ids over %d shards", handoverProbes, s.cfg.historyShards)}
	_, h.Err = s.sweepShards(ctx, handoverBound)
	h.Took = time.Since(at)
	if h.Err != nil {
		s.problem(fmt.Errorf("after %s: %w", h.How, h.Err))
	}
	s.mu.Lock()
	s.handovers = append(s.handovers, h)
	s.mu.Unlock()
}

// restartNode starts node i again (unless an outage's restart already did) and measures until every shard
// answers with it back in the ring.
func (s *storm) restartNode(ctx context.Context, i int) {
	s.st.mu.Lock()
	p := s.st.cluster.nodes[i]
	s.st.mu.Unlock()
	if p != nil && !p.exited() {
		s.count(faultNodeRestart, 1) // a whole-cluster outage restarted it already
		return
	}
	at := time.Now()
	if err := retry(ctx, 5, func() error { return s.st.startNode(ctx, i) }); err != nil {
		s.problem(fmt.Errorf("restart node %d: %w", i+1, err))
		return
	}
	s.count(faultNodeRestart, 1)
	h := handover{How: fmt.Sprintf("node %d restarted, rejoins", i+1),
		Shards: fmt.Sprintf("%d workflow ids over %d shards", handoverProbes, s.cfg.historyShards)}
	_, h.Err = s.sweepShards(ctx, handoverBound)
	h.Took = time.Since(at)
	if h.Err != nil {
		s.problem(fmt.Errorf("after %s: %w", h.How, h.Err))
	}
	s.mu.Lock()
	s.handovers = append(s.handovers, h)
	s.mu.Unlock()
}

// sweepShards describes handoverProbes workflow ids until each has been answered by its shard's owner at least
// once since the sweep began (not found is such an answer: the owner looked); it returns how long that took.
// The ids name no workflow, so the sweep changes nothing.
func (s *storm) sweepShards(ctx context.Context, bound time.Duration) (time.Duration, error) {
	tc := s.driver.tc
	return sweepProbes(ctx, handoverProbes, bound, func(ctx context.Context, i int) error { return describeProbe(ctx, tc, i) })
}

// sweepProbes calls probe for each of 0..n-1, 16 at a time, again and again (every 100ms) for those that failed,
// until each has succeeded once or bound has passed; it returns how long that took and, on timeout, the last error.
func sweepProbes(ctx context.Context, n int, bound time.Duration, probe func(ctx context.Context, i int) error) (time.Duration, error) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	pending := make(map[int]bool, n)
	for i := range n {
		pending[i] = true
	}
	var last error
	for {
		// The round's ids are taken before any probe runs: its goroutines delete from pending as they answer.
		round := make([]int, 0, len(pending))
		for i := range pending {
			round = append(round, i)
		}
		slices.Sort(round)
		var mu sync.Mutex
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, i := range round {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := probe(ctx, i)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					delete(pending, i)
				} else {
					last = err
				}
			})
		}
		wg.Wait()
		if len(pending) == 0 {
			return time.Since(started), nil
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return time.Since(started), fmt.Errorf("%d of %d shard probes unanswered after %v: %w", len(pending), n, bound, last)
		}
	}
}

// describeProbe asks the owner of probe i's shard about a workflow that does not exist; nil when it answered.
func describeProbe(ctx context.Context, tc client.Client, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := tc.WorkflowService().DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
		Namespace: namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: fmt.Sprintf("chaos-shard-probe-%d", i)}})
	var nf *serviceerror.NotFound
	if err == nil || errors.As(err, &nf) {
		return nil
	}
	return err
}

// printTopology writes the cluster's rows: the topology, each handover measured, and the balancer's spread.
func (r *report) printTopology(w io.Writer) {
	if r.cfg.topology != topologyCluster {
		return
	}
	fmt.Fprintf(w, "\n| cluster (PostgreSQL, %d nodes, %d history shards, clients through one balancer) | time |\n",
		r.cfg.nodes, r.cfg.historyShards)
	fmt.Fprintln(w, "| --- | ---: |")
	for _, h := range r.handovers {
		status := ""
		if h.Err != nil {
			status = " (**not complete**)"
		}
		scale := ""
		if h.Baseline > 0 {
			scale = fmt.Sprintf("; one sweep before the fault took %v", h.Baseline.Round(10*time.Millisecond))
		}
		fmt.Fprintf(w, "| %s: every shard served again (%s%s)%s | %v |\n",
			h.How, h.Shards, scale, status, h.Took.Round(100*time.Millisecond))
	}
	if r.balancer != "" {
		fmt.Fprintf(w, "| balancer: %s | |\n", r.balancer)
	}
}

// temporalDescription names what runs Temporal in this topology, for the progress lines.
func (s *stack) temporalDescription() string {
	if s.cluster == nil {
		return "Temporal (dev -server-only)"
	}
	return fmt.Sprintf("PostgreSQL (%s), %d Temporal nodes (dev -server-only -postgres, %d history shards) behind a balancer",
		postgresScript, s.cfg.nodes, s.cfg.historyShards)
}

// closeCluster closes the balancer and removes PostgreSQL, after stopAll has stopped the nodes.
func (s *stack) closeCluster() error {
	if s.cluster == nil {
		return nil
	}
	for _, lb := range []*balancer{s.cluster.lb, s.cluster.bridgeLB} {
		if lb != nil {
			lb.close()
		}
	}
	return s.removePostgres()
}

// topologySnapshot returns the handovers measured and a line on how the balancer spread connections.
func (s *storm) topologySnapshot() ([]handover, string) {
	s.mu.Lock()
	hs := slices.Clone(s.handovers)
	s.mu.Unlock()
	if s.st.cluster == nil || s.st.cluster.lb == nil {
		return hs, ""
	}
	dialed, refused, dropped := s.st.cluster.lb.stats()
	parts := make([]string, 0, len(s.st.cluster.nodeAddrs))
	for i, addr := range s.st.cluster.nodeAddrs {
		parts = append(parts, fmt.Sprintf("node %d %d", i+1, dialed[addr]))
	}
	return hs, fmt.Sprintf("connections per node: %s; dials refused by a down node %d; connections dropped with every node down %d",
		strings.Join(parts, ", "), refused, dropped)
}

// clusterWorkers is the cluster topology's default worker count.
const clusterWorkers = 3

// startBridgeBalancer puts a balancer in front of the cluster topology's bridges; Connect (the sandbox) and the
// suite's own requests post to it, and every bridge's BRIDGE_PUBLIC_URL names it, as behind a real one.
func (s *stack) startBridgeBalancer() error {
	c := s.cluster
	if c.bridgeLB != nil {
		return nil
	}
	addrs, lb, err := balanced(s.cfg.bridges)
	if err != nil {
		return err
	}
	c.bridgeAddrs, c.bridges, c.bridgeLB = addrs, make([]*proc, len(addrs)), lb
	s.bridgeAddr = lb.addr()
	return nil
}

// balanced picks n free loopback addresses for n processes and starts a balancer in front of them.
func balanced(n int) ([]string, *balancer, error) {
	addrs := make([]string, 0, n)
	for range n {
		addr, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		addrs = append(addrs, addr)
	}
	lb, err := startBalancer(addrs)
	if err != nil {
		return nil, nil, err
	}
	return addrs, lb, nil
}

// startBridges starts every bridge behind the balancer that is not running.
func (s *stack) startBridges(ctx context.Context) error {
	return s.startStopped(ctx, s.cluster.bridges, s.startBridgeAt)
}

func (s *stack) startBridgeAt(ctx context.Context, i int) error {
	p, err := s.launchBridge(ctx, s.cluster.bridgeAddrs[i])
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cluster.bridges[i] = p
	s.mu.Unlock()
	return nil
}

// bridgeDown reports whether any bridge is not running.
func (s *stack) bridgeDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster == nil {
		return s.bridge.exited()
	}
	for _, p := range s.cluster.bridges {
		if p == nil || p.exited() {
			return true
		}
	}
	return false
}

// restartClusterBridge stops one bridge behind the balancer with sig, in turn, while the others keep serving,
// and starts it again on its port.
func (s *storm) restartClusterBridge(ctx context.Context, sig syscall.Signal) {
	c := s.st.cluster
	s.mu.Lock()
	i := (s.counts[faultBridgeKill] + s.counts[faultBridgeTerm]) % len(c.bridges)
	s.mu.Unlock()
	s.st.mu.Lock()
	b := c.bridges[i]
	s.st.mu.Unlock()
	if err := b.stop(sig, stopGrace); err != nil {
		s.problem(err)
	}
	if sig == syscall.SIGKILL {
		s.count(faultBridgeKill, 1)
	} else {
		s.count(faultBridgeTerm, 1)
	}
	if err := retry(ctx, 10, func() error { return s.st.startBridgeAt(ctx, i) }); err != nil {
		s.problem(fmt.Errorf("restart bridge %d: %w", i+1, err))
	}
}

// bridgeBalancerLine says how the bridges' balancer spread connections, or nothing outside the cluster topology.
func (s *stack) bridgeBalancerLine() string {
	if s.cluster == nil || s.cluster.bridgeLB == nil {
		return ""
	}
	dialed, refused, dropped := s.cluster.bridgeLB.stats()
	parts := make([]string, 0, len(s.cluster.bridgeAddrs))
	for i, addr := range s.cluster.bridgeAddrs {
		parts = append(parts, fmt.Sprintf("bridge %d %d", i+1, dialed[addr]))
	}
	return fmt.Sprintf("webhook connections per bridge: %s; refused by a restarting bridge %d; dropped %d",
		strings.Join(parts, ", "), refused, dropped)
}

// bridgeDescription names the bridges of this topology, for the progress lines.
func (s *stack) bridgeDescription() string {
	if s.cluster == nil {
		return "the bridge"
	}
	return fmt.Sprintf("%d bridges behind a balancer", s.cfg.bridges)
}
