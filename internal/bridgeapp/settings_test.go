package bridgeapp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
)

const secretValue = "zh-webhook-secret-7f3a"

// goodEnv is the least environment the bridge starts with (LoadSettings does not read the payload keys' text:
// ClientOptions does, at start).
func goodEnv() map[string]string {
	return map[string]string{
		EnvPublicURL:             "https://hooks.example.com",
		EnvConnectJWKSURL:        "https://api.example.com/api/v1/jwks",
		EnvZeroHashWebhookSecret: secretValue,
	}
}

// TestZeroHashSchemesAreOptional: the bridge starts with the secret, with only the RSA key, or with neither, and
// the defaults are the published contract's (signature auth, 5 min Zero Hash tolerance, legacy accepted).
func TestZeroHashSchemesAreOptional(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "zh-webhook.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		set     map[string]string
		schemes string
	}{
		"secret only": {map[string]string{}, "hmac"},
		"RSA only, timestamps required": {map[string]string{"ZEROHASH_WEBHOOK_SECRET": "", "ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE": keyFile,
			"ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP": "true"}, "rsa+timestamp-required"},
		"both":    {map[string]string{"ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE": keyFile}, "hmac+rsa"},
		"neither": {map[string]string{"ZEROHASH_WEBHOOK_SECRET": ""}, "none"},
	} {
		env := goodEnv()
		maps.Copy(env, c.set)
		maps.DeleteFunc(env, func(_, v string) bool { return v == "" }) // "" unsets
		cfg, err := LoadSettings(nil, settings.MapEnv(env), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := cfg.zeroHashSchemes(); got != c.schemes {
			t.Errorf("%s: schemes %q, want %q", name, got, c.schemes)
		}
		if cfg.Auth != bridge.AuthSignature || cfg.ZeroHashTolerance != 5*time.Minute || cfg.ConnectClientID != "" {
			t.Errorf("%s: defaults auth %q, tolerance %v, client id %q", name, cfg.Auth, cfg.ZeroHashTolerance, cfg.ConnectClientID)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "1048576": 1 << 20, "512KiB": 512 << 10, "1MiB": 1 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "1048577", "1025KiB", "2MiB", "1GiB", "1 MiB", "MiB", "0x10"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestDefaults: the listeners, limits and task queue a bridge gets from the least environment.
func TestDefaults(t *testing.T) {
	st, err := LoadSettings(nil, settings.MapEnv(goodEnv()), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st.Addr != DefaultAddr || st.AdminAddr != DefaultAdminAddr || st.MaxBody != 1<<20 ||
		st.TemporalTimeout != bridge.DefaultTemporalTimeout || st.Tolerance != 300*time.Second ||
		st.Temporal.TaskQueue != workflows.DefaultTaskQueue {
		t.Fatalf("defaults: %+v", st)
	}
}

// TestReplayWindowsAreCapped: both webhook tolerances, Connect's and Zero Hash's, are replay windows for a captured
// webhook: each is accepted up to bridge.MaxTolerance (10m) and refused above it, the error naming its variable.
func TestReplayWindowsAreCapped(t *testing.T) {
	for _, env := range []string{EnvConnectWebhookTolerance, EnvZeroHashWebhookTolerance} {
		for _, c := range []struct {
			value string
			ok    bool
		}{{"10m", true}, {"601s", false}, {"8760h", false}} {
			e := goodEnv()
			e[env] = c.value
			_, err := LoadSettings(nil, settings.MapEnv(e), io.Discard)
			if c.ok && err != nil {
				t.Errorf("%s=%s: %v", env, c.value, err)
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), env) || !strings.Contains(err.Error(), "at most 10m")) {
				t.Errorf("%s=%s: error %v, want one naming %s and its cap", env, c.value, err, env)
			}
		}
	}
}
