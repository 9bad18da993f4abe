package signalspan

import (
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestQueueKeepsDeliveryOrderPerSignal: spans come back in the order their signals were delivered, per signal
// name, and a signal with no span left (or never delivered) gives nil.
func TestQueueKeepsDeliveryOrderPerSignal(t *testing.T) {
	q := &queue{byName: map[string][]any{}}
	q.push("a", "a1")
	q.push("b", "b1")
	q.push("a", nil) // delivered during a replay: no span, but it keeps its place
	q.push("a", "a3")
	for _, want := range []struct {
		name string
		span any
	}{{"a", "a1"}, {"b", "b1"}, {"b", nil}, {"a", nil}, {"a", "a3"}, {"a", nil}, {"c", nil}} {
		if got := q.pop(want.name); got != want.span {
			t.Fatalf("pop(%s) = %v, want %v", want.name, got, want.span)
		}
	}
	if len(q.byName) != 0 {
		t.Fatalf("queue keeps %v after every signal was received", q.byName)
	}
}

// stamp stands in for the tracing interceptor: it puts a span under SpanContextKey on each signal's context.
type stamp struct {
	interceptor.WorkerInterceptorBase
}

func (*stamp) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &stampInbound{}
	i.Next = next
	return i
}

type stampInbound struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (i *stampInbound) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	return i.Next.HandleSignal(workflow.WithValue(ctx, SpanContextKey, "span-of-"+in.SignalName), in)
}

// receiveOne takes one "go" signal and returns the span Received gives it.
func receiveOne(ctx workflow.Context) (string, error) {
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	span, _ := Span(Received(ctx, "go")).(string)
	return span, nil
}

// Only the listed workflow types keep a span queue: a listed one gets its signal's span back from Received, any
// other keeps none (so nothing piles up in a workflow that never calls Received).
func TestInterceptorQueuesOnlyForTheListedTypes(t *testing.T) {
	for _, c := range []struct {
		name string
		want string
	}{{"Listed", "span-of-go"}, {"Other", ""}} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&stamp{}, Interceptor("Listed").(interceptor.WorkerInterceptor)}})
		env.RegisterWorkflowWithOptions(receiveOne, workflow.RegisterOptions{Name: c.name})
		env.RegisterDelayedCallback(func() { env.SignalWorkflow("go", nil) }, time.Second)
		env.ExecuteWorkflow(c.name)
		var got string
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: Received gave span %q, want %q", c.name, got, c.want)
		}
	}
}
