package connect_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

// These tests run the real client against the real sandbox over loopback HTTP, and check both against the
// published examples in testdata/contract (see its README for where each comes from).

var sandboxKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newSandbox(t *testing.T, opts connecttest.Options) *connecttest.Server {
	t.Helper()
	if opts.SigningKey == nil {
		opts.SigningKey = sandboxKey()
	}
	return connecttest.NewServer(t, opts)
}

func newClient(t *testing.T, srv *connecttest.Server, edit func(*connect.Options)) *connect.Client {
	t.Helper()
	opts := connect.Options{BaseURL: srv.URL + "/api/v1", ClientID: connecttest.DefaultClientID,
		ClientSecret: connecttest.DefaultClientSecret, OrganizationID: connecttest.DefaultOrganizationID}
	if edit != nil {
		edit(&opts)
	}
	c, err := connect.New(opts)
	if err != nil {
		t.Fatalf("connect.New: %v", err)
	}
	return c
}

// fixture reads a published example from testdata/contract.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "contract", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shape maps each top-level key of a JSON object to its JSON type, for comparing bodies with examples.
func shape(t *testing.T, body []byte) map[string]string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v", body, err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v[0] {
		case '"':
			out[k] = "string"
		case '{':
			out[k] = "object"
		case '[':
			out[k] = "array"
		case 't', 'f':
			out[k] = "bool"
		case 'n':
			out[k] = "null"
		default:
			out[k] = "number"
		}
	}
	return out
}

func post(t *testing.T, url string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, got
}

// capture records the token and session requests a client sends, then hands them to the sandbox.
type capture struct {
	mu     sync.Mutex
	token  []byte
	header http.Header
	body   []byte
}

func (c *capture) proxy(t *testing.T, srv *connecttest.Server) *httptest.Server {
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // a short read fails at the sandbox, which the test sees
		c.mu.Lock()
		if strings.HasSuffix(r.URL.Path, "/oauth/token") {
			c.token = body
		} else {
			c.header, c.body = r.Header.Clone(), body
		}
		c.mu.Unlock()
		req, err := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.RequestURI(), strings.NewReader(string(body)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body) // the client reports a truncated answer itself
	}))
	t.Cleanup(p.Close)
	return p
}

// The client's token request has exactly the published fields, with the published grant_type, our organization
// id and the audience derived from the API URL; the sandbox accepts it.
func TestContractTokenRequest(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	var cp capture
	proxy := cp.proxy(t, srv)
	// Through the proxy the derived audience would be the proxy's origin: name the sandbox's, as behind any proxy.
	c := newClient(t, srv, func(o *connect.Options) { o.BaseURL, o.Audience = proxy.URL+"/api/v1", srv.URL })
	if _, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: "deposit-T1", Kind: connect.KindDeposit, ReferenceID: "USER01"}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	cp.mu.Lock()
	sent := cp.token
	cp.mu.Unlock()
	if got, want := shape(t, sent), shape(t, fixture(t, "token_request.json")); !maps.Equal(got, want) {
		t.Fatalf("token request fields %v, want the published %v", got, want)
	}
	var body map[string]string
	if err := json.Unmarshal(sent, &body); err != nil {
		t.Fatal(err)
	}
	if body["grant_type"] != "client_credentials" || body["organization_id"] != connecttest.DefaultOrganizationID ||
		body["audience"] != srv.URL || body["client_id"] != connecttest.DefaultClientID {
		t.Fatalf("token request %v", body)
	}

	// Without an Audience the client derives the API's origin, as the OpenAPI's example does.
	if got := newClient(t, srv, nil).Audience(); got != srv.URL {
		t.Fatalf("derived audience %q, want %q", got, srv.URL)
	}
	if got := connect.DefaultAudience("https://api.sandbox.connect.xyz/api/v1/"); got != "https://api.sandbox.connect.xyz" {
		t.Fatalf("DefaultAudience = %q", got)
	}
}

// The published token request is accepted verbatim by a sandbox holding its credentials, and the answer has the
// published example's fields and types; the guide's two-field request is refused in the OAuth error shape.
func TestContractTokenFixtures(t *testing.T) {
	var req struct{ ClientID, ClientSecret, Audience, OrganizationID string }
	var raw map[string]string
	if err := json.Unmarshal(fixture(t, "token_request.json"), &raw); err != nil {
		t.Fatal(err)
	}
	req.ClientID, req.ClientSecret, req.Audience, req.OrganizationID = raw["client_id"], raw["client_secret"], raw["audience"], raw["organization_id"]
	srv := newSandbox(t, connecttest.Options{ClientID: req.ClientID, ClientSecret: req.ClientSecret,
		OrganizationID: req.OrganizationID, Audience: req.Audience, TokenTTL: 24 * time.Hour})
	status, answer := post(t, srv.URL+"/api/v1/oauth/token", fixture(t, "token_request.json"), nil)
	if status != http.StatusOK {
		t.Fatalf("published token request: %d %s", status, answer)
	}
	if got, want := shape(t, answer), shape(t, fixture(t, "token_answer.json")); !maps.Equal(got, want) {
		t.Fatalf("token answer %s, want the published shape %v", answer, want)
	}
	status, answer = post(t, srv.URL+"/api/v1/oauth/token", fixture(t, "guide_token_request.json"), nil)
	if got, want := shape(t, answer), shape(t, fixture(t, "token_error_invalid_client.json")); status != http.StatusBadRequest || !maps.Equal(got, want) {
		t.Fatalf("guide's token request: %d %s, want 400 in the published OAuth error shape", status, answer)
	}
}

// The published session requests are accepted verbatim (with the published headers), and the answers have the
// published example's fields and types.
func TestContractSessionFixtures(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	token := accessToken(t, srv)
	for _, name := range []string{"session_request_deposit.json", "session_request_withdrawal.json"} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + token}, "X-Connect-Client-Id": {connecttest.DefaultOrganizationID}}
			status, answer := post(t, srv.URL+"/api/v1/sessions", fixture(t, name), h)
			if status != http.StatusOK {
				t.Fatalf("published session request: %d %s", status, answer)
			}
			if got, want := shape(t, answer), shape(t, fixture(t, "session_answer.json")); !maps.Equal(got, want) {
				t.Fatalf("session answer %s, want the published shape %v", answer, want)
			}
		})
	}
	// The sandbox's errors have the published shape and JSON types: {error: string, code: number, message: string}.
	h := http.Header{"Authorization": {"Bearer " + token}, "X-Connect-Client-Id": {connecttest.DefaultOrganizationID}}
	status, answer := post(t, srv.URL+"/api/v1/sessions", []byte(`{"account":{"reference_id":"U"},"scopes":["user:withdrawal:request"]}`), h)
	if got, want := shape(t, answer), shape(t, fixture(t, "session_error_bad_request.json")); status != http.StatusBadRequest || !maps.Equal(got, want) {
		t.Fatalf("withdrawal:request without details: %d %s, want 400 in the published shape %v", status, answer, want)
	}
}

func accessToken(t *testing.T, srv *connecttest.Server) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"client_id": connecttest.DefaultClientID, "client_secret": connecttest.DefaultClientSecret,
		"audience": srv.URL, "grant_type": "client_credentials", "organization_id": connecttest.DefaultOrganizationID})
	status, answer := post(t, srv.URL+"/api/v1/oauth/token", body, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %s", status, answer)
	}
	var a struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		t.Fatal(err)
	}
	return a.AccessToken
}

// The published error bodies are read and named: the OAuth shape by its error, the sessions shape by its gRPC
// code's name.
func TestContractErrorFixtures(t *testing.T) {
	for _, tt := range []struct {
		file, path  string
		status      int
		wantShape   string
		wantCode    string
		wantGRPC    string
		wantMessage string
		wantText    string
	}{
		{"token_error_invalid_client.json", "/oauth/token", 401, connect.ShapeOAuth, "invalid_client", "", "Client authentication failed",
			"connect: token: HTTP 401 invalid_client: Client authentication failed"},
		{"session_error_forbidden.json", "/sessions", 403, connect.ShapeConnect, "Forbidden", "PERMISSION_DENIED", "invalid scopes: user:withdrawal:request is not allowed for this organization",
			"connect: create session: HTTP 403 Forbidden (code 7 PERMISSION_DENIED): invalid scopes"},
		{"session_error_bad_request.json", "/sessions", 400, connect.ShapeConnect, "Bad Request", "INVALID_ARGUMENT", "withdrawal_details is required when 'user:withdrawal:request' is in scopes",
			"connect: create session: HTTP 400 Bad Request (code 3 INVALID_ARGUMENT): withdrawal_details is required"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			body := fixture(t, tt.file)
			srv := newSandbox(t, connecttest.Options{})
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, tt.path) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tt.status)
					_, _ = w.Write(body)
					return
				}
				// Everything else is the sandbox's, so only the fixture's endpoint answers with it.
				req, _ := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.RequestURI(), r.Body)
				req.Header = r.Header.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				w.WriteHeader(resp.StatusCode)
				_, _ = io.Copy(w, resp.Body) // the client reports a truncated answer itself
			}))
			t.Cleanup(api.Close)
			c := newClient(t, srv, func(o *connect.Options) { o.BaseURL, o.Audience = api.URL+"/api/v1", srv.URL })
			_, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: "r", Kind: connect.KindWithdrawal,
				ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin", Amount: "0.013"})
			var apiErr *connect.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v, want an *APIError", err)
			}
			if apiErr.Shape != tt.wantShape || apiErr.ErrorCode != tt.wantCode || apiErr.CodeName != tt.wantGRPC ||
				apiErr.Message != tt.wantMessage || apiErr.StatusCode != tt.status || apiErr.Retryable {
				t.Fatalf("APIError %#v", apiErr)
			}
			if !strings.HasPrefix(err.Error(), tt.wantText) {
				t.Fatalf("error %q, want it to start %q", err, tt.wantText)
			}
		})
	}
}

// A session request carries the organization id in x-connect-client-id and a request_id that is the UUIDv5 of the
// transfer's key, so a retry is the same request at Connect; the sandbox checks both.
func TestContractSessionRequest(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	var cp capture
	proxy := cp.proxy(t, srv)
	c := newClient(t, srv, func(o *connect.Options) { o.BaseURL, o.Audience = proxy.URL+"/api/v1", srv.URL })
	req := connect.SessionRequest{RequestID: "withdrawal-T7", Kind: connect.KindWithdrawal, ReferenceID: "USER07",
		Asset: "BTC", Network: "bitcoin", Amount: "0.013", AccountLabel: "general"}
	first, err := c.CreateSession(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	again, err := c.CreateSession(context.Background(), req) // an activity retry
	if err != nil {
		t.Fatalf("CreateSession retry: %v", err)
	}
	if again.ID != first.ID || srv.SessionsCreated() != 1 {
		t.Fatalf("a retry opened session %s after %s (%d sessions), want the same one", again.ID, first.ID, srv.SessionsCreated())
	}
	cp.mu.Lock()
	header, body := cp.header, cp.body
	cp.mu.Unlock()
	if got := header.Get("x-connect-client-id"); got != connecttest.DefaultOrganizationID {
		t.Fatalf("x-connect-client-id %q, want the organization id", got)
	}
	if got, want := shape(t, body), shape(t, fixture(t, "session_request_withdrawal.json")); !maps.Equal(got, want) {
		t.Fatalf("session request %s, want the published fields %v", body, want)
	}
	var sent struct {
		RequestID string   `json:"request_id"`
		Scopes    []string `json:"scopes"`
		Session   struct {
			WithdrawalDetails map[string]any `json:"withdrawal_details"`
		} `json:"session"`
	}
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(sent.RequestID)
	if err != nil || id.Version() != 5 || sent.RequestID != connect.SessionRequestID("withdrawal-T7") {
		t.Fatalf("request_id %q, want the UUIDv5 of the workflow id", sent.RequestID)
	}
	if info, _ := srv.Session(first.ID); info.RequestID != sent.RequestID || info.Scope != connect.ScopeWithdrawalRequest {
		t.Fatalf("the sandbox recorded %+v", info)
	}
	if amount, ok := sent.Session.WithdrawalDetails["amount"].(string); !ok || amount != "0.013" ||
		!slices.Equal(sent.Scopes, []string{"user:withdrawal:request"}) {
		t.Fatalf("withdrawal body %s: want scope user:withdrawal:request and the amount as a string", body)
	}
}

// SessionRequestID is pinned: changing it would make every transfer in flight open a second session on retry.
// The vectors are uuid.uuid5(UUID("6f1c2a4e-0b7d-5c3e-9a8f-2d4b6e8c0a17"), key) in Python, an independent
// implementation of RFC 9562's UUIDv5.
func TestSessionRequestIDIsStable(t *testing.T) {
	for key, want := range map[string]string{
		"deposit-T1":    "52199f42-cfe1-51b1-a099-87de5af3c085",
		"withdrawal-T1": "de69fc72-097c-5cf0-8117-474f8090daf2",
		// A key that is already a UUID is sent as is, in canonical form.
		"3D2C4F1E-8B6A-4C2D-9E7F-1A2B3C4D5E6F": "3d2c4f1e-8b6a-4c2d-9e7f-1a2b3c4d5e6f",
	} {
		if got := connect.SessionRequestID(key); got != want {
			t.Errorf("SessionRequestID(%q) = %s, want %s", key, got, want)
		}
	}
	// A UUID without its dashes is not canonical: it is a key like any other.
	if got := connect.SessionRequestID("3d2c4f1e8b6a4c2d9e7f1a2b3c4d5e6f"); got == "3d2c4f1e-8b6a-4c2d-9e7f-1a2b3c4d5e6f" {
		t.Errorf("SessionRequestID of an undashed UUID = %s, want a derived UUID", got)
	}
}

// Each withdrawal scope is sent as configured and accepted by the sandbox: the OpenAPI's is answered flat, the
// guide's nested, and the client reads both.
func TestContractWithdrawalScopes(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	for i, scope := range []connect.Scope{connect.ScopeWithdrawalRequest, connect.ScopeWithdrawalSend} {
		c := newClient(t, srv, func(o *connect.Options) { o.WithdrawalScope = scope })
		s, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: string(scope), Kind: connect.KindWithdrawal,
			ReferenceID: "SCOPE" + string(rune('A'+i)), Asset: "BTC", Network: "bitcoin", Amount: "0.5"})
		if err != nil {
			t.Fatalf("%s: %v", scope, err)
		}
		if info, _ := srv.Session(s.ID); info.Scope != scope || info.Amount != "0.5" {
			t.Fatalf("%s: the sandbox recorded %+v", scope, info)
		}
	}
}

// A 403 naming a scope says which setting to change; the error names the gRPC code too.
func TestContractScopeRefusedNamesTheSetting(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeDepositSend, connect.ScopeWithdrawalSend}})
	c := newClient(t, srv, nil)
	_, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: "w", Kind: connect.KindWithdrawal,
		ReferenceID: "U", Asset: "BTC", Network: "bitcoin", Amount: "1"})
	var apiErr *connect.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.CodeName != "PERMISSION_DENIED" {
		t.Fatalf("err %v, want a 403 APIError with gRPC PERMISSION_DENIED", err)
	}
	for _, want := range []string{"CONNECT_WITHDRAWAL_SCOPE=user:withdrawal:send", "user:withdrawal:request"} {
		if !strings.Contains(err.Error(), want) || !strings.Contains(apiErr.Hint, want) {
			t.Fatalf("error %q (hint %q) does not say %q", err, apiErr.Hint, want)
		}
	}
	// The deposit scope has no setting: the hint says to ask Zero Hash.
	depositOnly := newSandbox(t, connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeWithdrawalRequest}})
	_, err = newClient(t, depositOnly, nil).CreateSession(context.Background(), connect.SessionRequest{RequestID: "d", Kind: connect.KindDeposit, ReferenceID: "U"})
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.Hint, "ask Zero Hash to enable it") || strings.Contains(apiErr.Hint, "CONNECT_WITHDRAWAL_SCOPE") {
		t.Fatalf("deposit scope refused: %v, want a hint to ask Zero Hash", err)
	}
	// A 403 that is not about scopes gets no hint.
	orgKey := sandboxKey()
	signed := newSandbox(t, connecttest.Options{OrgPublicKey: &orgKey.PublicKey})
	_, err = newClient(t, signed, nil).CreateSession(context.Background(), connect.SessionRequest{RequestID: "u", Kind: connect.KindDeposit, ReferenceID: "U"})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Hint != "" {
		t.Fatalf("unsigned request to a signing sandbox: %v, want a 403 without a scope hint", err)
	}
}

// With RequireSignature the client signs every session request; the sandbox verifies the signature.
func TestContractSignedRequests(t *testing.T) {
	orgKey := sandboxKey()
	srv := newSandbox(t, connecttest.Options{OrgPublicKey: &orgKey.PublicKey})
	c := newClient(t, srv, func(o *connect.Options) { o.OrgKey, o.RequireSignature = orgKey, true })
	if _, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: "s", Kind: connect.KindDeposit, ReferenceID: "SIGNED"}); err != nil {
		t.Fatalf("signed CreateSession: %v", err)
	}
	if _, err := connect.New(connect.Options{BaseURL: srv.URL, ClientID: "c", ClientSecret: "s", OrganizationID: "o", RequireSignature: true}); !errors.Is(err, connect.ErrOptions) {
		t.Fatalf("RequireSignature without a key: %v, want ErrOptions", err)
	}
}

// The token endpoint's refusals reach the caller named, in the OAuth shape.
func TestContractTokenRefused(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	for _, tt := range []struct {
		name string
		edit func(*connect.Options)
		want string
	}{
		{"wrong secret", func(o *connect.Options) { o.ClientSecret = "wrong-secret-value" }, "HTTP 401 invalid_client"},
		{"another organization", func(o *connect.Options) { o.OrganizationID = "5c0e0b7a-1111-4b4b-9a9a-0123456789ab" }, "HTTP 401 invalid_client"},
		{"another audience", func(o *connect.Options) { o.Audience = "https://api.cert.connect.xyz" }, "HTTP 400 invalid_request: audience is not this API's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(t, srv, tt.edit).CreateSession(context.Background(), connect.SessionRequest{RequestID: "x", Kind: connect.KindDeposit, ReferenceID: "U"})
			var apiErr *connect.APIError
			if !errors.As(err, &apiErr) || apiErr.Op != connect.OpToken || apiErr.Shape != connect.ShapeOAuth || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want a token error in the OAuth shape containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong-secret-value") {
				t.Fatalf("error %q repeats the secret", err)
			}
		})
	}
}

// A session that expired before it arrived (the sandbox's clock two hours behind ours) is ErrSessionUnusable, not
// a transfer that expires at once.
func TestContractSessionExpiredOnArrival(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }, TokenTTL: 4 * time.Hour})
	_, err := newClient(t, srv, nil).CreateSession(context.Background(), connect.SessionRequest{RequestID: "late", Kind: connect.KindDeposit, ReferenceID: "LATE"})
	if !errors.Is(err, connect.ErrSessionUnusable) || !strings.Contains(err.Error(), "before it arrived") {
		t.Fatalf("err %v, want ErrSessionUnusable saying it expired before it arrived", err)
	}
	if retryable, _ := connect.RetryInfo(err); retryable {
		t.Fatal("an unusable session is retryable")
	}
}

// A newer session for the same reference invalidates the older one at the sandbox, as Connect does.
func TestContractNewerSessionInvalidatesOlder(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	c := newClient(t, srv, nil)
	open := func(key string) *connect.Session {
		s, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: key, Kind: connect.KindDeposit, ReferenceID: "SAME"})
		if err != nil {
			t.Fatalf("CreateSession %s: %v", key, err)
		}
		return s
	}
	older, newer := open("deposit-A"), open("deposit-B")
	if info, _ := srv.Session(older.ID); !info.Invalidated() || info.ReplacedBy != newer.ID {
		t.Fatalf("older session %+v, want invalidated by %s", info, newer.ID)
	}
	if _, err := srv.Play(context.Background(), older.ID, connecttest.Play{}); !errors.Is(err, connecttest.ErrSessionInvalidated) {
		t.Fatalf("Play of the older session: %v, want ErrSessionInvalidated", err)
	}
}
