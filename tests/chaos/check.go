package main

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/workflows"
)

// transferRecord is a transfer workflow's own record: its result when closed, its queried state when running.
type transferRecord struct {
	running   bool
	status    workflows.Status
	sessionID string
	connectID string
	ledger    *workflows.LedgerMovement
	events    []workflows.EventRecord
}

// find returns the record of the event with dedupe key key.
func (r transferRecord) find(key string) (workflows.EventRecord, bool) {
	for _, e := range r.events {
		if e.DedupeKey == key {
			return e, true
		}
	}
	return workflows.EventRecord{}, false
}

// taken is how many signals the workflow took under key: the first and its duplicates.
func (r transferRecord) taken(key string) int {
	if e, ok := r.find(key); ok {
		return 1 + e.Duplicates
	}
	return 0
}

// evidence is everything the checks read, gathered once the storm is over and every part is up again.
type evidence struct {
	transfers   []*driven
	orphanOf    map[string]string // orphan session id -> its request id
	records     map[string]transferRecord
	missing     map[string]string // workflow id -> why its record could not be read
	reviews     map[string]workflows.ReviewState
	sessions    []connecttest.SessionInfo
	stats       connecttest.Stats
	deliveries  []connecttest.Delivery
	posts       []post
	outages     []outage
	unmatched   []string
	onboarded   int
	onboardings int
	dropped     map[string]bool // movements whose balance webhooks were dropped during a bridge outage
	// platform is the platform's ledger of notifications; platformRejected the ones it refused (platform.go).
	platform         []platformtest.Entry
	platformRejected []string
}

// check is one row of the outcome table: what was checked, how many things were looked at, how many failed.
type check struct {
	name     string
	examined int
	failures int
	details  []string // the first few failures, for the log
}

const maxDetails = 8

func (c *check) fail(format string, args ...any) {
	c.failures++
	if len(c.details) < maxDetails {
		c.details = append(c.details, fmt.Sprintf(format, args...))
	}
}

// Names of the outcome rows, in the words.
const (
	checkFinal         = "transfers in their expected final state"
	checkLost          = "lost: a transfer, or an event answered 2xx, in no record"
	checkTwice         = "applied twice: an event, ledger movement or close applied more than once"
	checkSessions      = "sessions created twice for one transfer"
	checkReviewed      = "late or unmatched events missing from a review"
	checkUnplanned     = "reviews opened for events a transfer should have taken"
	checkUnaccepted    = "2xx answered for a signal Temporal did not accept"
	checkOutage        = "answers other than 503 while Temporal was down"
	checkUndelivered   = "events no copy of which was ever delivered, even after redelivery"
	checkOnboarding    = "onboarding tokens not issued"
	checkLeaks         = "secrets or PII found in logs"
	checkCrashes       = "processes that exited without being told to"
	checkNotInjected   = "planned faults that were not injected"
	checkDriverErrors  = "errors driving the traffic"
	checkNotReconciled = "transfers unsettled though their movement was in the ledger (dropped webhooks)"
)

// tally is the traffic the suite saw, for the report.
type tally struct {
	deliveries, distinct, copies, lateCopies, afterClose, attempts, redeliveries int
	byOutcome                                                                    map[string]int
	answered503InOutage, probes, givenUp                                         int
	duplicatesAbsorbed                                                           int
	sdkPosts, ledgerPosts                                                        int
	ledgerDropped, ledgerReconciled                                              int
}

// deliveryKey identifies one event of one session across its copies.
type deliveryKey struct{ session, key string }

// sessionEvent is one event name of one session, as the sandbox's delivery log names it.
type sessionEvent struct{ session, event string }

// deliveredEvents is the set of session events some copy of which was answered 2xx.
func deliveredEvents(dls []connecttest.Delivery) map[sessionEvent]bool {
	out := map[sessionEvent]bool{}
	for _, dl := range dls {
		if dl.Delivered {
			out[sessionEvent{dl.SessionID, dl.Event}] = true
		}
	}
	return out
}

// verify runs every check that reads Temporal's and the sandbox's records.
func verify(ev evidence) ([]*check, tally) {
	t := tally{byOutcome: map[string]int{}}
	bySession := map[string]*driven{}
	for _, d := range ev.transfers {
		if d.sessionID != "" {
			bySession[d.sessionID] = d
		}
	}
	final := &check{name: checkFinal}
	lost := &check{name: checkLost}
	twice := &check{name: checkTwice}
	sessions := &check{name: checkSessions}
	unaccepted := &check{name: checkUnaccepted}

	checkTransfers(ev, final, lost, twice, &t)
	checkSessionCounts(ev, sessions)
	signaled := checkDeliveries(ev, bySession, lost, unaccepted, &t)
	checkPosts(ev, lost, unaccepted, &t)
	// A workflow may take more signals than were answered 2xx (a bridge killed after the signal, before its
	// answer), never fewer.
	for dk, n := range signaled {
		d := bySession[dk.session]
		if taken := ev.records[d.plan.workflowID()].taken(dk.key); n > taken {
			unaccepted.fail("%s: %d deliveries of %s answered signaled, the workflow took %d", d.plan.workflowID(), n, dk.key, taken)
		}
	}
	reviews, unplanned := checkReviews(ev)
	outage := checkOutages(ev, &t)
	undelivered := &check{name: checkUndelivered}
	ever := deliveredEvents(ev.deliveries)
	reported := map[sessionEvent]bool{}
	for _, dl := range ev.deliveries {
		se := sessionEvent{dl.SessionID, dl.Event}
		if !reported[se] {
			reported[se] = true
			undelivered.examined++
			if !ever[se] {
				undelivered.fail("%s for session %s: no copy ever answered 2xx", dl.Event, dl.SessionID)
			}
		}
		if !dl.Delivered {
			t.givenUp++
		}
	}
	onboarding := &check{name: checkOnboarding, examined: ev.onboardings}
	for range ev.onboardings - ev.onboarded {
		onboarding.fail("an onboarding workflow returned no token")
	}
	reconciled := checkReconciled(ev, &t)
	return []*check{final, lost, twice, sessions, reviews, unplanned, unaccepted, outage, undelivered, onboarding, reconciled,
		checkPlatformLedger(ev)}, t
}

// checkReconciled: every transfer meant to settle whose balance webhook was dropped settled all the same, through
// reconciliation (GET /movements), with its movement; a dropped movement no transfer takes is checked as a review
// by the review checks.
func checkReconciled(ev evidence, t *tally) *check {
	c := &check{name: checkNotReconciled}
	t.ledgerDropped = len(ev.dropped)
	for _, d := range ev.transfers {
		if d.plan.Scenario != scSettled || !ev.dropped[d.plan.MovementID] {
			continue
		}
		c.examined++
		rec := ev.records[d.plan.workflowID()]
		switch {
		case rec.status != workflows.StatusSettled || rec.ledger == nil || rec.ledger.MovementID != d.plan.MovementID:
			c.fail("%s: %s, its movement %s dropped and never reconciled", d.plan.workflowID(), rec.status, d.plan.MovementID)
		case rec.ledger.Via == workflows.LedgerViaReconciliation:
			t.ledgerReconciled++
		}
	}
	return c
}

// checkTransfers checks each transfer's end state and that its record applied every event once.
func checkTransfers(ev evidence, final, lost, twice *check, t *tally) {
	for _, d := range ev.transfers {
		wid := d.plan.workflowID()
		final.examined++
		twice.examined++
		rec, ok := ev.records[wid]
		if !ok {
			lost.fail("%s: no record (%s)", wid, ev.missing[wid])
			final.fail("%s: no record", wid)
			continue
		}
		want := d.plan.Scenario.expected()
		wantRunning := d.plan.Scenario == scUnexpected
		switch {
		case rec.status != want:
			final.fail("%s (%s): status %s, want %s", wid, d.plan.Scenario, rec.status, want)
		case rec.running != wantRunning:
			final.fail("%s (%s): running=%v, want %v", wid, d.plan.Scenario, rec.running, wantRunning)
		case d.plan.Scenario == scSettled && (rec.ledger == nil || rec.ledger.MovementID != d.plan.MovementID):
			final.fail("%s: settled without its movement %s", wid, d.plan.MovementID)
		case d.plan.Scenario == scUnsettled && rec.ledger != nil:
			final.fail("%s: unsettled, yet holds movement %s", wid, rec.ledger.MovementID)
		}
		seen := map[string]bool{}
		applied := map[string]int{}
		for _, e := range rec.events {
			t.duplicatesAbsorbed += e.Duplicates
			if seen[e.DedupeKey] {
				twice.fail("%s: two records of %s", wid, e.DedupeKey)
			}
			seen[e.DedupeKey] = true
			if e.Effect == workflows.EffectApplied {
				applied[e.Source+":"+e.Name+":"+e.Status]++
			}
		}
		for what, n := range applied {
			if n > 1 {
				twice.fail("%s: %s applied %d times", wid, what, n)
			}
		}
	}
}

// checkSessionCounts checks that the sandbox opened exactly one session per transfer, the one its record holds.
func checkSessionCounts(ev evidence, c *check) {
	byRequest := map[string][]string{}
	for _, s := range ev.sessions {
		byRequest[s.RequestID] = append(byRequest[s.RequestID], s.ID)
	}
	for _, d := range ev.transfers {
		wid := d.plan.workflowID()
		c.examined++
		ids := byRequest[connect.SessionRequestID(wid)] // the request_id the worker derives from the workflow id
		switch {
		case len(ids) != 1:
			c.fail("%s: %d sessions opened for it", wid, len(ids))
		case ev.stats.SessionsByReference[d.plan.ReferenceID] != 1:
			c.fail("%s: %d sessions opened for reference %s", wid, ev.stats.SessionsByReference[d.plan.ReferenceID], d.plan.ReferenceID)
		case d.sessionID != ids[0]:
			c.fail("%s: start returned session %s, the sandbox opened %s", wid, d.sessionID, ids[0])
		case d.plan.StartTwice && d.otherStart != ids[0]:
			c.fail("%s: the second start returned session %q, not %s", wid, d.otherStart, ids[0])
		case ev.records[wid].sessionID != "" && ev.records[wid].sessionID != ids[0]:
			c.fail("%s: record holds session %s, the sandbox opened %s", wid, ev.records[wid].sessionID, ids[0])
		}
	}
}

// checkDeliveries accounts for every 2xx the bridge gave a Connect webhook: the event must be in the transfer's
// record (signaled), in its review (review, review_closed), or covered by the closed transfer's final state
// (acknowledged). It returns the signaled answers per event, for the count check.
func checkDeliveries(ev evidence, bySession map[string]*driven, lost, unaccepted *check, t *tally) map[deliveryKey]int {
	signaled := map[deliveryKey]int{}
	delivered := map[deliveryKey]bool{}
	accounted := map[deliveryKey]bool{}
	firstSeen := map[deliveryKey]bool{}
	for _, dl := range ev.deliveries {
		t.deliveries++
		t.attempts += len(dl.Attempts)
		t.redeliveries += max(len(dl.Attempts)-1, 0)
		e, err := connect.ParseEvent(dl.Body)
		if err != nil {
			unaccepted.fail("delivery %s: body does not parse: %v", dl.ID, err)
			continue
		}
		dk := deliveryKey{dl.SessionID, e.DedupeKey}
		if firstSeen[dk] {
			t.copies++
		} else {
			firstSeen[dk] = true
			t.distinct++
		}
		d := bySession[dl.SessionID]
		_, orphan := ev.orphanOf[dl.SessionID]
		for _, a := range dl.Attempts {
			if a.Status < 200 || a.Status >= 300 {
				continue
			}
			unaccepted.examined++
			outcome := answerOutcome([]byte(a.Answer))
			t.byOutcome[outcome]++
			delivered[dk] = true
			var ok bool
			var why string
			switch {
			case d == nil && !orphan:
				why = "a session the suite did not open"
			case outcome == "signaled" && d != nil:
				rec := ev.records[d.plan.workflowID()]
				_, ok = rec.find(e.DedupeKey)
				signaled[dk]++
				why = "answered signaled, not in " + d.plan.workflowID() + "'s record"
			case outcome == "review" || outcome == "review_closed":
				ok = reviewHolds(ev.reviews, e.DedupeKey)
				why = "answered " + outcome + ", no review holds it"
			case outcome == "acknowledged" && d != nil:
				rec := ev.records[d.plan.workflowID()]
				ok = !rec.running && workflows.Covers(rec.status, workflows.EventOf(e.Status))
				t.afterClose++
				why = fmt.Sprintf("answered acknowledged, but %s is %s (running=%v)", d.plan.workflowID(), rec.status, rec.running)
			default:
				why = "answered " + a.Answer
			}
			if ok {
				accounted[dk] = true
			} else {
				unaccepted.fail("%s %s: %s", dl.Event, dl.SessionID, why)
			}
		}
	}
	for dk := range delivered {
		lost.examined++
		if !accounted[dk] {
			lost.fail("event %s of session %s: answered 2xx, in no record", dk.key, dk.session)
		}
	}
	return signaled
}

// reviewHolds reports whether the review for a Connect event's dedupe key holds the event.
func reviewHolds(reviews map[string]workflows.ReviewState, key string) bool {
	rv, ok := reviews[workflows.ReviewWorkflowID(key)]
	if !ok {
		return false
	}
	for _, e := range rv.Events {
		if e.Event != nil && e.Event.DedupeKey == key {
			return true
		}
	}
	return false
}

// ledgerReviewHolds reports whether the review of a movement holds it.
func ledgerReviewHolds(reviews map[string]workflows.ReviewState, movementID string) bool {
	rv, ok := reviews[workflows.ReviewWorkflowID("ledger:"+movementID)]
	if !ok {
		return false
	}
	for _, e := range rv.Events {
		if e.Ledger != nil && e.Ledger.MovementID == movementID {
			return true
		}
	}
	return false
}

// checkPosts accounts for every 2xx the bridge gave the suite's own SDK callbacks and balance webhooks.
func checkPosts(ev evidence, lost, unaccepted *check, t *tally) {
	type subjectKey struct{ subject, key string }
	signaled := map[subjectKey]int{}
	for _, p := range ev.posts {
		if p.Probe {
			continue
		}
		switch p.Route {
		case bridge.PathSDKEvents:
			t.sdkPosts++
		case bridge.PathZeroHashBalances:
			t.ledgerPosts++
		}
		if p.Status < 200 || p.Status >= 300 {
			continue
		}
		unaccepted.examined++
		lost.examined++
		rec, isTransfer := ev.records[p.Subject]
		var ok bool
		switch {
		case p.Route == bridge.PathSDKEvents && p.Outcome == "signaled" && isTransfer:
			signaled[subjectKey{p.Subject, p.Key}]++
			ok = sdkTaken(rec, p.Key) > 0
		case p.Route == bridge.PathSDKEvents && p.Outcome == "acknowledged" && isTransfer:
			ok = !rec.running
		case p.Route == bridge.PathSDKEvents && p.Outcome == "duplicate" && isTransfer:
			ok = sdkTaken(rec, p.Key) > 0 // the bridge took the same callback before
		case p.Route == bridge.PathSDKEvents && p.Outcome == "not_forwarded":
			ok = true // a callback that changes no state: nothing for a transfer to take
		case p.Route == bridge.PathZeroHashBalances && p.Outcome == "signaled" && isTransfer:
			_, ok = rec.find("ledger:" + p.Key)
		case p.Route == bridge.PathZeroHashBalances && p.Outcome == "acknowledged" && isTransfer:
			_, took := rec.find("ledger:" + p.Key)
			ok = !rec.running && took // a redelivery of the movement the closed transfer took
		case p.Route == bridge.PathZeroHashBalances && (p.Outcome == "review" || p.Outcome == "review_closed"):
			ok = ledgerReviewHolds(ev.reviews, p.Key)
		}
		if !ok {
			unaccepted.fail("%s %s (%s): answered %d %s, not in its record", p.Route, p.Subject, p.Key, p.Status, p.Outcome)
			lost.fail("%s %s (%s): answered 2xx, in no record", p.Route, p.Subject, p.Key)
		}
	}
	for sk, n := range signaled {
		if taken := sdkTaken(ev.records[sk.subject], sk.key); n > taken {
			unaccepted.fail("%s: %d SDK %s callbacks answered signaled, the workflow took %d", sk.subject, n, sk.key, taken)
		}
	}
}

// sdkTaken is how many SDK callbacks of one type a transfer took, duplicates included.
func sdkTaken(rec transferRecord, typ string) int {
	n := 0
	for _, e := range rec.events {
		if e.Source == "sdk" && e.Name == typ {
			n += 1 + e.Duplicates
		}
	}
	return n
}

// expectedReview is a review the plan must have produced.
type expectedReview struct {
	id, reason, key, movement, transfer string
}

// plannedReviews lists the reviews the traffic must have opened: contradicting events after close, unexpected
// deposits, every event of an orphan session, and every unmatched ledger movement.
func plannedReviews(ev evidence) []expectedReview {
	var out []expectedReview
	for _, d := range ev.transfers {
		rec, ok := ev.records[d.plan.workflowID()]
		if !ok || rec.connectID == "" {
			continue // already a final-state failure; its reviews cannot be named without the Connect id
		}
		switch d.plan.Scenario {
		case scConflict:
			key := string(d.plan.Kind) + ":" + rec.connectID + ":" + string(connect.StatusConfirmed)
			out = append(out, expectedReview{workflows.ReviewWorkflowID(key), workflows.ReviewClosedConflict, key, "", d.plan.workflowID()})
		case scUnexpected:
			key := string(d.plan.Kind) + ":" + rec.connectID + ":" + string(connect.StatusUnexpected)
			out = append(out, expectedReview{workflows.ReviewWorkflowID(key), workflows.ReviewUnexpected, key, "", d.plan.workflowID()})
		case scUnsettled:
			// The transfer stopped waiting for its movement; when it comes after all, a person must see it.
			out = append(out, expectedReview{workflows.ReviewWorkflowID("ledger:" + d.plan.MovementID),
				workflows.ReviewClosedConflict, "", d.plan.MovementID, d.plan.workflowID()})
		}
	}
	for _, s := range ev.sessions {
		if _, ok := ev.orphanOf[s.ID]; !ok {
			continue
		}
		for _, st := range []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted, connect.StatusConfirmed} {
			key := string(s.Kind) + ":" + s.TransferID + ":" + string(st)
			out = append(out, expectedReview{workflows.ReviewWorkflowID(key), workflows.ReviewNoTransfer, key, "", ""})
		}
	}
	for _, id := range ev.unmatched {
		out = append(out, expectedReview{workflows.ReviewWorkflowID("ledger:" + id), workflows.ReviewUnmatchedLedger, "", id, ""})
	}
	return out
}

// checkReviews checks every planned review exists with its reason and event, and that no other review exists.
func checkReviews(ev evidence) (planned, unplanned *check) {
	planned = &check{name: checkReviewed}
	unplanned = &check{name: checkUnplanned, examined: len(ev.reviews)}
	want := map[string]bool{}
	for _, r := range plannedReviews(ev) {
		want[r.id] = true
		planned.examined++
		rv, ok := ev.reviews[r.id]
		switch {
		case !ok:
			planned.fail("%s: no such review", r.id)
		case rv.Input.Reason != r.reason:
			planned.fail("%s: reason %s, want %s", r.id, rv.Input.Reason, r.reason)
		case r.transfer != "" && rv.Input.TransferWorkflowID != r.transfer:
			planned.fail("%s: names transfer %q, want %s", r.id, rv.Input.TransferWorkflowID, r.transfer)
		case r.key != "" && !reviewHolds(ev.reviews, r.key):
			planned.fail("%s: does not hold its event", r.id)
		case r.movement != "" && !ledgerReviewHolds(ev.reviews, r.movement):
			planned.fail("%s: does not hold its movement", r.id)
		}
	}
	ids := make([]string, 0, len(ev.reviews))
	for id := range ev.reviews {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !want[id] {
			unplanned.fail("%s (%s)", id, ev.reviews[id].Input.Reason)
		}
	}
	return planned, unplanned
}

// checkOutages checks that while Temporal was down every webhook the bridge answered got a 503. Only requests
// sent at least answerBound before the restart count: one sent later may meet the restarted Temporal and be taken.
func checkOutages(ev evidence, t *tally) *check {
	c := &check{name: checkOutage}
	in := func(at time.Time) (outage, bool) {
		for _, o := range ev.outages {
			if !at.Before(o.Down) && at.Before(o.Up.Add(-answerBound)) {
				return o, true
			}
		}
		return outage{}, false
	}
	for _, dl := range ev.deliveries {
		for _, a := range dl.Attempts {
			if o, ok := in(a.At); ok {
				c.examined++
				if a.Status == http.StatusServiceUnavailable {
					t.answered503InOutage++
				} else {
					c.fail("%s (%s) sent %s into the %s outage: answered %d %s", dl.Event, dl.SessionID,
						a.At.Format(time.RFC3339Nano), o.How, a.Status, strings.TrimSpace(a.Answer+" "+a.Error))
				}
			}
		}
	}
	for _, p := range ev.posts {
		if !p.Probe {
			continue
		}
		t.probes++
		c.examined++
		// 429: the session's relay rate limit refused it before Temporal was asked; not taken either.
		if p.Status == http.StatusServiceUnavailable || p.Route == bridge.PathSDKEvents && p.Status == http.StatusTooManyRequests {
			t.answered503InOutage++
		} else {
			c.fail("probe %s %s: answered %d %s", p.Route, p.Subject, p.Status, p.Outcome)
		}
	}
	if len(ev.outages) > 0 && c.examined == 0 {
		c.fail("no request reached the bridge while Temporal was down: the outage checked nothing")
	}
	return c
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
