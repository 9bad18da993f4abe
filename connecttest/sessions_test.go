package connecttest_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
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
		{"client id missing", http.Header{"Authorization": {"Bearer " + fresh}}, http.StatusBadRequest, "missing_client_id"},
		{"client id is the client's, not the organization's", http.Header{"Authorization": {"Bearer " + fresh}, "X-Connect-Client-Id": {connecttest.DefaultClientID}}, http.StatusUnauthorized, "client_mismatch"},
		{"client id of another organization", http.Header{"Authorization": {"Bearer " + fresh}, "X-Connect-Client-Id": {"5c0e0b7a-1111-4b4b-9a9a-0123456789ab"}}, http.StatusUnauthorized, "client_mismatch"},
		{"client id is the organization id", bearer(fresh), http.StatusOK, ""},
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
			if e.Error != tt.code || e.Code != connecttest.GRPCCode(tt.status) || e.Message == "" {
				t.Fatalf("error body %s: want {error %s, code %d, message}", a.body, tt.code, connecttest.GRPCCode(tt.status))
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
		{"withdrawal:request without withdrawal_details", `{"account":{"reference_id":"U"},"scopes":["user:withdrawal:request"]}`, "session.withdrawal_details is required"},
		{"withdrawal:request without amount", `{"account":{"reference_id":"U"},"session":{"withdrawal_details":{"asset":"BTC","network":"bitcoin"}},"scopes":["user:withdrawal:request"]}`, "session.withdrawal_details.amount required"},
		{"withdrawal:request without asset and network", `{"account":{"reference_id":"U"},"session":{"withdrawal_details":{"amount":"1"}},"scopes":["user:withdrawal:request"]}`, "session.withdrawal_details.asset, session.withdrawal_details.network required"},
		{"amount as a number", `{"account":{"reference_id":"U"},"session":{"withdrawal_details":{"asset":"BTC","network":"bitcoin","amount":0.5}},"scopes":["user:withdrawal:request"]}`, "amount must be a JSON string"},
		{"recovery scope", `{"account":{"reference_id":"U"},"scopes":["user:recovery:send"]}`, "opens no deposit or withdrawal"},
		{"request_id not a UUID", `{"request_id":"deposit-T1","account":{"reference_id":"U"},"scopes":["user:deposit:send"]}`, "request_id must be a UUID"},
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
			if e := decode[errorBody](t, a); (e.Error != "invalid_field" && e.Error != "invalid_body") || e.Code != 3 || !strings.Contains(e.Message, tt.field) {
				t.Fatalf("error %s: want invalid_field or invalid_body, gRPC code 3 (INVALID_ARGUMENT), a message naming %q", a.body, tt.field)
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
	if e := decode[errorBody](t, a); e.Error != "scope_not_allowed" || e.Code != 7 || !strings.Contains(e.Message, "user:withdrawal:send") {
		t.Fatalf("error body %s: want scope_not_allowed, gRPC code 7 (PERMISSION_DENIED), naming the scope", a.body)
	}
	unknown := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", []byte(`{"account":{"reference_id":"U1"},"scopes":["user:withdrawal:all"]}`), bearer(token))
	if e := decode[errorBody](t, unknown); unknown.status != http.StatusForbidden || e.Error != "invalid_scope" || e.Code != 7 ||
		!strings.Contains(e.Message, "user:withdrawal:all") {
		t.Fatalf("a scope outside the enum: %d %s, want 403 invalid_scope naming it (the OpenAPI: 403 for invalid scopes)", unknown.status, unknown.body)
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
				if e := decode[errorBody](t, a); e.Error != tt.code || e.Code != 7 {
					t.Fatalf("error body %s: want %s with gRPC code 7", a.body, tt.code)
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
		ClientSecret: connecttest.DefaultClientSecret, OrganizationID: connecttest.DefaultOrganizationID, OrgKey: orgKey, Now: now})
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
	reordered := []byte(`{ "scopes":["user:deposit:send"], "session":{"metadata":{"n":7,"order":"o-1"}}, "account":{"reference_id":"IDEM"}, "request_id":"` + connect.SessionRequestID("same") + `" }`)
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
	if e := decode[errorBody](t, conflict); e.Error != "request_id_reused" || e.Code != 6 {
		t.Fatalf("error body %s: want request_id_reused with gRPC code 6", conflict.body)
	}
}

// A newer session for a reference invalidates the older active one instead of being refused (the published
// behaviour): the older is marked in Sessions, the control API and Stats, and is never played.
func TestSessionNewerInvalidatesOlder(t *testing.T) {
	clock := newFakeClock(time.Now())
	srv := newSandbox(t, connecttest.Options{Now: clock.Now, SessionTTL: 10 * time.Minute, TokenTTL: 24 * time.Hour,
		DepositWebhookURL: "http://127.0.0.1:9/unused", WithdrawalWebhookURL: "http://127.0.0.1:9/unused"})
	token := accessToken(t, srv)
	open := func(body []byte) connecttest.SessionInfo {
		t.Helper()
		if a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", body, bearer(token)); a.status != http.StatusOK {
			t.Fatalf("open session: %d %s", a.status, a.body)
		}
		all := srv.Sessions()
		return all[len(all)-1]
	}
	first := open(depositBody("a1", "ACTIVE"))
	second := open(depositBody("a2", "ACTIVE"))
	if got, _ := srv.Session(first.ID); !got.Invalidated() || got.ReplacedBy != second.ID || !got.InvalidatedAt.Equal(clock.Now()) {
		t.Fatalf("older session after a newer one opened: %+v, want invalidated and replaced by %s", got, second.ID)
	}
	other := open(depositBody("b1", "OTHER"))
	// A withdrawal session replaces a deposit session of the same account too.
	third := open(withdrawalRequestBody("a3", "ACTIVE"))
	if got, _ := srv.Session(second.ID); got.ReplacedBy != third.ID {
		t.Fatalf("deposit session after a withdrawal session opened for the same reference: %+v", got)
	}
	if got, _ := srv.Session(other.ID); got.Invalidated() {
		t.Fatalf("another reference's session was invalidated: %+v", got)
	}

	// The invalidated session is never played: not by Play, not through the control API.
	if _, err := srv.Play(context.Background(), first.ID, connecttest.Play{}); !errors.Is(err, connecttest.ErrSessionInvalidated) {
		t.Fatalf("Play of an invalidated session: %v, want ErrSessionInvalidated", err)
	}
	play := doJSON(t, http.MethodPost, srv.URL+"/sandbox/sessions/"+first.ID+"/play", []byte(`{}`), nil)
	if e := decode[controlError](t, play); play.status != http.StatusConflict || e.Code != "session_invalidated" || !strings.Contains(e.Message, second.ID) {
		t.Fatalf("control API play of an invalidated session: %d %s, want 409 session_invalidated naming its successor", play.status, play.body)
	}
	if d := srv.Deliveries(); len(d) != 0 {
		t.Fatalf("%d deliveries for invalidated sessions, want none", len(d))
	}

	// The control API lists which sessions were invalidated and by which.
	list := decode[[]map[string]any](t, doJSON(t, http.MethodGet, srv.URL+"/sandbox/sessions", nil, nil))
	replaced := map[string]string{}
	for _, s := range list {
		if by, ok := s["replaced_by"].(string); ok {
			replaced[s["id"].(string)] = by
			if _, ok := s["invalidated_at"].(string); !ok {
				t.Errorf("session %v has replaced_by but no invalidated_at", s["id"])
			}
		}
	}
	if len(replaced) != 2 || replaced[first.ID] != second.ID || replaced[second.ID] != third.ID {
		t.Fatalf("control API replaced_by = %v, want %s->%s and %s->%s", replaced, first.ID, second.ID, second.ID, third.ID)
	}
	if st := srv.Stats(); st.SessionsInvalidated != 2 || st.SessionsCreated != 4 {
		t.Fatalf("stats: %d invalidated of %d, want 2 of 4", st.SessionsInvalidated, st.SessionsCreated)
	}

	// An expired or finished session is not active, so a newer session invalidates nothing.
	clock.Advance(10 * time.Minute)
	fourth := open(depositBody("a4", "ACTIVE"))
	if got, _ := srv.Session(third.ID); got.Invalidated() {
		t.Fatalf("an expired session was invalidated: %+v", got)
	}
	if err := srv.FinishSession(fourth.ID); err != nil {
		t.Fatal(err)
	}
	open(depositBody("a5", "ACTIVE"))
	if got, _ := srv.Session(fourth.ID); got.Invalidated() {
		t.Fatalf("a finished session was invalidated: %+v", got)
	}
	if got := srv.SessionsCreatedFor("ACTIVE"); got != 5 {
		t.Errorf("SessionsCreatedFor(ACTIVE) = %d, want 5", got)
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
		{"withdrawal (guide's scope) on /v1/sessions", "/api/v1/v1/sessions", withdrawalBody("w1", "USER02"), connect.KindWithdrawal, false, "token"},
		{"withdrawal (OpenAPI's scope), answered flat", "/api/v1/sessions", withdrawalRequestBody("w2", "USER04"), connect.KindWithdrawal, false, "expires_in,jwt"},
		{"deposit with numeric times", "/api/v1/sessions", depositBody("d2", "USER03"), connect.KindDeposit, true, "expires_in,jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSandbox(t, connecttest.Options{NumericJWTTimes: tt.numeric, SessionTTL: 30 * time.Minute, OrganizationID: "org-7"})
			h := bearer(accessToken(t, srv))
			h.Set("X-Connect-Client-Id", "org-7")
			a := doJSON(t, http.MethodPost, srv.URL+tt.path, tt.body, h)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			top := decode[map[string]json.RawMessage](t, a)
			if got := sortedKeys(top); got != tt.wantKeys {
				t.Fatalf("answer keys %q, want %q: %s", got, tt.wantKeys, a.body)
			}
			inner := top
			if _, nested := top["token"]; nested {
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

	// Different requests for one reference racing: every one opens a session, and all but the last are
	// invalidated, so exactly one stays active.
	distinct := run(func(i int) []byte { return depositBody(fmt.Sprint("race-", i), "RACE2") })
	for _, a := range distinct {
		if a.status != http.StatusOK {
			t.Fatalf("unexpected %d %s", a.status, a.body)
		}
	}
	var live []string
	for _, s := range srv.Sessions() {
		if s.ReferenceID == "RACE2" && !s.Invalidated() {
			live = append(live, s.ID)
		}
	}
	if len(live) != 1 || srv.SessionsCreatedFor("RACE2") != n || srv.Stats().SessionsInvalidated != n-1 {
		t.Fatalf("%d live sessions of %d, %d invalidated; want 1 of %d, %d", len(live), srv.SessionsCreatedFor("RACE2"),
			srv.Stats().SessionsInvalidated, n, n-1)
	}
}
