package bridgeapp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
)

// healthyTemporal answers health checks; the tests here make no other Temporal call.
type healthyTemporal struct{ client.Client }

func (healthyTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, nil
}

// jwksServer serves a JWKS holding one fresh RSA key, as Connect's does.
func jwksServer(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeAndStop builds the bridge from settings as every caller does, serves both ports on loopback with the
// one set of timeouts, and stops cleanly when the context ends: readiness fails from then on.
func TestServeAndStop(t *testing.T) {
	env := goodEnv()
	env[EnvConnectJWKSURL] = jwksServer(t)
	env[EnvTemporalTimeout] = "2s"
	st, err := LoadSettings(nil, settings.MapEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// A file: the serving goroutines write it (slog serializes their lines) while the test reads it.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "bridge.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	app, err := New(t.Context(), st, Options{Temporal: healthyTemporal{}, Logger: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if app.public.WriteTimeout != WriteTimeout+8*time.Second || app.admin.WriteTimeout != WriteTimeout ||
		app.public.ReadHeaderTimeout != cmdmain.ReadHeaderTimeout || app.admin.IdleTimeout != cmdmain.IdleTimeout {
		t.Fatalf("server timeouts: public %+v, admin %+v", app.public, app.admin)
	}
	public, admin := listen(t), listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, public, admin) }()
	readyCtx, cancelReady := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancelReady()
	if err := app.Bridge.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	pub, adm := "http://"+public.Addr().String(), "http://"+admin.Addr().String()
	for url, want := range map[string]int{pub + bridge.PathHealthz: 200, pub + bridge.PathReadyz: 404,
		adm + bridge.PathReadyz: 200, adm + bridge.PathMetrics: 200} {
		if got := get(t, url); got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}
	resp, err := http.Get(adm + bridge.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, family := range []string{"go_goroutines", "process_", bridge.MetricRequests} {
		if !strings.Contains(string(metrics), family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after the context ended: %v", err)
		}
	case <-time.After(DrainTimeout):
		t.Fatal("Serve did not return after its context ended")
	}
	if err := app.Bridge.Ready(t.Context()); err == nil {
		t.Error("ready after Serve returned, want closed")
	}
	logged, err := os.ReadFile(logFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"webhookbridge listening", "webhookbridge draining requests in flight", "webhookbridge stopped"} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	if strings.Contains(string(logged), secretValue) {
		t.Errorf("log shows the secret:\n%s", logged)
	}
}

// TestServeWithoutAdminPort: an embedding process (dev, bench) may leave the admin port out; a listener that
// fails ends Serve with the error, after the drain.
func TestServeWithoutAdminPort(t *testing.T) {
	st, err := LoadSettings(nil, settings.MapEnv(goodEnv()), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(t.Context(), st, Options{Temporal: healthyTemporal{}, Keys: noKeys{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	public := listen(t)
	done := make(chan error, 1)
	go func() { done <- app.Serve(t.Context(), public, nil) }()
	if got := get(t, "http://"+public.Addr().String()+bridge.PathHealthz); got != 200 {
		t.Fatalf("healthz: %d", got)
	}
	public.Close() // the listener fails under the server
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "serve") {
			t.Fatalf("Serve after its listener closed: %v, want a serve error", err)
		}
	case <-time.After(DrainTimeout):
		t.Fatal("Serve did not return after its listener failed")
	}
}

// TestNewRefusesBadSettings: bridge.New's checks reach the caller, and a key source New made is closed.
func TestNewRefusesBadSettings(t *testing.T) {
	st, err := LoadSettings(nil, settings.MapEnv(goodEnv()), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), st, Options{Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.Contains(err.Error(), "Temporal") {
		t.Fatalf("New without a Temporal client: %v", err)
	}
}

// noKeys is a key source with no key: enough for routes that verify nothing.
type noKeys struct{}

func (noKeys) Keyfunc(context.Context) jwt.Keyfunc            { return nil }
func (noKeys) PublicKeys(context.Context) []connect.PublicKey { return nil }
func (noKeys) Refresh(context.Context) bool                   { return false }
