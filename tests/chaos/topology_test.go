package main

import (
	"bytes"
	"strings"
	"testing"
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
