package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/connectflow/connectflow/internal/cmdtest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/buildinfo"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
)

// isolatedEnv has no Temporal profile, so a developer's own config file cannot change a test.
func isolatedEnv(t *testing.T, more ...string) settings.MapEnv {
	env := settings.MapEnv{"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "absent.toml"),
		"CONNECTFLOW_CODEC_KEYS": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="} // a test key: bytes 0..31
	for i := 0; i+1 < len(more); i += 2 {
		env[more[i]] = more[i+1]
	}
	return env
}

func runStarter(t *testing.T, env settings.MapEnv, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, env, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageErrorsExit2BeforeDialing(t *testing.T) {
	// TEMPORAL_ADDRESS points at a port that refuses: were any case to dial, it would exit 1 instead.
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"no command", nil, nil, "usage: starter <command>"},
		{"unknown command", []string{"transfer"}, nil, `starter: unknown command "transfer"`},
		{"bad flag", []string{"deposit", "-no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
		{"deposit without ids", []string{"deposit"}, nil, "starter: deposit: -reference-id, -transfer-id are required"},
		{"deposit without reference", []string{"deposit", "--transfer-id", "T1"}, nil, "starter: deposit: -reference-id is required"},
		{"withdrawal without amount", []string{"withdrawal", "-transfer-id", "T1", "-reference-id", "R1", "-asset", "BTC", "-network", "bitcoin"},
			nil, "starter: withdrawal: -amount is required"},
		{"withdrawal bad amount", []string{"withdrawal", "-transfer-id", "T1", "-reference-id", "R1", "-asset", "BTC", "-network", "bitcoin", "-amount", "1e3"},
			nil, "-amount must be a positive decimal"},
		{"withdrawal zero amount", []string{"withdrawal", "-transfer-id", "T1", "-reference-id", "R1", "-asset", "BTC", "-network", "bitcoin", "-amount", "0.000"},
			nil, "-amount must be a positive decimal"},
		{"reserved metadata", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "-metadata", workflows.MetadataKind + "=x"},
			nil, "is reserved by connectflow"},
		{"metadata without value", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "-metadata", "novalue"},
			nil, "must be key=value"},
		{"metadata twice", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "-metadata", "a=1", "-metadata", "a=2"},
			nil, `key "a" given twice`},
		{"bad if-busy", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "-if-busy", "maybe"}, nil,
			`if_busy: must be "supersede" or "refuse", got "maybe"`},
		{"extra argument", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "now"}, nil, `unexpected argument "now"`},
		{"zero timeout", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "-timeout", "0s"}, nil, "-timeout must be positive"},
		{"status bad kind", []string{"status", "-kind", "refund", "-transfer-id", "T1"}, nil, "-kind must be deposit or withdrawal"},
		{"status without kind", []string{"status", "-transfer-id", "T1"}, nil, "-kind is required"},
		{"onboarding without email", []string{"onboarding"}, nil, "-email is required"},
		{"resolve without decision", []string{"resolve", "-kind", "deposit", "-transfer-id", "T1"}, nil,
			"-operator, -outcome, -reason are required"},
		{"resolve bad outcome", []string{"resolve", "-kind", "deposit", "-transfer-id", "T1", "-outcome", "settled", "-reason", "r", "-operator", "ana"},
			nil, `outcome: must be "confirmed" or "failed"`},
		{"resolve without target", []string{"resolve", "-outcome", "failed", "-reason", "r", "-operator", "ana"}, nil,
			"-kind, -transfer-id are required"},
		{"resolve both targets", []string{"resolve", "-review-id", "review-x", "-kind", "deposit", "-transfer-id", "T1",
			"-outcome", "failed", "-reason", "r", "-operator", "ana"}, nil, "either -review-id or -kind with -transfer-id"},
		{"redeliver without anything", []string{"redeliver"}, nil, "-operator, -reason, -review-id are required"},
		{"redeliver without reason", []string{"redeliver", "-review", "review-x", "-actor", "ana"}, nil, "-reason is required"},
		{"redeliver kind without transfer", []string{"redeliver", "-review-id", "review-x", "-operator", "ana", "-reason", "r", "-kind", "deposit"},
			nil, "-transfer-id is required (both name the transfer to deliver to)"},
		{"redeliver bad kind", []string{"redeliver", "-review-id", "review-x", "-operator", "ana", "-reason", "r", "-kind", "refund", "-transfer-id", "T1"},
			nil, "-kind must be deposit or withdrawal"},
		{"bad task queue variable", []string{"status", "-kind", "deposit", "-transfer-id", "T1"},
			[]string{settings.EnvTemporalTaskQueue, "queue\n"}, "TEMPORAL_TASK_QUEUE (flag -temporal-task-queue): contains a control character"},
		{"missing profile", []string{"status", "-kind", "deposit", "-transfer-id", "T1"},
			[]string{"TEMPORAL_PROFILE", "prod"}, "unable to find profile prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := isolatedEnv(t, append([]string{settings.EnvTemporalAddress, "127.0.0.1:1"}, tt.env...)...)
			code, stdout, stderr := runStarter(t, env, tt.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.wantErr, stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout not empty: %q", stdout)
			}
		})
	}
}

func TestOnboardingBadEmailIsNotEchoed(t *testing.T) {
	const email = "jane.doe-at-example.com"
	code, _, stderr := runStarter(t, isolatedEnv(t), "onboarding", "-email", email, "-phone", "+15555550100")
	if code != exitUsage || !strings.Contains(stderr, "-email must be a bare email address") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Contains(stderr, email) || strings.Contains(stderr, "+15555550100") {
		t.Fatalf("stderr repeats PII:\n%s", stderr)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"deposit", "-h"}, {"withdrawal", "--help"}, {"redeliver", "-h"}} {
		code, _, stderr := runStarter(t, isolatedEnv(t), args...)
		if code != 0 || !strings.Contains(stderr, "usage") && !strings.Contains(stderr, "Usage") {
			t.Fatalf("%v: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
	_, _, stderr := runStarter(t, isolatedEnv(t), "-h")
	if !strings.Contains(stderr, "redeliver    deliver the event a review holds") {
		t.Errorf("the overview lacks redeliver:\n%s", stderr)
	}
	_, _, stderr = runStarter(t, isolatedEnv(t), "redeliver", "-h")
	for _, want := range []string{"-review-id", "-operator", "-reason", "-kind", "-transfer-id", "same as -operator"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("redeliver -h lacks %q", want)
		}
	}
	_, _, stderr = runStarter(t, isolatedEnv(t), "withdrawal", "-h")
	for _, want := range []string{"-asset", "-network", "-amount", "-timeout", "-temporal-address", "env TEMPORAL_ADDRESS"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("withdrawal -h lacks %q", want)
		}
	}
}

// TestVersion: the build on stdout, exit 0, before any setting is read (none is given), for the command and for
// each subcommand.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}, {"deposit", "-version"}, {"status", "-version"}} {
		code, stdout, stderr := runStarter(t, settings.MapEnv{}, args...)
		if code != 0 || !strings.HasPrefix(stdout, "starter") || !strings.Contains(stdout, buildinfo.Module+" ") ||
			!strings.Contains(stdout, " revision ") || stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestUnreachableTemporalIsOneLineExit1(t *testing.T) {
	env := isolatedEnv(t, settings.EnvTemporalAddress, "127.0.0.1:1")
	code, stdout, stderr := runStarter(t, env, "status", "-kind", "deposit", "-transfer-id", "T1", "-timeout", "5s")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
	assertOneLine(t, stderr, "starter: cannot reach Temporal at 127.0.0.1:1: ")
	if stdout != "" {
		t.Fatalf("stdout not empty: %q", stdout)
	}
}

// A frontend that accepts connections and never answers: only -timeout ends the call.
func TestSilentTemporalEndsAtTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	env := isolatedEnv(t, settings.EnvTemporalAddress, ln.Addr().String())
	code, _, stderr := runStarter(t, env, "deposit", "-transfer-id", "T1", "-reference-id", "R1", "-timeout", "1s")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
	assertOneLine(t, stderr, "starter: cannot reach Temporal at "+ln.Addr().String())
	if !strings.Contains(stderr, "(no answer within -timeout 1s)") || strings.Contains(stderr, "worker") {
		t.Fatalf("stderr does not blame the timeout of the dial alone:\n%s", stderr)
	}
}

func TestDescribeGivesTheWorkflowReason(t *testing.T) {
	appErr := temporal.NewNonRetryableApplicationError("Connect session not created: HTTP 403 scope not allowed", "ConnectForbidden", nil)
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("deposit-T1: %w", appErr), "ConnectForbidden: Connect session not created: HTTP 403 scope not allowed"},
		{errors.New("find deposit-T1: workflow not found"), "find deposit-T1: workflow not found"},
		{fmt.Errorf("x: %w", temporal.NewApplicationError("untyped", "")), "x: untyped"},
	}
	for _, tt := range tests {
		if got := describe(tt.err); got != tt.want {
			t.Errorf("describe(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if got := oneLine("a\nb\r\nc"); got != "a; b; c" {
		t.Errorf("oneLine = %q", got)
	}
}

func TestStatusOutputDropsOnlyTheJWT(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.payload.signature"
	expires := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := workflows.TransferState{
		WorkflowID: "deposit-T1", Kind: connect.KindDeposit, TransferID: "T1", ReferenceID: "R1",
		Status:  workflows.StatusBroadcasted,
		Session: &workflows.SessionInfo{SessionID: "sess-1", AccountID: "acct-1", JWT: jwt, ExpiresAt: expires},
		TxHash:  "0xabc",
		Events: []workflows.EventRecord{
			{Source: "connect", Name: "connect.deposit.initiated", Status: "initiated", Effect: workflows.EffectApplied},
			{Source: "connect", Name: "connect.deposit.broadcasted", Status: "broadcasted", Effect: workflows.EffectApplied, Duplicates: 2},
		},
	}
	out, err := json.Marshal(withoutJWT(st))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), jwt) || strings.Contains(string(out), `"jwt"`) {
		t.Fatalf("status output carries the JWT: %s", out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	session, _ := got["session"].(map[string]any)
	events, _ := got["events"].([]any)
	if got["status"] != "broadcasted" || got["tx_hash"] != "0xabc" || session["session_id"] != "sess-1" ||
		session["expires_at"] != "2026-01-02T03:04:05Z" || len(events) != 2 {
		t.Fatalf("status output lost fields: %s", out)
	}
	if st.Session.JWT != jwt {
		t.Fatal("withoutJWT changed the caller's state")
	}
	noSession, err := json.Marshal(withoutJWT(workflows.TransferState{Status: workflows.StatusSessionFailed}))
	if err != nil {
		t.Fatal(err)
	}
	var failed map[string]any
	if err := json.Unmarshal(noSession, &failed); err != nil {
		t.Fatal(err)
	}
	if _, has := failed["session"]; has || failed["status"] != "session_failed" {
		t.Fatalf("a transfer without a session: %s", noSession)
	}
}

// The built binary: flags and exit codes as a shell sees them.
func TestBinaryExitCodes(t *testing.T) {
	bin := buildStarter(t)
	home := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"bad flag", []string{"deposit", "-transfer", "T1"}, exitUsage, "flag provided but not defined: -transfer"},
		{"missing transfer id", []string{"withdrawal", "-reference-id", "R1"}, exitUsage, "-amount, -asset, -network, -transfer-id are required"},
		{"unreachable temporal", []string{"deposit", "-transfer-id", "T1", "-reference-id", "R1", "-timeout", "5s"}, exitFailure,
			"starter: cannot reach Temporal at 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails the test, never the suite
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = []string{"HOME=" + home, "TEMPORAL_CONFIG_FILE=" + filepath.Join(home, "absent.toml"), "TEMPORAL_ADDRESS=127.0.0.1:1",
				"CONNECTFLOW_CODEC_KEYS=k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != tt.wantCode {
				t.Fatalf("run: %v, want exit %d; stderr:\n%s", err, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || stdout.Len() != 0 {
				t.Fatalf("stdout %q, stderr:\n%s", stdout.String(), stderr.String())
			}
			if tt.wantCode == exitFailure {
				assertOneLine(t, stderr.String(), tt.wantStderr)
			}
		})
	}
}

func assertOneLine(t *testing.T, stderr, prefix string) {
	t.Helper()
	if !strings.HasPrefix(stderr, prefix) || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("stderr is not one line starting %q:\n%s", prefix, stderr)
	}
}

func buildStarter(t *testing.T) string { return cmdtest.Build(t, ".") }

func TestMain(m *testing.M) {
	code := m.Run()
	cmdtest.Cleanup()
	os.Exit(code)
}
