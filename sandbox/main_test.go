package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/connectflow/connectflow/internal/cmdtest"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cmdtest.Cleanup()
	os.Exit(code)
}

// build compiles this command once for all tests here.
func build(t *testing.T) string { return cmdtest.Build(t, ".") }

// writePEM writes one PEM block to a file in dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeAndInterrupt(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	signing, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	org, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(signing)
	if err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(&org.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writePEM(t, dir, "signing.pem", "PRIVATE KEY", pkcs8)
	orgFile := writePEM(t, dir, "org.pub.pem", "PUBLIC KEY", pkix)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-client-id", "cid-1", "-client-secret", "cs-1",
		"-signing-key", keyFile, "-org-public-key", orgFile, "-deposit-webhook-url", "http://127.0.0.1:9/hooks/deposits")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill sandbox: %v", err)
			}
			_ = cmd.Wait() // reaping after a failed test; the failure is already reported
		}
	})

	env, printed := readEnv(t, stdout)
	for _, name := range []string{"CONNECT_API_URL", "CONNECT_CLIENT_ID", "CONNECT_CLIENT_SECRET", "CONNECT_JWKS_URL",
		"CONNECT_ORGANIZATION_ID", "ZEROHASH_API_URL", "ZEROHASH_API_KEY", "ZEROHASH_API_SECRET", "ZEROHASH_PASSPHRASE", "ZEROHASH_WEBHOOK_SECRET"} {
		if env[name] == "" {
			t.Errorf("no %s line in the banner:\n%s", name, printed)
		}
	}
	if env["CONNECT_CLIENT_ID"] != "cid-1" || env["CONNECT_CLIENT_SECRET"] != "cs-1" {
		t.Errorf("banner credentials %q/%q, want the flags' cid-1/cs-1", env["CONNECT_CLIENT_ID"], env["CONNECT_CLIENT_SECRET"])
	}
	if strings.Contains(printed, "PRIVATE KEY") || strings.Contains(printed, signing.D.String()) {
		t.Error("the banner prints private key material")
	}
	if !strings.Contains(printed, "http://127.0.0.1:9/hooks/deposits") {
		t.Errorf("the banner does not show the deposit webhook target:\n%s", printed)
	}

	// The JWKS serves the key from -signing-key: the same kid an in-process sandbox derives for it.
	resp, err := http.Get(env["CONNECT_JWKS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET jwks: %d %v", resp.StatusCode, err)
	}
	var set struct {
		Keys []struct{ Kid, Kty string } `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks %s: %v", body, err)
	}
	ref := connecttest.NewServer(t, connecttest.Options{SigningKey: signing})
	if len(set.Keys) != 1 || set.Keys[0].Kid != ref.CurrentKeyID() || set.Keys[0].Kty != "RSA" {
		t.Fatalf("jwks %s: want the one key from -signing-key, kid %s", body, ref.CurrentKeyID())
	}

	// The printed environment is enough for the real client, and -org-public-key is enforced.
	for _, tc := range []struct {
		name    string
		orgKey  *rsa.PrivateKey
		wantErr bool
	}{{"signed by the organization", org, false}, {"unsigned", nil, true}} {
		c, err := connect.New(connect.Options{BaseURL: env["CONNECT_API_URL"], ClientID: env["CONNECT_CLIENT_ID"],
			ClientSecret: env["CONNECT_CLIENT_SECRET"], OrganizationID: env["CONNECT_ORGANIZATION_ID"], OrgKey: tc.orgKey})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateSession(ctx, connect.SessionRequest{RequestID: tc.name, Kind: connect.KindDeposit, ReferenceID: tc.name})
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: CreateSession err %v, want error %v", tc.name, err, tc.wantErr)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v (want exit 0); stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("stderr %q does not report the stop", stderr.String())
	}
}

// readEnv reads the banner up to its last environment line and returns the KEY=value pairs and the text read.
func readEnv(t *testing.T, stdout io.Reader) (map[string]string, string) {
	t.Helper()
	env := map[string]string{}
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") && !strings.Contains(k, " ") {
			env[k] = v
		}
		if strings.HasPrefix(line, "# Control API") { // the banner's last line
			return env, printed.String()
		}
	}
	t.Fatalf("the banner ended early (%v):\n%s", sc.Err(), printed.String())
	return nil, ""
}

func TestBadFlags(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // the message must contain it
	}{
		{"unknown flag", []string{"-nope"}, "-nope"},
		{"bad duration", []string{"-token-ttl", "soon"}, "-token-ttl"},
		{"too short TTL", []string{"-session-ttl", "1ms"}, "-session-ttl"},
		{"API secret not base64", []string{"-api-secret", "!!!"}, "-api-secret"},
		{"empty client secret", []string{"-client-secret", ""}, "-client-secret"},
		{"relative webhook URL", []string{"-withdrawal-webhook-url", "hooks/withdrawals"}, "-withdrawal-webhook-url"},
		{"unknown autoplay outcome", []string{"-autoplay", "sometimes"}, "-autoplay"},
		{"unknown outcome", []string{"-outcome", "sometimes"}, "-outcome"},
		{"old and new name together", []string{"-autoplay", "confirmed", "-outcome", "failed"}, "-autoplay"},
		{"unknown log level", []string{"-log-level", "loud"}, "-log-level"},
		{"negative pace", []string{"-pace", "-1s"}, "-pace"},
		{"unknown scope", []string{"-scopes", "user:everything"}, "-scopes"},
		{"missing key file", []string{"-signing-key", filepath.Join(dir, "absent.pem")}, "-signing-key"},
		{"org key not PEM", []string{"-org-public-key", garbage}, "-org-public-key"},
		{"port out of range", []string{"-addr", "127.0.0.1:99999"}, "-addr"},
		{"positional argument", []string{"serve"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
				t.Fatalf("exit %v, want status %d; stderr:\n%s", err, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr does not name %q:\n%s", tt.want, stderr.String())
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	if !strings.Contains(stderr.String(), "-deposit-webhook-url") {
		t.Fatalf("-h usage lacks the webhook flags:\n%s", stderr.String())
	}
}

// TestFlagsMatchDev: -outcome, -pace and -log-level are dev's names for the same things; the old -autoplay,
// -autoplay-after and -v still work, each with one line saying which flag replaces it.
func TestFlagsMatchDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // serve nothing: the flags are checked and the banner printed first
	for _, tt := range []struct {
		args []string
		warn string
	}{
		{[]string{"-outcome", "confirmed", "-pace", "10ms", "-log-level", "debug"}, ""},
		{[]string{"-outcome", "manual"}, ""},
		{[]string{"-autoplay", "failed"}, "sandbox: -autoplay is deprecated: use -outcome"},
		{[]string{"-autoplay-after", "2s"}, "sandbox: -autoplay-after is deprecated: use -pace"},
		{[]string{"-v"}, "sandbox: -v is deprecated: use -log-level"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, tt.args...), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d\n%s", tt.args, code, stderr.String())
		}
		if tt.warn == "" && strings.Contains(stderr.String(), "deprecated") || !strings.Contains(stderr.String(), tt.warn) {
			t.Errorf("%v: stderr %q, want %q", tt.args, stderr.String(), tt.warn)
		}
	}
}

// TestSecretFiles: each secret flag has a -NAME-file twin (a Docker secret), its one trailing newline dropped;
// giving both, or a file that cannot be read, is a usage error naming the file flag.
func TestSecretFiles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	file := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(file, []byte("from-the-file-7f3a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-addr", "127.0.0.1:0", "-webhook-secret-file", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "ZEROHASH_WEBHOOK_SECRET=from-the-file-7f3a\n") {
		t.Errorf("the banner does not show the file's secret:\n%s", stdout.String())
	}
	for _, args := range [][]string{
		{"-webhook-secret", "x", "-webhook-secret-file", file},
		{"-client-secret-file", filepath.Join(t.TempDir(), "absent")},
	} {
		stderr.Reset()
		if code := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &stdout, &stderr); code != exitUsage ||
			!strings.Contains(stderr.String(), "-file") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
