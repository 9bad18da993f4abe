// Package signalspan lets a workflow run the work a signal causes under that signal's span, so one trace shows
// webhook -> signal -> activity even though the workflow takes its signals from channels in its main loop.
//
// The Temporal SDK's tracing interceptor opens a HandleSignal span for each signal, but only around the SDK's
// own handling (putting the signal on its channel): the activities the main loop schedules after it receives the
// signal would be children of the workflow's RunWorkflow span, in the trace of whoever started the workflow.
// Interceptor (installed after the tracing interceptor) remembers, per signal name and in delivery order, the span
// the tracing interceptor put on the signal's context; Received hands the workflow the span of the signal it has
// just taken from its channel, as a workflow.Context value under SpanContextKey, where the tracing interceptor
// looks for the parent of the next activity it starts.
//
// Nothing here issues a command or changes what a workflow does: the values only choose span parents, so a
// replay takes the same path with or without tracing. During a replay the tracing interceptor opens no span and
// Received returns its context unchanged (or with a span the interceptor ignores while replaying).
package signalspan

import (
	"slices"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

type spanKey struct{}

// SpanContextKey is the workflow.Context key under which the tracing interceptor keeps its current span; the
// interceptor must be built with it (go.temporal.io/sdk/contrib/opentelemetry TracerOptions.SpanContextKey).
var SpanContextKey any = spanKey{}

type queueKey struct{}

// queue holds, per signal name, the spans of the signals delivered and not yet received, oldest first.
type queue struct {
	byName map[string][]any // only indexed, never iterated
}

func (q *queue) push(name string, span any) { q.byName[name] = append(q.byName[name], span) }

func (q *queue) pop(name string) any {
	spans := q.byName[name]
	if len(spans) == 0 {
		return nil
	}
	span := spans[0]
	spans[0] = nil
	if len(spans) == 1 {
		delete(q.byName, name)
	} else {
		q.byName[name] = spans[1:]
	}
	return span
}

// Interceptor records each signal's span for Received, in the workflows of the given types only (every workflow
// when none is given): a workflow that never calls Received would keep its signals' spans until it leaves the
// cache. List it after the tracing interceptor in client.Options.Interceptors (the first listed is the outermost),
// so it sees the span the tracing interceptor opened for the signal.
func Interceptor(workflowTypes ...string) interceptor.Interceptor { return &root{types: workflowTypes} }

type root struct {
	interceptor.InterceptorBase
	types []string
}

func (r *root) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	if len(r.types) > 0 && !slices.Contains(r.types, workflow.GetInfo(ctx).WorkflowType.Name) {
		return next // Received finds no queue there and returns its context as it is
	}
	i := &inbound{q: &queue{byName: map[string][]any{}}}
	i.Next = next
	return i
}

type inbound struct {
	interceptor.WorkflowInboundInterceptorBase
	q *queue
}

func (i *inbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	return i.Next.ExecuteWorkflow(workflow.WithValue(ctx, queueKey{}, i.q), in)
}

func (i *inbound) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	i.q.push(in.SignalName, ctx.Value(SpanContextKey))
	return i.Next.HandleSignal(ctx, in)
}

// Received returns ctx under the span of the signal named name that the workflow has just taken from its channel.
// Call it once after each Receive on that signal's channel, and for no other, so the spans stay in step with the
// signals. Without the interceptor (tracing off) it returns ctx.
func Received(ctx workflow.Context, name string) workflow.Context {
	q, _ := ctx.Value(queueKey{}).(*queue)
	if q == nil {
		return ctx
	}
	return With(ctx, q.pop(name))
}

// Span is the span ctx runs under (what With takes back); nil when none.
func Span(ctx workflow.Context) any { return ctx.Value(SpanContextKey) }

// With returns ctx under span, a value Span returned; a nil span returns ctx.
func With(ctx workflow.Context, span any) workflow.Context {
	if span == nil {
		return ctx
	}
	return workflow.WithValue(ctx, SpanContextKey, span)
}
