package workflows

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
)

var (
	noFacts     = Facts{}
	awaitLedger = Facts{AwaitLedger: true}
	ledgerIsIn  = Facts{AwaitLedger: true, HasLedger: true}
	allStatuses = []Status{StatusCreatingSession, StatusSessionFailed, StatusAwaitingUser, StatusInitiated, StatusBroadcasted, StatusStalled, StatusConfirmed, StatusFailed, StatusExpired, StatusAbandoned, StatusSuperseded, StatusTimedOut, StatusSettled, StatusUnsettled}
	allEvents   = []Event{EventSessionOpened, EventSessionRefused, EventInitiated, EventBroadcasted, EventConfirmed, EventFailed, EventLedger, EventLedgerMismatch, EventUserClosed, EventSuperseded, EventResolveConfirm, EventResolveFail, EventSessionExpired, EventStallTimeout, EventReviewHorizon, EventLedgerHorizon}
)

// Every transition of the machine, written out independently of the table: the test fails when a row is added,
// removed or changed without this list.
func TestEveryTransition(t *testing.T) {
	type c struct {
		from  Status
		on    Event
		facts Facts
		to    Status
	}
	cases := []c{
		{StatusCreatingSession, EventSessionOpened, noFacts, StatusAwaitingUser},
		{StatusCreatingSession, EventSessionRefused, noFacts, StatusSessionFailed},
		{StatusAwaitingUser, EventInitiated, noFacts, StatusInitiated},
		{StatusAwaitingUser, EventBroadcasted, noFacts, StatusBroadcasted},
		{StatusAwaitingUser, EventUserClosed, noFacts, StatusAbandoned},
		{StatusAwaitingUser, EventSuperseded, noFacts, StatusSuperseded},
		{StatusAwaitingUser, EventSessionExpired, noFacts, StatusExpired},
		{StatusInitiated, EventBroadcasted, noFacts, StatusBroadcasted},
		{StatusInitiated, EventStallTimeout, noFacts, StatusStalled},
		{StatusBroadcasted, EventStallTimeout, noFacts, StatusStalled},
		{StatusStalled, EventReviewHorizon, noFacts, StatusTimedOut},
		{StatusStalled, EventResolveConfirm, noFacts, StatusConfirmed},
		{StatusStalled, EventResolveFail, noFacts, StatusFailed},
		{StatusTimedOut, EventResolveConfirm, noFacts, StatusConfirmed},
		{StatusTimedOut, EventResolveFail, noFacts, StatusFailed},
		{StatusTimedOut, EventLedger, awaitLedger, StatusTimedOut},
		{StatusConfirmed, EventLedger, awaitLedger, StatusSettled},
		{StatusConfirmed, EventLedgerHorizon, awaitLedger, StatusUnsettled},
	}
	for _, from := range []Status{StatusAwaitingUser, StatusInitiated, StatusBroadcasted, StatusStalled} {
		cases = append(cases,
			c{from, EventConfirmed, noFacts, StatusConfirmed},
			c{from, EventConfirmed, awaitLedger, StatusConfirmed},
			c{from, EventConfirmed, ledgerIsIn, StatusSettled},
			c{from, EventFailed, noFacts, StatusFailed},
			c{from, EventFailed, ledgerIsIn, StatusFailed},
			c{from, EventLedger, awaitLedger, from})
	}
	taken := map[int]bool{}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/%+v", tc.from, tc.on, tc.facts), func(t *testing.T) {
			to, effect := Step(tc.from, tc.on, tc.facts)
			if to != tc.to || effect != EffectApplied {
				t.Fatalf("Step = %s %s, want %s applied", to, effect, tc.to)
			}
		})
		for i, row := range Transitions {
			if row.From == tc.from && row.On == tc.on && row.Guard.holds(tc.facts) {
				taken[i] = true
				break
			}
		}
	}
	for i, row := range Transitions {
		if !taken[i] {
			t.Errorf("row %d %+v is not walked by this test", i, row)
		}
	}
}

// What an event no row takes does: late when the status is past it or covers it, a conflict when it contradicts
// the status, ignored when it is not about money.
func TestEventsNoRowTakes(t *testing.T) {
	cases := []struct {
		from   Status
		on     Event
		facts  Facts
		effect string
	}{
		{StatusBroadcasted, EventInitiated, noFacts, EffectLate},
		{StatusStalled, EventInitiated, noFacts, EffectLate},
		{StatusStalled, EventBroadcasted, noFacts, EffectLate},
		{StatusTimedOut, EventBroadcasted, noFacts, EffectLate},
		{StatusTimedOut, EventConfirmed, noFacts, EffectConflict}, // a person decides after the horizon
		{StatusTimedOut, EventFailed, noFacts, EffectConflict},
		{StatusConfirmed, EventBroadcasted, noFacts, EffectLate},
		{StatusConfirmed, EventConfirmed, awaitLedger, EffectLate},
		{StatusConfirmed, EventFailed, awaitLedger, EffectConflict},
		{StatusConfirmed, EventFailed, noFacts, EffectConflict},
		{StatusConfirmed, EventLedger, noFacts, EffectLate}, // not waiting for one: covered
		{StatusSettled, EventConfirmed, ledgerIsIn, EffectLate},
		{StatusSettled, EventLedger, ledgerIsIn, EffectLate},
		{StatusUnsettled, EventLedger, awaitLedger, EffectConflict}, // it gave up waiting: news for a person
		{StatusUnsettled, EventConfirmed, awaitLedger, EffectLate},
		{StatusFailed, EventInitiated, noFacts, EffectLate},
		{StatusFailed, EventConfirmed, noFacts, EffectConflict},
		{StatusFailed, EventLedger, noFacts, EffectConflict},
		{StatusExpired, EventInitiated, noFacts, EffectConflict},
		{StatusAbandoned, EventConfirmed, noFacts, EffectConflict},
		{StatusSuperseded, EventInitiated, noFacts, EffectConflict},
		{StatusSessionFailed, EventConfirmed, noFacts, EffectConflict},
		{StatusInitiated, EventUserClosed, noFacts, EffectIgnored},
		{StatusInitiated, EventSuperseded, noFacts, EffectIgnored},
		{StatusSuperseded, EventSuperseded, noFacts, EffectIgnored},
		{StatusExpired, EventUserClosed, noFacts, EffectIgnored},
		{StatusInitiated, EventLedgerMismatch, noFacts, EffectConflict},
		{StatusConfirmed, EventLedgerMismatch, awaitLedger, EffectConflict},
	}
	for _, tc := range cases {
		to, effect := Step(tc.from, tc.on, tc.facts)
		if to != tc.from || effect != tc.effect {
			t.Errorf("Step(%s, %s, %+v) = %s %s, want %s %s", tc.from, tc.on, tc.facts, to, effect, tc.from, tc.effect)
		}
	}
}

func TestFinal(t *testing.T) {
	final := map[Status]bool{StatusSessionFailed: true, StatusFailed: true, StatusExpired: true, StatusAbandoned: true,
		StatusSuperseded: true, StatusSettled: true, StatusUnsettled: true, StatusConfirmed: true}
	for _, s := range allStatuses {
		if got := Final(s, noFacts); got != final[s] {
			t.Errorf("Final(%s) = %v, want %v", s, got, final[s])
		}
	}
	if Final(StatusTimedOut, noFacts) {
		t.Error("timed_out waits for a person: not final")
	}
	if Final(StatusConfirmed, awaitLedger) {
		t.Error("confirmed waiting for its ledger movement is not final")
	}
	if !Final(StatusConfirmed, Facts{AwaitLedger: true, Resolved: true}) {
		t.Error("a confirmed transfer an operator resolved is final")
	}
	if Final("no_such_status", noFacts) {
		t.Error("an unknown status is not final")
	}
	st := TransferState{Status: StatusConfirmed, AwaitLedger: true}
	if st.Final() {
		t.Error("TransferState.Final: confirmed awaiting the ledger")
	}
	st.Ledger = &LedgerMovement{MovementID: "m"}
	if !st.Final() {
		t.Error("TransferState.Final: confirmed with its movement")
	}
}

// Every status's deadline, and what happens at it.
func TestEveryDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	c := Clock{SessionOpened: t0, SessionExpires: t0.Add(time.Hour), Initiated: t0.Add(time.Minute), Confirmed: t0.Add(2 * time.Minute)}
	cases := []struct {
		s     Status
		facts Facts
		clock Clock
		at    time.Time
		on    Event
		to    Status
	}{
		{StatusAwaitingUser, noFacts, c, t0.Add(time.Hour), EventSessionExpired, StatusExpired},
		{StatusAwaitingUser, noFacts, withTimeouts(c, Timeouts{SessionExpiry: 10 * time.Minute}), t0.Add(10 * time.Minute), EventSessionExpired, StatusExpired},
		{StatusInitiated, noFacts, c, t0.Add(time.Minute + DefaultStallTimeout), EventStallTimeout, StatusStalled},
		{StatusBroadcasted, noFacts, withTimeouts(c, Timeouts{Stall: time.Hour}), t0.Add(time.Minute + time.Hour), EventStallTimeout, StatusStalled},
		{StatusStalled, noFacts, c, t0.Add(time.Minute + DefaultReviewHorizon), EventReviewHorizon, StatusTimedOut},
		{StatusStalled, noFacts, withTimeouts(c, Timeouts{ReviewHorizon: 48 * time.Hour}), t0.Add(time.Minute + 48*time.Hour), EventReviewHorizon, StatusTimedOut},
		{StatusConfirmed, awaitLedger, c, t0.Add(2*time.Minute + DefaultReviewHorizon), EventLedgerHorizon, StatusUnsettled},
	}
	for _, tc := range cases {
		d := DeadlineOf(tc.s, tc.facts, tc.clock)
		if !d.At.Equal(tc.at) || d.On != tc.on || d.Summary == "" {
			t.Errorf("DeadlineOf(%s) = %+v, want %s at %s with a summary", tc.s, d, tc.on, tc.at)
		}
		if to, effect := Step(tc.s, d.On, tc.facts); to != tc.to || effect != EffectApplied {
			t.Errorf("at %s's deadline: %s %s, want %s", tc.s, to, effect, tc.to)
		}
	}
	for _, s := range []Status{StatusCreatingSession, StatusTimedOut, StatusConfirmed, StatusSettled, StatusUnsettled,
		StatusFailed, StatusExpired, StatusAbandoned, StatusSuperseded, StatusSessionFailed} {
		if d := DeadlineOf(s, noFacts, c); !d.At.IsZero() {
			t.Errorf("%s has no deadline, got %+v", s, d)
		}
	}
}

func withTimeouts(c Clock, to Timeouts) Clock { c.Timeouts = to; return c }

func TestEveryStatusIsKnownAndRanked(t *testing.T) {
	for _, s := range allStatuses {
		if !s.Known() {
			t.Errorf("%s is not in the rank table", s)
		}
	}
	if len(Statuses) != len(allStatuses) {
		t.Errorf("Statuses has %d statuses, the test knows %d", len(Statuses), len(allStatuses))
	}
	if len(rank) != len(allStatuses) {
		t.Errorf("rank has %d statuses, the test knows %d: add the new one to allStatuses", len(rank), len(allStatuses))
	}
	for _, row := range Transitions {
		if Progress(row.To) < Progress(row.From) {
			t.Errorf("row %+v moves backwards", row)
		}
		if Final(row.From, Facts{}) && Final(row.From, Facts{AwaitLedger: true}) {
			t.Errorf("row %+v leaves a final status", row)
		}
	}
}

func TestCoversMatchesTheBridgeRule(t *testing.T) {
	// A closed transfer: the bridge acknowledges what it covers and sends the rest to review.
	if !Covers(StatusConfirmed, EventOf(connect.StatusBroadcasted)) || !Covers(StatusSettled, EventLedger) ||
		Covers(StatusUnsettled, EventLedger) || Covers(StatusFailed, EventConfirmed) || Covers(StatusExpired, EventInitiated) {
		t.Fatal("Covers does not say what the final statuses include")
	}
	if EventOf(connect.StatusUnexpected) != "" || EventOf(connect.StatusUnknown) != "" {
		t.Fatal("unexpected and unknown Connect statuses are not lifecycle events")
	}
}

// Random orders of events, with duplicates, deadlines and resolves: the machine never goes backwards, applies
// each event at most once, and a final status never changes.
func TestMachineProperties(t *testing.T) {
	for seed := range uint64(3000) {
		r := rand.New(rand.NewPCG(seed, 7))
		f := Facts{AwaitLedger: r.IntN(2) == 0}
		s := StatusCreatingSession
		if r.IntN(10) == 0 {
			s, _ = Step(s, EventSessionRefused, f)
		} else {
			s, _ = Step(s, EventSessionOpened, f)
		}
		applied := map[Event]int{}
		var history []string
		for range 4 + r.IntN(20) {
			var e Event
			switch n := r.IntN(10); {
			case n < 6:
				e = []Event{EventInitiated, EventBroadcasted, EventConfirmed, EventFailed, EventConfirmed}[r.IntN(5)]
			case n == 6:
				e = []Event{EventLedger, EventLedgerMismatch, EventUserClosed, EventSuperseded}[r.IntN(4)]
			case n == 7 && Resolvable(s):
				e = ResolveEvent([]Status{StatusConfirmed, StatusFailed}[r.IntN(2)])
				f.Resolved = true
			default:
				e = DeadlineOf(s, f, Clock{}).On
				if e == "" {
					continue
				}
			}
			wasFinal := Final(s, f)
			to, effect := Step(s, e, f)
			history = append(history, fmt.Sprintf("%s -%s-> %s (%s)", s, e, to, effect))
			if effect != EffectApplied && to != s {
				t.Fatalf("seed %d: a %s event changed the status: %v", seed, effect, history)
			}
			if Progress(to) < Progress(s) {
				t.Fatalf("seed %d: backwards: %v", seed, history)
			}
			if wasFinal && (to != s || effect == EffectApplied) {
				t.Fatalf("seed %d: a final status changed: %v", seed, history)
			}
			if effect == EffectApplied {
				if e == EventLedger {
					f.HasLedger = true
				}
				if _, lifecycle := eventRank[e]; lifecycle {
					if applied[e]++; applied[e] > 1 {
						t.Fatalf("seed %d: %s applied twice: %v", seed, e, history)
					}
					if again, eff := Step(to, e, f); eff == EffectApplied || again != to {
						t.Fatalf("seed %d: %s applies again after %s: %v", seed, e, to, history)
					}
				}
			}
			s = to
			if Final(s, f) && !wasFinal {
				// Once final, every event leaves it as it is.
				for _, e := range allEvents {
					if to, effect := Step(s, e, f); to != s || effect == EffectApplied {
						t.Fatalf("seed %d: final %s moved on %s to %s (%s): %v", seed, s, e, to, effect, history)
					}
				}
			}
		}
	}
}
