package main

import (
	"io"
	"reflect"
	"testing"

	"github.com/connectflow/connectflow/connect"
)

func TestPlanIsFixedBySeed(t *testing.T) {
	cfg := defaults(true)
	a, b := newPlan(7, cfg), newPlan(7, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans from one seed differ")
	}
	if reflect.DeepEqual(a, newPlan(8, cfg)) {
		t.Fatal("plans from different seeds are equal")
	}
}

func TestPlanShape(t *testing.T) {
	cases := []struct {
		name                  string
		transfers, deliveries int
		orphans               int
	}{
		{"CI size", 30, 300, 2},
		{"issue size", 1000, 10000, 20},
		{"fewer deliveries than one copy of each life", 40, 10, 0},
		{"one of each scenario, no orphans", int(numScenarios), 50, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := defaults(true)
			cfg.transfers, cfg.deliveries, cfg.orphans = c.transfers, c.deliveries, c.orphans
			p := newPlan(42, cfg)
			if len(p.Transfers) != c.transfers || len(p.Orphans) != c.orphans {
				t.Fatalf("%d transfers, %d orphans; want %d, %d", len(p.Transfers), len(p.Orphans), c.transfers, c.orphans)
			}
			seen := map[scenario]bool{}
			ids := map[string]bool{}
			base := 0
			for _, tp := range p.Transfers {
				seen[tp.Scenario] = true
				if ids[tp.workflowID()] || ids[tp.ReferenceID] {
					t.Fatalf("%s: id or reference id used twice", tp.workflowID())
				}
				ids[tp.workflowID()], ids[tp.ReferenceID] = true, true
				if err := tp.input(cfg).Validate(); err != nil {
					t.Fatalf("%s: input: %v", tp.workflowID(), err)
				}
				played := tp.Play.Outcome != ""
				switch {
				case played != (tp.Scenario.outcome() != ""):
					t.Fatalf("%s (%s): played=%v", tp.workflowID(), tp.Scenario, played)
				case tp.Scenario == scUnexpected && tp.Kind != connect.KindDeposit:
					t.Fatalf("%s: unexpected life planned for a %s", tp.workflowID(), tp.Kind)
				case (tp.Scenario == scSettled || tp.Scenario == scUnsettled) && tp.MovementID == "":
					t.Fatalf("%s: %s without a ledger movement", tp.workflowID(), tp.Scenario)
				case tp.Scenario == scAbandoned && tp.SDKCloses < 1:
					t.Fatalf("%s: abandoned without an SDK close", tp.workflowID())
				case tp.Play.Duplicates > maxPlayDuplicates:
					t.Fatalf("%s: %d duplicates, over the sandbox's %d", tp.workflowID(), tp.Play.Duplicates, maxPlayDuplicates)
				}
				if played {
					base += (tp.Play.copies() - lifeEvents*tp.Play.Duplicates)
				}
				if tp.Scenario == scConflict {
					base += conflictPlay.copies()
				}
			}
			for _, o := range p.Orphans {
				base += o.Play.copies() - lifeEvents*o.Play.Duplicates
			}
			if len(seen) != min(int(numScenarios), c.transfers) {
				t.Fatalf("scenarios %v: want every one of %d", seen, numScenarios)
			}
			got := p.deliveries()
			switch {
			case c.deliveries <= base && got != base:
				t.Fatalf("%d deliveries with no duplicates to spare, want the bare %d", got, base)
			case c.deliveries > base && (got > c.deliveries || got <= c.deliveries-lifeEvents):
				t.Fatalf("%d deliveries, want within one life of %d", got, c.deliveries)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		args      []string
		transfers int
		outages   int
		wantErr   bool
	}{
		{nil, 1000, 2, false},
		{[]string{"-small"}, 30, 2, false},
		{[]string{"-transfers", "50", "-small"}, 50, 2, false},
		{[]string{"-small", "-outages", "0"}, 30, 0, false},
		{[]string{"-transfers", "0"}, 0, 0, true},
		{[]string{"-outage-for", "5s"}, 0, 0, true},
		{[]string{"extra"}, 0, 0, true},
	}
	for _, c := range cases {
		got, err := parseFlags(c.args, io.Discard)
		switch {
		case c.wantErr && err == nil:
			t.Errorf("%q: no error", c.args)
		case !c.wantErr && (err != nil || got.transfers != c.transfers || got.outages != c.outages):
			t.Errorf("%q: transfers %d outages %d err %v; want %d, %d", c.args, got.transfers, got.outages, err, c.transfers, c.outages)
		}
	}
}
