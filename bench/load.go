package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectflow/connectflow/bench/webhook"
	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// batch is the outcome of running operations concurrently.
type batch struct {
	latencies []time.Duration // of the operations that succeeded
	errors    int
	firstErr  error
	wall      time.Duration
	cpu       time.Duration // used by this run's processes meanwhile; 0 when unknown
	signing   time.Duration // spent signing webhooks inside the operations
	tail      time.Duration // how long the server stayed busy after the last operation
	resent    int64         // webhooks delivered again after a 503
}

// runOps runs op(0) .. op(n-1) on concurrency goroutines, each taking the next index when it is free, and times
// every operation and the whole batch.
func runOps(ctx context.Context, n, concurrency int, op func(ctx context.Context, i int) error) batch {
	var (
		next atomic.Int64
		mu   sync.Mutex
		b    batch
		wg   sync.WaitGroup
	)
	b.latencies = make([]time.Duration, 0, n)
	start := time.Now()
	for range min(concurrency, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				err := op(ctx, i)
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					b.errors++
					if b.firstErr == nil {
						b.firstErr = err
					}
				} else {
					b.latencies = append(b.latencies, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.wall = time.Since(start)
	if err := ctx.Err(); err != nil && b.firstErr == nil {
		b.firstErr = err
	}
	return b
}

// add merges another round's batch into b.
func (b *batch) add(o batch) {
	b.latencies = append(b.latencies, o.latencies...)
	b.errors += o.errors
	b.wall += o.wall
	b.cpu += o.cpu
	b.signing += o.signing
	b.tail += o.tail
	b.resent += o.resent
	if b.firstErr == nil {
		b.firstErr = o.firstErr
	}
}

// waitingTransfer is a transfer whose session is open and whose workflow waits for webhooks.
type waitingTransfer struct {
	workflowID string
	hook       webhook.Transfer
}

// startTransfer starts a deposit through the starter library and returns it once its Connect session is open.
func (s *stack) startTransfer(ctx context.Context, transferID string) (waitingTransfer, error) {
	return s.startTransferWith(ctx, s.starter, transferID)
}

// startTransferWith is startTransfer through starter (another task queue's).
func (s *stack) startTransferWith(ctx context.Context, starter *transfer.Client, transferID string) (waitingTransfer, error) {
	return s.startTransferInputWith(ctx, starter, workflows.TransferInput{Kind: connect.KindDeposit, TransferID: transferID,
		ReferenceID: "REF-" + transferID})
}

// startTransferInput starts any transfer through the starter library and returns it once its session is open.
func (s *stack) startTransferInput(ctx context.Context, in workflows.TransferInput) (waitingTransfer, error) {
	return s.startTransferInputWith(ctx, s.starter, in)
}

// startTransferInputWith is startTransferInput through starter (another task queue's).
func (s *stack) startTransferInputWith(ctx context.Context, starter *transfer.Client, in workflows.TransferInput) (waitingTransfer, error) {
	transferID := in.TransferID
	started, err := starter.Start(ctx, in)
	if err != nil {
		return waitingTransfer{}, err
	}
	info, ok := s.sandbox.Session(started.SessionID)
	if !ok {
		return waitingTransfer{}, fmt.Errorf("%s: the sandbox has no session %s", started.WorkflowID, started.SessionID)
	}
	return waitingTransfer{workflowID: started.WorkflowID, hook: webhook.Transfer{Kind: info.Kind,
		TransferID: transferID, ConnectID: info.TransferID, SessionID: info.ID, ReferenceID: info.ReferenceID,
		Asset: info.Asset, Network: info.Network, Amount: info.Amount}}, nil
}

// startTransfers starts n transfers named prefix-0 .. prefix-(n-1), concurrency at a time.
func (s *stack) startTransfers(ctx context.Context, prefix string, n int) ([]waitingTransfer, batch) {
	out := make([]waitingTransfer, n)
	b := runOps(ctx, n, s.cfg.Concurrency, func(ctx context.Context, i int) (err error) {
		out[i], err = s.startTransfer(ctx, fmt.Sprintf("%s-%s-%d", s.runID, prefix, i))
		return err
	})
	return out, b
}

// signWebhook builds and signs the webhook for t reaching status, addressed to the bridge's route for its kind.
func (s *stack) signWebhook(t webhook.Transfer, status connect.Status) (webhook.Delivery, error) {
	body, err := webhook.Body(t, status, time.Now())
	if err != nil {
		return webhook.Delivery{}, err
	}
	path := bridge.PathConnectDeposits
	if t.Kind == connect.KindWithdrawal {
		path = bridge.PathConnectWithdrawals
	}
	url := s.bridgeURL + path
	h, err := s.signer.Headers(t.Kind, url, body)
	if err != nil {
		return webhook.Delivery{}, err
	}
	return webhook.Delivery{URL: url, Body: body, Header: h}, nil
}

// signaled is in the bridge's answer when Temporal took the signal for an open transfer.
var signaled = []byte(`"signaled"`)

// post delivers a webhook to the bridge as Connect does and succeeds when the bridge signalled an open transfer.
func (s *stack) post(ctx context.Context, d webhook.Delivery) error {
	answer, resent, err := webhook.Deliver(ctx, s.http, d)
	s.redelivered.Add(int64(resent))
	if err != nil {
		return err
	}
	if !bytes.Contains(answer, signaled) {
		return fmt.Errorf("bridge answered %s, not signaled", answer)
	}
	return nil
}

// lifeStatuses are the webhooks of a confirmed transfer, in order.
var lifeStatuses = [eventsPerTransfer]connect.Status{connect.StatusInitiated, connect.StatusBroadcasted, connect.StatusConfirmed}

// signLife signs a transfer's three webhooks.
func (s *stack) signLife(t waitingTransfer) ([eventsPerTransfer]webhook.Delivery, error) {
	var life [eventsPerTransfer]webhook.Delivery
	for i, status := range lifeStatuses {
		var err error
		if life[i], err = s.signWebhook(t.hook, status); err != nil {
			return life, err
		}
	}
	return life, nil
}

// deliverLife sends a transfer's webhooks through the bridge one after the other, as Connect sends them, and
// waits for its workflow to end confirmed.
func (s *stack) deliverLife(ctx context.Context, t waitingTransfer, life [eventsPerTransfer]webhook.Delivery) error {
	for i, w := range life {
		if err := s.post(ctx, w); err != nil {
			return fmt.Errorf("%s %s: %w", t.workflowID, lifeStatuses[i], err)
		}
	}
	return s.awaitConfirmed(ctx, t.workflowID)
}

// awaitConfirmed waits for a transfer workflow to finish and checks it ended confirmed.
func (s *stack) awaitConfirmed(ctx context.Context, workflowID string) error {
	var res workflows.TransferResult
	if err := s.client.GetWorkflow(ctx, workflowID, "").Get(ctx, &res); err != nil {
		return fmt.Errorf("%s: %w", workflowID, err)
	}
	if res.Status != workflows.StatusConfirmed {
		return fmt.Errorf("%s ended %s, want %s", workflowID, res.Status, workflows.StatusConfirmed)
	}
	return nil
}

// signal sends the event of a webhook straight to its workflow, as the ceiling does: parsed once, outside the clock.
func (s *stack) signal(ctx context.Context, workflowID string, ev connect.Event) error {
	return s.client.SignalWorkflow(ctx, workflowID, "", workflows.SignalConnectEvent,
		workflows.EventSignal{Event: ev, ReceivedAt: time.Now()})
}

// parsedEvent is what the bridge would signal for t reaching status.
func parsedEvent(t webhook.Transfer, status connect.Status) (connect.Event, error) {
	body, err := webhook.Body(t, status, time.Now())
	if err != nil {
		return connect.Event{}, err
	}
	return connect.ParseEvent(body)
}

// finish closes waiting transfers with raw confirmed signals and waits for them, so they leave the worker's cache.
func (s *stack) finish(ctx context.Context, transfers []waitingTransfer) error {
	b := runOps(ctx, len(transfers), s.cfg.Concurrency, func(ctx context.Context, i int) error {
		t := transfers[i]
		for _, status := range lifeStatuses {
			ev, err := parsedEvent(t.hook, status)
			if err != nil {
				return err
			}
			if err := s.signal(ctx, t.workflowID, ev); err != nil {
				return err
			}
		}
		return s.awaitConfirmed(ctx, t.workflowID)
	})
	if b.errors > 0 {
		return fmt.Errorf("close %d of %d transfers: %w", b.errors, len(transfers), b.firstErr)
	}
	return nil
}
