package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bench/report"
	"github.com/connectflow/connectflow/bench/webhook"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// side is one way of doing a scenario's operations: op(i) does operation i; prepare, when set, readies operations
// lo..hi-1 before the clock starts; signing, when set, counts the time op spends signing as Connect would.
type side struct {
	what    string
	prepare func(lo, hi int) error
	op      func(ctx context.Context, i int) error
	signing *atomic.Int64
}

// plan says which operations compare runs: first .. first+warm+n-1, the first warm of them unmeasured, at
// concurrency, the measured ones split into rounds.
type plan struct {
	unit                                string
	first, warm, n, concurrency, rounds int
}

// maxRoundOps bounds a round, so the webhooks signed for it are sent well within their 5-minute validity.
const maxRoundOps = 5000

// compare warms both sides up, then runs them in alternating rounds (ceiling, ours, ours, ceiling, ...) so that
// drift on a shared machine lands on both, and puts the results side by side.
func (s *stack) compare(ctx context.Context, p plan, ceiling, ours side) (*report.Comparison, error) {
	run := func(sd side, lo, hi int) (batch, error) {
		if sd.prepare != nil {
			if err := sd.prepare(lo, hi); err != nil {
				return batch{}, err
			}
		}
		s.settle(ctx)
		cpu, signed, resent := s.cpu(ctx), sd.signed(), s.redelivered.Load()
		b := runOps(ctx, hi-lo, p.concurrency, func(ctx context.Context, j int) error { return sd.op(ctx, lo+j) })
		if err := ctx.Err(); err != nil {
			return batch{}, err // interrupted: a partial round would skew the side it belongs to
		}
		b.signing, b.resent = sd.signed()-signed, s.redelivered.Load()-resent
		// The CPU count runs on until the server has finished what the round set off.
		b.tail = s.settle(ctx)
		if after := s.cpu(ctx); cpu > 0 && after > 0 {
			b.cpu = after - cpu
		}
		return b, nil
	}
	if p.warm > 0 {
		for _, sd := range []side{ceiling, ours} {
			b, err := run(sd, p.first, p.first+p.warm)
			if err != nil {
				return nil, err
			}
			if b.errors > 0 {
				return nil, fmt.Errorf("%s warm-up: %d of %d failed, first: %w", p.unit, b.errors, p.warm, b.firstErr)
			}
		}
	}
	names := [2]string{"ceiling", "ours"}
	var totals [2]batch
	rounds := max(p.rounds, (p.n+maxRoundOps-1)/maxRoundOps)
	for round := range rounds {
		lo, hi := p.first+p.warm+round*p.n/rounds, p.first+p.warm+(round+1)*p.n/rounds
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			b, err := run([]side{ceiling, ours}[k], lo, hi)
			if err != nil {
				return nil, err
			}
			totals[k].add(b)
			s.log.Info(p.unit+" round", "concurrency", p.concurrency, "round", round+1, "side", names[k], "ops", hi-lo,
				"per_second", fmt.Sprintf("%.1f", float64(len(b.latencies))/b.wall.Seconds()), "errors", b.errors,
				"tail", b.tail.Round(time.Millisecond))
			if b.firstErr != nil {
				s.log.Warn(p.unit+" failures", "side", names[k], "first", b.firstErr)
			}
		}
	}
	var sides [2]report.Side
	for k, sd := range []side{ceiling, ours} {
		t := totals[k]
		sides[k] = report.NewSide(sd.what, t.latencies, t.errors, t.wall, t.cpu)
		sides[k].SigningMsPerOp = perOp(t.signing, len(t.latencies)+t.errors)
		sides[k].Redelivered = t.resent
		if t.firstErr != nil {
			sides[k].FirstError = t.firstErr.Error()
		}
	}
	return report.Compare(p.unit, p.concurrency, sides[0], sides[1]), nil
}

// signed is the time the side's operations have spent signing so far.
func (sd side) signed() time.Duration {
	if sd.signing == nil {
		return 0
	}
	return time.Duration(sd.signing.Load())
}

// perOp is d per operation in milliseconds, 0 without operations.
func perOp(d time.Duration, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return float64(d) / float64(time.Millisecond) / float64(ops)
}

// serialShare is the part of -signals that ingest also sends one at a time, where latency is the bridge's own
// and not queueing for a saturated machine.
const serialShare = 5

// ingest is scenario 1: the same signals into waiting transfers, raw from a Go client and as signed webhooks
// through the bridge over HTTP; at -concurrency (throughput), then one at a time (latency).
func (s *stack) ingest(ctx context.Context) (saturated, serial *report.Comparison, err error) {
	w, n := s.cfg.Workflows, s.cfg.Signals
	s.log.Info("ingest: starting the waiting transfers", "per_side", w)
	sets := [2][]waitingTransfer{}
	for k, prefix := range []string{"ingest-ceiling", "ingest-ours"} {
		set, b := s.startTransfers(ctx, prefix, w)
		if b.errors > 0 {
			return nil, nil, fmt.Errorf("ingest: start %d of %d transfers failed, first: %w", b.errors, w, b.firstErr)
		}
		sets[k] = set
	}
	defer func() {
		for _, set := range sets {
			if err := s.finish(ctx, set); err != nil {
				s.log.Warn("ingest: closing the waiting transfers", "err", err)
			}
		}
	}()
	// Operation i signals transfer i mod w; passes over the set alternate initiated and broadcasted, so every
	// transfer gets the same events on both sides, and only its first two change its state.
	statuses := [2]connect.Status{connect.StatusInitiated, connect.StatusBroadcasted}
	event := func(i int) (transfer, status int) { return i % w, (i / w) % 2 }
	parsed := make([][2]connect.Event, w)
	for i, t := range sets[0] {
		for k, st := range statuses {
			if parsed[i][k], err = parsedEvent(t.hook, st); err != nil {
				return nil, nil, err
			}
		}
	}
	full := plan{unit: "signal", warm: min(s.cfg.Concurrency, n), n: n, concurrency: s.cfg.Concurrency, rounds: s.cfg.Rounds}
	one := plan{unit: "signal", first: full.warm + n, n: max(n/serialShare, s.cfg.Rounds), concurrency: 1, rounds: s.cfg.Rounds}
	var (
		signed []webhook.Delivery // the current round's webhooks, signed[i-base] being operation i's
		base   int
	)
	ceiling := side{
		what: "SignalWorkflow from a Go client, the parsed event as the bridge would send it",
		op: func(ctx context.Context, i int) error {
			t, k := event(i)
			return s.signal(ctx, sets[0][t].workflowID, parsed[t][k])
		},
	}
	ours := side{
		what: "signed webhook POSTed over loopback HTTP to the bridge (signature + JWT verified, parsed, signalled)",
		prepare: func(lo, hi int) error { // signing is Connect's work, done before the clock starts
			signed, base = make([]webhook.Delivery, hi-lo), lo
			for i := lo; i < hi; i++ {
				t, k := event(i)
				var err error
				if signed[i-lo], err = s.signWebhook(sets[1][t].hook, statuses[k]); err != nil {
					return err
				}
			}
			return nil
		},
		op: func(ctx context.Context, i int) error { return s.post(ctx, signed[i-base]) },
	}
	s.log.Info("ingest: measuring", "signals_per_side", n, "concurrency", s.cfg.Concurrency, "rounds", s.cfg.Rounds)
	if saturated, err = s.compare(ctx, full, ceiling, ours); err != nil {
		return nil, nil, err
	}
	s.log.Info("ingest: measuring one at a time", "signals_per_side", one.n)
	if serial, err = s.compare(ctx, one, ceiling, ours); err != nil {
		return nil, nil, err
	}
	return saturated, serial, nil
}

// transfers is scenario 2: whole transfers, against a minimal workflow of the same shape.
func (s *stack) transfers(ctx context.Context) (*report.Comparison, error) {
	n := s.cfg.Transfers
	var signing atomic.Int64
	ceiling := side{
		what: "minimal workflow: update-with-start, 1 no-op activity, 3 raw signals, complete",
		op:   func(ctx context.Context, i int) error { return s.minimalTransfer(ctx, i) },
	}
	ours := side{
		what: "TransferWorkflow: starter update-with-start, session from the sandbox, 3 webhooks through the bridge, confirmed",
		op: func(ctx context.Context, i int) error {
			t, err := s.startTransfer(ctx, fmt.Sprintf("%s-transfer-%d", s.runID, i))
			if err != nil {
				return err
			}
			t0 := time.Now()
			life, err := s.signLife(t) // Connect's work, done on this machine: reported beside the CPU
			signing.Add(int64(time.Since(t0)))
			if err != nil {
				return err
			}
			return s.deliverLife(ctx, t, life)
		},
		signing: &signing,
	}
	s.log.Info("transfers: measuring", "per_side", n, "concurrency", s.cfg.Concurrency, "rounds", s.cfg.Rounds)
	p := plan{unit: "transfer", warm: min(s.cfg.Concurrency, n), n: n, concurrency: s.cfg.Concurrency, rounds: s.cfg.Rounds}
	return s.compare(ctx, p, ceiling, ours)
}

// minimalTransfer runs the ceiling's workflow i to completion the way the starter and the bridge drive a transfer.
func (s *stack) minimalTransfer(ctx context.Context, i int) error {
	id := fmt.Sprintf("minimal-%s-%d", s.runID, i)
	start := s.client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, minimalTransferName)
	h, err := s.client.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: workflows.UpdateSession,
			WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	if err := h.Get(ctx, nil); err != nil {
		return fmt.Errorf("%s: session update: %w", id, err)
	}
	hook := webhook.Transfer{Kind: connect.KindDeposit, TransferID: id, ConnectID: "connect-" + id, SessionID: "session-" + id,
		ReferenceID: "REF-" + id, Asset: connecttest.DefaultAsset, Network: connecttest.DefaultNetwork, Amount: connecttest.DefaultAmount}
	for _, status := range lifeStatuses {
		ev, err := parsedEvent(hook, status)
		if err != nil {
			return err
		}
		if err := s.signal(ctx, id, ev); err != nil {
			return fmt.Errorf("%s: signal %s: %w", id, status, err)
		}
	}
	if err := s.client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	return nil
}

// tokens is scenario 3: the worker's access-token requests over everything it did in this run.
func (s *stack) tokens() *report.Tokens {
	return report.NewTokens(s.sandbox.Count(connecttest.EndpointToken), s.sandbox.SessionsCreated(), s.cfg.TokenTTL,
		s.worker.Uptime(), 1+len(s.moreWorkers)+s.extraWorkers)
}

// waiting is scenario 4: many transfers waiting in one worker, its memory before and after, and how fast it still
// completes a transfer.
func (s *stack) waiting(ctx context.Context) (*report.Waiting, error) {
	n, p := s.cfg.Waiting, s.cfg.Probes
	s.settle(ctx)
	s.log.Info("waiting: probing the idle worker", "probes", p)
	idle, err := s.probe(ctx, "probe-idle", nil)
	if err != nil {
		return nil, err
	}
	before, err := s.worker.Memory(ctx)
	if err != nil {
		return nil, err
	}
	s.log.Info("waiting: starting transfers", "transfers", n, "concurrency", s.cfg.Concurrency)
	set, b := s.startTransfers(ctx, "waiting", n)
	if b.firstErr != nil {
		s.log.Warn("waiting: some transfers did not start", "failed", b.errors, "first", b.firstErr)
	}
	after, err := s.worker.Memory(ctx)
	if err != nil {
		return nil, err
	}
	w := report.NewWaiting(len(b.latencies), b.errors, s.cfg.Concurrency, b.wall, before, after)
	if w.StickyCached, err = s.worker.StickyCached(ctx); err != nil {
		return nil, err
	}
	s.settle(ctx)
	s.log.Info("waiting: probing the loaded worker", "probes", p)
	var started []waitingTransfer
	for _, t := range set {
		if t.workflowID != "" {
			started = append(started, t)
		}
	}
	loaded, err := s.probe(ctx, "", spread(started, p))
	if err != nil {
		return nil, err
	}
	w.ProbeIdle, w.ProbeLoaded = report.Summarize(idle), report.Summarize(loaded)
	return w, nil
}

// probe completes transfers one at a time through the bridge, timing each from its first webhook (signed
// beforehand, and sent once the server is quiet) to its workflow's result. With prefix set it first starts
// s.cfg.Probes new transfers to probe.
func (s *stack) probe(ctx context.Context, prefix string, transfers []waitingTransfer) ([]time.Duration, error) {
	if prefix != "" {
		var b batch
		if transfers, b = s.startTransfers(ctx, prefix, s.cfg.Probes); b.errors > 0 {
			return nil, fmt.Errorf("probe: start %d of %d transfers failed, first: %w", b.errors, s.cfg.Probes, b.firstErr)
		}
	}
	var out []time.Duration
	for _, t := range transfers {
		life, err := s.signLife(t)
		if err != nil {
			return nil, err
		}
		s.settle(ctx) // each probe on a quiet server, not in the last one's tail
		t0 := time.Now()
		if err := s.deliverLife(ctx, t, life); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// spread picks k transfers evenly across ts.
func spread(ts []waitingTransfer, k int) []waitingTransfer {
	if k >= len(ts) {
		return ts
	}
	out := make([]waitingTransfer, 0, k)
	for i := range k {
		out = append(out, ts[i*len(ts)/k])
	}
	return out
}
