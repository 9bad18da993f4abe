package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := config{ip: "127.0.0.1", temporalPort: 7233, uiPort: 8233, sandboxPort: 8090, bridgePort: 8080, metricsPort: 9090,
		codecPort: 8234, platformPort: 8091, apiPort: 8081, dataDir: ".dev-data", outcome: "confirmed", pace: time.Second, logLevel: slog.LevelWarn, serverLevel: slog.LevelError,
		cluster: clusterFlags{historyShards: 16, clusterAddress: "127.0.0.1:7233"}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	if got := c.databaseFile(); got != ".dev-data/temporal.db" {
		t.Fatalf("database file %q", got)
	}
	if p := c.autoPlay(); p == nil || p.Outcome != connecttest.OutcomeConfirmed || p.Delay != time.Second {
		t.Fatalf("auto play %+v", p)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(config) bool
		want  []string // error lines; none means success
	}{
		{"every port free", []string{"-temporal-port=0", "-ui-port=0", "-sandbox-port=0", "-bridge-port=0", "-metrics-port=0"},
			func(c config) bool { return c.temporalPort == 0 && c.uiPort == 0 && c.metricsPort == 0 }, nil},
		{"memory writes nothing", []string{"-memory"},
			func(c config) bool { return c.memory && c.dataDir == "" && c.databaseFile() == "" }, nil},
		{"manual plays nothing by itself", []string{"-outcome", "manual", "-pace", "250ms"},
			func(c config) bool { return c.autoPlay() == nil && c.pace == 250*time.Millisecond }, nil},
		{"failed outcome", []string{"-outcome", "failed", "--no-demo"},
			func(c config) bool { return c.autoPlay().Outcome == connecttest.OutcomeFailed && c.noDemo }, nil},
		{"server only", []string{"-server-only", "-data", "/tmp/x"},
			func(c config) bool { return c.serverOnly && c.databaseFile() == "/tmp/x/temporal.db" }, nil},
		{"log levels", []string{"-log-level", "debug", "-server-log-level", "warn"},
			func(c config) bool { return c.logLevel == slog.LevelDebug && c.serverLevel == slog.LevelWarn }, nil},
		{"two parts on one port", []string{"-ui-port", "7233"}, nil, []string{"-ui-port: 7233 is also -temporal-port"}},
		{"port out of range", []string{"-bridge-port", "65536", "-metrics-port", "-2"}, nil,
			[]string{"-bridge-port: 65536 is outside 0..65535", "-metrics-port: -2 is outside 0..65535"}},
		{"memory and data", []string{"-memory", "-data", "d"}, nil, []string{"-data: cannot be used with -memory"}},
		{"empty data", []string{"-data", " "}, nil, []string{"-data: must name a folder"}},
		{"unknown outcome", []string{"-outcome", "unexpected"}, nil, []string{`-outcome: "unexpected" is not confirmed, failed, none or manual`}},
		{"no pace", []string{"-pace", "0s"}, nil, []string{"-pace: 0s must be positive"}},
		{"server only with sandbox flags", []string{"-server-only", "-outcome", "failed"}, nil, []string{"-server-only: runs no sandbox"}},
		{"bad ip", []string{"-ip", "localhost"}, nil, []string{`-ip: "localhost" is not an IP address`}},
		{"bad level", []string{"-log-level", "loud"}, nil, []string{`-log-level: "loud" is not debug, info, warn or error`}},
		{"stray argument", []string{"demo"}, nil, []string{`unexpected argument "demo"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, &bytes.Buffer{})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if !tt.check(c) {
					t.Fatalf("config %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatal("parse succeeded")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestParseConfigHelpAndSyntax(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"Usage: go run ./dev", "-server-only", "-memory", "-outcome"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	out.Reset()
	if _, err := parseConfig([]string{"-colour"}, &out); !errors.Is(err, errPrinted) {
		t.Fatalf("unknown flag: %v", err)
	}
	if !strings.Contains(out.String(), "flag provided but not defined: -colour") {
		t.Fatalf("the flag package did not name the flag: %q", out.String())
	}
}

func TestRunExitCodesForFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	stderr.Reset()
	if code := run(t.Context(), []string{"-pace", "-1s", "-outcome", "x"}, noEnv, &stdout, &stderr); code != exitUsage {
		t.Fatalf("bad flags: exit %d", code)
	}
	for _, want := range []string{"dev: -pace: -1s must be positive\n", "dev: -outcome: \"x\" is not", "dev: see go run ./dev -h"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
	if stdout.Len() > 0 {
		t.Fatalf("bad flags printed to stdout: %q", stdout.String())
	}
}

func noEnv(string) string { return "" }

func TestRunRefusesBadCodecKeys(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := func(name string) string {
		if name == "CONNECTFLOW_CODEC_KEYS" {
			return "k1:bm90LTMyLWJ5dGVz" // base64 of "not-32-bytes": too short for AES-256
		}
		return ""
	}
	if code := run(t.Context(), []string{"-memory"}, env, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), "dev: CONNECTFLOW_CODEC_KEYS") || strings.Contains(stderr.String(), "bm90LTMy") {
		t.Fatalf("stderr %q: want the variable named and its value never quoted", stderr.String())
	}
}

func TestSplitSandboxEnv(t *testing.T) {
	sb := connecttest.NewServer(t, connecttest.Options{})
	worker, bridgeVars, err := splitSandboxEnv(sb.Env())
	if err != nil {
		t.Fatalf("the sandbox's own environment: %v", err)
	}
	if len(worker) != len(workerEnv) || len(bridgeVars) != len(bridgeEnv) {
		t.Fatalf("worker %v, bridge %v", worker, bridgeVars)
	}
	for _, v := range append(worker, bridgeVars...) {
		if v.value == "" {
			t.Errorf("%s is empty", v.name)
		}
	}

	drift := []struct {
		name  string
		lines []string
		want  string
	}{
		{"a variable nobody reads", append(sb.Env(), "CONNECT_REGION=eu"), "sandbox environment has CONNECT_REGION"},
		{"a variable missing", sb.Env()[1:], "sandbox environment has 7 of the worker's 8"},
		{"a line without =", append(sb.Env(), "s3cr3t-value"), "sandbox environment line without '=' (12 bytes)"},
	}
	for _, tt := range drift {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := splitSandboxEnv(tt.lines)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the error quotes the line: %v", err)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	st := workflows.TransferState{TxHash: "0xabc", Amount: "0.5", Asset: "BTC", Network: "bitcoin", FailureReason: "insufficient funds"}
	tests := []struct {
		rec  workflows.EventRecord
		want string
	}{
		{workflows.EventRecord{Source: "connect", Status: "initiated", Effect: workflows.EffectApplied}, "initiated"},
		{workflows.EventRecord{Source: "connect", Status: "broadcasted", Effect: workflows.EffectApplied}, "broadcasted (tx 0xabc)"},
		{workflows.EventRecord{Source: "connect", Status: "confirmed", Effect: workflows.EffectApplied}, "confirmed (0.5 BTC on bitcoin)"},
		{workflows.EventRecord{Source: "connect", Status: "failed", Effect: workflows.EffectApplied}, "failed (insufficient funds)"},
		{workflows.EventRecord{Source: "connect", Status: "initiated", Effect: workflows.EffectLate}, "initiated (late)"},
		{workflows.EventRecord{Source: "timer", Name: "stall", Effect: workflows.EffectApplied}, "timer stall"},
		{workflows.EventRecord{Source: "sdk", Name: "close", Status: "", Effect: workflows.EffectIgnored}, "sdk close (ignored)"},
	}
	for _, tt := range tests {
		if got := describe(tt.rec, st); got != tt.want {
			t.Errorf("describe(%+v) = %q, want %q", tt.rec, got, tt.want)
		}
	}
}

func TestDemoInputs(t *testing.T) {
	inputs := demoInputs("20260101-120000")
	refs, ids := map[string]bool{}, map[string]bool{}
	kinds := map[connect.Kind]bool{}
	for _, in := range inputs {
		if err := in.Validate(); err != nil {
			t.Fatalf("%s: %v", in.Kind, err)
		}
		refs[in.ReferenceID] = true
		ids[workflows.WorkflowID(in.Kind, in.TransferID)] = true
		kinds[in.Kind] = true
	}
	// Connect allows one open session per reference id, and the demo opens both at once.
	if len(inputs) != 2 || len(refs) != 2 || len(ids) != 2 || !kinds[connect.KindDeposit] || !kinds[connect.KindWithdrawal] {
		t.Fatalf("demo inputs %+v: want a deposit and a withdrawal on distinct reference and workflow ids", inputs)
	}
}

func TestLineWriterKeepsLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	w := &lineWriter{w: &buf}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				w.printf("writer %d: %s", i, strings.Repeat("x", 40))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, strings.Repeat("x", 40)) || strings.Count(l, "writer") != 1 {
			t.Fatalf("a torn line: %q", l)
		}
	}
}
