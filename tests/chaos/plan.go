package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// scenario is how one transfer's life goes, and so where it must end.
type scenario uint8

const (
	scConfirmed  scenario = iota // the life plays out confirmed
	scFailed                     // the life plays out failed
	scSettled                    // confirmed, and the transfer waits for its Zero Hash ledger movement
	scConflict                   // failed; after it closed, Connect sends a contradicting confirmed: a review
	scAbandoned                  // the user closes the Auth SDK before initiating
	scExpired                    // nobody initiates: the session window passes
	scUnexpected                 // a deposit whose life ends in connect.deposit.unexpected: a review
	scUnsettled                  // confirmed; its ledger movement comes only after the wait for it ended: a review
	numScenarios
)

var scenarioNames = [numScenarios]string{"confirmed", "failed", "settled", "conflict", "abandoned", "expired", "unexpected", "unsettled"}

func (s scenario) String() string { return scenarioNames[s] }

// weights of each scenario in the random part of a plan (unexpected applies to deposits only).
var scenarioWeights = [numScenarios]int{38, 18, 12, 8, 6, 6, 6, 6}

// expected is the status a transfer in scenario s must end in.
func (s scenario) expected() workflows.Status {
	switch s {
	case scConfirmed:
		return workflows.StatusConfirmed
	case scFailed, scConflict:
		return workflows.StatusFailed
	case scSettled:
		return workflows.StatusSettled
	case scAbandoned:
		return workflows.StatusAbandoned
	case scExpired:
		return workflows.StatusExpired
	case scUnsettled:
		return workflows.StatusUnsettled
	}
	return workflows.StatusBroadcasted // unexpected: the review holds the last event, the transfer waits for a person
}

// outcome is the sandbox life played for s, or "" for a transfer whose webhooks never come.
func (s scenario) outcome() connecttest.Outcome {
	switch s {
	case scConfirmed, scSettled, scUnsettled:
		return connecttest.OutcomeConfirmed
	case scFailed, scConflict:
		return connecttest.OutcomeFailed
	case scUnexpected:
		return connecttest.OutcomeUnexpected
	}
	return ""
}

// transferPlan is everything the suite does to one transfer.
type transferPlan struct {
	Index       int
	Kind        connect.Kind
	TransferID  string
	ReferenceID string
	Scenario    scenario
	Play        playRequest // zero Outcome: nothing is played
	StartTwice  bool        // a second, concurrent start must join the first
	SDKCloses   int         // copies of the SDK close callback (abandoned)
	MovementID  string      // the ledger movement (settled, unsettled)
	LedgerEarly bool        // send the ledger movement as soon as the transfer is findable, maybe before confirmed
}

func (p transferPlan) workflowID() string { return workflows.WorkflowID(p.Kind, p.TransferID) }

// input is the transfer's workflow input; the expired and unsettled scenarios get short windows.
func (p transferPlan) input(cfg config) workflows.TransferInput {
	in := workflows.TransferInput{Kind: p.Kind, TransferID: p.TransferID, ReferenceID: p.ReferenceID,
		Metadata:    map[string]string{"chaos_index": fmt.Sprint(p.Index)},
		AwaitLedger: p.Scenario == scSettled || p.Scenario == scUnsettled}
	if p.Kind == connect.KindWithdrawal {
		in.Asset, in.Network, in.Amount = "BTC", "bitcoin", "0.013"
	}
	switch p.Scenario {
	case scExpired:
		in.Timeouts.SessionExpiry = cfg.sessionExpiry
	case scUnsettled:
		in.Timeouts.ReviewHorizon = cfg.ledgerHorizon
	case scAbandoned:
		in.Timeouts.CloseGrace = 2 * time.Second // the close abandons after its grace (workflows.ChangeEdgeRules)
	}
	return in
}

// orphanPlan is a session opened at Connect by someone other than connectflow, whose webhooks still come.
type orphanPlan struct {
	RequestID, ReferenceID string
	Play                   playRequest
}

// onboardingPlan is one KYC onboarding-token request: PII the logs must never show.
type onboardingPlan struct {
	Email, Phone string
}

// plan is the whole run's traffic, fixed by the seed before anything starts.
type plan struct {
	Transfers   []transferPlan
	Orphans     []orphanPlan
	Unmatched   []string // movement ids that name no transfer
	Onboardings []onboardingPlan
}

// deliveries counts the Connect webhook deliveries the plan makes the sandbox send.
func (p plan) deliveries() int {
	n := 0
	for _, t := range p.Transfers {
		if t.Play.Outcome != "" {
			n += t.Play.copies()
		}
		if t.Scenario == scConflict {
			n += conflictPlay.copies()
		}
	}
	for _, o := range p.Orphans {
		n += o.Play.copies()
	}
	return n
}

// conflictPlay is what Connect sends after a conflict transfer closed failed: a confirmed life, once.
var conflictPlay = playRequest{Outcome: connecttest.OutcomeConfirmed}

// maxPlayDuplicates is the sandbox's bound on one play's extra copies.
const maxPlayDuplicates = 100

// Shares of the plan, in percent.
const (
	shufflePercent    = 90 // plays delivered in a random order
	latePercent       = 30 // plays whose every event comes once more after the last one
	startTwicePercent = 10 // transfers started twice at once
	earlyLedgerPct    = 50 // ledger movements sent as soon as the transfer can be found
)

// newPlan draws the run's traffic from seed. Every scenario appears at least once when n allows; duplicates are
// spread at random over the played lives until the deliveries reach the target.
func newPlan(seed uint64, cfg config) plan {
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	var p plan
	for i := range cfg.transfers {
		t := transferPlan{Index: i, TransferID: fmt.Sprintf("chaos-%05d", i), ReferenceID: fmt.Sprintf("CHAOSUSER%05d", i)}
		t.Kind = connect.KindDeposit
		if rng.IntN(2) == 0 {
			t.Kind = connect.KindWithdrawal
		}
		if i < int(numScenarios) {
			t.Scenario = scenario(i) // one of each first; the order is shuffled below
		} else {
			t.Scenario = drawScenario(rng)
		}
		if t.Scenario == scUnexpected {
			t.Kind = connect.KindDeposit
		}
		if out := t.Scenario.outcome(); out != "" {
			t.Play = playRequest{Outcome: out, Shuffle: rng.IntN(100) < shufflePercent, Late: rng.IntN(100) < latePercent,
				DelayMS: 10 + rng.Int64N(140), Seed: rng.Uint64()}
		}
		t.StartTwice = rng.IntN(100) < startTwicePercent
		switch t.Scenario {
		case scAbandoned:
			t.SDKCloses = 1 + rng.IntN(3)
		case scSettled, scUnsettled:
			t.MovementID = fmt.Sprintf("chaos-movement-%05d-%x", i, rng.Uint32())
			t.LedgerEarly = rng.IntN(100) < earlyLedgerPct
		}
		p.Transfers = append(p.Transfers, t)
	}
	rng.Shuffle(len(p.Transfers), func(i, j int) { p.Transfers[i], p.Transfers[j] = p.Transfers[j], p.Transfers[i] })
	for i := range cfg.orphans {
		p.Orphans = append(p.Orphans, orphanPlan{RequestID: fmt.Sprintf("chaos-orphan-%05d", i),
			ReferenceID: fmt.Sprintf("CHAOSORPHAN%05d", i),
			Play: playRequest{Outcome: connecttest.OutcomeConfirmed, Shuffle: true, DelayMS: 10 + rng.Int64N(140),
				Seed: rng.Uint64()}})
	}
	for i := range cfg.unmatchedLedger {
		p.Unmatched = append(p.Unmatched, fmt.Sprintf("chaos-unmatched-%05d-%x", i, rng.Uint32()))
	}
	for i := range cfg.onboardings {
		p.Onboardings = append(p.Onboardings, onboardingPlan{
			Email: fmt.Sprintf("chaos.user%05d.%x@example.com", i, rng.Uint32()),
			Phone: fmt.Sprintf("1555%07d", rng.IntN(10_000_000)),
		})
	}
	p.spreadDuplicates(rng, cfg.deliveries)
	return p
}

func drawScenario(rng *rand.Rand) scenario {
	total := 0
	for _, w := range scenarioWeights {
		total += w
	}
	n := rng.IntN(total)
	for s, w := range scenarioWeights {
		if n < w {
			return scenario(s)
		}
		n -= w
	}
	return scConfirmed
}

// spreadDuplicates hands out extra copies, one whole life's worth (lifeEvents deliveries) at a time, to random
// played lives until the plan's deliveries reach target.
func (p *plan) spreadDuplicates(rng *rand.Rand, target int) {
	var lives []*playRequest
	for i := range p.Transfers {
		if p.Transfers[i].Play.Outcome != "" {
			lives = append(lives, &p.Transfers[i].Play)
		}
	}
	for i := range p.Orphans {
		lives = append(lives, &p.Orphans[i].Play)
	}
	if len(lives) == 0 {
		return
	}
	for extra := (target - p.deliveries()) / lifeEvents; extra > 0; extra-- {
		l := lives[rng.IntN(len(lives))]
		if l.Duplicates < maxPlayDuplicates {
			l.Duplicates++
		}
	}
}
