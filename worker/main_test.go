package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/cmdtest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testClientSecret = "cs-s3cr3t-value"
	testPassphrase   = "zh-pass-value"
)

var testAPISecret = base64.StdEncoding.EncodeToString([]byte("zh-hmac-secret-value"))

// testPlatformSecret is a whsec_ secret of 32 bytes, 32..63.
const testPlatformSecret = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

// workerEnv is a complete environment for the worker binary, with Temporal at a port that refuses connections.
func workerEnv(t *testing.T) map[string]string {
	home := t.TempDir()
	return map[string]string{
		"HOME":                    home,
		"TEMPORAL_CONFIG_FILE":    filepath.Join(home, "absent.toml"),
		"CONNECTFLOW_CODEC_KEYS":  "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // a test key: bytes 0..31
		"TEMPORAL_ADDRESS":        "127.0.0.1:1",
		"CONNECT_API_URL":         "https://api.sandbox.connect.xyz/api/v1",
		"CONNECT_CLIENT_ID":       "client-1",
		"CONNECT_CLIENT_SECRET":   testClientSecret,
		"CONNECT_ORGANIZATION_ID": "4789efea-e034-4e6f-b8a0-5289aacec427",
		"ZEROHASH_API_URL":        "https://api.cert.zerohash.com",
		"ZEROHASH_API_KEY":        "zh-api-key-value",
		"ZEROHASH_API_SECRET":     testAPISecret,
		"ZEROHASH_PASSPHRASE":     testPassphrase,
	}
}

func runWorker(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails the test, never the suite
	defer cancel()
	cmd := exec.CommandContext(ctx, buildWorker(t), args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), stderr.String()
	}
	t.Fatalf("run worker: %v", err)
	return 0, ""
}

func TestMissingOrMalformedSettingExits2NamingIt(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(map[string]string)
		want   string
		absent string // a value that must not be printed
	}{
		{"missing client id", func(e map[string]string) { delete(e, "CONNECT_CLIENT_ID") },
			"worker: CONNECT_CLIENT_ID (flag -connect-client-id): required", ""},
		{"secret not base64", func(e map[string]string) { e["ZEROHASH_API_SECRET"] = "not-base64!" + testClientSecret },
			"worker: ZEROHASH_API_SECRET (flag -zerohash-api-secret): must be the base64 text", testClientSecret},
		{"passphrase with newline", func(e map[string]string) { e["ZEROHASH_PASSPHRASE"] = testPassphrase + "\n" },
			"worker: ZEROHASH_PASSPHRASE (flag -zerohash-passphrase): contains a control character", testPassphrase},
		{"garbage org key", func(e map[string]string) {
			path := filepath.Join(e["HOME"], "org.pem")
			if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
			e["CONNECT_ORG_KEY_FILE"] = path
		}, "worker: CONNECT_ORG_KEY_FILE (flag -connect-org-key-file): no RSA PRIVATE KEY", ""},
		{"bad metrics address", func(e map[string]string) { e["METRICS_ADDR"] = "nine-thousand" },
			"worker: METRICS_ADDR (flag -metrics-addr): must be host:port", ""},
		{"more platform secrets than a verifier reads signatures", func(e map[string]string) {
			e["PLATFORM_WEBHOOK_URL"] = "https://platform.example/hooks/connectflow"
			e["PLATFORM_WEBHOOK_SECRET"] = strings.TrimSuffix(strings.Repeat(testPlatformSecret+",", 9), ",")
		}, "worker: PLATFORM_WEBHOOK_SECRET (flag -platform-webhook-secret): platformhook: too many secrets: 9, at most 8",
			strings.TrimPrefix(testPlatformSecret, "whsec_")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := workerEnv(t)
			tt.edit(env)
			code, stderr := runWorker(t, env)
			if code != cmdmain.ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want %d and %q; stderr:\n%s", code, cmdmain.ExitUsage, tt.want, stderr)
			}
			if tt.absent != "" && strings.Contains(stderr, tt.absent) {
				t.Fatalf("stderr prints a secret:\n%s", stderr)
			}
		})
	}
}

func TestFlagOverridesMissingVariable(t *testing.T) {
	env := workerEnv(t)
	delete(env, "CONNECT_CLIENT_ID")
	code, stderr := runWorker(t, env, "-connect-client-id", "from-flag")
	// Settings accepted, so it gets as far as dialing Temporal, which refuses.
	if code != cmdmain.ExitFailure || strings.Contains(stderr, "CONNECT_CLIENT_ID") {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, cmdmain.ExitFailure, stderr)
	}
}

func TestHelpListsFlagsAndVariables(t *testing.T) {
	code, stderr := runWorker(t, workerEnv(t), "-h")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"-connect-client-secret", "env CONNECT_CLIENT_SECRET", "-temporal-namespace",
		"env TEMPORAL_TASK_QUEUE, required, default connect-transfers", "-worker-max-concurrent-activities", "env WORKER_METRICS_ADDR",
		"deprecated alias METRICS_ADDR (flag -metrics-addr)", "env OTEL_EXPORTER_OTLP_ENDPOINT",
		"env OTEL_SERVICE_NAME: service.name, default connectflow-worker"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	if strings.Contains(stderr, testClientSecret) || strings.Contains(stderr, testAPISecret) {
		t.Fatalf("-h prints a secret from the environment")
	}
}

func TestUnreachableTemporalExits1WithAJSONLog(t *testing.T) {
	code, stderr := runWorker(t, workerEnv(t))
	if code != cmdmain.ExitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, cmdmain.ExitFailure, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var last struct{ Level, Msg, Error string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last stderr line is not a JSON log: %v\n%s", err, stderr)
	}
	if last.Level != "ERROR" || last.Msg != "worker stopped" || !strings.Contains(last.Error, "cannot reach Temporal at 127.0.0.1:1") {
		t.Fatalf("last log line = %+v", last)
	}
	for _, secret := range []string{testClientSecret, testPassphrase, testAPISecret} {
		if strings.Contains(stderr, secret) {
			t.Fatalf("log prints a secret:\n%s", stderr)
		}
	}
}

func TestMetricsAddressInUseExits1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := workerEnv(t)
	env["WORKER_METRICS_ADDR"] = ln.Addr().String()
	code, stderr := runWorker(t, env)
	if code != cmdmain.ExitFailure || !strings.Contains(stderr, `"error":"metrics: listen tcp `) {
		t.Fatalf("exit %d, want %d and a metrics listen error; stderr:\n%s", code, cmdmain.ExitFailure, stderr)
	}
}

func buildWorker(t *testing.T) string { return cmdtest.Build(t, ".") }

func TestMain(m *testing.M) {
	code := m.Run()
	cmdtest.Cleanup()
	os.Exit(code)
}

// TestDeprecatedNamesStillWorkWithOneWarning: today's names of the worker's own knobs are read as before, each
// with one warning naming the WORKER_* setting and never the value.
func TestDeprecatedNamesStillWorkWithOneWarning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := workerEnv(t)
	env["METRICS_ADDR"] = ln.Addr().String() // in use: the exit proves the old name was read
	env["ZEROHASH_RECONCILE_EVERY"] = "7m13s"
	code, stderr := runWorker(t, env)
	if code != cmdmain.ExitFailure || !strings.Contains(stderr, `"error":"metrics: listen tcp `) {
		t.Fatalf("exit %d, want %d and a metrics listen error; stderr:\n%s", code, cmdmain.ExitFailure, stderr)
	}
	for old, name := range map[string]string{"METRICS_ADDR": "WORKER_METRICS_ADDR", "ZEROHASH_RECONCILE_EVERY": "WORKER_RECONCILE_EVERY"} {
		var warnings int
		for _, line := range strings.Split(stderr, "\n") {
			var l struct{ Level, Msg, Setting, Use string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" && l.Setting == old {
				warnings++
				if l.Use != name || !strings.Contains(l.Msg, name) {
					t.Errorf("warning for %s: %+v, want it to name %s", old, l, name)
				}
			}
		}
		if warnings != 1 {
			t.Errorf("%d warnings for %s, want 1; stderr:\n%s", warnings, old, stderr)
		}
	}
	if strings.Contains(stderr, "7m13s") {
		t.Errorf("a warning shows the value:\n%s", stderr)
	}
}
