package workerapp

import (
	"context"
	"fmt"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/reconcile"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// registerReconcile registers the reconciliation run's activities on every worker, whatever its interval: a run
// the schedule (or an operator) starts may land on any worker of the task queue.
func registerReconcile(w worker.Worker, c client.Client, cfg Config, zh *zerohash.Client) {
	a := &reconcile.Activities{
		ZeroHash:  zh,
		Router:    &ledgerRouter{temporal: c, ledger: bridge.LedgerRouter{Temporal: c, TaskQueue: cfg.TaskQueue, Via: workflows.LedgerViaReconciliation}},
		Temporal:  c,
		TaskQueue: cfg.TaskQueue,
	}
	a.Register(w)
}

// ledgerRouter routes a movement read back from GET /movements through the balance webhook's own routing
// (bridge.LedgerRouter: match by ConnectTransferID, signal the transfer, or open the movement's review), after
// asking the open transfer whether it has the movement already, which tells applied from already known.
type ledgerRouter struct {
	temporal client.Client
	ledger   bridge.LedgerRouter
}

func (r *ledgerRouter) Route(ctx context.Context, mv zerohash.Movement) (reconcile.Outcome, error) {
	ref := mv.DepositReferenceID
	if ref == "" {
		ref = mv.WithdrawalRequestID
	}
	if ref == "" {
		return reconcile.OutcomeNotOurs, nil
	}
	known, err := r.known(ctx, ref, mv.MovementID)
	if err != nil {
		return "", err
	}
	if known {
		return reconcile.OutcomeAlreadyKnown, nil
	}
	route, err := r.ledger.RouteMovement(ctx, mv.Asset, mv)
	if err != nil {
		return "", err
	}
	switch route.Outcome {
	case bridge.LedgerSignaled:
		return reconcile.OutcomeApplied, nil
	case bridge.LedgerAcknowledged:
		return reconcile.OutcomeAlreadyKnown, nil
	case bridge.LedgerReview, bridge.LedgerReviewClosed:
		return reconcile.OutcomeUnmatched, nil
	}
	return reconcile.OutcomeNotOurs, nil
}

// known reports whether a running transfer with this Connect transfer id has recorded the movement (its ledger
// dedupe key is "ledger:" + movement id). A transfer visibility does not list yet counts as not knowing it: the
// movement is then signalled, and the transfer's own dedupe keeps it from counting twice.
func (r *ledgerRouter) known(ctx context.Context, connectID, movementID string) (bool, error) {
	queries := workflows.ConnectIDQueries("", connectID)
	if len(queries) == 0 {
		return false, nil // no transfer carries an id like this; routing sends it to review
	}
	resp, err := r.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: 20,
		Query:    queries[0] + " AND ExecutionStatus = 'Running'",
	})
	if err != nil {
		return false, fmt.Errorf("list transfers with ConnectTransferID %s: %w", connectID, err)
	}
	key := "ledger:" + movementID
	for _, ex := range resp.GetExecutions() {
		id := ex.GetExecution().GetWorkflowId()
		if _, ok := workflows.TransferKindOf(id); !ok {
			continue // a review carrying the same id
		}
		v, err := r.temporal.QueryWorkflow(ctx, id, "", workflows.QueryState)
		if err != nil {
			return false, fmt.Errorf("query transfer %s: %w", id, err)
		}
		var st workflows.TransferState
		if err := v.Get(&st); err != nil {
			return false, fmt.Errorf("decode state of %s: %w", id, err)
		}
		if st.Ledger != nil && st.Ledger.MovementID == movementID {
			return true, nil
		}
		for _, e := range st.Events {
			if e.DedupeKey == key {
				return true, nil
			}
		}
	}
	return false, nil
}
