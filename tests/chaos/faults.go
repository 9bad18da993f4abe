package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/zerohash"
)

// Faults the storm injects; the names are the report's rows.
const (
	faultWorkerKill   = "worker SIGKILL (and a new worker started)"
	faultBridgeKill   = "bridge SIGKILL (restarted on the same port)"
	faultBridgeTerm   = "bridge SIGTERM: graceful drain (restarted)"
	faultTemporalTerm = "Temporal server SIGTERM (restarted on the same data)"
	faultTemporalKill = "Temporal server SIGKILL (restarted on the same data)"
	faultSession500   = "session creation answered 500"
	faultSession429   = "session creation answered 429 with Retry-After"
	faultSessionDrop  = "session creation connection dropped"
)

var faultOrder = []string{faultWorkerKill, faultBridgeKill, faultBridgeTerm, faultTemporalTerm, faultTemporalKill,
	faultSession500, faultSession429, faultSessionDrop}

// outage is a time Temporal was down: from its process's exit until its restart began.
type outage struct {
	Down, Up time.Time
	How      string
}

// storm injects the faults while the driver runs and keeps count of each.
type storm struct {
	cfg     config
	st      *stack
	driver  *driver
	sandbox *sandboxAPI
	send    *sender
	rng     *rand.Rand // only the storm's own goroutines draw from it, under mu

	// temporalMu: an outage holds it; a worker restart, which must reach Temporal to start, reads it.
	temporalMu sync.RWMutex

	mu       sync.Mutex
	counts   map[string]int
	outages  []outage
	unarmed  int // session faults armed that no session request consumed
	problems []error
}

func newStorm(cfg config, st *stack, d *driver, sb *sandboxAPI, send *sender) *storm {
	return &storm{cfg: cfg, st: st, driver: d, sandbox: sb, send: send, counts: map[string]int{},
		rng: rand.New(rand.NewPCG(cfg.seed^0x51ed270b, cfg.seed))}
}

func (s *storm) count(fault string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[fault] += n
}

func (s *storm) problem(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, err)
}

func (s *storm) draw(f func(*rand.Rand) int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s.rng)
}

// scheduled is a fault that runs once the driver's progress reaches at.
type scheduled struct {
	at  float64
	run func(ctx context.Context)
}

// run injects faults until the driver is done and every scheduled fault has run, then leaves every part up.
func (s *storm) run(ctx context.Context, driverDone <-chan struct{}) {
	stopKills := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.killWorkers(ctx, stopKills) })
	wg.Go(func() { s.runSchedule(ctx, s.processSchedule()) })
	wg.Go(func() { s.runSchedule(ctx, s.sessionSchedule()) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-driverDone
	}()
	// Worker kills go on until the driver is done; the schedules end by themselves.
	select {
	case <-done:
	case <-ctx.Done():
	}
	close(stopKills)
	wg.Wait()
	if err := s.sandbox.clearFaults(context.Background()); err != nil {
		s.problem(err)
	}
}

// processSchedule spreads the bridge restarts and Temporal outages over the run, alternating how each stops.
func (s *storm) processSchedule() []scheduled {
	var out []scheduled
	for i := range s.cfg.bridgeRestarts {
		sig := syscall.SIGKILL
		if i%2 == 1 {
			sig = syscall.SIGTERM
		}
		out = append(out, scheduled{at: float64(i+1) / float64(s.cfg.bridgeRestarts+1), run: func(ctx context.Context) {
			s.restartBridge(ctx, sig)
		}})
	}
	for i := range s.cfg.outages {
		sig := syscall.SIGTERM
		if i%2 == 1 {
			sig = syscall.SIGKILL
		}
		at := (float64(i) + 0.6) / float64(s.cfg.outages+1)
		out = append(out, scheduled{at: at, run: func(ctx context.Context) { s.stopTemporal(ctx, sig) }})
	}
	slices.SortStableFunc(out, func(a, b scheduled) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	return out
}

// sessionSchedule arms the session-creation faults at random points of the first 80% of the run, one in each
// equal slice; the first of each kind comes first, then the kinds are drawn at random.
func (s *storm) sessionSchedule() []scheduled {
	var out []scheduled
	n := s.cfg.sessionFaults
	for i := range n {
		kind := i
		if i >= len(sessionFaultKinds) {
			kind = s.draw(func(r *rand.Rand) int { return r.IntN(len(sessionFaultKinds)) })
		}
		at := 0.8 * (float64(i) + float64(s.draw(func(r *rand.Rand) int { return r.IntN(1000) }))/1000) / float64(n)
		out = append(out, scheduled{at: at, run: func(ctx context.Context) { s.failSessions(ctx, kind) }})
	}
	return out
}

func (s *storm) runSchedule(ctx context.Context, list []scheduled) {
	for _, f := range list {
		if !s.driver.waitProgress(ctx, f.at) {
			return
		}
		f.run(ctx)
	}
}

// killWorkers SIGKILLs a random worker every few seconds and starts a new one in its place.
func (s *storm) killWorkers(ctx context.Context, stop <-chan struct{}) {
	for {
		pause := time.Duration(float64(s.cfg.killEvery) * (0.5 + float64(s.draw(func(r *rand.Rand) int { return r.IntN(1000) }))/1000))
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		s.temporalMu.RLock()
		s.st.mu.Lock()
		i := s.draw(func(r *rand.Rand) int { return r.IntN(len(s.st.workers)) })
		victim := s.st.workers[i]
		s.st.mu.Unlock()
		if !victim.exited() { // one that died by itself is no kill of ours: the exit audit reports it
			if err := victim.signal(syscall.SIGKILL); err != nil {
				s.problem(err)
			}
			<-victim.done
			s.count(faultWorkerKill, 1)
		}
		s.replaceWorker(ctx, i)
		s.temporalMu.RUnlock()
	}
}

// replaceWorker starts a new worker in slot i, retrying while the start fails.
func (s *storm) replaceWorker(ctx context.Context, i int) {
	err := retry(ctx, 30, func() error {
		w, err := s.st.startWorker(ctx)
		if err != nil {
			return err
		}
		s.st.mu.Lock()
		s.st.workers[i] = w
		s.st.mu.Unlock()
		return nil
	})
	if err != nil {
		s.problem(fmt.Errorf("replace worker: %w", err))
	}
}

// restartBridge stops the bridge with sig and starts it again on the same port.
func (s *storm) restartBridge(ctx context.Context, sig syscall.Signal) {
	s.st.mu.Lock()
	b := s.st.bridge
	s.st.mu.Unlock()
	// Zero Hash gives up on balance webhooks while the bridge is away: every one sent now is dropped.
	if err := s.send.setDropping(ctx, true); err != nil {
		s.problem(fmt.Errorf("drop balance webhooks: %w", err))
	}
	defer func() {
		if err := s.send.setDropping(context.WithoutCancel(ctx), false); err != nil {
			s.problem(fmt.Errorf("resume balance webhooks: %w", err))
		}
	}()
	if err := b.stop(sig, stopGrace); err != nil {
		s.problem(err)
	}
	if sig == syscall.SIGKILL {
		s.count(faultBridgeKill, 1)
	} else {
		s.count(faultBridgeTerm, 1)
	}
	if err := retry(ctx, 10, func() error { return s.st.startBridge(ctx) }); err != nil {
		s.problem(fmt.Errorf("restart bridge: %w", err))
	}
}

// stopTemporal stops the Temporal server with sig, keeps it down while webhooks keep coming (probing the bridge
// itself too), then restarts it on the same data folder and port.
func (s *storm) stopTemporal(ctx context.Context, sig syscall.Signal) {
	s.temporalMu.Lock()
	defer s.temporalMu.Unlock()
	s.st.mu.Lock()
	t := s.st.temporal
	s.st.mu.Unlock()
	if err := t.stop(sig, stopGrace); err != nil {
		s.problem(err)
	}
	o := outage{Down: time.Now(), How: sig.String()}
	if sig == syscall.SIGKILL {
		s.count(faultTemporalKill, 1)
	} else {
		s.count(faultTemporalTerm, 1)
	}
	s.probe(ctx, o.Down.Add(s.cfg.outageFor))
	sleep(ctx, time.Until(o.Down.Add(s.cfg.outageFor)))
	o.Up = time.Now()
	s.mu.Lock()
	s.outages = append(s.outages, o)
	s.mu.Unlock()
	if err := retry(ctx, 5, func() error { return s.st.startTemporal(ctx) }); err != nil {
		s.problem(fmt.Errorf("restart Temporal: %w", err))
	}
}

// probeEvery paces the suite's own requests to the bridge while Temporal is down.
const probeEvery = 500 * time.Millisecond

// probe sends SDK callbacks and balance webhooks to the bridge until the strict part of the outage ends: each
// must be answered 503, since Temporal cannot take them.
func (s *storm) probe(ctx context.Context, until time.Time) {
	strictEnd := until.Add(-answerBound)
	for time.Now().Before(strictEnd) {
		if wid, jwt, ok := s.driver.openSession(); ok {
			s.send.probeSDK(ctx, wid, jwt)
		}
		s.send.probeLedger(ctx, zerohash.Movement{MovementID: "chaos-probe-" + uuid.NewString(), Change: "1",
			DepositReferenceID: "chaos-probe-" + uuid.NewString(), MovementTimestamp: time.Now().UnixMilli()})
		if !sleep(ctx, probeEvery) {
			return
		}
	}
}

// sessionFaultKinds cycles through the ways session creation fails.
var sessionFaultKinds = []struct {
	name string
	req  faultRequest
}{
	{faultSession500, faultRequest{Endpoint: connecttest.EndpointSessions, Status: http.StatusInternalServerError}},
	{faultSession429, faultRequest{Endpoint: connecttest.EndpointSessions, Status: http.StatusTooManyRequests, RetryAfterMS: 1500}},
	{faultSessionDrop, faultRequest{Endpoint: connecttest.EndpointSessions, Drop: true}},
}

// sessionFaultWait bounds the wait for session requests to consume an armed fault.
const sessionFaultWait = 90 * time.Second

// failSessions arms a fault of the given kind for the next one or two session requests and counts the hits: with
// one fault armed at a time, the next requests the sandbox counts are exactly the ones it hits.
func (s *storm) failSessions(ctx context.Context, kindIndex int) {
	kind := sessionFaultKinds[kindIndex]
	req := kind.req
	req.Times = 1 + s.draw(func(r *rand.Rand) int { return r.IntN(2) })
	before, err := s.sandbox.stats(ctx)
	if err != nil {
		s.problem(err)
		return
	}
	if err := s.sandbox.fail(ctx, req); err != nil {
		s.problem(err)
		return
	}
	deadline := time.Now().Add(sessionFaultWait)
	for {
		now, err := s.sandbox.stats(ctx)
		if err == nil {
			hits := int(now.Requests[connecttest.EndpointSessions] - before.Requests[connecttest.EndpointSessions])
			if hits >= req.Times || time.Now().After(deadline) {
				hits = min(hits, req.Times)
				s.count(kind.name, hits)
				if hits < req.Times {
					s.mu.Lock()
					s.unarmed += req.Times - hits
					s.mu.Unlock()
					if err := s.sandbox.clearFaults(ctx); err != nil {
						s.problem(err)
					}
				}
				return
			}
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

func (s *storm) snapshot() (map[string]int, []outage, int, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		counts[k] = v
	}
	return counts, slices.Clone(s.outages), s.unarmed, slices.Clone(s.problems)
}
