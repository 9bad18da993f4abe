// Package tests runs connectflow against real parts: a Temporal server in the test process (temporaltest), the
// Connect sandbox on loopback, the real worker wiring, and the starter library.
package tests

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/cmdtest"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

const taskQueue = "connect-transfers-test"

// stack is one test's world: Temporal, the sandbox, a worker, and the starter library.
type stack struct {
	t         *testing.T
	server    *temporaltest.TestServer
	client    client.Client
	namespace string
	sandbox   *connecttest.Server
	transfers *transfer.Client
}

// newStack starts Temporal and the sandbox; call startWorker for a worker.
func newStack(t *testing.T, sandbox connecttest.Options) *stack {
	t.Helper()
	srv := temporaltest.NewServer(temporaltest.WithT(t))
	s := &stack{t: t, server: srv, client: srv.GetDefaultClient(), namespace: srv.GetDefaultNamespace()}
	s.registerSearchAttributes()
	s.sandbox = connecttest.NewServer(t, sandbox)
	s.transfers = transfer.NewClient(s.client, transfer.Options{TaskQueue: taskQueue})
	return s
}

func (s *stack) registerSearchAttributes() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := workerapp.RegisterSearchAttributes(ctx, s.client, s.namespace); err != nil {
		s.t.Fatalf("register search attributes: %v", err)
	}
}

// startWorker runs a worker with the worker binary's own wiring (workerapp), against the sandbox.
func (s *stack) startWorker() worker.Worker {
	s.t.Helper()
	w, err := workerapp.New(s.client, s.workerConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatalf("worker: %v", err)
	}
	if err := w.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	s.t.Cleanup(w.Stop)
	return w
}

// workerConfig points the worker's Connect and Zero Hash clients at the sandbox.
func (s *stack) workerConfig() workerapp.Config {
	return workerapp.Config{
		TaskQueue: taskQueue,
		Connect: connect.Options{BaseURL: s.sandbox.URL + "/api/v1",
			ClientID: connecttest.DefaultClientID, ClientSecret: connecttest.DefaultClientSecret,
			OrganizationID: connecttest.DefaultOrganizationID},
		ZeroHash: zerohash.Options{BaseURL: s.sandbox.URL, APIKey: connecttest.DefaultAPIKey,
			APISecret: connecttest.DefaultAPISecret, Passphrase: connecttest.DefaultPassphrase},
	}
}

func (s *stack) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s.t.Cleanup(cancel)
	return ctx
}

// signal sends a parsed Connect event to a transfer as the webhook bridge does.
func (s *stack) signal(kind connect.Kind, transferID string, ev connect.Event) {
	s.t.Helper()
	err := s.client.SignalWorkflow(s.ctx(), workflows.WorkflowID(kind, transferID), "", workflows.SignalConnectEvent,
		workflows.EventSignal{Event: ev, ReceivedAt: time.Now()})
	if err != nil {
		s.t.Fatalf("signal %s: %v", ev.Name, err)
	}
}

// result waits for a transfer's workflow to finish and returns its result.
func (s *stack) result(kind connect.Kind, transferID string) (workflows.TransferResult, error) {
	var r workflows.TransferResult
	err := s.client.GetWorkflow(s.ctx(), workflows.WorkflowID(kind, transferID), "").Get(s.ctx(), &r)
	return r, err
}

// event builds the event the bridge would parse from Connect's webhook for a session.
func event(kind connect.Kind, status connect.Status, connectID, sessionID string) connect.Event {
	e := connect.Event{Name: fmt.Sprintf("connect.%s.%s", kind, status), Kind: kind, Status: status,
		TransferID: connectID, SessionID: sessionID, Asset: "BTC", Network: "bitcoin", Amount: "0.013"}
	if status == connect.StatusBroadcasted || status == connect.StatusConfirmed {
		e.TxHash = "0xf3b9c88212d7a8d611d6f97a4b6e96b2b2c1b7"
	}
	e.DedupeKey = connect.DedupeKey(e)
	return e
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// buildBinary builds one of connectflow's commands (e.g. "starter") once for this test binary.
func buildBinary(t *testing.T, pkg string) string { return cmdtest.Build(t, "../"+pkg) }
