package signalspan

import "testing"

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
