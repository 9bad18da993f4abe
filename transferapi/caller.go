package transferapi

import (
	"context"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// HeaderCaller is the Temporal header that records, in the workflow history, which API caller started, signalled
// or updated a workflow: the WorkflowExecutionStarted, Signaled and UpdateAccepted events carry it.
const HeaderCaller = "connectflow-caller"

type callerKey struct{}

// withCaller marks ctx as a call made for caller.
func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// CallerPropagator writes the API caller's name into the HeaderCaller header of every start, signal and update
// the Temporal client sends. Put it in client.Options.ContextPropagators of the client given to New; Run does.
func CallerPropagator() workflow.ContextPropagator { return callerPropagator{} }

type callerPropagator struct{}

func (callerPropagator) Inject(ctx context.Context, w workflow.HeaderWriter) error {
	c, ok := callerOf(ctx)
	if !ok {
		return nil
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(c.Name)
	if err != nil {
		return err
	}
	w.Set(HeaderCaller, p)
	return nil
}

// The workflows do not read the header: history keeps it for audit.
func (callerPropagator) Extract(ctx context.Context, _ workflow.HeaderReader) (context.Context, error) {
	return ctx, nil
}

func (callerPropagator) InjectFromWorkflow(workflow.Context, workflow.HeaderWriter) error { return nil }

func (callerPropagator) ExtractToWorkflow(ctx workflow.Context, _ workflow.HeaderReader) (workflow.Context, error) {
	return ctx, nil
}
