package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
)

// asMain makes the test binary run the real main() in a subprocess, with only the environment a test gives it.
const asMain = "WEBHOOKBRIDGE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command is the webhookbridge process with exactly env (plus asMain).
func command(t *testing.T, env map[string]string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{asMain + "=1"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

const secretValue = "zh-webhook-secret-7f3a"

func goodEnv() map[string]string {
	return map[string]string{
		"CONNECTFLOW_CODEC_KEYS":  "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // a test key: bytes 0..31
		"BRIDGE_PUBLIC_URL":       "https://hooks.example.com",
		"BRIDGE_ADMIN_ADDR":       "127.0.0.1:0",
		"CONNECT_JWKS_URL":        "https://api.example.com/api/v1/jwks",
		"ZEROHASH_WEBHOOK_SECRET": secretValue,
	}
}

func TestBadSettingsExitTwoNamingTheVariable(t *testing.T) {
	cases := []struct {
		name  string
		set   map[string]string // "" deletes
		names string
	}{
		{"missing CONNECT_JWKS_URL", map[string]string{"CONNECT_JWKS_URL": ""}, "CONNECT_JWKS_URL"},
		{"missing BRIDGE_PUBLIC_URL", map[string]string{"BRIDGE_PUBLIC_URL": ""}, "BRIDGE_PUBLIC_URL"},
		{"jwt-only auth mode, removed", map[string]string{"CONNECT_WEBHOOK_AUTH": "jwt"}, "removed"},
		{"timestamps required without a Zero Hash scheme", map[string]string{"ZEROHASH_WEBHOOK_SECRET": "",
			"ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP": "true"}, "ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP"},
		{"require-timestamp not a bool", map[string]string{"ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP": "yes please"}, "ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP"},
		{"Zero Hash public key file missing", map[string]string{"ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE": "/nonexistent/zh.pem"}, "ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE"},
		{"Zero Hash public key file not a key", map[string]string{"ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE": "main.go"}, "ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE"},
		{"Zero Hash tolerance zero", map[string]string{"ZEROHASH_WEBHOOK_TOLERANCE": "0s"}, "ZEROHASH_WEBHOOK_TOLERANCE"},
		{"Zero Hash tolerance of a year", map[string]string{"ZEROHASH_WEBHOOK_TOLERANCE": "8760h"}, "ZEROHASH_WEBHOOK_TOLERANCE"},
		{"Zero Hash tolerance just over 10m", map[string]string{"ZEROHASH_WEBHOOK_TOLERANCE": "601s"}, "at most 10m"},
		{"JWKS over plain http to a remote host", map[string]string{"CONNECT_JWKS_URL": "http://api.example.com/jwks"}, "CONNECT_JWKS_URL"},
		{"unknown auth mode", map[string]string{"CONNECT_WEBHOOK_AUTH": "none"}, "CONNECT_WEBHOOK_AUTH"},
		{"zero tolerance", map[string]string{"CONNECT_WEBHOOK_TOLERANCE": "0s"}, "CONNECT_WEBHOOK_TOLERANCE"},
		{"tolerance of a year (issue 14, finding 9)", map[string]string{"CONNECT_WEBHOOK_TOLERANCE": "8760h"}, "CONNECT_WEBHOOK_TOLERANCE"},
		{"tolerance just over 10m", map[string]string{"CONNECT_WEBHOOK_TOLERANCE": "601s"}, "at most 10m"},
		{"body limit over 1 MiB", map[string]string{"BRIDGE_MAX_BODY": "2MiB"}, "BRIDGE_MAX_BODY"},
		{"body limit not a size", map[string]string{"BRIDGE_MAX_BODY": "lots"}, "BRIDGE_MAX_BODY"},
		{"Temporal timeout not a duration", map[string]string{"BRIDGE_TEMPORAL_TIMEOUT": "soon"}, "BRIDGE_TEMPORAL_TIMEOUT"},
		{"secret with a trailing newline", map[string]string{"ZEROHASH_WEBHOOK_SECRET": secretValue + "\n"}, "ZEROHASH_WEBHOOK_SECRET"},
		{"malformed codec keys", map[string]string{"CONNECTFLOW_CODEC_KEYS": "k1:not-base64"}, "CONNECTFLOW_CODEC_KEYS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := goodEnv()
			for k, v := range c.set {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			var stderr bytes.Buffer
			cmd := command(t, env)
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; stderr:\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.names) {
				t.Fatalf("stderr does not name %s:\n%s", c.names, stderr.String())
			}
			if strings.Contains(stderr.String(), secretValue) {
				t.Fatalf("stderr shows the secret:\n%s", stderr.String())
			}
		})
	}
}

// TestServesAndDrainsOnSIGTERM runs the real command against a JWKS on loopback and a "Temporal" that accepts
// connections and never answers. A verified webhook is then in flight (waiting on Temporal) when SIGTERM
// arrives: the process must still answer it, 503 with Retry-After so Connect redelivers, and exit 0.
func TestServesAndDrainsOnSIGTERM(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		err := json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
		if err != nil {
			t.Errorf("encode JWKS: %v", err)
		}
	}))
	defer jwks.Close()
	temporal := newBlackHole(t)

	env := goodEnv()
	env["BRIDGE_ADDR"] = "127.0.0.1:0"
	env["CONNECT_JWKS_URL"] = jwks.URL
	env["TEMPORAL_ADDRESS"] = temporal.addr()
	env["BRIDGE_TEMPORAL_TIMEOUT"] = "3s"
	cmd := command(t, env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // only if the test failed before the process exited
	logs := &logLines{}
	addr := logs.follow(t, stderr, "webhookbridge listening")
	base := "http://" + addr

	resp, err := http.Get(base + bridge.PathHealthz)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	body := []byte(`{"event":"connect.deposit.initiated","deposit":{"id":"cx-1"},"session":{"id":"s-1",` +
		`"metadata":{"connectflow_transfer_id":"T1","connectflow_kind":"deposit"}}}`)
	req := signedRequest(t, key, base, "https://hooks.example.com", body)
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("webhook in flight was cut off: %v", err)
			close(answered)
			return
		}
		answered <- resp
	}()
	temporal.waitForConnection(t) // the verified webhook is now waiting on Temporal
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	resp, ok := <-answered
	if !ok {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("in-flight webhook: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	select { // every line is read before Wait closes the pipe
	case <-logs.done:
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after SIGTERM:\n%s", logs)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; log:\n%s", err, logs)
	}
	for _, want := range []string{"webhookbridge draining requests in flight", "webhookbridge stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), secretValue) {
		t.Errorf("log shows the secret:\n%s", logs)
	}
}

// signedRequest is a Connect webhook to base, signed for the public URL like Connect signs it.
func signedRequest(t *testing.T, key *rsa.PrivateKey, base, public string, body []byte) *http.Request {
	t.Helper()
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig, err := connect.Sign(key, ts, http.MethodPost, public+bridge.PathConnectDeposits, body)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "connect", "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix()})
	tok.Header["kid"] = "k1"
	bearer, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+bridge.PathConnectDeposits, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(connect.HeaderClientID, bridge.ConnectWebhookClientID)
	req.Header.Set(connect.HeaderPayloadType, bridge.PayloadTypeConnectDeposit)
	req.Header.Set(connect.HeaderTimestamp, ts)
	req.Header.Set(connect.HeaderSignature, sig)
	req.Header.Set("Authorization", "Bearer "+bearer)
	return req
}

// blackHole accepts TCP connections and never answers: a Temporal that hangs.
type blackHole struct {
	ln       net.Listener
	accepted chan struct{}
	mu       sync.Mutex
	conns    []net.Conn
}

func newBlackHole(t *testing.T) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, accepted: make(chan struct{}, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			select {
			case b.accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	return b
}

func (b *blackHole) addr() string { return b.ln.Addr().String() }

func (b *blackHole) waitForConnection(t *testing.T) {
	t.Helper()
	select {
	case <-b.accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge never called Temporal")
	}
}

// logLines collects a process's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed at the end of the log: the process closed its stderr
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// follow reads r's JSON log lines in the background and returns the "addr" of the first line whose msg is msg.
func (l *logLines) follow(t *testing.T, r io.Reader, msg string) string {
	t.Helper()
	found := make(chan string, 1)
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		defer close(found)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg {
				select {
				case found <- line.Addr:
				default: // reported already
				}
			}
		}
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatalf("process ended before logging %q:\n%s", msg, l)
		}
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q log line:\n%s", msg, l)
	}
	return ""
}

// TestAdminRoutesOnTheAdminListenerOnly (issue 14, finding 8): /readyz and /metrics answer on BRIDGE_ADMIN_ADDR,
// never on the public BRIDGE_ADDR, which serves the webhook routes and /healthz.
func TestAdminRoutesOnTheAdminListenerOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	env := goodEnv()
	env["BRIDGE_ADDR"] = "127.0.0.1:0"
	env["BRIDGE_ADMIN_ADDR"] = adminAddr
	env["TEMPORAL_ADDRESS"] = newBlackHole(t).addr()
	cmd := command(t, env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	logs := &logLines{}
	public := "http://" + logs.follow(t, stderr, "webhookbridge listening")
	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{bridge.PathReadyz: 404, bridge.PathMetrics: 404, bridge.PathHealthz: 200} {
		if got := status(public + path); got != want {
			t.Errorf("public %s: %d, want %d", path, got, want)
		}
	}
	admin := "http://" + adminAddr
	for path, want := range map[string]int{bridge.PathReadyz: 503, bridge.PathMetrics: 200, bridge.PathHealthz: 200} {
		if got := status(admin + path); got != want {
			t.Errorf("admin %s: %d, want %d", path, got, want)
		}
	}
}
