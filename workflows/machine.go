package workflows

import (
	"time"

	"github.com/connectflow/connectflow/connect"
)

// This file is the transfer's state machine: its statuses, the events it reacts to, the transition table, each
// status's deadline and what happens at it, what a final status covers, and how far along each status is.
// Everything else (the workflow in transfer.go, the bridge, the starter) asks this file. Adding a status touches
// this file, machine_test.go and docs/state-machine.md, nothing else.
//
//	creating_session ──session_refused──▶ session_failed
//	      │ session_opened
//	      ▼
//	awaiting_user ──user_closed──────────▶ abandoned
//	      │       ──superseded───────────▶ superseded
//	      │       ──⏰ session_expired───▶ expired
//	      │ initiated      (broadcasted, confirmed and failed also skip ahead from any status before them)
//	      ▼
//	initiated ──broadcasted──▶ broadcasted ──confirmed──▶ confirmed ──ledger (await_ledger)──▶ settled
//	      │                         │      ──failed─────▶ failed   └──⏰ ledger_horizon─────▶ unsettled
//	      └──⏰ stall_timeout───────┴──▶ stalled ──confirmed | failed | resolve──▶ confirmed | failed
//	                                        │ ⏰ review_horizon
//	                                        ▼
//	                                    timed_out ──resolve──▶ confirmed | failed
//	                                    (a Connect outcome here is a conflict, kept for the person resolving it)
//
// confirmed goes straight to settled when the ledger movement came first (await_ledger).
// confirmed then failed (or the reverse), a ledger movement that does not match, an event for another Connect
// transfer, or any event a final status does not cover is a conflict: it changes nothing and goes to review
// (unless the transfer itself waits for a person: stalled, timed_out).

// Status is where a transfer stands. The happy path follows the guide:
// awaiting_user -> initiated -> broadcasted -> confirmed | failed.
type Status string

const (
	StatusCreatingSession Status = "creating_session"
	StatusSessionFailed   Status = "session_failed" // Connect refused the session; no money moved
	StatusAwaitingUser    Status = "awaiting_user"
	StatusInitiated       Status = "initiated"
	StatusBroadcasted     Status = "broadcasted"
	StatusStalled         Status = "stalled" // initiated, no final event within the stall timeout; still waiting
	StatusConfirmed       Status = "confirmed"
	StatusFailed          Status = "failed"
	StatusExpired         Status = "expired"    // the session expired before the user initiated
	StatusAbandoned       Status = "abandoned"  // the user closed the SDK before initiating
	StatusSuperseded      Status = "superseded" // a newer transfer for the same reference replaced the session
	StatusTimedOut        Status = "timed_out"  // no final event within the review horizon: open until a person resolves it
	StatusSettled         Status = "settled"    // confirmed and the Zero Hash ledger movement arrived
	StatusUnsettled       Status = "unsettled"  // confirmed, but no ledger movement within the review horizon
)

// Statuses are every status of a transfer, in the order of the lifecycle (the transfer API filters on them).
var Statuses = []Status{StatusCreatingSession, StatusSessionFailed, StatusAwaitingUser, StatusInitiated,
	StatusBroadcasted, StatusStalled, StatusConfirmed, StatusFailed, StatusExpired, StatusAbandoned, StatusSuperseded,
	StatusTimedOut, StatusSettled, StatusUnsettled}

// Event is what moves a transfer: a Connect webhook, an SDK callback, a ledger movement, an operator's decision,
// another transfer, or one of the transfer's own deadlines.
type Event string

const (
	EventSessionOpened  Event = "session_opened"  // Connect opened the session
	EventSessionRefused Event = "session_refused" // Connect refused the session
	EventInitiated      Event = "initiated"       // connect.StatusInitiated
	EventBroadcasted    Event = "broadcasted"     // connect.StatusBroadcasted
	EventConfirmed      Event = "confirmed"       // connect.StatusConfirmed
	EventFailed         Event = "failed"          // connect.StatusFailed
	EventLedger         Event = "ledger"          // a Zero Hash movement that matches the transfer
	EventLedgerMismatch Event = "ledger_mismatch" // a movement whose asset or amount is not the transfer's
	EventUserClosed     Event = "user_closed"     // the Auth SDK's close callback
	EventSuperseded     Event = "superseded"      // a newer transfer opened a session for the same reference
	EventResolveConfirm Event = "resolve_confirmed"
	EventResolveFail    Event = "resolve_failed"
	// Deadlines: the transfer's own timers.
	EventSessionExpired Event = "session_expired"
	EventStallTimeout   Event = "stall_timeout"
	EventReviewHorizon  Event = "review_horizon"
	EventLedgerHorizon  Event = "ledger_horizon"
)

// EventOf maps a Connect event status to the machine's event; "" for statuses that are not the transfer's
// lifecycle (unexpected, unknown).
func EventOf(s connect.Status) Event {
	switch s {
	case connect.StatusInitiated:
		return EventInitiated
	case connect.StatusBroadcasted:
		return EventBroadcasted
	case connect.StatusConfirmed:
		return EventConfirmed
	case connect.StatusFailed:
		return EventFailed
	}
	return ""
}

// Facts are what a transition may depend on besides the status.
type Facts struct {
	AwaitLedger bool // the transfer waits for its ledger movement after confirmed
	HasLedger   bool // the ledger movement arrived
	Resolved    bool // an operator decided the outcome
}

// awaitingLedger: confirmed and still waiting for the movement.
func (f Facts) awaitingLedger() bool { return f.AwaitLedger && !f.HasLedger && !f.Resolved }

// guard narrows a transition to some facts.
type guard uint8

const (
	always       guard = iota
	ledgerIn           // await_ledger and the movement is already in: confirmed goes straight to settled
	noLedgerWait       // everything but ledgerIn
	ledgerDue          // confirmed and still waiting for the movement
)

func (g guard) holds(f Facts) bool {
	settles := f.AwaitLedger && f.HasLedger
	switch g {
	case ledgerIn:
		return settles
	case noLedgerWait:
		return !settles
	case ledgerDue:
		return f.awaitingLedger()
	}
	return true
}

// Transition is one row of the table: in status From, event On (when Guard holds) leads to To.
type Transition struct {
	From  Status
	On    Event
	Guard guard
	To    Status
}

// confirmedRows: confirmed goes to settled when the movement came first, else to confirmed.
func confirmedRows(from Status) []Transition {
	return []Transition{
		{from, EventConfirmed, ledgerIn, StatusSettled},
		{from, EventConfirmed, noLedgerWait, StatusConfirmed},
		{from, EventFailed, always, StatusFailed},
		{from, EventLedger, always, from}, // kept until confirmed
	}
}

// Transitions is the whole table; the first row that matches wins. An event no row takes is late (behind the
// status, or covered by the final status), ignored, or a conflict: see Step.
var Transitions = func() []Transition {
	t := []Transition{
		{StatusCreatingSession, EventSessionOpened, always, StatusAwaitingUser},
		{StatusCreatingSession, EventSessionRefused, always, StatusSessionFailed},

		{StatusAwaitingUser, EventInitiated, always, StatusInitiated},
		{StatusAwaitingUser, EventBroadcasted, always, StatusBroadcasted},
		{StatusAwaitingUser, EventUserClosed, always, StatusAbandoned},
		{StatusAwaitingUser, EventSuperseded, always, StatusSuperseded},
		{StatusAwaitingUser, EventSessionExpired, always, StatusExpired},
	}
	t = append(t, confirmedRows(StatusAwaitingUser)...)
	t = append(t, Transition{StatusInitiated, EventBroadcasted, always, StatusBroadcasted},
		Transition{StatusInitiated, EventStallTimeout, always, StatusStalled})
	t = append(t, confirmedRows(StatusInitiated)...)
	t = append(t, Transition{StatusBroadcasted, EventStallTimeout, always, StatusStalled})
	t = append(t, confirmedRows(StatusBroadcasted)...)
	t = append(t, confirmedRows(StatusStalled)...)
	for _, s := range []Status{StatusStalled, StatusTimedOut} {
		t = append(t, Transition{s, EventResolveConfirm, always, StatusConfirmed},
			Transition{s, EventResolveFail, always, StatusFailed})
	}
	// timed_out takes no Connect outcome on its own: past the review horizon, a person decides (resolve).
	t = append(t, Transition{StatusTimedOut, EventLedger, always, StatusTimedOut})
	t = append(t, Transition{StatusStalled, EventReviewHorizon, always, StatusTimedOut},
		Transition{StatusConfirmed, EventLedger, ledgerDue, StatusSettled},
		Transition{StatusConfirmed, EventLedgerHorizon, ledgerDue, StatusUnsettled})
	return t
}()

// rank is how far along a status is; an event never moves a transfer to a lower rank, and a Connect event at or
// below the current rank is late.
var rank = map[Status]int{
	StatusCreatingSession: 0,
	StatusAwaitingUser:    1,
	StatusInitiated:       2,
	StatusBroadcasted:     3,
	StatusStalled:         3,
	StatusTimedOut:        3,
	StatusConfirmed:       4,
	StatusFailed:          4,
	StatusSettled:         5,
	StatusUnsettled:       5,
	StatusExpired:         9,
	StatusAbandoned:       9,
	StatusSuperseded:      9,
	StatusSessionFailed:   9,
}

// eventRank is how far along a Connect event says the transfer is.
var eventRank = map[Event]int{EventInitiated: 2, EventBroadcasted: 3, EventConfirmed: 4, EventFailed: 4}

// Progress is how far along status s is (0 creating_session .. 9 ended without money moving).
func Progress(s Status) int { return rank[s] }

// Known reports whether s is a status of this machine.
func (s Status) Known() bool { _, ok := rank[s]; return ok }

// Final reports whether a transfer in status s with facts f will not change any more: confirmed is final unless
// it still waits for its ledger movement; stalled and timed_out wait for an event or a person.
func Final(s Status, f Facts) bool {
	switch s {
	case StatusCreatingSession, StatusAwaitingUser, StatusInitiated, StatusBroadcasted, StatusStalled, StatusTimedOut:
		return false
	case StatusConfirmed:
		return !f.awaitingLedger()
	}
	return s.Known()
}

// Effects an event can have on a transfer, kept in its record.
const (
	EffectApplied  = "applied"
	EffectLate     = "late"     // behind the current state, or already covered by the final one
	EffectIgnored  = "ignored"  // informational, or not about this transfer's lifecycle
	EffectConflict = "conflict" // contradicts a final state or this transfer's Connect id: needs a person
)

// Step applies event e to a transfer in status s: the status it leads to and the event's effect. A conflict goes
// to review (the workflow opens one).
func Step(s Status, e Event, f Facts) (Status, string) {
	for _, t := range Transitions {
		if t.From == s && t.On == e && t.Guard.holds(f) {
			return t.To, EffectApplied
		}
	}
	if e == EventLedgerMismatch {
		return s, EffectConflict
	}
	if Covers(s, e) {
		return s, EffectLate
	}
	if r, lifecycle := eventRank[e]; lifecycle {
		if rank[s] < eventRank[EventConfirmed] && r <= rank[s] {
			return s, EffectLate // behind the status: e.g. initiated after broadcasted, or after stalled
		}
		// An outcome the status contradicts (failed after confirmed, anything after expired), or one no row
		// takes (timed_out waits for a person).
		return s, EffectConflict
	}
	if e == EventLedger && Final(s, f) {
		return s, EffectConflict // a movement for a transfer that did not or no longer expects one
	}
	return s, EffectIgnored
}

// Covers reports whether status f (final, or confirmed waiting for its ledger) already includes event e (broadcasted after confirmed, a redelivered
// confirmed, the movement of a settled transfer). An event it does not cover contradicts it, and money may have
// moved: a person looks. The bridge asks this about closed transfers.
func Covers(f Status, e Event) bool {
	switch f {
	case StatusConfirmed:
		return e == EventInitiated || e == EventBroadcasted || e == EventConfirmed || e == EventLedger
	case StatusSettled:
		return e == EventInitiated || e == EventBroadcasted || e == EventConfirmed || e == EventLedger
	case StatusUnsettled: // it gave up waiting: a movement that comes after all is news a person must see
		return e == EventInitiated || e == EventBroadcasted || e == EventConfirmed
	case StatusFailed:
		return e == EventInitiated || e == EventBroadcasted || e == EventFailed
	}
	return false
}

// Clock is when the things a deadline is measured from happened, and the transfer's timeouts.
type Clock struct {
	SessionOpened  time.Time
	SessionExpires time.Time // the session JWT's expiry
	Initiated      time.Time
	Confirmed      time.Time
	Timeouts       Timeouts
}

// Deadline is a status's timer: when it fires, the event it delivers, and the summary shown on the timer in the UI.
type Deadline struct {
	At      time.Time
	On      Event
	Summary string
}

// DeadlineOf is the deadline of status s: awaiting_user ends expired at the session's expiry; initiated and
// broadcasted go stalled after the stall timeout from initiation; stalled goes timed_out at the review horizon
// from initiation; confirmed waiting for its ledger movement ends unsettled at the review horizon from
// confirmation. Other statuses have none (zero At).
func DeadlineOf(s Status, f Facts, c Clock) Deadline {
	switch s {
	case StatusAwaitingUser:
		at := c.SessionExpires
		if c.Timeouts.SessionExpiry > 0 {
			at = c.SessionOpened.Add(c.Timeouts.SessionExpiry)
		}
		return Deadline{at, EventSessionExpired, "session_expired: the user did not initiate; ends expired"}
	case StatusInitiated, StatusBroadcasted:
		return Deadline{c.Initiated.Add(orDefault(c.Timeouts.Stall, DefaultStallTimeout)), EventStallTimeout,
			"stall_timeout: no final event since initiation; goes stalled, still waiting"}
	case StatusStalled:
		return Deadline{c.Initiated.Add(orDefault(c.Timeouts.ReviewHorizon, DefaultReviewHorizon)), EventReviewHorizon,
			"review_horizon: still no final event; goes timed_out, open until a person resolves it"}
	case StatusConfirmed:
		if f.awaitingLedger() {
			return Deadline{c.Confirmed.Add(orDefault(c.Timeouts.ReviewHorizon, DefaultReviewHorizon)), EventLedgerHorizon,
				"ledger_horizon: no Zero Hash ledger movement since confirmed; ends unsettled"}
		}
	}
	return Deadline{}
}

// Resolvable reports whether an operator may decide the outcome of a transfer in status s.
func Resolvable(s Status) bool { return s == StatusStalled || s == StatusTimedOut }

// ResolveEvent is the event of an operator's outcome.
func ResolveEvent(outcome Status) Event {
	if outcome == StatusConfirmed {
		return EventResolveConfirm
	}
	return EventResolveFail
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
