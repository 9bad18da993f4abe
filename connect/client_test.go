package connect

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testClientID = "30da17fb-15b2-4723-a63c-0488356e1ed0"
	// testSecret is distinctive so any leak into an error string is easy to find.
	testSecret  = "7/7+QhFYOH+yeA3KOxgykbbhvUyaCvIE1Z0oHCTLRoz8LDq3uBshZIrGo94GqMoDZ=="
	testOrgID   = "4789efea-e034-4e6f-b8a0-5289aacec427"
	testAccount = "16b0e957-f3fd-41d0-b312-f2ec291de6e4"
	basePath    = "/api/v1"
)

// Test keys are generated once per test binary: real 2048-bit RSA, not fixtures that could drift.
var (
	orgKey     = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
	connectKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
)

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// capturedRequest is one /sessions request as the fake server saw it.
type capturedRequest struct {
	URL    string
	Header http.Header
	Body   []byte
}

// fakeConnect implements /oauth/token and /sessions the way the guide describes them.
type fakeConnect struct {
	t    testing.TB
	srv  *httptest.Server
	base string

	tokenCalls   atomic.Int64
	sessionCalls atomic.Int64

	mu           sync.Mutex
	expiresIn    any             // the token answer's expires_in (number, or nil to omit it)
	valid        map[string]bool // access tokens the fake accepts
	issued       []string        // every access token handed out
	jwts         []string        // every session JWT handed out
	requests     []capturedRequest
	numericTimes bool // mint iat/exp as numbers instead of the guide's RFC 3339 strings
	onToken      func(w http.ResponseWriter, r *http.Request) bool
	onSession    func(w http.ResponseWriter, r *http.Request, call int64) bool
}

func newFakeConnect(t testing.TB) *fakeConnect {
	f := &fakeConnect{t: t, expiresIn: 3600, valid: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+basePath+tokenPath, f.handleToken)
	mux.HandleFunc("POST "+basePath+sessionsPath, f.handleSession)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.base = f.srv.URL + basePath
	return f
}

// set runs fn under the fake's lock, so tests can reconfigure it without racing its handlers.
func (f *fakeConnect) set(fn func(f *fakeConnect)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// credentials returns every value that must never appear in an error: the secret, tokens and JWTs handed out.
func (f *fakeConnect) credentials() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(append([]string{testSecret}, f.issued...), f.jwts...)
}

func (f *fakeConnect) lastRequest() capturedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		f.t.Fatal("the fake saw no /sessions request")
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeConnect) revokeAll() {
	f.set(func(f *fakeConnect) { clear(f.valid) })
}

func (f *fakeConnect) handleToken(w http.ResponseWriter, r *http.Request) {
	f.tokenCalls.Add(1)
	f.mu.Lock()
	hook, expiresIn := f.onToken, f.expiresIn
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	var body struct {
		ClientID       string `json:"client_id"`
		ClientSecret   string `json:"client_secret"`
		Audience       string `json:"audience"`
		GrantType      string `json:"grant_type"`
		OrganizationID string `json:"organization_id"`
	}
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "body must be JSON"})
		return
	}
	if body.GrantType != "client_credentials" || body.Audience != "http://"+r.Host || body.OrganizationID != testOrgID {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "grant_type, audience or organization_id is wrong"})
		return
	}
	if body.ClientID != testClientID || body.ClientSecret != testSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Client authentication failed"})
		return
	}
	token := "at-" + randomHex(24)
	f.mu.Lock()
	f.valid[token] = true
	f.issued = append(f.issued, token)
	f.mu.Unlock()
	answer := map[string]any{"access_token": token, "token_type": "Bearer"}
	if expiresIn != nil {
		answer["expires_in"] = expiresIn
	}
	writeJSON(w, http.StatusOK, answer)
}

func (f *fakeConnect) handleSession(w http.ResponseWriter, r *http.Request) {
	call := f.sessionCalls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad_request", "message": "unreadable body"})
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, capturedRequest{URL: "http://" + r.Host + r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
	hook := f.onSession
	authorized := f.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	numeric := f.numericTimes
	f.mu.Unlock()
	if hook != nil && hook(w, r, call) {
		return
	}
	if !authorized {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "code": "invalid_token", "message": "access token rejected"})
		return
	}
	var req struct {
		RequestID string `json:"request_id"`
		Account   struct {
			ReferenceID string `json:"reference_id"`
		} `json:"account"`
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Scopes) != 1 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad_request", "code": "invalid_body", "message": "malformed session request"})
		return
	}
	now := time.Now().UTC()
	claims := map[string]any{
		"iss": "connect", "sub": "3dfb9dc0-9c00-4673-bc2e-5024ae62166d", "jti": "jti-" + req.RequestID,
		"organization": map[string]any{"id": testOrgID},
		"account":      map[string]any{"id": testAccount, "reference_id": req.Account.ReferenceID},
		"session":      map[string]any{"id": "sess-" + req.RequestID},
		"iat":          now.Format(time.RFC3339Nano),
		"exp":          now.Add(time.Hour).Format(time.RFC3339Nano),
	}
	if numeric {
		claims["iat"], claims["exp"] = now.Unix(), now.Add(time.Hour).Unix()
	}
	token := mintJWT(f.t, jwt.MapClaims(claims))
	f.mu.Lock()
	f.jwts = append(f.jwts, token)
	f.mu.Unlock()
	// The guide answers deposits flat and withdrawals nested; the fake does the same.
	if req.Scopes[0] == string(ScopeWithdrawalSend) || req.Scopes[0] == string(ScopeWithdrawalRequest) {
		writeJSON(w, http.StatusOK, map[string]any{"token": map[string]any{"jwt": token, "expires_in": 3600}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jwt": token, "expires_in": 3600})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client under test reports what it could read
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// mintJWT signs claims with Connect's test key, as Connect signs session JWTs.
func mintJWT(t testing.TB, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(connectKey())
	if err != nil {
		t.Fatalf("mint JWT: %v", err)
	}
	return s
}

// fakeClock is an injectable Now that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 7, 24, 15, 42, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newTestClient(t testing.TB, f *fakeConnect, edit func(*Options)) *Client {
	t.Helper()
	opts := Options{BaseURL: f.base, ClientID: testClientID, ClientSecret: testSecret, OrganizationID: testOrgID}
	if edit != nil {
		edit(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func depositRequest(id string) SessionRequest {
	return SessionRequest{RequestID: id, Kind: KindDeposit, ReferenceID: "USER01", Metadata: map[string]string{"order": id}}
}

func withdrawalRequest(id string) SessionRequest {
	return SessionRequest{RequestID: id, Kind: KindWithdrawal, ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin", Amount: "0.013", AccountLabel: "general"}
}

// assertNoCredentials fails if err's text holds the secret, an access token or a session JWT the fake issued.
func assertNoCredentials(t *testing.T, f *fakeConnect, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err)} {
		for _, cred := range f.credentials() {
			if strings.Contains(text, cred) {
				t.Fatalf("error %q contains a credential", text)
			}
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	good := Options{BaseURL: "https://api.sandbox.connect.xyz/api/v1", ClientID: testClientID, ClientSecret: testSecret, OrganizationID: testOrgID}
	tests := []struct {
		name    string
		edit    func(*Options)
		wantErr string
	}{
		{"valid", func(*Options) {}, ""},
		{"trailing slash", func(o *Options) { o.BaseURL += "/" }, ""},
		{"http allowed", func(o *Options) { o.BaseURL = "http://127.0.0.1:8080" }, ""},
		{"empty base URL", func(o *Options) { o.BaseURL = "" }, "BaseURL is empty"},
		{"relative base URL", func(o *Options) { o.BaseURL = "/api/v1" }, "BaseURL scheme"},
		{"ftp base URL", func(o *Options) { o.BaseURL = "ftp://example.com" }, "BaseURL scheme"},
		{"no host", func(o *Options) { o.BaseURL = "https://" }, "BaseURL has no host"},
		{"unparseable", func(o *Options) { o.BaseURL = "https://exa mple.com/%zz" }, "BaseURL does not parse"},
		{"credentials in URL", func(o *Options) { o.BaseURL = "https://u:p@example.com" }, "BaseURL must not carry credentials"},
		{"query", func(o *Options) { o.BaseURL = "https://example.com/?x=1" }, "query or fragment"},
		{"no client id", func(o *Options) { o.ClientID = " " }, "ClientID is empty"},
		{"no secret", func(o *Options) { o.ClientSecret = "" }, "ClientSecret is empty"},
		{"negative refresh", func(o *Options) { o.RefreshAhead = -time.Second }, "RefreshAhead"},
		{"broken org key", func(o *Options) { o.OrgKey = &rsa.PrivateKey{} }, "OrgKey"},
		{"no organization id", func(o *Options) { o.OrganizationID = " " }, "OrganizationID is empty"},
		{"guide's withdrawal scope", func(o *Options) { o.WithdrawalScope = ScopeWithdrawalSend }, ""},
		{"unknown withdrawal scope", func(o *Options) { o.WithdrawalScope = "user:withdrawal:all" }, `WithdrawalScope: "user:withdrawal:all" is not a withdrawal scope`},
		{"deposit scope as withdrawal scope", func(o *Options) { o.WithdrawalScope = ScopeDepositSend }, "is not a withdrawal scope"},
		{"signature required without key", func(o *Options) { o.RequireSignature = true }, "RequireSignature is set but Options.OrgKey is nil"},
		{"signature required with key", func(o *Options) { o.RequireSignature, o.OrgKey = true, orgKey() }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := good
			tt.edit(&opts)
			c, err := New(opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if strings.HasSuffix(c.sessionsURL, "//sessions") || !strings.HasSuffix(c.sessionsURL, "/sessions") {
					t.Fatalf("sessions URL %q", c.sessionsURL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestCreateSessionDeposit(t *testing.T) {
	f := newFakeConnect(t)
	c := newTestClient(t, f, nil)
	s, err := c.CreateSession(context.Background(), depositRequest("req-1"))
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if s.ID != "sess-"+SessionRequestID("req-1") || s.AccountID != testAccount || s.ReferenceID != "USER01" || s.OrganizationID != testOrgID {
		t.Fatalf("session = %+v", s)
	}
	if s.JWT == "" || s.ExpiresIn != time.Hour || s.IssuedAt.IsZero() || s.ExpiresAt.Sub(s.IssuedAt) != time.Hour {
		t.Fatalf("session times/jwt = %+v", s)
	}

	got := f.lastRequest()
	if want := f.base + sessionsPath; got.URL != want {
		t.Fatalf("URL = %q, want %q", got.URL, want)
	}
	f.mu.Lock()
	token := f.issued[0]
	f.mu.Unlock()
	for _, h := range []struct{ name, want string }{
		{"Content-Type", "application/json"},
		{"x-connect-client-id", testOrgID}, // the organization id, not the client id
		{"Authorization", "Bearer " + token},
		{HeaderSignature, ""}, // no OrgKey, no signature
		{HeaderTimestamp, ""},
	} {
		if v := got.Header.Get(h.name); v != h.want {
			t.Errorf("header %s = %q, want %q", h.name, v, h.want)
		}
	}
	wantBody := `{"request_id":"` + SessionRequestID("req-1") + `","account":{"reference_id":"USER01"},"session":{"metadata":{"order":"req-1"}},"scopes":["user:deposit:send"]}`
	if string(got.Body) != wantBody {
		t.Fatalf("body = %s\nwant   %s", got.Body, wantBody)
	}
}

func TestCreateSessionWithdrawalNestedAnswer(t *testing.T) {
	f := newFakeConnect(t)
	c := newTestClient(t, f, nil)
	s, err := c.CreateSession(context.Background(), withdrawalRequest("req-w"))
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if s.ID != "sess-"+SessionRequestID("req-w") || s.ExpiresIn != time.Hour || s.JWT == "" {
		t.Fatalf("session = %+v", s)
	}
	wantBody := `{"request_id":"` + SessionRequestID("req-w") + `","account":{"reference_id":"USER01"},"session":{"metadata":{},"withdrawal_details":{"asset":"BTC","network":"bitcoin","amount":"0.013","account_label":"general"}},"scopes":["user:withdrawal:request"]}`
	if got := string(f.lastRequest().Body); got != wantBody {
		t.Fatalf("body = %s\nwant   %s", got, wantBody)
	}
}

func TestCreateSessionNumericClaimTimes(t *testing.T) {
	f := newFakeConnect(t)
	f.set(func(f *fakeConnect) { f.numericTimes = true })
	c := newTestClient(t, f, nil)
	s, err := c.CreateSession(context.Background(), depositRequest("req-n"))
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if s.IssuedAt.IsZero() || s.ExpiresAt.Sub(s.IssuedAt) != time.Hour {
		t.Fatalf("IssuedAt %v ExpiresAt %v, want one hour apart", s.IssuedAt, s.ExpiresAt)
	}
}

// The organization signature must verify with the public key over the exact body and full URL we sent.
func TestCreateSessionSignsWithOrgKey(t *testing.T) {
	f := newFakeConnect(t)
	clock := newFakeClock()
	c := newTestClient(t, f, func(o *Options) { o.OrgKey = orgKey(); o.Now = clock.Now })
	if _, err := c.CreateSession(context.Background(), withdrawalRequest("req-sig")); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	got := f.lastRequest()
	timestamp, signature := got.Header.Get(HeaderTimestamp), got.Header.Get(HeaderSignature)
	if want := strconv.FormatInt(clock.Now().Unix(), 10); timestamp != want {
		t.Fatalf("timestamp = %q, want %q", timestamp, want)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		t.Fatalf("signature is not base64: %v", err)
	}
	verify := func(url string, body []byte) error {
		digest := sha256.Sum256([]byte(timestamp + "POST" + url + string(body)))
		return rsa.VerifyPKCS1v15(&orgKey().PublicKey, crypto.SHA256, digest[:], sig)
	}
	if err := verify(got.URL, got.Body); err != nil {
		t.Fatalf("signature does not verify over the sent URL and body: %v", err)
	}
	// The check above must be able to fail: a changed body or URL does not verify.
	if verify(got.URL, append(got.Body, ' ')) == nil || verify(f.srv.URL+sessionsPath, got.Body) == nil {
		t.Fatal("signature verified over different bytes")
	}
}

// 100 concurrent callers share one token request.
func TestCreateSessionConcurrentCallersShareOneToken(t *testing.T) {
	const callers = 100
	f := newFakeConnect(t)
	release := make(chan struct{})
	var launched sync.WaitGroup
	launched.Add(callers)
	// Hold the token answer until every caller is running, so they overlap with the one fetch in flight.
	f.set(func(f *fakeConnect) {
		f.onToken = func(http.ResponseWriter, *http.Request) bool { <-release; return false }
	})
	c := newTestClient(t, f, nil)
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			launched.Done()
			_, err := c.CreateSession(context.Background(), depositRequest(fmt.Sprintf("req-%d", i)))
			errs <- err
		}()
	}
	launched.Wait()
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	if n := c.TokenFetches(); n != 1 {
		t.Fatalf("TokenFetches = %d, want 1", n)
	}
	if n := f.sessionCalls.Load(); n != callers {
		t.Fatalf("session requests = %d, want %d", n, callers)
	}
}

// A caller whose context ends stops waiting; the fetch it started still serves the others.
func TestTokenWaiterCancelDoesNotCancelFetch(t *testing.T) {
	f := newFakeConnect(t)
	started, release := make(chan struct{}), make(chan struct{})
	f.set(func(f *fakeConnect) {
		f.onToken = func(http.ResponseWriter, *http.Request) bool { close(started); <-release; return false }
	})
	c := newTestClient(t, f, nil)

	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.CreateSession(ctx, depositRequest("req-cancelled"))
		firstErr <- err
	}()
	<-started
	cancel()
	err := <-firstErr
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Op != OpToken || !apiErr.Retryable {
		t.Fatalf("cancelled caller got %#v, want a retryable token APIError", err)
	}

	secondErr := make(chan error, 1)
	go func() {
		_, err := c.CreateSession(context.Background(), depositRequest("req-second"))
		secondErr <- err
	}()
	close(release)
	if err := <-secondErr; err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1 (the cancelled caller's fetch must be reused)", n)
	}
}

// A 401 on /sessions drops the token, fetches exactly one new one and retries exactly once.
func TestCreateSessionRefreshesOnceOn401(t *testing.T) {
	f := newFakeConnect(t)
	c := newTestClient(t, f, nil)
	if _, err := c.CreateSession(context.Background(), depositRequest("req-a")); err != nil {
		t.Fatalf("first CreateSession: %v", err)
	}
	f.revokeAll() // Connect forgets the cached token before it expires
	s, err := c.CreateSession(context.Background(), depositRequest("req-b"))
	if err != nil {
		t.Fatalf("CreateSession after revoke: %v", err)
	}
	if s.ID != "sess-"+SessionRequestID("req-b") {
		t.Fatalf("session = %+v", s)
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Fatalf("token requests = %d, want 2 (one refresh)", n)
	}
	if n := f.sessionCalls.Load(); n != 3 {
		t.Fatalf("session requests = %d, want 3 (one retry)", n)
	}
	f.mu.Lock()
	retried := f.requests[len(f.requests)-1]
	first := f.requests[len(f.requests)-2]
	issued := append([]string(nil), f.issued...)
	f.mu.Unlock()
	if string(retried.Body) != string(first.Body) {
		t.Fatal("the retry sent a different body (request_id must stay the same)")
	}
	if retried.Header.Get("Authorization") != "Bearer "+issued[1] {
		t.Fatal("the retry did not carry the new token")
	}
}

func TestCreateSessionSecond401IsAnError(t *testing.T) {
	f := newFakeConnect(t)
	f.set(func(f *fakeConnect) {
		f.onSession = func(w http.ResponseWriter, _ *http.Request, _ int64) bool {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "code": "invalid_token", "message": "access token rejected"})
			return true
		}
	})
	c := newTestClient(t, f, nil)
	_, err := c.CreateSession(context.Background(), depositRequest("req-401"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Retryable || apiErr.Op != OpCreateSession {
		t.Fatalf("err = %#v, want a non-retryable 401 APIError", err)
	}
	if apiErr.ErrorCode != "invalid_token" || apiErr.Message != "access token rejected" {
		t.Fatalf("code %q message %q", apiErr.ErrorCode, apiErr.Message)
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
	if n := f.sessionCalls.Load(); n != 2 {
		t.Fatalf("session requests = %d, want 2", n)
	}
	assertNoCredentials(t, f, err)
}

// A 401 for a token that was already replaced must not throw away the replacement.
func TestInvalidateKeepsNewerToken(t *testing.T) {
	f := newFakeConnect(t)
	c := newTestClient(t, f, nil)
	old, err := c.tokens.token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.tokens.invalidate(old)
	fresh, err := c.tokens.token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old {
		t.Fatal("invalidate did not drop the current token")
	}
	c.tokens.invalidate(old) // a late 401 for the old token
	again, err := c.tokens.token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again != fresh || f.tokenCalls.Load() != 2 {
		t.Fatalf("late invalidate dropped the newer token (fetches %d)", f.tokenCalls.Load())
	}
}

func TestCreateSessionRejectsInvalidRequestWithoutCalling(t *testing.T) {
	f := newFakeConnect(t)
	c := newTestClient(t, f, nil)
	_, err := c.CreateSession(context.Background(), SessionRequest{Kind: KindDeposit, ReferenceID: "USER01"})
	if !errors.Is(err, ErrInvalidSessionRequest) || !strings.Contains(err.Error(), "RequestID") {
		t.Fatalf("err = %v, want ErrInvalidSessionRequest naming RequestID", err)
	}
	if retryable, _ := RetryInfo(err); retryable {
		t.Fatal("a validation error must not be retryable")
	}
	if f.tokenCalls.Load()+f.sessionCalls.Load() != 0 {
		t.Fatal("an invalid request reached the server")
	}
}

func TestDefaultHTTPClientDoesNotFollowRedirects(t *testing.T) {
	f := newFakeConnect(t)
	f.set(func(f *fakeConnect) {
		f.onSession = func(w http.ResponseWriter, r *http.Request, _ int64) bool {
			http.Redirect(w, r, "https://elsewhere.example/sessions", http.StatusTemporaryRedirect)
			return true
		}
	})
	c := newTestClient(t, f, nil)
	_, err := c.CreateSession(context.Background(), depositRequest("req-redirect"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTemporaryRedirect || apiErr.Retryable {
		t.Fatalf("err = %v, want a non-retryable 307 APIError", err)
	}
}

func BenchmarkCreateSessionCachedToken(b *testing.B) {
	f := newFakeConnect(b)
	// Answer with one pre-minted JWT so the numbers measure the client, not the fake's RSA signing.
	answer, err := json.Marshal(map[string]any{"jwt": mintJWT(b, jwt.MapClaims{
		"session": map[string]string{"id": "sess-bench"}, "account": map[string]string{"reference_id": "USER01"},
	}), "expires_in": 3600})
	if err != nil {
		b.Fatal(err)
	}
	f.set(func(f *fakeConnect) {
		f.onSession = func(w http.ResponseWriter, _ *http.Request, _ int64) bool {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answer)
			return true
		}
	})
	for _, bc := range []struct {
		name string
		key  *rsa.PrivateKey
	}{{"unsigned", nil}, {"signed", orgKey()}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newTestClient(b, f, func(o *Options) { o.OrgKey = bc.key })
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.CreateSession(ctx, depositRequest("req-bench")); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(c.TokenFetches()), "token-fetches")
		})
	}
}
