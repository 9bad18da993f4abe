package connecttest_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

func TestSessionAuth(t *testing.T) {
	clock := newFakeClock(time.Date(2025, 7, 24, 15, 42, 7, 123456789, time.UTC))
	srv := newSandbox(t, connecttest.Options{Now: clock.Now, TokenTTL: time.Hour})
	good := accessToken(t, srv)
	clock.Advance(time.Hour) // good was issued an hour ago: expired now
	fresh := accessToken(t, srv)

	tests := []struct {
		name   string
		header http.Header
		status int
		code   string
	}{
		{"no authorization", nil, http.StatusUnauthorized, "missing_token"},
		{"not bearer", http.Header{"Authorization": {"Basic " + fresh}}, http.StatusUnauthorized, "missing_token"},
		{"unknown token", bearer("made-up"), http.StatusUnauthorized, "invalid_token"},
		{"expired token", bearer(good), http.StatusUnauthorized, "token_expired"},
		{"client id mismatch", http.Header{"Authorization": {"Bearer " + fresh}, "X-Connect-Client-Id": {"someone-else"}}, http.StatusUnauthorized, "client_mismatch"},
		{"client id matches", http.Header{"Authorization": {"Bearer " + fresh}, "X-Connect-Client-Id": {connecttest.DefaultClientID}}, http.StatusOK, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody(fmt.Sprint("req-", i), fmt.Sprint("USER", i)), tt.header)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code == "" {
				return
			}
			e := decode[errorBody](t, a)
			if e.Error != "unauthorized" || e.Code != tt.code || e.Message == "" {
				t.Fatalf("error body %s: want unauthorized/%s with a message", a.body, tt.code)
			}
		})
	}
	if got := srv.SessionsCreated(); got != 1 {
		t.Errorf("SessionsCreated = %d, want 1 (only the authorized request)", got)
	}
}

func TestSessionValidation(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	token := accessToken(t, srv)
	tests := []struct {
		name  string
		body  string
		field string // the message must name it
	}{
		{"not JSON", `{"account":`, "JSON"},
		{"array body", `[1]`, "JSON object"},
		{"no account", `{"scopes":["user:deposit:send"]}`, "account.reference_id"},
		{"empty reference", `{"account":{"reference_id":""},"scopes":["user:deposit:send"]}`, "account.reference_id"},
		{"no scopes", `{"account":{"reference_id":"U"}}`, "scopes"},
		{"two scopes", `{"account":{"reference_id":"U"},"scopes":["user:deposit:send","user:withdrawal:send"]}`, "scopes"},
		{"unknown scope", `{"account":{"reference_id":"U"},"scopes":["user:withdrawal:request"]}`, "scopes[0]"},
		{"metadata not an object", `{"account":{"reference_id":"U"},"session":{"metadata":[1]},"scopes":["user:deposit:send"]}`, "session.metadata"},
		{"bad amount", `{"account":{"reference_id":"U"},"session":{"withdrawal_details":{"asset":"BTC","network":"bitcoin","amount":"-1"}},"scopes":["user:withdrawal:send"]}`, "session.withdrawal_details.amount"},
		{"zero amount", `{"account":{"reference_id":"U"},"session":{"withdrawal_details":{"amount":"0.00"}},"scopes":["user:withdrawal:send"]}`, "session.withdrawal_details.amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", []byte(tt.body), bearer(token))
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", a.status, a.body)
			}
			if e := decode[errorBody](t, a); e.Error != "invalid_request" || !strings.Contains(e.Message, tt.field) {
				t.Fatalf("error %s does not name %q", a.body, tt.field)
			}
		})
	}
	if got := srv.SessionsCreated(); got != 0 {
		t.Errorf("SessionsCreated = %d after only bad requests", got)
	}
}

func TestSessionScopeNotAllowed(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeDepositSend}})
	token := accessToken(t, srv)
	a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", withdrawalBody("r1", "U1"), bearer(token))
	if a.status != http.StatusForbidden {
		t.Fatalf("withdrawal with only the deposit scope allowed: status %d, want 403: %s", a.status, a.body)
	}
	if e := decode[errorBody](t, a); e.Error != "forbidden" || e.Code != "scope_not_allowed" || !strings.Contains(e.Message, "user:withdrawal:send") {
		t.Fatalf("error body %s: want forbidden/scope_not_allowed naming the scope", a.body)
	}
	if a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody("r2", "U1"), bearer(token)); a.status != http.StatusOK {
		t.Fatalf("allowed deposit scope: status %d: %s", a.status, a.body)
	}
}

func TestSessionOrgSignature(t *testing.T) {
	orgKey := testKey(t, 2)
	clock := newFakeClock(time.Now())
	srv := newSandbox(t, connecttest.Options{OrgPublicKey: &orgKey.PublicKey, Now: clock.Now})
	token := accessToken(t, srv)
	now := strconv.FormatInt(clock.Now().Unix(), 10)
	stale := strconv.FormatInt(clock.Now().Add(-10*time.Minute).Unix(), 10)

	signed := func(t *testing.T, key int, ts, url string, body []byte) http.Header {
		sig, err := connect.Sign(testKey(t, key), ts, http.MethodPost, url, body)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		h := bearer(token)
		h.Set(connect.HeaderTimestamp, ts)
		h.Set(connect.HeaderSignature, sig)
		return h
	}
	tests := []struct {
		name   string
		path   string // the path the request goes to
		sign   func(t *testing.T, body []byte) http.Header
		status int
		code   string
	}{
		{"good", "/api/v1/sessions", func(t *testing.T, b []byte) http.Header {
			return signed(t, 2, now, srv.URL+"/api/v1/sessions", b)
		}, http.StatusOK, ""},
		{"good on the guide's /v1/sessions path", "/api/v1/v1/sessions", func(t *testing.T, b []byte) http.Header {
			return signed(t, 2, now, srv.URL+"/api/v1/v1/sessions", b)
		}, http.StatusOK, ""},
		{"missing", "/api/v1/sessions", func(*testing.T, []byte) http.Header { return bearer(token) }, http.StatusForbidden, "missing_signature"},
		{"wrong key", "/api/v1/sessions", func(t *testing.T, b []byte) http.Header {
			return signed(t, 1, now, srv.URL+"/api/v1/sessions", b)
		}, http.StatusForbidden, "invalid_signature"},
		{"signed for another URL", "/api/v1/sessions", func(t *testing.T, b []byte) http.Header {
			return signed(t, 2, now, srv.URL+"/api/v1/v1/sessions", b)
		}, http.StatusForbidden, "invalid_signature"},
		{"body changed after signing", "/api/v1/sessions", func(t *testing.T, b []byte) http.Header {
			return signed(t, 2, now, srv.URL+"/api/v1/sessions", append(bytes.Clone(b), ' '))
		}, http.StatusForbidden, "invalid_signature"},
		{"stale timestamp", "/api/v1/sessions", func(t *testing.T, b []byte) http.Header {
			return signed(t, 2, stale, srv.URL+"/api/v1/sessions", b)
		}, http.StatusForbidden, "invalid_signature"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := depositBody(fmt.Sprint("sig-", i), fmt.Sprint("SIG", i))
			a := doJSON(t, http.MethodPost, srv.URL+tt.path, body, tt.sign(t, body))
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code != "" {
				if e := decode[errorBody](t, a); e.Error != "forbidden" || e.Code != tt.code {
					t.Fatalf("error body %s: want forbidden/%s", a.body, tt.code)
				}
			}
		})
	}

	t.Run("connect client signs", func(t *testing.T) {
		c := newClient(t, srv, orgKey, clock.Now)
		if _, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: "client-1", Kind: connect.KindDeposit, ReferenceID: "SIGC"}); err != nil {
			t.Fatalf("CreateSession with the organization key: %v", err)
		}
	})
}

// newClient is the real Connect client pointed at the sandbox; orgKey and now may be nil.
func newClient(t testing.TB, srv *connecttest.Server, orgKey *rsa.PrivateKey, now func() time.Time) *connect.Client {
	t.Helper()
	c, err := connect.New(connect.Options{BaseURL: srv.URL + "/api/v1", ClientID: connecttest.DefaultClientID,
		ClientSecret: connecttest.DefaultClientSecret, OrgKey: orgKey, Now: now})
	if err != nil {
		t.Fatalf("connect.New: %v", err)
	}
	return c
}

func TestSessionIdempotentRequestID(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	token := accessToken(t, srv)
	first := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody("same", "IDEM"), bearer(token))
	// The same body re-encoded with other key order and spacing is the same request.
	reordered := []byte(`{ "scopes":["user:deposit:send"], "session":{"metadata":{"n":7,"order":"o-1"}}, "account":{"reference_id":"IDEM"}, "request_id":"same" }`)
	again := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", reordered, bearer(token))
	if first.status != http.StatusOK || again.status != http.StatusOK {
		t.Fatalf("statuses %d, %d: %s / %s", first.status, again.status, first.body, again.body)
	}
	if !bytes.Equal(first.body, again.body) {
		t.Fatalf("a retry with the same request_id got a different answer:\n%s\n%s", first.body, again.body)
	}
	if got := srv.SessionsCreated(); got != 1 {
		t.Fatalf("SessionsCreated = %d after a retry, want 1", got)
	}

	conflict := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody("same", "OTHER"), bearer(token))
	if conflict.status != http.StatusConflict {
		t.Fatalf("reused request_id with another body: status %d, want 409: %s", conflict.status, conflict.body)
	}
	if e := decode[errorBody](t, conflict); e.Error != "conflict" || e.Code != "request_id_reused" {
		t.Fatalf("error body %s: want conflict/request_id_reused", conflict.body)
	}
}

func TestSessionOneActivePerReference(t *testing.T) {
	clock := newFakeClock(time.Now())
	srv := newSandbox(t, connecttest.Options{Now: clock.Now, SessionTTL: 10 * time.Minute, TokenTTL: 24 * time.Hour})
	token := accessToken(t, srv)
	open := func(requestID, ref string) answer {
		return doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody(requestID, ref), bearer(token))
	}
	if a := open("a1", "ACTIVE"); a.status != http.StatusOK {
		t.Fatalf("first session: %d %s", a.status, a.body)
	}
	a := open("a2", "ACTIVE")
	if a.status != http.StatusConflict {
		t.Fatalf("second session while one is active: status %d, want 409: %s", a.status, a.body)
	}
	if e := decode[errorBody](t, a); e.Error != "conflict" || e.Code != "session_active" {
		t.Fatalf("error body %s: want conflict/session_active", a.body)
	}
	if a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", withdrawalBody("a3", "ACTIVE"), bearer(token)); a.status != http.StatusConflict {
		t.Fatalf("a withdrawal session for the same reference while a deposit is active: status %d, want 409", a.status)
	}
	if a := open("b1", "OTHER"); a.status != http.StatusOK {
		t.Fatalf("another reference: %d %s", a.status, a.body)
	}

	clock.Advance(10 * time.Minute) // the first session expires
	if a := open("a4", "ACTIVE"); a.status != http.StatusOK {
		t.Fatalf("after the active session expired: %d %s", a.status, a.body)
	}
	last := srv.Sessions()[len(srv.Sessions())-1]
	if err := srv.FinishSession(last.ID); err != nil {
		t.Fatal(err)
	}
	if a := open("a5", "ACTIVE"); a.status != http.StatusOK {
		t.Fatalf("after the active session finished: %d %s", a.status, a.body)
	}
	if got := srv.SessionsCreatedFor("ACTIVE"); got != 3 {
		t.Errorf("SessionsCreatedFor(ACTIVE) = %d, want 3", got)
	}
	if got := srv.SessionsCreated(); got != 4 {
		t.Errorf("SessionsCreated = %d, want 4", got)
	}
	if err := srv.FinishSession("nope"); err == nil {
		t.Error("FinishSession of an unknown id: no error")
	}
}

// guideTimeRE is the guide's iat/exp form: RFC 3339 UTC with nine fractional digits.
var guideTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

func TestSessionAnswersAndJWT(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     []byte
		kind     connect.Kind
		numeric  bool
		wantKeys string // top-level keys of the answer, sorted
	}{
		{"deposit", "/api/v1/sessions", depositBody("d1", "USER01"), connect.KindDeposit, false, "expires_in,jwt"},
		{"withdrawal on /v1/sessions", "/api/v1/v1/sessions", withdrawalBody("w1", "USER02"), connect.KindWithdrawal, false, "token"},
		{"deposit with numeric times", "/api/v1/sessions", depositBody("d2", "USER03"), connect.KindDeposit, true, "expires_in,jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSandbox(t, connecttest.Options{NumericJWTTimes: tt.numeric, SessionTTL: 30 * time.Minute, OrganizationID: "org-7"})
			a := doJSON(t, http.MethodPost, srv.URL+tt.path, tt.body, bearer(accessToken(t, srv)))
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			top := decode[map[string]json.RawMessage](t, a)
			if got := sortedKeys(top); got != tt.wantKeys {
				t.Fatalf("answer keys %q, want %q: %s", got, tt.wantKeys, a.body)
			}
			inner := top
			if tt.kind == connect.KindWithdrawal {
				inner = decode[map[string]json.RawMessage](t, answer{body: top["token"]})
				if got := sortedKeys(inner); got != "expires_in,jwt" {
					t.Fatalf("token object keys %q: %s", got, a.body)
				}
			}
			if string(inner["expires_in"]) != "1800" {
				t.Fatalf("expires_in %s, want 1800", inner["expires_in"])
			}

			claims, kid := verifySessionJWT(t, sessionJWT(t, a), fetchJWKS(t, srv))
			if kid != srv.CurrentKeyID() {
				t.Errorf("kid %q, want the current key %q", kid, srv.CurrentKeyID())
			}
			sessions := srv.Sessions()
			if len(sessions) != 1 {
				t.Fatalf("%d sessions recorded, want 1", len(sessions))
			}
			s := sessions[0]
			if claims.Issuer != "connect" || claims.Subject != s.AccountID || claims.Account.ID != s.AccountID ||
				claims.Account.ReferenceID != s.ReferenceID || claims.Session.ID != s.ID || claims.Organization.ID != "org-7" || claims.ID == "" {
				t.Fatalf("claims %+v do not match session %+v", claims, s)
			}
			if s.Kind != tt.kind {
				t.Errorf("session kind %q, want %q", s.Kind, tt.kind)
			}
			if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != 30*time.Minute {
				t.Errorf("exp - iat = %v, want 30m", got)
			}

			raw := rawClaims(t, sessionJWT(t, a))
			for _, name := range []string{"iat", "exp"} {
				var asString string
				isString := json.Unmarshal(raw[name], &asString) == nil
				switch {
				case tt.numeric && isString:
					t.Errorf("%s = %s, want a number", name, raw[name])
				case !tt.numeric && (!isString || !guideTimeRE.MatchString(asString)):
					t.Errorf("%s = %s, want the guide's RFC 3339 nanosecond string", name, raw[name])
				}
			}
		})
	}
}

func TestSessionWithdrawalDetailsKept(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", withdrawalBody("w", "WD"), bearer(accessToken(t, srv)))
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	s := srv.Sessions()[0]
	if s.Asset != "ETH" || s.Network != "ethereum" || s.Amount != "1.25" || string(s.Metadata) != `{"order":"w-1"}` {
		t.Fatalf("session %+v: want the withdrawal_details and metadata as sent", s)
	}
}

// TestConnectClientFiftySessions is the "one token request for 50 sessions" check with the real client.
func TestConnectClientFiftySessions(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	c := newClient(t, srv, nil, nil)
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			kind, asset, network, amount := connect.KindDeposit, "", "", ""
			if i%2 == 1 {
				kind, asset, network, amount = connect.KindWithdrawal, "BTC", "bitcoin", "0.5"
			}
			_, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: fmt.Sprint("bulk-", i),
				Kind: kind, ReferenceID: fmt.Sprint("BULK", i), Asset: asset, Network: network, Amount: amount})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := srv.Count(connecttest.EndpointToken); got != 1 {
		t.Errorf("token requests = %d for %d sessions, want 1", got, n)
	}
	if got := srv.SessionsCreated(); got != n {
		t.Errorf("SessionsCreated = %d, want %d", got, n)
	}
	if got := srv.Count(connecttest.EndpointSessions); got != n {
		t.Errorf("session requests = %d, want %d", got, n)
	}
}

func sortedKeys(m map[string]json.RawMessage) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// rawClaims decodes a JWT's payload without verifying it, to look at claim types.
func rawClaims(t testing.TB, token string) map[string]json.RawMessage {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d segments", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

func TestSessionConcurrentRequests(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	token := accessToken(t, srv)
	const n = 16
	run := func(body func(i int) []byte) []answer {
		type result struct {
			a   answer
			err error
		}
		out := make(chan result, n)
		for i := range n {
			go func() {
				a, err := send(http.MethodPost, srv.URL+"/api/v1/sessions", body(i), bearer(token))
				out <- result{a, err}
			}()
		}
		answers := make([]answer, 0, n)
		for range n {
			r := <-out
			if r.err != nil {
				t.Fatal(r.err)
			}
			answers = append(answers, r.a)
		}
		return answers
	}

	// Retries of one request racing each other: one session, one answer.
	same := run(func(int) []byte { return depositBody("race", "RACE1") })
	for _, a := range same {
		if a.status != http.StatusOK || !bytes.Equal(a.body, same[0].body) {
			t.Fatalf("concurrent retries got %d %s vs %s", a.status, a.body, same[0].body)
		}
	}
	if got := srv.SessionsCreatedFor("RACE1"); got != 1 {
		t.Fatalf("%d sessions for concurrent retries of one request, want 1", got)
	}

	// Different requests for one reference racing: exactly one wins, the rest see session_active.
	distinct := run(func(i int) []byte { return depositBody(fmt.Sprint("race-", i), "RACE2") })
	var ok, conflicts int
	for _, a := range distinct {
		switch a.status {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflicts++
		default:
			t.Fatalf("unexpected %d %s", a.status, a.body)
		}
	}
	if ok != 1 || conflicts != n-1 || srv.SessionsCreatedFor("RACE2") != 1 {
		t.Fatalf("%d ok, %d conflicts, %d sessions; want 1, %d, 1", ok, conflicts, srv.SessionsCreatedFor("RACE2"), n-1)
	}
}
