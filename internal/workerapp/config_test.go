package workerapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/platformhook"
	"github.com/connectflow/connectflow/workflows"
)

// Secret test values; every test checks that none of them shows up in an error or in -h.
const (
	testClientSecret = "cs-s3cr3t-value"
	testAPIKey       = "zh-api-key-value"
	testPassphrase   = "zh-pass-value"
)

const testOrganizationID = "4789efea-e034-4e6f-b8a0-5289aacec427"

var testAPISecret = base64.StdEncoding.EncodeToString([]byte("zh-hmac-secret-value"))

func secrets() []string { return []string{testClientSecret, testAPIKey, testPassphrase, testAPISecret} }

// goodEnv is a complete worker environment; TEMPORAL_CONFIG_FILE points nowhere so no real profile leaks in.
func goodEnv(t *testing.T) settings.MapEnv {
	return settings.MapEnv{
		"TEMPORAL_CONFIG_FILE":   filepath.Join(t.TempDir(), "absent.toml"),
		EnvConnectAPIURL:         "https://api.sandbox.connect.xyz/api/v1",
		EnvConnectClientID:       "client-1",
		EnvConnectClientSecret:   testClientSecret,
		EnvConnectOrganizationID: testOrganizationID,
		EnvZeroHashAPIURL:        "https://api.cert.zerohash.com",
		EnvZeroHashAPIKey:        testAPIKey,
		EnvZeroHashAPISecret:     testAPISecret,
		EnvZeroHashPassphrase:    testPassphrase,
		"CONNECTFLOW_CODEC_KEYS": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // a test key: bytes 0..31
	}
}

func TestLoadSettingsFromEnv(t *testing.T) {
	env := goodEnv(t)
	env[EnvMetricsAddr] = ":9090"
	env[EnvMaxConcurrentActivities] = "50"
	env[EnvLogLevel] = "debug"
	env[settings.EnvTemporalNamespace] = "payments"
	st, err := LoadSettings(nil, env, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("LoadSettings: %v", err)
	}
	w := st.Worker
	if w.TaskQueue != workflows.DefaultTaskQueue || w.Connect.BaseURL != env[EnvConnectAPIURL] ||
		w.Connect.ClientID != "client-1" || w.Connect.ClientSecret != testClientSecret || w.Connect.OrgKey != nil ||
		w.ZeroHash.BaseURL != env[EnvZeroHashAPIURL] || w.ZeroHash.APIKey != testAPIKey ||
		w.ZeroHash.APISecret != testAPISecret || w.ZeroHash.Passphrase != testPassphrase ||
		w.MaxConcurrentActivities != 50 || st.MetricsAddr != ":9090" || !st.RegisterSearchAttributes ||
		st.LogLevel.String() != "DEBUG" || w.Connect.OrganizationID != testOrganizationID ||
		w.Connect.WithdrawalScope != connect.ScopeWithdrawalRequest || w.Connect.Audience != "" || w.Connect.RequireSignature {
		t.Fatalf("settings not loaded as given: %+v", st)
	}
	if st.GaugeInterval != DefaultVisibilityInterval {
		t.Fatalf("GaugeInterval = %s, want the default %s", st.GaugeInterval, DefaultVisibilityInterval)
	}
	opts, err := st.Temporal.ClientOptions()
	if err != nil || opts.Namespace != "payments" {
		t.Fatalf("ClientOptions = %v, %v; want namespace payments", opts.Namespace, err)
	}
}

func TestLoadSettingsGaugeInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "1s": time.Second, "2m": 2 * time.Minute} {
		env := goodEnv(t)
		env[EnvGaugeInterval] = in
		st, err := LoadSettings(nil, env, &bytes.Buffer{})
		if err != nil || st.GaugeInterval != want {
			t.Errorf("%s=%s: GaugeInterval %v, %v; want %s", EnvGaugeInterval, in, st, err, want)
		}
	}
}

func TestLoadSettingsFlagsWin(t *testing.T) {
	env := goodEnv(t)
	env[EnvRegisterSearchAttributes] = "true"
	st, err := LoadSettings([]string{"-connect-api-url", "http://127.0.0.1:8080/api/v1", "-temporal-task-queue", "q2",
		"-register-search-attributes=false", "-temporal-address", "temporal:7233"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("LoadSettings: %v", err)
	}
	if st.Worker.Connect.BaseURL != "http://127.0.0.1:8080/api/v1" || st.Worker.TaskQueue != "q2" || st.RegisterSearchAttributes {
		t.Fatalf("flags did not win: %+v", st.Worker)
	}
	if opts, _ := st.Temporal.ClientOptions(); opts.HostPort != "temporal:7233" {
		t.Fatalf("HostPort = %q", opts.HostPort)
	}
}

func TestLoadSettingsOrgKeyPKCS1AndPKCS8(t *testing.T) {
	key := testKey(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"pkcs1": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		"pkcs8": {Type: "PRIVATE KEY", Bytes: pkcs8},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".pem")
			if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
				t.Fatal(err)
			}
			env := goodEnv(t)
			env[EnvConnectOrgKeyFile] = path
			st, err := LoadSettings(nil, env, &bytes.Buffer{})
			if err != nil {
				t.Fatalf("LoadSettings: %v", err)
			}
			if st.Worker.Connect.OrgKey == nil || !st.Worker.Connect.OrgKey.Equal(key) {
				t.Fatal("the org key was not loaded from the file")
			}
		})
	}
}

func TestLoadSettingsConnectContract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "org.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey(t))}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := goodEnv(t)
	env[EnvConnectWithdrawalScope] = "user:withdrawal:send"
	env[EnvConnectAudience] = "https://api.cert.connect.xyz"
	env[EnvConnectSignRequests] = "true"
	env[EnvConnectOrgKeyFile] = path
	st, err := LoadSettings(nil, env, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("LoadSettings: %v", err)
	}
	c := st.Worker.Connect
	if c.WithdrawalScope != connect.ScopeWithdrawalSend || c.Audience != "https://api.cert.connect.xyz" || !c.RequireSignature || c.OrgKey == nil {
		t.Fatalf("Connect options %+v, want the guide's scope, the audience, required signing with the key", c)
	}
	if connect.WithdrawalScopeSetting != EnvConnectWithdrawalScope {
		t.Fatalf("the connect client's scope hints name %s, the worker's setting is %s", connect.WithdrawalScopeSetting, EnvConnectWithdrawalScope)
	}
}

func TestLoadSettingsNamesEachBadVariable(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(settings.MapEnv)
		wantEnv string
		wantErr string
	}{
		{"missing client id", func(e settings.MapEnv) { delete(e, EnvConnectClientID) }, EnvConnectClientID, "required"},
		{"missing client secret", func(e settings.MapEnv) { delete(e, EnvConnectClientSecret) }, EnvConnectClientSecret, "required"},
		{"missing organization id", func(e settings.MapEnv) { delete(e, EnvConnectOrganizationID) }, EnvConnectOrganizationID, "required"},
		{"unknown withdrawal scope", func(e settings.MapEnv) { e[EnvConnectWithdrawalScope] = "user:withdrawal:all" }, EnvConnectWithdrawalScope, "is not a withdrawal scope: use user:withdrawal:request"},
		{"deposit scope for withdrawals", func(e settings.MapEnv) { e[EnvConnectWithdrawalScope] = "user:deposit:send" }, EnvConnectWithdrawalScope, "is not a withdrawal scope"},
		{"signed requests without a key", func(e settings.MapEnv) { e[EnvConnectSignRequests] = "true" }, EnvConnectSignRequests, "is true but CONNECT_ORG_KEY_FILE is not set"},
		{"sign requests not a bool", func(e settings.MapEnv) { e[EnvConnectSignRequests] = "yes please" }, EnvConnectSignRequests, "true or false"},
		{"audience with a newline", func(e settings.MapEnv) { e[EnvConnectAudience] = "https://api.connect.xyz\n" }, EnvConnectAudience, "control character"},
		{"missing zero hash url", func(e settings.MapEnv) { e[EnvZeroHashAPIURL] = "" }, EnvZeroHashAPIURL, "required"},
		{"connect url not absolute", func(e settings.MapEnv) { e[EnvConnectAPIURL] = "api.sandbox.connect.xyz" }, EnvConnectAPIURL, "absolute URL"},
		{"zero hash url plain http", func(e settings.MapEnv) { e[EnvZeroHashAPIURL] = "http://api.cert.zerohash.com" }, EnvZeroHashAPIURL, "must use https"},
		{"api secret not base64", func(e settings.MapEnv) { e[EnvZeroHashAPISecret] = "not base64 at all!" }, EnvZeroHashAPISecret, "base64"},
		{"passphrase with newline", func(e settings.MapEnv) { e[EnvZeroHashPassphrase] = testPassphrase + "\n" }, EnvZeroHashPassphrase, "control character"},
		{"key file missing", func(e settings.MapEnv) { e[EnvConnectOrgKeyFile] = "/nonexistent/org.pem" }, EnvConnectOrgKeyFile, "cannot read"},
		{"metrics addr", func(e settings.MapEnv) { e[EnvMetricsAddr] = "9090" }, EnvMetricsAddr, "host:port"},
		{"max activities", func(e settings.MapEnv) { e[EnvMaxConcurrentActivities] = "-1" }, EnvMaxConcurrentActivities, "negative"},
		{"log level", func(e settings.MapEnv) { e[EnvLogLevel] = "loud" }, EnvLogLevel, "debug, info, warn or error"},
		{"gauge interval negative", func(e settings.MapEnv) { e[EnvGaugeInterval] = "-30s" }, EnvGaugeInterval, "must not be negative"},
		{"gauge interval too short", func(e settings.MapEnv) { e[EnvGaugeInterval] = "100ms" }, EnvGaugeInterval, "must be 0 (off) or at least 1s"},
		{"gauge interval no unit", func(e settings.MapEnv) { e[EnvGaugeInterval] = "30" }, EnvGaugeInterval, "must be a duration such as 30s or 5m"},
		{"empty task queue flag", func(e settings.MapEnv) {}, settings.EnvTemporalTaskQueue, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := goodEnv(t)
			tt.edit(env)
			var args []string
			if tt.wantEnv == settings.EnvTemporalTaskQueue {
				args = []string{"-temporal-task-queue="}
			}
			_, err := LoadSettings(args, env, &bytes.Buffer{})
			assertNamed(t, err, tt.wantEnv, tt.wantErr)
		})
	}
}

func TestLoadSettingsHelpShowsNamesNotSecrets(t *testing.T) {
	var out bytes.Buffer
	_, err := LoadSettings([]string{"-h"}, goodEnv(t), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("LoadSettings(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-connect-client-id", "env CONNECT_CLIENT_ID, required", "-temporal-address",
		"env TEMPORAL_TASK_QUEUE, required, default connect-transfers", "env WORKER_METRICS_ADDR", "env CONNECT_ORG_KEY_FILE",
		"env CONNECT_ORGANIZATION_ID, required", "env CONNECT_WITHDRAWAL_SCOPE, default user:withdrawal:request",
		"env CONNECT_AUDIENCE", "env CONNECT_SIGN_REQUESTS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, s := range secrets() {
		if strings.Contains(out.String(), s) {
			t.Errorf("help shows secret %q", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantEnv string
		wantErr string
	}{
		{"no task queue", func(c *Config) { c.TaskQueue = "" }, settings.EnvTemporalTaskQueue, "required"},
		{"no connect url", func(c *Config) { c.Connect.BaseURL = "" }, EnvConnectAPIURL, "required"},
		{"connect url with credentials", func(c *Config) { c.Connect.BaseURL = "https://id:" + testClientSecret + "@connect.example" }, EnvConnectAPIURL, "credentials"},
		{"no client id", func(c *Config) { c.Connect.ClientID = "" }, EnvConnectClientID, "required"},
		{"no organization id", func(c *Config) { c.Connect.OrganizationID = "" }, EnvConnectOrganizationID, "required"},
		{"bad withdrawal scope", func(c *Config) { c.Connect.WithdrawalScope = "user:recovery:send" }, EnvConnectWithdrawalScope, "not a withdrawal scope"},
		{"signature required, no key", func(c *Config) { c.Connect.RequireSignature = true }, EnvConnectSignRequests, "CONNECT_ORG_KEY_FILE"},
		{"client secret with space", func(c *Config) { c.Connect.ClientSecret = testClientSecret + " " }, EnvConnectClientSecret, "white space"},
		{"small org key", func(c *Config) { c.Connect.OrgKey = small }, EnvConnectOrgKeyFile, "1024 bits"},
		{"zero hash url query", func(c *Config) { c.ZeroHash.BaseURL = "https://api.cert.zerohash.com?x=1" }, EnvZeroHashAPIURL, "query"},
		{"no api key", func(c *Config) { c.ZeroHash.APIKey = "" }, EnvZeroHashAPIKey, "required"},
		{"api secret not base64", func(c *Config) { c.ZeroHash.APISecret = "%%%" + testClientSecret }, EnvZeroHashAPISecret, "base64"},
		{"no passphrase", func(c *Config) { c.ZeroHash.Passphrase = "" }, EnvZeroHashPassphrase, "required"},
		{"negative activities", func(c *Config) { c.MaxConcurrentActivities = -3 }, EnvMaxConcurrentActivities, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goodConfig(t)
			tt.edit(&cfg)
			assertNamed(t, cfg.Validate(), tt.wantEnv, tt.wantErr)
		})
	}
	t.Run("good", func(t *testing.T) {
		cfg := goodConfig(t)
		cfg.Connect.OrgKey = testKey(t)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})
	t.Run("every problem at once", func(t *testing.T) {
		err := Config{}.Validate()
		for _, env := range []string{settings.EnvTemporalTaskQueue, EnvConnectAPIURL, EnvConnectClientID,
			EnvConnectClientSecret, EnvConnectOrganizationID, EnvZeroHashAPIURL, EnvZeroHashAPIKey, EnvZeroHashAPISecret, EnvZeroHashPassphrase} {
			if err == nil || !strings.Contains(err.Error(), env+" (flag -"+settings.FlagName(env)+"): required") {
				t.Errorf("error %v does not name %s", err, env)
			}
		}
	})
}

// assertNamed checks that err names env (with its flag) and says want, and quotes no secret.
func assertNamed(t *testing.T, err error, env, want string) {
	t.Helper()
	var setErr *settings.Error
	if !errors.As(err, &setErr) {
		t.Fatalf("error %v is not a *settings.Error", err)
	}
	prefix := env + " (flag -" + settings.FlagName(env) + "): "
	found := false
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, want) {
			found = true
		}
	}
	if !found {
		t.Fatalf("error %q has no line %q...%q", err, prefix, want)
	}
	for _, s := range secrets() {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q quotes secret %q", err, s)
		}
	}
}

func goodConfig(t *testing.T) Config {
	st, err := LoadSettings(nil, goodEnv(t), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("LoadSettings: %v", err)
	}
	return st.Worker
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// testKey is one 2048-bit key for the package's tests; generating it is the slow part.
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() { key, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return key
}

func TestLoadSettingsPlatformNotifications(t *testing.T) {
	newer, older := platformhook.NewSecret(), platformhook.NewSecret()
	env := goodEnv(t)
	st, err := LoadSettings(nil, env, &bytes.Buffer{})
	if err != nil || st.Worker.Platform.URL != "" || st.Worker.Platform.platform() != nil {
		t.Fatalf("without a URL notifications are off: %+v, %v", st, err)
	}

	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte(older+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env[EnvPlatformWebhookURL] = "https://platform.example/hooks/connectflow"
	env[EnvPlatformWebhookSecret] = newer
	env[EnvPlatformWebhookSecretFile] = file
	env[EnvPlatformWebhookRetryFor] = "1h"
	st, err = LoadSettings(nil, env, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("LoadSettings: %v", err)
	}
	p := st.Worker.Platform
	if p.URL != env[EnvPlatformWebhookURL] || len(p.Secrets) != 2 || p.RetryFor != time.Hour || p.Timeout != activities.DefaultPlatformTimeout {
		t.Fatalf("platform settings: %+v", p)
	}

	defaults := goodEnv(t)
	defaults[EnvPlatformWebhookURL] = "https://platform.example/hooks"
	defaults[EnvPlatformWebhookSecret] = newer
	st, err = LoadSettings(nil, defaults, &bytes.Buffer{})
	if err != nil || st.Worker.Platform.RetryFor != 72*time.Hour {
		t.Fatalf("PLATFORM_WEBHOOK_RETRY_FOR default: %+v, %v", st, err)
	}

	for name, c := range map[string]struct {
		set     map[string]string
		wantEnv string
	}{
		"url without secret": {map[string]string{EnvPlatformWebhookURL: "https://p.example/h"}, EnvPlatformWebhookSecret},
		"secret without url": {map[string]string{EnvPlatformWebhookSecret: newer}, EnvPlatformWebhookSecret},
		"not whsec":          {map[string]string{EnvPlatformWebhookURL: "https://p.example/h", EnvPlatformWebhookSecret: "hunter2-not-a-whsec"}, EnvPlatformWebhookSecret},
		"plain http":         {map[string]string{EnvPlatformWebhookURL: "http://p.example/h", EnvPlatformWebhookSecret: newer}, EnvPlatformWebhookURL},
		"unreadable file":    {map[string]string{EnvPlatformWebhookURL: "https://p.example/h", EnvPlatformWebhookSecretFile: "/nonexistent/secrets"}, EnvPlatformWebhookSecretFile},
		"timeout too long":   {map[string]string{EnvPlatformWebhookURL: "https://p.example/h", EnvPlatformWebhookSecret: newer, EnvPlatformWebhookTimeout: "40s"}, EnvPlatformWebhookTimeout},
		"negative retry":     {map[string]string{EnvPlatformWebhookURL: "https://p.example/h", EnvPlatformWebhookSecret: newer, EnvPlatformWebhookRetryFor: "-1h"}, EnvPlatformWebhookRetryFor},
	} {
		t.Run(name, func(t *testing.T) {
			env := goodEnv(t)
			for k, v := range c.set {
				env[k] = v
			}
			_, err := LoadSettings(nil, env, &bytes.Buffer{})
			var se *settings.Error
			if !errors.As(err, &se) || !strings.Contains(err.Error(), c.wantEnv) {
				t.Fatalf("error %v does not name %s", err, c.wantEnv)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), strings.TrimPrefix(newer, "whsec_")) {
				t.Fatalf("error quotes a secret: %v", err)
			}
		})
	}
}

// TestLoadSettingsTooManyPlatformSecrets: more secrets than a verifier reads signatures (each signs every
// message) is a bad PLATFORM_WEBHOOK_SECRET at start, naming the limit and quoting no secret, not a worker whose
// every notification the platform refuses.
func TestLoadSettingsTooManyPlatformSecrets(t *testing.T) {
	list := make([]string, platformhook.MaxSignatures+1)
	for i := range list {
		list[i] = platformhook.NewSecret()
	}
	env := goodEnv(t)
	env[EnvPlatformWebhookURL] = "https://platform.example/hooks/connectflow"
	env[EnvPlatformWebhookSecret] = strings.Join(list, ",")
	_, err := LoadSettings(nil, env, &bytes.Buffer{})
	var se *settings.Error
	if !errors.As(err, &se) || se.Env != EnvPlatformWebhookSecret || !errors.Is(err, platformhook.ErrTooManySecrets) ||
		!strings.Contains(err.Error(), fmt.Sprintf("at most %d", platformhook.MaxSignatures)) {
		t.Fatalf("%d secrets: %v; want a settings error naming %s and the limit", len(list), err, EnvPlatformWebhookSecret)
	}
	for _, s := range list {
		if strings.Contains(err.Error(), strings.TrimPrefix(s, platformhook.SecretPrefix)) {
			t.Fatalf("error quotes a secret: %v", err)
		}
	}
	env[EnvPlatformWebhookSecret] = strings.Join(list[:platformhook.MaxSignatures], ",")
	if st, err := LoadSettings(nil, env, &bytes.Buffer{}); err != nil || len(st.Worker.Platform.Secrets) != platformhook.MaxSignatures {
		t.Fatalf("%d secrets: %v", platformhook.MaxSignatures, err)
	}
}

// TestDeprecatedAliases: each of today's names (Aliases) still sets its WORKER_* setting, and is reported as
// deprecated by name; the new name wins over it.
func TestDeprecatedAliases(t *testing.T) {
	values := map[string]string{EnvMetricsAddr: ":9191", EnvMaxConcurrentActivities: "7",
		EnvRegisterSearchAttributes: "false", EnvReconcileEvery: "7m"}
	got := func(st *Settings, name string) string {
		switch name {
		case EnvMetricsAddr:
			return st.MetricsAddr
		case EnvMaxConcurrentActivities:
			return fmt.Sprint(st.Worker.MaxConcurrentActivities)
		case EnvRegisterSearchAttributes:
			return fmt.Sprint(st.RegisterSearchAttributes)
		case EnvReconcileEvery:
			return st.Worker.ReconcileEvery.String()
		}
		t.Fatalf("no value check for %s: add one", name)
		return ""
	}
	for old, name := range Aliases {
		want, ok := values[name]
		if !ok || !strings.HasPrefix(name, "WORKER_") {
			t.Fatalf("alias %s names %s: not a WORKER_* setting with a test value", old, name)
		}
		env := goodEnv(t)
		env[old] = want
		st, err := LoadSettings(nil, env, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", old, err)
		}
		if v := got(st, name); v != want && !(name == EnvReconcileEvery && v == "7m0s") {
			t.Errorf("%s=%s set %s to %s", old, want, name, v)
		}
		if d := st.Temporal.Deprecated(); len(d) != 1 || d[0] != (settings.Deprecation{Old: old, New: name}) {
			t.Errorf("%s: deprecated %v", old, d)
		}
		env[name] = map[string]string{EnvMetricsAddr: ":9292", EnvMaxConcurrentActivities: "1",
			EnvRegisterSearchAttributes: "true", EnvReconcileEvery: "1m"}[name]
		if st, err = LoadSettings(nil, env, io.Discard); err != nil || len(st.Temporal.Deprecated()) != 0 || got(st, name) == want {
			t.Errorf("%s beside %s: %v, deprecated %v, value %s", name, old, err, st.Temporal.Deprecated(), got(st, name))
		}
	}
}

// TestPlatformClientDoesNotFollowRedirects: the client the worker posts notifications with hands a 3xx back as
// it is (Standard Webhooks: a 3xx is a failure); the redirect's target never hears of the notification, and
// NotifyPlatform fails the attempt, to be retried.
func TestPlatformClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		followed.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(target.Close)
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/login", http.StatusFound)
	}))
	t.Cleanup(platform.Close)
	secrets, err := platformhook.ParseSecrets(platformhook.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	p := PlatformConfig{URL: platform.URL + "/hooks/connectflow", Secrets: secrets, Timeout: 2 * time.Second}.platform()

	resp, err := p.HTTPClient.Post(p.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || followed.Load() != 0 {
		t.Fatalf("the worker's platform client answered %d and the redirect target got %d requests; want the 302 itself and none",
			resp.StatusCode, followed.Load())
	}

	n := activities.Notification{WebhookID: "deposit-t1:1", Type: "deposit.confirmed", Timestamp: time.Now()}
	err = (&activities.Activities{Platform: p}).NotifyPlatform(context.Background(), n)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() || followed.Load() != 0 {
		t.Fatalf("NotifyPlatform after a 302: %v (target got %d requests); want a retryable failure", err, followed.Load())
	}
}
