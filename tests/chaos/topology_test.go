package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTopologyFlags(t *testing.T) {
	c, err := parseFlags([]string{"-small", "-topology", "cluster"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.workers != clusterWorkers || c.nodes != 3 || c.historyShards != 16 || c.bridges != 2 || c.transfers != 30 {
		t.Fatalf("cluster -small: workers %d nodes %d shards %d bridges %d transfers %d; want 3, 3, 16, 2, 30",
			c.workers, c.nodes, c.historyShards, c.bridges, c.transfers)
	}
	if c, err := parseFlags([]string{"-topology", "cluster", "-workers", "5"}, &bytes.Buffer{}); err != nil || c.workers != 5 {
		t.Fatalf("an explicit -workers must win: %d, %v", c.workers, err)
	}
	if c, err := parseFlags([]string{"-small"}, &bytes.Buffer{}); err != nil || c.topology != topologySingle || c.workers != 2 {
		t.Fatalf("the default topology: %q with %d workers, %v; want single with 2", c.topology, c.workers, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-topology", "mesh"}, "-topology"},
		{[]string{"-topology", "cluster", "-nodes", "1"}, "-nodes"},
		{[]string{"-topology", "cluster", "-history-shards", "0"}, "-history-shards"},
		{[]string{"-topology", "cluster", "-bridges", "0"}, "-bridges"},
	} {
		if _, err := parseFlags(tc.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

func TestReportPlansNodeFaultsOnlyOnTheCluster(t *testing.T) {
	single := &report{cfg: defaults(true)}
	for _, f := range single.plannedFaults() {
		if strings.HasPrefix(f, "Temporal node") {
			t.Fatalf("the single topology plans %q", f)
		}
	}
	cfg := defaults(true)
	cfg.topology = topologyCluster
	cluster := &report{cfg: cfg, counts: map[string]int{faultNodeKill: 1, faultNodeTerm: 1}}
	var missing []string
	for _, c := range cluster.all() {
		if c.name == checkNotInjected {
			for _, d := range c.details {
				if strings.HasPrefix(d, "Temporal node") {
					missing = append(missing, d)
				}
			}
		}
	}
	if len(missing) != 1 || !strings.Contains(missing[0], faultNodeRestart) {
		t.Fatalf("with a node killed and one terminated but none restarted, not injected: %q; want the restart alone", missing)
	}
	var out bytes.Buffer
	cluster.handovers = []handover{{How: "node 2 (dev-5) killed", Took: 5700e6, Baseline: 600e6, Shards: "256 workflow ids over 16 shards"}}
	cluster.printTopology(&out)
	if !strings.Contains(out.String(), "node 2 (dev-5) killed: every shard served again") || !strings.Contains(out.String(), "5.7s") {
		t.Fatalf("topology table:\n%s", out.String())
	}
}

// TestSweepProbes: every probe is retried until it answers once, and the sweep's bookkeeping is safe while its
// probes answer concurrently (the first version ranged over the pending set while probes deleted from it: a
// "concurrent map iteration and map write" crash in chaos-cluster-smoke).
func TestSweepProbes(t *testing.T) {
	for range 20 {
		var mu sync.Mutex
		calls := map[int]int{}
		took, err := sweepProbes(context.Background(), 256, time.Minute, func(_ context.Context, i int) error {
			mu.Lock()
			defer mu.Unlock()
			calls[i]++
			if i%50 == 0 && calls[i] < 3 {
				return fmt.Errorf("probe %d: not yet", i)
			}
			return nil
		})
		if err != nil || took <= 0 {
			t.Fatalf("sweep: %v, %v", took, err)
		}
		for i := range 256 {
			want := 1
			if i%50 == 0 {
				want = 3
			}
			if calls[i] != want {
				t.Fatalf("probe %d called %d times; want %d (retried until it answers, then never again)", i, calls[i], want)
			}
		}
	}
}

func TestSweepProbesTimesOut(t *testing.T) {
	stuck := errors.New("shard 7 has no owner")
	_, err := sweepProbes(context.Background(), 16, 300*time.Millisecond, func(_ context.Context, i int) error {
		if i == 7 {
			return stuck
		}
		return nil
	})
	if !errors.Is(err, stuck) || !strings.Contains(err.Error(), "1 of 16 shard probes unanswered") {
		t.Fatalf("a probe that never answers: %v", err)
	}
}
