package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// sandboxAttempts is the connecttest sandbox's default attempts per delivery (Redelivery.Attempts): a delivery
// with this many failed attempts has been given up.
const sandboxAttempts = 8

// maxSweeps bounds the rounds of replaying lives whose deliveries the sandbox gave up on.
const maxSweeps = 3

// suite runs the whole thing and returns the report; an error means the suite itself could not run.
func suite(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	started := time.Now()
	dir := cfg.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "connectflow-chaos-"); err != nil {
			return nil, err
		}
	}
	st, err := newStack(dir, cfg)
	if err != nil {
		return nil, err
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(progress, "chaos %6.1fs  %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	say("run folder %s, seed %d", dir, cfg.seed)
	rep := &report{cfg: cfg, dir: dir}
	defer func() {
		if err := st.stopAll(); err != nil {
			say("stopping: %v", err)
		}
		if err := st.closeCluster(); err != nil {
			say("stopping the cluster: %v", err)
		}
		rep.duration = time.Since(started)
		if !rep.failed() && !cfg.keep && cfg.dir == "" {
			if err := os.RemoveAll(dir); err != nil {
				say("remove %s: %v", dir, err)
			}
			rep.dir = ""
		}
	}()

	say("building %s", strings.Join(binaries, ", "))
	if err := st.build(ctx, cfg.bin); err != nil {
		return rep, err
	}
	sec := newSecretSet()
	for kind, v := range map[string]string{kindClientSecret: st.secrets.clientSecret, kindAPISecret: st.secrets.apiSecret,
		kindAPIKey: st.secrets.apiKey, kindPassphrase: st.secrets.passphrase, kindWebhookSecret: st.secrets.webhookSecret,
		kindCodecKey: st.secrets.codecKeys[strings.Index(st.secrets.codecKeys, ":")+1:]} {
		sec.add(kind, v)
	}

	say("starting %s, the sandbox, %d workers and %s", st.temporalDescription(), cfg.workers, st.bridgeDescription())
	if err := st.startTemporal(ctx); err != nil {
		return rep, err
	}
	if st.cluster != nil {
		sec.add(kindDatabasePassword, st.cluster.pgPassword)
	}
	if err := st.startSandbox(ctx); err != nil {
		return rep, err
	}
	// Workers reach the sandbox's Connect API through the tap, which keeps the tokens and JWTs it answers with.
	tp, err := startTap(strings.TrimSuffix(st.sandboxEnv["CONNECT_API_URL"], "/api/v1"), sec)
	if err != nil {
		return rep, err
	}
	defer tp.close()
	st.sandboxEnv["CONNECT_API_URL"] = tp.url + "/api/v1"
	plat, err := startPlatform(cfg.seed)
	if err != nil {
		return rep, err
	}
	defer plat.close()
	sec.add(kindPlatformSecret, plat.secret)
	st.platformEnv = plat.env()
	for range cfg.workers {
		w, err := st.startWorker(ctx)
		if err != nil {
			return rep, err
		}
		st.workers = append(st.workers, w)
	}
	if err := st.startBridge(ctx); err != nil {
		return rep, err
	}

	sdkLog, err := os.Create(filepath.Join(st.logDir, "chaos-client.log"))
	if err != nil {
		return rep, err
	}
	defer sdkLog.Close()
	opts := client.Options{HostPort: st.temporalAddr, Namespace: namespace,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewJSONHandler(sdkLog, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	keys, err := codec.ParseKeys(st.secrets.codecKeys)
	if err != nil {
		return rep, err
	}
	if err := codec.Apply(&opts, keys); err != nil { // the children encrypt: read their payloads the same way
		return rep, err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return rep, fmt.Errorf("dial Temporal: %w", err)
	}
	defer tc.Close()

	orphans, err := newOrphanClient(tp.url+"/api/v1", st.secrets.clientID, st.secrets.clientSecret,
		st.sandboxEnv["CONNECT_ORGANIZATION_ID"], st.sandboxURL)
	if err != nil {
		return rep, err
	}
	p := newPlan(cfg.seed, cfg)
	rep.plan = p
	sb := newSandboxAPI(st.sandboxURL)
	send := newSender("http://"+st.bridgeAddr, st.secrets.webhookSecret)
	send.ledger = sb
	d := newDriver(cfg, p, tc, sb, send, orphans, sec)
	s := newStorm(cfg, st, d, sb, send)

	say("storm: %d transfers (%d planned webhook deliveries), %d orphan sessions, %d unmatched movements, %d onboardings",
		len(p.Transfers), p.deliveries(), len(p.Orphans), len(p.Unmatched), len(p.Onboardings))
	driverDone := make(chan struct{})
	var storm sync.WaitGroup
	storm.Go(func() { s.run(ctx, driverDone) })
	atk, err := newAttacker("http://"+st.bridgeAddr, d, send, p)
	if err != nil {
		return rep, err
	}
	storm.Go(func() { atk.run(ctx, driverDone) })
	storm.Go(func() { plat.outage(ctx, cfg.outageFor, cfg.outageFor) }) // the platform is down for a while mid-run
	stopTicker := ticker(ctx, 10*time.Second, func() {
		counts, _, _, _ := s.snapshot()
		say("progress %3.0f%%: %d worker kills, %d bridge restarts, %d Temporal stops, %d session faults",
			100*d.progress(), counts[faultWorkerKill], counts[faultBridgeKill]+counts[faultBridgeTerm],
			counts[faultTemporalTerm]+counts[faultTemporalKill], counts[faultSession500]+counts[faultSession429]+counts[faultSessionDrop])
	})
	d.run(ctx)
	close(driverDone)
	storm.Wait()
	stopTicker()
	if ctx.Err() != nil {
		return rep, fmt.Errorf("storm interrupted: %w", ctx.Err())
	}
	say("storm over; waiting for every delivery to finish")
	if err := ensureUp(ctx, st, cfg); err != nil {
		return rep, err
	}

	settleCtx, cancel := context.WithTimeout(ctx, cfg.settle)
	defer cancel()
	sweeps, err := quiesce(settleCtx, sb, d, p, say)
	if err != nil {
		return rep, err
	}
	rep.sweeps = sweeps
	say("waiting for every transfer to reach its state")
	waitStates(settleCtx, tc, d, say)
	say("waiting for the platform to acknowledge every final outcome")
	if err := waitPlatform(settleCtx, tc, say); err != nil {
		return rep, err
	}

	say("collecting records")
	ev, err := collect(ctx, tc, sb, d, send, s, p)
	if err != nil {
		return rep, err
	}
	ev.platform, ev.platformRejected = plat.r.Ledger(), plat.r.Rejected()
	rep.platformApplied, rep.platformAttempts = len(ev.platform), plat.r.Attempts()
	rep.checks, rep.tally = verify(ev)
	rep.checks = append(rep.checks, atk.check())
	for _, line := range atk.summary() {
		say("attacker %s", line)
	}
	rep.counts, rep.outages, rep.unarmed, rep.stormProblems = s.snapshot()
	rep.handovers, rep.balancer = s.topologySnapshot()
	if bl := st.bridgeBalancerLine(); bl != "" {
		rep.balancer += "; " + bl
	}
	rep.stats = ev.stats
	rep.secretsKept = sec
	rep.driverProblems = append(rep.driverProblems, d.problems...)
	for _, r := range d.all() {
		for _, err := range []error{r.err, r.followUpErr} {
			if err != nil {
				rep.driverProblems = append(rep.driverProblems, err)
			}
		}
	}
	rep.startRetries = int(d.retries.Load())

	// Stop everything before scanning, so every log is complete.
	if err := st.stopAll(); err != nil {
		rep.stormProblems = append(rep.stormProblems, err)
	}
	rep.crashes = st.crashes()
	say("scanning %s for secrets and PII", st.logDir)
	rep.scan, err = scanLogs(st.logDir, sec.snapshot())
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// ticker calls f every d until the returned stop is called.
func ticker(ctx context.Context, d time.Duration, f func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sleep(ctx, d) {
			f()
		}
	}()
	return func() { cancel(); <-done }
}

// ensureUp leaves the stack as a fault-free deployment would be: every worker, the bridge and Temporal running.
func ensureUp(ctx context.Context, st *stack, cfg config) error {
	if st.temporalDown() {
		if err := st.startTemporal(ctx); err != nil {
			return err
		}
	}
	for i, w := range st.workers {
		if w.exited() {
			nw, err := st.startWorker(ctx)
			if err != nil {
				return err
			}
			st.workers[i] = nw
		}
	}
	if st.bridgeDown() {
		return st.startBridge(ctx)
	}
	return nil
}

// quiesce waits until the sandbox has sent every planned delivery and each is delivered or given up, and replays
// the lives whose deliveries were given up (Connect keeps redelivering; the sandbox stops after a few attempts).
func quiesce(ctx context.Context, sb *sandboxAPI, d *driver, p plan, say func(string, ...any)) (int, error) {
	sweeps := 0
	for round := 0; ; round++ {
		var dls []connecttest.Delivery
		for {
			var err error
			dls, err = sb.deliveries(ctx)
			if err != nil {
				return sweeps, err
			}
			if connectDeliveries(dls) >= expectedDeliveries(d, p, sweeps) && allFinished(dls) {
				break
			}
			if !sleep(ctx, time.Second) {
				return sweeps, fmt.Errorf("deliveries still in flight after the settle time: %d of %d sent", connectDeliveries(dls), expectedDeliveries(d, p, sweeps))
			}
		}
		given := givenUp(dls)
		if len(given) == 0 || round == maxSweeps {
			return sweeps, nil
		}
		say("the sandbox gave up on every copy of an event of %d lives; replaying them as Connect would redeliver", len(given))
		for session, outcome := range given {
			req := playRequest{Outcome: outcome}
			if err := retry(ctx, 10, func() error { return sb.play(ctx, session, req) }); err != nil {
				return sweeps, err
			}
			sweeps++
		}
	}
}

// expectedDeliveries is how many Connect deliveries the sandbox must have recorded: every play the driver made,
// every orphan life, and every sweep's replay.
func expectedDeliveries(d *driver, p plan, sweeps int) int {
	n := sweeps * lifeEvents
	for _, r := range d.all() {
		for _, pl := range r.plays {
			n += pl.copies()
		}
	}
	byRequest := map[string]playRequest{}
	for _, o := range p.Orphans {
		byRequest[o.RequestID] = o.Play
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, requestID := range d.orphanOf {
		n += byRequest[requestID].copies()
	}
	return n
}

func connectDeliveries(dls []connecttest.Delivery) int {
	n := 0
	for _, dl := range dls {
		if dl.PayloadType == connecttest.PayloadTypeDeposit || dl.PayloadType == connecttest.PayloadTypeWithdrawal {
			n++
		}
	}
	return n
}

func allFinished(dls []connecttest.Delivery) bool {
	for _, dl := range dls {
		if dl.Dropped {
			continue // a balance webhook dropped on purpose: never sent, and done
		}
		if !dl.Delivered && len(dl.Attempts) < sandboxAttempts {
			return false
		}
	}
	return true
}

// givenUp maps each session with an event no copy of which was delivered to the outcome that replays the event:
// the outcome named by a final event, else the life the session first played.
func givenUp(dls []connecttest.Delivery) map[string]connecttest.Outcome {
	first := map[string]connecttest.Outcome{}
	out := map[string]connecttest.Outcome{}
	ever := deliveredEvents(dls)
	for _, dl := range dls {
		if dl.PayloadType == zerohash.PayloadTypeBalanceChanged {
			continue // not a Connect life; a dropped balance webhook is read back by reconciliation
		}
		_, status := connect.NormalizeEventName(dl.Event)
		o := connecttest.Outcome(status)
		final := status != connect.StatusInitiated && status != connect.StatusBroadcasted
		if _, ok := first[dl.SessionID]; !ok && final {
			first[dl.SessionID] = o
		}
		if ever[sessionEvent{dl.SessionID, dl.Event}] {
			continue
		}
		if final {
			out[dl.SessionID] = o
		} else if _, ok := out[dl.SessionID]; !ok {
			out[dl.SessionID] = ""
		}
	}
	for s, o := range out {
		if o == "" {
			out[s] = first[s]
		}
	}
	return out
}

// waitStates waits until every transfer shows its expected status, or the settle time ends (the checks then
// name the ones that did not).
func waitStates(ctx context.Context, tc client.Client, d *driver, say func(string, ...any)) {
	pending := map[string]workflows.Status{}
	for _, r := range d.all() {
		if r.err == nil {
			pending[r.plan.workflowID()] = r.plan.Scenario.expected()
		}
	}
	last := time.Now()
	for len(pending) > 0 {
		for wid, want := range pending {
			a, _, err := describeTransfer(ctx, tc, wid)
			if err == nil && a.status == want {
				delete(pending, wid)
			}
		}
		if len(pending) == 0 || !sleep(ctx, time.Second) {
			return
		}
		if time.Since(last) > 15*time.Second {
			say("%d transfers not yet in their state", len(pending))
			last = time.Now()
		}
	}
}

// collect reads every record the checks need.
func collect(ctx context.Context, tc client.Client, sb *sandboxAPI, d *driver, send *sender, s *storm, p plan) (evidence, error) {
	ev := evidence{transfers: d.all(), records: map[string]transferRecord{}, missing: map[string]string{},
		reviews: map[string]workflows.ReviewState{}, posts: send.all(), unmatched: p.Unmatched,
		onboardings: len(p.Onboardings)}
	d.mu.Lock()
	ev.orphanOf = make(map[string]string, len(d.orphanOf))
	for k, v := range d.orphanOf {
		ev.orphanOf[k] = v
	}
	ev.onboarded = d.onboards
	d.mu.Unlock()
	_, ev.outages, _, _ = s.snapshot()
	var err error
	if ev.sessions, err = sb.sessions(ctx); err != nil {
		return ev, err
	}
	if ev.stats, err = sb.stats(ctx); err != nil {
		return ev, err
	}
	if ev.deliveries, err = sb.deliveries(ctx); err != nil {
		return ev, err
	}
	// The sandbox's own balance webhooks are the dropped ones (the suite sends the others itself): not Connect
	// deliveries, and checked through reconciliation instead.
	ev.deliveries = slices.DeleteFunc(ev.deliveries, func(dl connecttest.Delivery) bool {
		return dl.PayloadType == zerohash.PayloadTypeBalanceChanged
	})
	ev.dropped = send.droppedMovements()

	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, r := range ev.transfers {
		if r.err != nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rec, err := readTransfer(ctx, tc, r.plan.workflowID())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ev.missing[r.plan.workflowID()] = err.Error()
				return
			}
			ev.records[r.plan.workflowID()] = rec
		})
	}
	ids, err := listReviews(ctx, tc)
	if err != nil {
		return ev, err
	}
	var reviewErrs []error
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rv, err := readReview(ctx, tc, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				reviewErrs = append(reviewErrs, err)
				return
			}
			ev.reviews[id] = rv
		})
	}
	wg.Wait()
	return ev, errors.Join(reviewErrs...)
}

// readTransfer reads a closed transfer's result, or queries a running one's state.
func readTransfer(ctx context.Context, tc client.Client, wid string) (transferRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, running, err := describeTransfer(ctx, tc, wid)
	if err != nil {
		return transferRecord{}, err
	}
	if !running {
		var res workflows.TransferResult
		if err := tc.GetWorkflow(ctx, wid, "").Get(ctx, &res); err != nil {
			return transferRecord{}, fmt.Errorf("result of %s: %w", wid, err)
		}
		return transferRecord{status: res.Status, sessionID: res.SessionID, connectID: res.ConnectTransferID,
			ledger: res.Ledger, events: res.Events}, nil
	}
	v, err := tc.QueryWorkflow(ctx, wid, "", workflows.QueryState)
	if err != nil {
		return transferRecord{}, fmt.Errorf("query %s: %w", wid, err)
	}
	var st workflows.TransferState
	if err := v.Get(&st); err != nil {
		return transferRecord{}, err
	}
	rec := transferRecord{running: true, status: st.Status, connectID: st.ConnectTransferID, ledger: st.Ledger, events: st.Events}
	if st.Session != nil {
		rec.sessionID = st.Session.SessionID
	}
	return rec, nil
}

// listReviews lists every review workflow through visibility.
func listReviews(ctx context.Context, tc client.Client) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace,
			Query: "WorkflowType = 'ReviewWorkflow'", NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, fmt.Errorf("list reviews: %w", err)
		}
		for _, ex := range resp.GetExecutions() {
			ids = append(ids, ex.GetExecution().GetWorkflowId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

func readReview(ctx context.Context, tc client.Client, id string) (workflows.ReviewState, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := tc.QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err != nil {
		return workflows.ReviewState{}, fmt.Errorf("query %s: %w", id, err)
	}
	var st workflows.ReviewState
	return st, v.Get(&st)
}
