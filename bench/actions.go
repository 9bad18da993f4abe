package main

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/connectflow/connectflow/bench/report"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// actionSamples is how many of the transfer scenario's histories of each side the Actions count reads.
const actionSamples = 5

// actions counts the Temporal Cloud Actions per transfer in real histories of this run: the transfer scenario's
// minimal workflows and deposits, and one withdrawal and one deposit that awaits its ledger movement, run here
// through the same starter and bridge. Run it after the transfer scenario.
func (s *stack) actions(ctx context.Context) (*report.Actions, error) {
	n := min(actionSamples, s.cfg.Transfers+min(s.cfg.Concurrency, s.cfg.Transfers))
	var minimalIDs, depositIDs []string
	for i := range n { // the warm-up's operations come first; all of them completed, or the scenario failed
		minimalIDs = append(minimalIDs, fmt.Sprintf("minimal-%s-%d", s.runID, i))
		depositIDs = append(depositIDs, workflows.WorkflowID(connect.KindDeposit, fmt.Sprintf("%s-transfer-%d", s.runID, i)))
	}
	minimal, err := s.pathActions(ctx, "minimal workflow", "the transfer scenario's ceiling", minimalIDs)
	if err != nil {
		return nil, err
	}
	deposit, err := s.pathActions(ctx, "deposit", "the transfer scenario's: update-with-start, session, 3 webhooks through the bridge, confirmed", depositIDs)
	if err != nil {
		return nil, err
	}

	s.log.Info("actions: running a withdrawal and a deposit that awaits its ledger movement")
	wd, err := s.startTransferInput(ctx, workflows.TransferInput{Kind: connect.KindWithdrawal,
		TransferID: s.runID + "-actions-withdrawal", ReferenceID: "REF-actions-withdrawal",
		Asset: "BTC", Network: "bitcoin", Amount: "0.005"})
	if err != nil {
		return nil, fmt.Errorf("actions: withdrawal: %w", err)
	}
	life, err := s.signLife(wd)
	if err != nil {
		return nil, err
	}
	if err := s.deliverLife(ctx, wd, life); err != nil {
		return nil, fmt.Errorf("actions: withdrawal: %w", err)
	}
	withdrawal, err := s.pathActions(ctx, "withdrawal", "update-with-start, session, 3 webhooks through the bridge, confirmed", []string{wd.workflowID})
	if err != nil {
		return nil, err
	}

	ledgerID := s.runID + "-actions-ledger"
	ld, err := s.startTransferInput(ctx, workflows.TransferInput{Kind: connect.KindDeposit, TransferID: ledgerID,
		ReferenceID: "REF-" + ledgerID, AwaitLedger: true})
	if err != nil {
		return nil, fmt.Errorf("actions: await-ledger deposit: %w", err)
	}
	if err := s.settleLedger(ctx, ld); err != nil {
		return nil, fmt.Errorf("actions: await-ledger deposit: %w", err)
	}
	ledger, err := s.pathActions(ctx, "deposit awaiting its ledger movement",
		"AwaitLedger: as the deposit, then the Zero Hash ledger movement signalled (one signal, as the bridge sends it), settled",
		[]string{ld.workflowID})
	if err != nil {
		return nil, err
	}
	return report.NewActions(&minimal, deposit, withdrawal, ledger), nil
}

// settleLedger plays an await-ledger deposit to confirmed through the bridge, signals its ledger movement as the bridge
// does for Zero Hash's balance webhook, and waits for it to end settled.
func (s *stack) settleLedger(ctx context.Context, t waitingTransfer) error {
	life, err := s.signLife(t)
	if err != nil {
		return err
	}
	for i, w := range life {
		if err := s.post(ctx, w); err != nil {
			return fmt.Errorf("%s %s: %w", t.workflowID, lifeStatuses[i], err)
		}
	}
	m := workflows.LedgerMovement{MovementID: "movement-" + t.workflowID, MovementType: "deposit",
		Asset: t.hook.Asset, Change: t.hook.Amount, At: time.Now().UTC()}
	if err := s.client.SignalWorkflow(ctx, t.workflowID, "", workflows.SignalLedger, m); err != nil {
		return fmt.Errorf("%s: ledger signal: %w", t.workflowID, err)
	}
	var res workflows.TransferResult
	if err := s.client.GetWorkflow(ctx, t.workflowID, "").Get(ctx, &res); err != nil {
		return fmt.Errorf("%s: %w", t.workflowID, err)
	}
	if res.Status != workflows.StatusSettled {
		return fmt.Errorf("%s ended %s, want %s", t.workflowID, res.Status, workflows.StatusSettled)
	}
	return nil
}

// pathActions reads the closed workflows' histories and counts their Actions.
func (s *stack) pathActions(ctx context.Context, path, what string, workflowIDs []string) (report.PathActions, error) {
	histories := make([][]*historypb.HistoryEvent, 0, len(workflowIDs))
	for _, id := range workflowIDs {
		h, err := s.history(ctx, id)
		if err != nil {
			return report.PathActions{}, err
		}
		histories = append(histories, h)
	}
	return report.NewPathActions(path, what, workflowIDs[0], histories), nil
}

// history is every event of a workflow's latest run.
func (s *stack) history(ctx context.Context, workflowID string) ([]*historypb.HistoryEvent, error) {
	var out []*historypb.HistoryEvent
	it := s.client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("history of %s: no events", workflowID)
	}
	return out, nil
}
