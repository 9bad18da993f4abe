package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/workflows"
)

const (
	testWID     = "deposit-chaos-00000"
	testSession = "s1"
	testConnect = "c1"
	testRef     = "CHAOSUSER00000"
)

var testOutageStart = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func eventKey(st connect.Status) string { return "deposit:" + testConnect + ":" + string(st) }

// delivery is one webhook copy of a life event of the test session, answered as given.
func delivery(st connect.Status, attempts ...connecttest.Attempt) connecttest.Delivery {
	body := fmt.Sprintf(`{"event":"connect.deposit.%s","deposit":{"id":%q},"session":{"id":%q}}`, st, testConnect, testSession)
	d := connecttest.Delivery{ID: "d-" + string(st), PayloadType: connecttest.PayloadTypeDeposit, Event: "connect.deposit." + string(st),
		SessionID: testSession, Body: []byte(body), Attempts: attempts}
	for _, a := range attempts {
		d.Delivered = d.Delivered || (a.Status >= 200 && a.Status < 300)
	}
	return d
}

func answered(outcome string) connecttest.Attempt {
	return connecttest.Attempt{At: testOutageStart.Add(-time.Hour), Status: 200, Answer: `{"outcome":"` + outcome + `"}`}
}

// cleanEvidence is one confirmed deposit whose three events were each signalled once and taken once.
func cleanEvidence() evidence {
	d := &driven{plan: transferPlan{Kind: connect.KindDeposit, TransferID: "chaos-00000", ReferenceID: testRef,
		Scenario: scConfirmed}, sessionID: testSession}
	rec := transferRecord{status: workflows.StatusConfirmed, sessionID: testSession, connectID: testConnect}
	for _, st := range []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted, connect.StatusConfirmed} {
		rec.events = append(rec.events, workflows.EventRecord{Source: "connect", Name: "connect.deposit." + string(st),
			Status: string(st), DedupeKey: eventKey(st), Effect: workflows.EffectApplied})
	}
	return evidence{
		transfers: []*driven{d},
		orphanOf:  map[string]string{},
		records:   map[string]transferRecord{testWID: rec},
		missing:   map[string]string{},
		reviews:   map[string]workflows.ReviewState{},
		sessions:  []connecttest.SessionInfo{{ID: testSession, Kind: connect.KindDeposit, RequestID: connect.SessionRequestID(testWID), ReferenceID: testRef, TransferID: testConnect}},
		stats:     connecttest.Stats{SessionsByReference: map[string]int64{testRef: 1}},
		deliveries: []connecttest.Delivery{
			delivery(connect.StatusInitiated, answered("signaled")),
			delivery(connect.StatusBroadcasted, answered("signaled")),
			delivery(connect.StatusConfirmed, answered("signaled")),
		},
		platform: []platformtest.Entry{platformEntry(1, "awaiting_user"), platformEntry(2, "initiated"),
			platformEntry(3, "broadcasted"), platformEntry(4, "confirmed")},
	}
}

// platformEntry is the platform's ledger entry of the test deposit's seq-th notification.
func platformEntry(seq int, status string) platformtest.Entry {
	var m platformtest.Message
	m.Type = "deposit." + status
	m.Data.WorkflowID, m.Data.Kind, m.Data.Status, m.Data.Sequence = testWID, "deposit", status, seq
	return platformtest.Entry{WebhookID: fmt.Sprintf("%s:%d", testWID, seq), Message: m, Action: platformtest.Action(m)}
}

// TestVerify checks that each check passes on a clean record and fails on the fault it exists to catch.
func TestVerify(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(*evidence)
		fails []string // the checks that must fail; every other must pass
	}{
		{"clean", func(*evidence) {}, nil},
		{"transfer record missing", func(ev *evidence) {
			delete(ev.records, testWID)
			ev.missing[testWID] = "not found"
		}, []string{checkFinal, checkLost, checkUnaccepted}},
		{"wrong final state", func(ev *evidence) {
			r := ev.records[testWID]
			r.status = workflows.StatusFailed
			ev.records[testWID] = r
		}, []string{checkFinal, checkPlatform}},
		{"final outcome never reached the platform", func(ev *evidence) { ev.platform = ev.platform[:3] }, []string{checkPlatform}},
		{"credited twice", func(ev *evidence) {
			ev.platform = append(ev.platform, platformEntry(5, "confirmed"))
		}, []string{checkPlatform}},
		{"a notification refused by the platform", func(ev *evidence) {
			ev.platformRejected = []string{"verify: platformhook: no signature matches"}
		}, []string{checkPlatform}},
		{"a notification out of sequence", func(ev *evidence) {
			ev.platform[1], ev.platform[2] = ev.platform[2], ev.platform[1]
		}, []string{checkPlatform}},
		{"still running", func(ev *evidence) {
			r := ev.records[testWID]
			r.running = true
			ev.records[testWID] = r
		}, []string{checkFinal}},
		{"a signaled 2xx the workflow never took", func(ev *evidence) {
			r := ev.records[testWID]
			r.events = r.events[:2]
			ev.records[testWID] = r
		}, []string{checkLost, checkUnaccepted}},
		{"more signaled 2xx than signals taken", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusConfirmed, answered("signaled")))
		}, []string{checkUnaccepted}},
		{"duplicates taken beyond the 2xx answers are fine", func(ev *evidence) {
			r := ev.records[testWID]
			r.events[2].Duplicates = 3
			ev.records[testWID] = r
		}, nil},
		{"acknowledged while the transfer still runs", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusInitiated, answered("acknowledged")))
			ev.transfers[0].plan.Scenario = scUnexpected
			r := ev.records[testWID]
			r.running, r.status = true, workflows.StatusBroadcasted
			ev.records[testWID] = r
			ev.reviews[workflows.ReviewWorkflowID(eventKey(connect.StatusUnexpected))] = reviewOf(workflows.ReviewUnexpected, testWID, connect.StatusUnexpected)
		}, []string{checkUnaccepted}},
		{"acknowledged after close, covered", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusInitiated, answered("acknowledged")))
		}, nil},
		{"acknowledged after close, not covered", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusFailed, answered("acknowledged")))
		}, []string{checkLost, checkUnaccepted}},
		{"answered review, no review holds it", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusFailed, answered("review")))
		}, []string{checkLost, checkUnaccepted}},
		{"an event applied twice", func(ev *evidence) {
			r := ev.records[testWID]
			r.events = append(r.events, workflows.EventRecord{Source: "connect", Name: "connect.deposit.confirmed",
				Status: "confirmed", DedupeKey: "deposit:other:confirmed", Effect: workflows.EffectApplied})
			ev.records[testWID] = r
		}, []string{checkTwice}},
		{"one key recorded twice", func(ev *evidence) {
			r := ev.records[testWID]
			r.events = append(r.events, r.events[0])
			r.events[3].Effect = workflows.EffectLate
			ev.records[testWID] = r
		}, []string{checkTwice}},
		{"two sessions for one transfer", func(ev *evidence) {
			ev.sessions = append(ev.sessions, connecttest.SessionInfo{ID: "s2", RequestID: connect.SessionRequestID(testWID), ReferenceID: testRef})
		}, []string{checkSessions}},
		{"the second start got another session", func(ev *evidence) {
			ev.transfers[0].plan.StartTwice = true
			ev.transfers[0].otherStart = "s2"
		}, []string{checkSessions}},
		{"a 2xx while Temporal was down", func(ev *evidence) {
			ev.outages = []outage{{Down: testOutageStart, Up: testOutageStart.Add(20 * time.Second), How: "killed"}}
			ev.deliveries[0].Attempts = []connecttest.Attempt{{At: testOutageStart.Add(time.Second), Status: 200,
				Answer: `{"outcome":"signaled"}`}}
		}, []string{checkOutage}},
		{"503s while Temporal was down", func(ev *evidence) {
			ev.outages = []outage{{Down: testOutageStart, Up: testOutageStart.Add(20 * time.Second), How: "killed"}}
			ev.deliveries[0].Attempts = []connecttest.Attempt{{At: testOutageStart.Add(time.Second), Status: 503},
				answered("signaled")}
		}, nil},
		{"a 2xx sent just before the restart may be answered after it", func(ev *evidence) {
			ev.outages = []outage{{Down: testOutageStart, Up: testOutageStart.Add(20 * time.Second), How: "killed"}}
			ev.deliveries[0].Attempts = []connecttest.Attempt{{At: testOutageStart.Add(time.Second), Status: 503},
				{At: testOutageStart.Add(19 * time.Second), Status: 200, Answer: `{"outcome":"signaled"}`}}
		}, nil},
		{"an outage no request met", func(ev *evidence) {
			ev.outages = []outage{{Down: testOutageStart, Up: testOutageStart.Add(20 * time.Second), How: "killed"}}
		}, []string{checkOutage}},
		{"a probe answered 200", func(ev *evidence) {
			ev.posts = []post{{Route: "/v1/sdk-events", Subject: testWID, Key: "event", Status: 200, Outcome: "signaled", Probe: true}}
		}, []string{checkOutage}},
		{"an event never delivered", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusFailed, connecttest.Attempt{Status: 503}))
		}, []string{checkUndelivered}},
		{"a copy given up, another delivered", func(ev *evidence) {
			ev.deliveries = append(ev.deliveries, delivery(connect.StatusConfirmed, connecttest.Attempt{Status: 503}))
		}, nil},
		{"a review nobody planned", func(ev *evidence) {
			ev.reviews["review-deposit:c1:broadcasted"] = reviewOf(workflows.ReviewNoTransfer, "", connect.StatusBroadcasted)
		}, []string{checkUnplanned}},
		{"a conflict without its review", func(ev *evidence) {
			ev.transfers[0].plan.Scenario = scConflict
			r := ev.records[testWID]
			r.status = workflows.StatusFailed
			ev.records[testWID] = r
			ev.platform[3] = platformEntry(4, "failed")
		}, []string{checkReviewed}},
		{"a conflict review for another transfer", func(ev *evidence) {
			ev.transfers[0].plan.Scenario = scConflict
			r := ev.records[testWID]
			r.status = workflows.StatusFailed
			ev.records[testWID] = r
			ev.platform[3] = platformEntry(4, "failed")
			ev.reviews[workflows.ReviewWorkflowID(eventKey(connect.StatusConfirmed))] = reviewOf(workflows.ReviewClosedConflict, "deposit-other", connect.StatusConfirmed)
		}, []string{checkReviewed}},
		{"a conflict with its review", func(ev *evidence) {
			ev.transfers[0].plan.Scenario = scConflict
			r := ev.records[testWID]
			r.status = workflows.StatusFailed
			ev.records[testWID] = r
			ev.platform[3] = platformEntry(4, "failed")
			ev.reviews[workflows.ReviewWorkflowID(eventKey(connect.StatusConfirmed))] = reviewOf(workflows.ReviewClosedConflict, testWID, connect.StatusConfirmed)
		}, nil},
		{"an unmatched movement without its review", func(ev *evidence) {
			ev.unmatched = []string{"m1"}
		}, []string{checkReviewed}},
		{"an SDK close answered signaled, never taken", func(ev *evidence) {
			ev.posts = []post{{Route: "/v1/sdk-events", Subject: testWID, Key: "close", Status: 200, Outcome: "signaled"}}
		}, []string{checkLost, checkUnaccepted}},
		{"a ledger redelivery acknowledged by a transfer that took it", func(ev *evidence) {
			r := ev.records[testWID]
			r.events = append(r.events, workflows.EventRecord{Source: "ledger", DedupeKey: "ledger:m1", Effect: workflows.EffectApplied})
			ev.records[testWID] = r
			ev.posts = []post{{Route: "/webhooks/zerohash/balances", Subject: testWID, Key: "m1", Status: 200, Outcome: "acknowledged"}}
		}, nil},
		{"a ledger movement acknowledged by a transfer that never took it", func(ev *evidence) {
			ev.posts = []post{{Route: "/webhooks/zerohash/balances", Subject: testWID, Key: "m1", Status: 200, Outcome: "acknowledged"}}
		}, []string{checkLost, checkUnaccepted}},
		{"an onboarding without a token", func(ev *evidence) { ev.onboardings = 1 }, []string{checkOnboarding}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := cleanEvidence()
			c.spoil(&ev)
			checks, _ := verify(ev)
			must := map[string]bool{}
			for _, name := range c.fails {
				must[name] = true
			}
			for _, ch := range checks {
				switch {
				case must[ch.name] && ch.failures == 0:
					t.Errorf("%q passed, want it to fail", ch.name)
				case !must[ch.name] && ch.failures > 0:
					t.Errorf("%q failed: %q", ch.name, ch.details)
				}
				delete(must, ch.name)
			}
			for name := range must {
				t.Errorf("no check named %q", name)
			}
		})
	}
}

func reviewOf(reason, transfer string, st connect.Status) workflows.ReviewState {
	e := connect.Event{Name: "connect.deposit." + string(st), Kind: connect.KindDeposit, Status: st, TransferID: testConnect,
		SessionID: testSession, DedupeKey: eventKey(st)}
	return workflows.ReviewState{Input: workflows.ReviewInput{Reason: reason, TransferWorkflowID: transfer},
		Status: workflows.StatusNeedsReview, Events: []workflows.ReviewedEvent{{Event: &e}}}
}

func TestGivenUp(t *testing.T) {
	gave := func(d connecttest.Delivery) connecttest.Delivery { d.Delivered = false; return d }
	failed := delivery(connect.StatusFailed, answered("signaled"))
	failed.SessionID = "s2"
	got := givenUp([]connecttest.Delivery{
		delivery(connect.StatusInitiated, answered("signaled")),
		gave(delivery(connect.StatusBroadcasted)),
		delivery(connect.StatusConfirmed, answered("signaled")),
		failed,
		func() connecttest.Delivery {
			d := gave(delivery(connect.StatusInitiated))
			d.SessionID = "s2"
			return d
		}(),
	})
	want := map[string]connecttest.Outcome{testSession: connecttest.OutcomeConfirmed, "s2": connecttest.OutcomeFailed}
	if len(got) != len(want) || got[testSession] != want[testSession] || got["s2"] != want["s2"] {
		t.Fatalf("givenUp = %v, want %v", got, want)
	}
}
