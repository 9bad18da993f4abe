package connecttest_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

func TestNewRejectsBadOptions(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	tests := []struct {
		name  string
		opts  connecttest.Options
		field string
	}{
		{"token TTL", connecttest.Options{TokenTTL: time.Millisecond}, "TokenTTL"},
		{"session TTL", connecttest.Options{SessionTTL: -time.Second}, "SessionTTL"},
		{"amount", connecttest.Options{Amount: "1e3"}, "Amount"},
		{"webhook URL", connecttest.Options{DepositWebhookURL: "/relative"}, "DepositWebhookURL"},
		{"public URL", connecttest.Options{PublicURL: "ftp://x"}, "PublicURL"},
		{"scope", connecttest.Options{AllowedScopes: []connect.Scope{"user:withdrawal:all"}}, "AllowedScopes"},
		{"recovery scope", connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeRecoverySend}}, "AllowedScopes"},
		{"redelivery", connecttest.Options{Redelivery: connecttest.Redelivery{Base: time.Second, Max: time.Millisecond}}, "Redelivery"},
		{"balance redelivery", connecttest.Options{BalanceRedelivery: connecttest.Redelivery{Attempts: 2, Flat: -1}}, "BalanceRedelivery"},
		{"autoplay outcome", connecttest.Options{AutoPlay: &connecttest.Play{Outcome: "later"}}, "AutoPlay"},
		{"autoplay unexpected", connecttest.Options{AutoPlay: &connecttest.Play{Outcome: connecttest.OutcomeUnexpected}}, "AutoPlay"},
		{"API secret", connecttest.Options{APISecret: "not base64!"}, "APISecret"},
		{"address in use", connecttest.Options{Addr: busy.Addr().String()}, "Addr"},
		{"control route outside /sandbox/", connecttest.Options{ControlRoutes: map[string]http.Handler{"POST /faults": ok204}}, "ControlRoutes"},
		{"control route without a method", connecttest.Options{ControlRoutes: map[string]http.Handler{"/sandbox/x": ok204}}, "ControlRoutes"},
		{"control route without a handler", connecttest.Options{ControlRoutes: map[string]http.Handler{"POST /sandbox/x": nil}}, "ControlRoutes"},
		{"control route clashing with a built-in", connecttest.Options{ControlRoutes: map[string]http.Handler{"POST /sandbox/faults": ok204}}, "ControlRoutes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.SigningKey = testKey(t, 0)
			srv, err := connecttest.New(tt.opts)
			if err == nil {
				srv.Close()
				t.Fatal("New accepted the options")
			}
			var optErr *connecttest.OptionError
			if !errors.As(err, &optErr) || optErr.Field != tt.field || !strings.Contains(err.Error(), "Options."+tt.field) {
				t.Fatalf("err %v, want an OptionError for %s", err, tt.field)
			}
		})
	}
}

var ok204 = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

// Extra control routes are served beside the built-in ones (the dev stack's demo platform faults).
func TestControlRoutes(t *testing.T) {
	calls := 0
	srv := connecttest.NewServer(t, connecttest.Options{ControlRoutes: map[string]http.Handler{
		"POST /sandbox/platform/faults": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			calls++
			w.WriteHeader(http.StatusNoContent)
		})}})
	resp, err := http.Post(srv.URL+"/sandbox/platform/faults", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || calls != 1 {
		t.Fatalf("status %d, %d calls; want 204 and 1", resp.StatusCode, calls)
	}
	resp, err = http.Get(srv.URL + "/sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("built-in route after an extra one: %d", resp.StatusCode)
	}
}

func TestEnvAndPublicURL(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{Addr: "0.0.0.0:0", ClientID: "cid", APISecret: connecttest.DefaultAPISecret})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q: a wildcard listener should be addressed via loopback", srv.URL)
	}
	env := strings.Join(srv.Env(), "\n")
	for _, want := range []string{
		"CONNECT_API_URL=" + srv.URL + "/api/v1", "CONNECT_CLIENT_ID=cid", "CONNECT_JWKS_URL=" + srv.URL + "/api/v1/jwks",
		"ZEROHASH_API_URL=" + srv.URL, "ZEROHASH_API_SECRET=" + connecttest.DefaultAPISecret, "ZEROHASH_WEBHOOK_SECRET=",
		"CONNECT_CLIENT_SECRET=", "ZEROHASH_API_KEY=", "ZEROHASH_PASSPHRASE=",
		"CONNECT_ORGANIZATION_ID=" + connecttest.DefaultOrganizationID,
	} {
		if !strings.Contains(env, want) {
			t.Errorf("Env lacks %q:\n%s", want, env)
		}
	}

	public := newSandbox(t, connecttest.Options{PublicURL: "http://sandbox.internal:8090"})
	if public.URL != "http://sandbox.internal:8090" {
		t.Fatalf("URL %q, want the PublicURL", public.URL)
	}
}
