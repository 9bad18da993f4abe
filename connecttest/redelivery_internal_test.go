package connecttest

import (
	"slices"
	"testing"
	"time"
)

func TestRedeliveryBackoff(t *testing.T) {
	const ms = time.Millisecond
	var connect Redelivery
	connect.fill()
	tests := []struct {
		name string
		r    Redelivery
		want []time.Duration // the wait after each failed attempt but the last
	}{
		{"Connect's default: doubling from 250 ms", connect, []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}},
		// connect-facts.md: Zero Hash retries 4 times at 250 ms, then 3 times with exponential backoff.
		{"Zero Hash's published schedule", ZeroHashRedelivery, []time.Duration{250 * ms, 250 * ms, 250 * ms, 250 * ms, 500 * ms, time.Second, 2 * time.Second}},
		{"capped at Max", Redelivery{Base: ms, Max: 3 * ms, Attempts: 5, Flat: 1}, []time.Duration{ms, 2 * ms, 3 * ms, 3 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			for n := 1; n < tt.r.Attempts; n++ {
				got = append(got, tt.r.backoff(n))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("waits %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBalanceWebhooksFollowZeroHashsScheduleByDefault(t *testing.T) {
	var o Options
	o.fill()
	if o.BalanceRedelivery != ZeroHashRedelivery {
		t.Errorf("default BalanceRedelivery %+v, want Zero Hash's %+v", o.BalanceRedelivery, ZeroHashRedelivery)
	}
	if o.Redelivery.Flat != 0 || o.Redelivery.Attempts != 8 {
		t.Errorf("default Connect Redelivery %+v changed", o.Redelivery)
	}
	o = Options{BalanceRedelivery: Redelivery{Attempts: 3}}
	o.fill()
	if want := (Redelivery{Base: 250 * time.Millisecond, Max: 30 * time.Second, Attempts: 3}); o.BalanceRedelivery != want {
		t.Errorf("BalanceRedelivery %+v, want the given fields kept and the rest filled: %+v", o.BalanceRedelivery, want)
	}
}
