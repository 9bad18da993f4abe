package config

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValidAndRunEverything(t *testing.T) {
	c, err := Parse(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if !slices.Equal(c.Scenarios, Scenarios) {
		t.Errorf("scenarios %v, want %v", c.Scenarios, Scenarios)
	}
	if c.Signals != Defaults.Signals || c.Concurrency != Defaults.Concurrency || c.TokenTTL != time.Hour {
		t.Errorf("defaults not applied: %+v", c)
	}
	if !c.NeedsWorker() {
		t.Error("the defaults run workflows but NeedsWorker is false")
	}
}

func TestTinyShrinksEverySizeButExplicitFlagsWin(t *testing.T) {
	c, err := Parse([]string{"-tiny", "-concurrency", "3", "-waiting", "7"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Tiny
	want.Concurrency, want.Waiting = 3, 7
	got := []int{c.Signals, c.Workflows, c.Transfers, c.Concurrency, c.Rounds, c.Waiting, c.Probes}
	if exp := []int{want.Signals, want.Workflows, want.Transfers, want.Concurrency, want.Rounds, want.Waiting, want.Probes}; !slices.Equal(got, exp) {
		t.Errorf("sizes %v, want %v", got, exp)
	}
	if c.BenchTime != Tiny.BenchTime {
		t.Errorf("benchtime %v, want %v", c.BenchTime, Tiny.BenchTime)
	}
}

func TestServerPIDs(t *testing.T) {
	c, err := Parse([]string{"-server-pids", "12, 34,"}, &bytes.Buffer{})
	if err != nil || len(c.ServerPIDs) != 2 || c.ServerPIDs[0] != 12 || c.ServerPIDs[1] != 34 {
		t.Fatalf("ServerPIDs %v, %v; want [12 34]", c.ServerPIDs, err)
	}
	if c, _ := Parse(nil, &bytes.Buffer{}); len(c.ServerPIDs) != 0 {
		t.Fatalf("default ServerPIDs %v, want none", c.ServerPIDs)
	}
}

func TestEachBadSettingIsNamed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // every fragment must be in the error
	}{
		{[]string{"-signals", "0"}, []string{"-signals: 0 is outside 1..1000000"}},
		{[]string{"-workflows", "-1"}, []string{"-workflows: -1"}},
		{[]string{"-transfers", "2000000"}, []string{"-transfers: 2000000 is outside"}},
		{[]string{"-concurrency", "0"}, []string{"-concurrency: 0 is outside 1..1000"}},
		{[]string{"-concurrency", "1001"}, []string{"-concurrency: 1001"}},
		{[]string{"-waiting", "0"}, []string{"-waiting: 0"}},
		{[]string{"-probes", "0"}, []string{"-probes: 0"}},
		{[]string{"-rounds", "0"}, []string{"-rounds: 0"}},
		{[]string{"-rounds", "5", "-transfers", "4"}, []string{"-rounds: 5 is more than -transfers 4"}},
		{[]string{"-rounds", "5", "-signals", "4"}, []string{"-rounds: 5 is more than -signals 4"}},
		{[]string{"-benchtime", "0s"}, []string{"-benchtime: 0s must be positive"}},
		{[]string{"-token-ttl", "500ms"}, []string{"-token-ttl: 500ms is under 1s"}},
		{[]string{"-scenarios", "ingest,bogus"}, []string{`-scenarios: "bogus" is not one of`}},
		{[]string{"-scenarios", "verify,verify"}, []string{`-scenarios: "verify" is named twice`}},
		{[]string{"-scenarios", " , "}, []string{"-scenarios: names no scenario"}},
		{[]string{"-signals", "0", "-concurrency", "0"}, []string{"-signals: 0", "-concurrency: 0"}},
		{[]string{"-server-pids", "12,abc"}, []string{`-server-pids: "abc" is not a process id`}},
		{[]string{"-server-pids", "0"}, []string{`-server-pids: "0" is not a process id`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := Parse(tc.args, &bytes.Buffer{})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRoundsOnlyBoundedByTheScenariosThatRun(t *testing.T) {
	c, err := Parse([]string{"-scenarios", "waiting", "-rounds", "5", "-transfers", "4", "-signals", "4"}, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("rounds do not apply to the waiting scenario: %v", err)
	}
	if c.Has(ScenarioIngest) || !c.Has(ScenarioWaiting) || !c.NeedsWorker() {
		t.Errorf("scenarios %v", c.Scenarios)
	}
	v, err := Parse([]string{"-scenarios", "verify"}, &bytes.Buffer{})
	if err != nil || v.NeedsWorker() {
		t.Errorf("verify alone needs no worker: %v, %v", err, v.NeedsWorker())
	}
}

func TestHelpAndSyntaxErrors(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, name := range []string{"-signals", "-concurrency", "-scenarios", "-json", "-tiny", "TEMPORAL_ADDRESS"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("usage lacks %s", name)
		}
	}
	out.Reset()
	if _, err := Parse([]string{"-nope"}, &out); !errors.Is(err, ErrPrinted) || !strings.Contains(out.String(), "-nope") {
		t.Errorf("unknown flag: %v, printed %q", err, out.String())
	}
	if _, err := Parse([]string{"extra"}, &out); err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("positional argument: %v", err)
	}
}

func TestWorkersOnlyWhereEachWorkerCounts(t *testing.T) {
	c, err := Parse([]string{"-scenarios", "ingest,transfers", "-workers", "4"}, &bytes.Buffer{})
	if err != nil || c.Workers != 4 {
		t.Fatalf("-workers 4 with ingest,transfers: %+v, %v", c.Workers, err)
	}
	if d, err := Parse(nil, &bytes.Buffer{}); err != nil || d.Workers != 1 {
		t.Fatalf("default workers %d, %v; want 1", d.Workers, err)
	}
	for _, args := range [][]string{
		{"-workers", "2"}, // the defaults run the waiting scenario, which measures one worker
		{"-scenarios", "ingest", "-workers", "0"},
		{"-scenarios", "ingest", "-workers", "65"},
	} {
		if _, err := Parse(args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-workers") {
			t.Errorf("%q: err %v, want one naming -workers", args, err)
		}
	}
}
