package main

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/workflows"
)

// Names the ceiling registers under on the worker, beside connectflow's own workflows.
const (
	minimalTransferName = "BenchMinimalTransfer"
	noopActivityName    = "BenchNoop"
	// eventsPerTransfer is a confirmed transfer's webhooks: initiated, broadcasted, confirmed.
	eventsPerTransfer = 3
)

// minimalTransfer is the ceiling of the transfer scenario: TransferWorkflow's shape on Temporal with none of its
// logic. It is started the same way (update-with-start, waiting on the session update), runs one no-op activity
// where TransferWorkflow opens the Connect session (its only activity), answers the update, takes three
// connect-event signals and completes. No search attributes, no state machine, no record.
func minimalTransfer(ctx workflow.Context) error {
	opened := false
	if err := workflow.SetUpdateHandler(ctx, workflows.UpdateSession, func(ctx workflow.Context) error {
		return workflow.Await(ctx, func() bool { return opened })
	}); err != nil {
		return err
	}
	actx := workflow.WithActivityOptions(ctx, workflows.SessionActivityOptions)
	if err := workflow.ExecuteActivity(actx, noopActivityName).Get(ctx, nil); err != nil {
		return err
	}
	opened = true
	events := workflow.GetSignalChannel(ctx, workflows.SignalConnectEvent)
	for range eventsPerTransfer {
		var s workflows.EventSignal
		events.Receive(ctx, &s)
	}
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// noop is the ceiling's activity: the round trip through Temporal without the work.
func noop(context.Context) error { return nil }

// registerCeiling adds the ceiling's workflow and activity to a connectflow worker, so both share its pollers.
func registerCeiling(w worker.Registry) {
	w.RegisterWorkflowWithOptions(minimalTransfer, workflow.RegisterOptions{Name: minimalTransferName})
	w.RegisterActivityWithOptions(noop, activity.RegisterOptions{Name: noopActivityName})
}
