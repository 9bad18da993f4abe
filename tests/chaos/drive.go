package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

const (
	// startAttemptTimeout bounds one update-with-start; a worker SIGKILLed mid-activity costs the activity's
	// 30 s start-to-close timeout before its retry.
	startAttemptTimeout = 2 * time.Minute
	// startBudget bounds all attempts to start one transfer.
	startBudget = 8 * time.Minute
	// retryPause is the pause between attempts of anything the suite retries against Temporal.
	retryPause = time.Second
	// pollEvery is how often the suite looks at Temporal while it waits for a state.
	pollEvery = 500 * time.Millisecond
	// followUpBudget bounds a follow-up's wait for its transfer to reach the state it needs.
	followUpBudget = 10 * time.Minute
)

// driven is what happened to one planned transfer while the suite drove it.
type driven struct {
	plan        transferPlan
	sessionID   string
	jwt         string
	otherStart  string // the session id the concurrent second start returned
	plays       []playRequest
	connectID   string // the Connect transfer id, once the suite needed it
	err         error
	followUpErr error
}

// driver starts and plays every planned transfer at the configured rate and runs their follow-ups.
type driver struct {
	cfg       config
	plan      plan
	tc        client.Client
	transfers *transfer.Client
	sandbox   *sandboxAPI
	send      *sender
	orphans   *orphanClient
	secrets   *secretSet

	started  atomic.Int64 // transfers whose start has begun: the storm's progress
	retries  atomic.Int64 // start attempts beyond the first
	mu       sync.Mutex
	results  map[string]*driven // by workflow id
	orphanOf map[string]string  // orphan session id -> its request id
	onboards int
	problems []error
}

func newDriver(cfg config, p plan, tc client.Client, sb *sandboxAPI, send *sender, orphans *orphanClient, sec *secretSet) *driver {
	return &driver{cfg: cfg, plan: p, tc: tc, transfers: transfer.NewClient(tc, transfer.Options{}), sandbox: sb,
		send: send, orphans: orphans, secrets: sec, results: map[string]*driven{}, orphanOf: map[string]string{}}
}

// progress is the fraction of transfers whose start has begun.
func (d *driver) progress() float64 {
	return float64(d.started.Load()) / float64(len(d.plan.Transfers))
}

func (d *driver) problem(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problems = append(d.problems, err)
}

// run drives everything and returns when every transfer, orphan, ledger movement and onboarding is done.
func (d *driver) run(ctx context.Context) {
	var side sync.WaitGroup
	side.Go(func() { d.runOrphans(ctx) })
	side.Go(func() { d.runUnmatched(ctx) })
	side.Go(func() { d.runOnboardings(ctx) })

	var main, followUps sync.WaitGroup
	sem := make(chan struct{}, d.cfg.concurrency)
	tick := time.NewTicker(time.Duration(float64(time.Second) / d.cfg.startRate))
	defer tick.Stop()
	for _, t := range d.plan.Transfers {
		select {
		case <-ctx.Done():
			d.problem(fmt.Errorf("stopped before every transfer started: %w", ctx.Err()))
			main.Wait()
			followUps.Wait()
			side.Wait()
			return
		case <-tick.C:
		}
		d.started.Add(1)
		sem <- struct{}{}
		main.Go(func() {
			defer func() { <-sem }()
			r := d.drive(ctx, t)
			followUps.Go(func() { d.followUp(ctx, r) })
		})
	}
	main.Wait()
	followUps.Wait()
	side.Wait()
}

// drive starts one transfer (twice at once when planned) and plays its life at the sandbox.
func (d *driver) drive(ctx context.Context, t transferPlan) *driven {
	r := &driven{plan: t}
	d.mu.Lock()
	d.results[t.workflowID()] = r
	d.mu.Unlock()
	in := t.input(d.cfg)
	var second sync.WaitGroup
	if t.StartTwice {
		second.Go(func() {
			s, err := d.start(ctx, in)
			if err == nil {
				r.otherStart = s.SessionID
			}
		})
	}
	s, err := d.start(ctx, in)
	second.Wait()
	if err != nil {
		r.err = fmt.Errorf("start %s: %w", t.workflowID(), err)
		return r
	}
	d.mu.Lock()
	r.sessionID, r.jwt = s.SessionID, s.JWT
	d.mu.Unlock()
	d.secrets.add(kindSessionJWT, s.JWT)
	if t.Play.Outcome != "" {
		if err := d.play(ctx, r, t.Play); err != nil {
			r.err = err
		}
	}
	return r
}

// start is update-with-start, retried through worker kills, Temporal outages and session faults.
func (d *driver) start(ctx context.Context, in workflows.TransferInput) (transfer.Started, error) {
	ctx, cancel := context.WithTimeout(ctx, startBudget)
	defer cancel()
	for {
		actx, cancelAttempt := context.WithTimeout(ctx, startAttemptTimeout)
		s, err := d.transfers.Start(actx, in)
		cancelAttempt()
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return s, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
		d.retries.Add(1)
		if !sleep(ctx, retryPause) {
			return s, ctx.Err()
		}
	}
}

func (d *driver) play(ctx context.Context, r *driven, p playRequest) error {
	err := retry(ctx, 10, func() error { return d.sandbox.play(ctx, r.sessionID, p) })
	if err != nil {
		return fmt.Errorf("play %s: %w", r.plan.workflowID(), err)
	}
	d.mu.Lock()
	r.plays = append(r.plays, p)
	d.mu.Unlock()
	return nil
}

// followUp does what a scenario needs after the life was played: the ledger movement, the contradicting event
// after close, or the SDK close.
func (d *driver) followUp(ctx context.Context, r *driven) {
	if r.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, followUpBudget)
	defer cancel()
	var err error
	switch r.plan.Scenario {
	case scSettled:
		err = d.sendLedger(ctx, r)
	case scUnsettled:
		if err = d.waitClosed(ctx, r.plan.workflowID()); err == nil {
			err = d.sendLedger(ctx, r)
		}
	case scConflict:
		if err = d.waitClosed(ctx, r.plan.workflowID()); err == nil {
			err = d.play(ctx, r, conflictPlay)
		}
	case scAbandoned:
		err = d.sendCloses(ctx, r)
	}
	if err != nil {
		r.followUpErr = fmt.Errorf("%s follow-up of %s: %w", r.plan.Scenario, r.plan.workflowID(), err)
	}
}

// sendLedger sends the transfer's Zero Hash movement once it can be found by its Connect transfer id (and, unless
// planned early, once it is confirmed or has ended): twice under one notification id (a redelivery) and once
// under another (the same movement notified again).
func (d *driver) sendLedger(ctx context.Context, r *driven) error {
	wid := r.plan.workflowID()
	for {
		attrs, _, err := d.describe(ctx, wid)
		if err == nil && attrs.connectID != "" && (r.plan.LedgerEarly || attrs.status == workflows.StatusConfirmed ||
			attrs.status == workflows.StatusUnsettled) {
			r.connectID = attrs.connectID
			break
		}
		if !sleep(ctx, pollEvery) {
			return fmt.Errorf("transfer never got its Connect transfer id: %w", ctx.Err())
		}
	}
	// The bridge finds the transfer through visibility, which lags the workflow's own record by a moment.
	query := workflows.SearchConnectTransferID.GetName() + " = '" + r.connectID + "'"
	for !d.listed(ctx, query, wid) {
		if !sleep(ctx, pollEvery) {
			return fmt.Errorf("transfer never listed by %s: %w", query, ctx.Err())
		}
	}
	mv := zerohash.Movement{MovementID: r.plan.MovementID, MovementType: "deposit", Change: "0.013",
		MovementTimestamp: time.Now().UnixMilli()}
	if r.plan.Kind == connect.KindDeposit {
		mv.DepositReferenceID = r.connectID
	} else {
		mv.WithdrawalRequestID, mv.MovementType, mv.Change = r.connectID, "withdrawal", "-0.013"
	}
	first := uuid.NewString()
	for _, notification := range []string{first, first, uuid.NewString()} {
		if err := d.send.balance(ctx, wid, mv, notification); err != nil {
			return err
		}
	}
	return nil
}

// sendCloses relays an informational SDK callback and then the close the user made, several times.
func (d *driver) sendCloses(ctx context.Context, r *driven) error {
	wid := r.plan.workflowID()
	if err := d.send.sdkEvent(ctx, wid, r.jwt, workflows.SDKTypeEvent, "loaded"); err != nil {
		return err
	}
	for range r.plan.SDKCloses {
		if err := d.send.sdkEvent(ctx, wid, r.jwt, workflows.SDKTypeClose, "user_closed"); err != nil {
			return err
		}
	}
	return nil
}

// transferAttrs is what a describe tells about a transfer without a worker.
type transferAttrs struct {
	status    workflows.Status
	connectID string
	sessionID string
}

// describe reads a workflow's status search attributes and whether it is still running.
func (d *driver) describe(ctx context.Context, workflowID string) (transferAttrs, bool, error) {
	return describeTransfer(ctx, d.tc, workflowID)
}

func describeTransfer(ctx context.Context, tc client.Client, workflowID string) (transferAttrs, bool, error) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := tc.DescribeWorkflowExecution(actx, workflowID, "")
	if err != nil {
		return transferAttrs{}, false, err
	}
	info := resp.GetWorkflowExecutionInfo()
	fields := info.GetSearchAttributes().GetIndexedFields()
	read := func(name string) string {
		var v string
		if p := fields[name]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &v) // a keyword that does not decode reads as unset
		}
		return v
	}
	a := transferAttrs{
		status:    workflows.Status(read(workflows.SearchTransferStatus.GetName())),
		connectID: read(workflows.SearchConnectTransferID.GetName()),
		sessionID: read(workflows.SearchConnectSessionID.GetName()),
	}
	return a, info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// listed reports whether a visibility query lists workflowID.
func (d *driver) listed(ctx context.Context, query, workflowID string) bool {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := d.tc.ListWorkflow(actx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query})
	if err != nil {
		return false
	}
	for _, ex := range resp.GetExecutions() {
		if ex.GetExecution().GetWorkflowId() == workflowID {
			return true
		}
	}
	return false
}

// waitClosed waits until a workflow is no longer running.
func (d *driver) waitClosed(ctx context.Context, workflowID string) error {
	for {
		if _, running, err := d.describe(ctx, workflowID); err == nil && !running {
			return nil
		}
		if !sleep(ctx, pollEvery) {
			return fmt.Errorf("%s still running: %w", workflowID, ctx.Err())
		}
	}
}

// runOrphans opens sessions no transfer owns, spread over the storm, and plays their lives.
func (d *driver) runOrphans(ctx context.Context) {
	for _, o := range d.plan.Orphans {
		if !d.waitProgress(ctx, rand.Float64()*0.8) {
			return
		}
		req := connect.SessionRequest{RequestID: o.RequestID, Kind: connect.KindDeposit, ReferenceID: o.ReferenceID}
		var s *connect.Session
		err := retry(ctx, 60, func() (err error) {
			s, err = d.orphans.connect.CreateSession(ctx, req)
			return err
		})
		if err != nil {
			d.problem(fmt.Errorf("orphan session %s: %w", o.RequestID, err))
			continue
		}
		d.secrets.add(kindSessionJWT, s.JWT)
		d.mu.Lock()
		d.orphanOf[s.ID] = o.RequestID
		d.mu.Unlock()
		if err := retry(ctx, 10, func() error { return d.sandbox.play(ctx, s.ID, o.Play) }); err != nil {
			d.problem(fmt.Errorf("play orphan %s: %w", o.RequestID, err))
		}
	}
}

// runUnmatched sends balance movements that name no transfer, each twice (a redelivery).
func (d *driver) runUnmatched(ctx context.Context) {
	for _, id := range d.plan.Unmatched {
		if !d.waitProgress(ctx, rand.Float64()*0.9) {
			return
		}
		mv := zerohash.Movement{MovementID: id, MovementType: "deposit", Change: "0.5",
			DepositReferenceID: "chaos-no-such-transfer-" + uuid.NewString(), MovementTimestamp: time.Now().UnixMilli()}
		notification := uuid.NewString()
		for range 2 {
			if err := d.send.balance(ctx, id, mv, notification); err != nil {
				d.problem(fmt.Errorf("unmatched movement %s: %w", id, err))
				break
			}
		}
	}
}

// runOnboardings asks for onboarding tokens; the emails and phones are the PII the log scan looks for.
func (d *driver) runOnboardings(ctx context.Context) {
	for _, o := range d.plan.Onboardings {
		d.secrets.add(kindEmail, o.Email)
		d.secrets.add(kindPhone, o.Phone)
	}
	for _, o := range d.plan.Onboardings {
		if !d.waitProgress(ctx, rand.Float64()) {
			return
		}
		err := retry(ctx, 30, func() error {
			actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			token, err := d.transfers.Onboarding(actx, workflows.OnboardingRequest{Email: o.Email, Phone: o.Phone})
			if err == nil {
				d.secrets.add(kindOnboardingToken, token)
			}
			return err
		})
		if err != nil {
			d.problem(fmt.Errorf("onboarding: %w", err))
			continue
		}
		d.mu.Lock()
		d.onboards++
		d.mu.Unlock()
	}
}

// waitProgress waits until the storm's progress reaches at least p.
func (d *driver) waitProgress(ctx context.Context, p float64) bool {
	for d.progress() < p {
		if !sleep(ctx, pollEvery) {
			return false
		}
	}
	return true
}

// retry calls f until it succeeds, up to tries times, pausing between tries.
func retry(ctx context.Context, tries int, f func() error) error {
	var err error
	for range tries {
		if err = f(); err == nil {
			return nil
		}
		if !sleep(ctx, retryPause) {
			return errors.Join(err, ctx.Err())
		}
	}
	return err
}

// sleep waits d or until ctx ends, reporting whether the whole d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// openSession returns a started transfer's workflow id and session JWT, or false when none has started yet.
func (d *driver) openSession() (string, string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for wid, r := range d.results {
		// Not an abandoned one: a probe's submitted callback would keep its close from abandoning it.
		if r.jwt != "" && r.plan.Scenario != scAbandoned {
			return wid, r.jwt, true
		}
	}
	return "", "", false
}

// all returns every driven transfer; read their fields only once the driver is done.
func (d *driver) all() []*driven {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*driven, 0, len(d.results))
	for _, r := range d.results {
		out = append(out, r)
	}
	return out
}
