package tests

// The attacks connectflow's edge defends against (issue 14, findings 1-9), one test each, through real HTTP on
// loopback and a real Temporal server. docs/security.md lists them with how each is stopped. Every test here
// failed on the code before its fix: the attack it plays succeeded.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
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
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// attacker holds a key the sandbox's JWKS publishes, standing for a leaked Connect JWT or signature: the attacker
// can present anything Connect could sign. Each test shows that what Connect signs is still checked.
type attacker struct {
	t   *testing.T
	key *rsa.PrivateKey
	kid string
}

// newAttacker publishes a key in the sandbox's JWKS; call it before startBridge so the bridge holds the key.
func (s *stack) newAttacker() *attacker {
	s.t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		s.t.Fatal(err)
	}
	kid, err := s.sandbox.RotateKey(key)
	if err != nil {
		s.t.Fatal(err)
	}
	return &attacker{t: s.t, key: key, kid: kid}
}

// jwt signs claims with the attacker's key under kid ("" for its published kid).
func (a *attacker) jwt(kid string, claims jwt.MapClaims) string {
	a.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = cmpOr(kid, a.kid)
	signed, err := tok.SignedString(a.key)
	if err != nil {
		a.t.Fatal(err)
	}
	return signed
}

// sessionClaims are a session JWT's claims as Connect issues them, lifetime one hour.
func sessionClaims(org, sessionID string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": "connect", "sub": "acct-1", "jti": uuid.NewString(),
		"iat": jwt.NewNumericDate(now), "exp": jwt.NewNumericDate(now.Add(time.Hour)),
		"organization": map[string]string{"id": org}, "session": map[string]string{"id": sessionID},
		"account": map[string]string{"id": "acct-1", "reference_id": "USER01"}}
}

// webhook posts a Connect webhook to the rig, signed with the attacker's key as Connect signs; bearer is sent
// as Authorization when not "".
func (a *attacker) webhook(rig *bridgeRig, body []byte, bearer string) (int, string) {
	a.t.Helper()
	url := rig.url + bridge.PathConnectDeposits
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := connect.Sign(a.key, ts, http.MethodPost, url, body)
	if err != nil {
		a.t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(connect.HeaderClientID, "Connect")
	h.Set(connect.HeaderPayloadType, bridge.PayloadTypeConnectDeposit)
	h.Set(connect.HeaderTimestamp, ts)
	h.Set(connect.HeaderSignature, sig)
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return post(a.t, url, h, body)
}

func post(t *testing.T, url string, h http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// depositEvent is a Connect deposit webhook body for a transfer's session, routed by its metadata.
func depositEvent(status, transferID, sessionID string) []byte {
	return []byte(fmt.Sprintf(`{"event":"connect.deposit.%s","event_id":"%s","deposit":{"id":"cx-%s","status":"%s",`+
		`"asset":"BTC","network":"bitcoin","amount":"0.013"},"session":{"id":"%s","metadata":{"%s":"%s","%s":"deposit"}}}`,
		status, uuid.NewString(), transferID, status, sessionID, workflows.MetadataTransferID, transferID, workflows.MetadataKind))
}

// verifyFailures is the bridge's verification-failure counter for reason.
func (r *bridgeRig) verifyFailures(reason string) float64 {
	r.t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == bridge.MetricVerificationFailures {
			for _, m := range f.GetMetric() {
				if label(m, "reason") == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// signals counts the signals named name in a workflow's history.
func (s *stack) signals(workflowID, name string) int {
	s.t.Helper()
	n := 0
	it := s.client.GetWorkflowHistory(s.ctx(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			s.t.Fatalf("history of %s: %v", workflowID, err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == name {
			n++
		}
	}
	return n
}

// state queries a running transfer.
func (s *stack) state(workflowID string) workflows.TransferState {
	s.t.Helper()
	v, err := s.client.QueryWorkflow(s.ctx(), workflowID, "", workflows.QueryState)
	if err != nil {
		s.t.Fatalf("query %s: %v", workflowID, err)
	}
	var st workflows.TransferState
	if err := v.Get(&st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// Finding 1: a JWT Connect signed is not enough on its own: a webhook bearer that names another audience or
// organization, or that was minted to live far longer than Connect's, is refused although the signature holds.
func TestAttackWebhookBearerForAnotherAudienceOrTooLongLived(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	a := s.newAttacker()
	rig := s.startBridge(bridgeOptions{org: connecttest.DefaultOrganizationID})
	now := time.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "connect", "jti": uuid.NewString(), "iat": jwt.NewNumericDate(now),
			"exp": jwt.NewNumericDate(now.Add(5 * time.Minute))}
	}
	for _, c := range []struct {
		name   string
		mutate func(jwt.MapClaims)
		reason string
	}{
		{"audience of another service", func(c jwt.MapClaims) { c["aud"] = "https://other.example.com" }, "jwt_audience"},
		{"another organization", func(c jwt.MapClaims) { c["organization"] = map[string]string{"id": "other-org"} }, "jwt_organization"},
		{"lifetime of a year", func(c jwt.MapClaims) { c["exp"] = jwt.NewNumericDate(now.Add(365 * 24 * time.Hour)) }, "jwt_lifetime"},
		{"no iat: lifetime unbounded", func(c jwt.MapClaims) { delete(c, "iat") }, "jwt_lifetime"},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims := base()
			c.mutate(claims)
			status, body := a.webhook(rig, depositEvent("confirmed", "atk-"+c.reason, "sess-made-up"), a.jwt("", claims))
			if status != http.StatusUnauthorized || rig.verifyFailures(c.reason) < 1 {
				t.Fatalf("answer %d %s, failures{%s}=%v; want 401 for %s", status, body, c.reason, rig.verifyFailures(c.reason), c.name)
			}
		})
	}
	// Control: the same bearer without the bad claim passes, so the refusals above are the checks'.
	claims := base()
	claims["aud"] = rig.url
	if status, body := a.webhook(rig, depositEvent("confirmed", "atk-ok", "sess-made-up"), a.jwt("", claims)); status != http.StatusOK {
		t.Fatalf("a bearer naming this bridge: %d %s, want 200", status, body)
	}
}

// Finding 6: a session JWT of another organization, signed by Connect, does not reach our transfers (nor cost a
// visibility query).
func TestAttackSessionJWTOfAnotherOrganization(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	a := s.newAttacker()
	rig := s.startBridge(bridgeOptions{org: connecttest.DefaultOrganizationID})
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "atk-org", ReferenceID: "USER01"})
	s.listed("ConnectSessionID = '"+started.SessionID+"'", started.WorkflowID)

	foreign := a.jwt("", sessionClaims("other-org", started.SessionID))
	if status, body := rig.sdkEvent(foreign, `{"type":"close"}`); status != http.StatusUnauthorized {
		t.Fatalf("another organization's session JWT: %d %s, want 401", status, body)
	}
	if rig.verifyFailures("jwt_organization") != 1 {
		t.Fatalf("jwt_organization failures = %v, want 1", rig.verifyFailures("jwt_organization"))
	}
	long := sessionClaims(connecttest.DefaultOrganizationID, started.SessionID)
	long["exp"] = jwt.NewNumericDate(time.Now().Add(400 * 24 * time.Hour))
	if status, body := rig.sdkEvent(a.jwt("", long), `{"type":"close"}`); status != http.StatusUnauthorized {
		t.Fatalf("a session JWT living 400 days: %d %s, want 401", status, body)
	}
	if n := s.signals(started.WorkflowID, workflows.SignalSDKEvent); n != 0 {
		t.Fatalf("%d SDK signals reached the transfer, want 0", n)
	}
	// Control: the user's own session JWT is taken.
	if status, body := rig.sdkEvent(started.JWT, `{"type":"deposit","detail":"submitted","id":"d-1"}`); status != http.StatusOK {
		t.Fatalf("the user's own session JWT: %d %s, want 200", status, body)
	}
}

// Finding 2: replays and floods of SDK relays do not spend the transfer's signal budget: a repeat is answered from
// the bridge's cache, callbacks that change nothing are not forwarded, and one session's relays are rate-limited.
func TestAttackSDKRelayFloodSpendsNoSignals(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{sdkRate: 0.01, sdkBurst: 5})
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "atk-flood", ReferenceID: "USER01"})
	s.listed("ConnectSessionID = '"+started.SessionID+"'", started.WorkflowID)

	for i := range 200 {
		status, body := rig.sdkEvent(started.JWT, `{"type":"deposit","detail":"submitted","id":"d-1"}`)
		if status != http.StatusOK {
			t.Fatalf("relay %d: %d %s, want 200", i, status, body)
		}
	}
	for i := range 50 {
		if status, body := rig.sdkEvent(started.JWT, fmt.Sprintf(`{"type":"event","detail":"x","id":"e-%d"}`, i)); status != http.StatusOK {
			t.Fatalf("event relay %d: %d %s, want 200", i, status, body)
		}
	}
	limited := 0
	for i := range 30 {
		status, _ := rig.sdkEvent(started.JWT, fmt.Sprintf(`{"type":"deposit","detail":"submitted","id":"flood-%d"}`, i))
		if status == http.StatusTooManyRequests {
			limited++
		}
	}
	n := s.signals(started.WorkflowID, workflows.SignalSDKEvent)
	if n > 5 || limited < 25 {
		t.Fatalf("%d SDK signals after 280 relays (want at most the burst of 5), %d answered 429 (want >= 25)", n, limited)
	}
	if rig.requests(bridge.PathSDKEvents, "duplicate") != 199 || rig.requests(bridge.PathSDKEvents, "not_forwarded") != 50 {
		t.Fatalf("duplicates %v (want 199), not forwarded %v (want 50)",
			rig.requests(bridge.PathSDKEvents, "duplicate"), rig.requests(bridge.PathSDKEvents, "not_forwarded"))
	}
}

// Finding 2: when Temporal takes no more signals for a workflow, the bridge answers 429 signal_limit (not 503
// forever), counts it, and logs an alert, instead of asking Connect to retry what can never succeed.
func TestAttackSignalLimitIsRefusedNotRetried(t *testing.T) {
	const limit = 12
	dc := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		dynamicconfig.MaximumSignalsPerExecution.Key():              []dynamicconfig.ConstrainedValue{{Value: limit}},
	}
	s := newStack(t, connecttest.Options{}, temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(dc)))
	s.startWorker()
	a := s.newAttacker()
	rig := s.startBridge(bridgeOptions{})
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "atk-limit", ReferenceID: "USER01"})
	// Spend the budget directly (what a flood through an unprotected path would do).
	for i := range limit {
		err := s.client.SignalWorkflow(s.ctx(), started.WorkflowID, "", workflows.SignalSDKEvent,
			workflows.SDKEvent{Type: workflows.SDKTypeEvent, Detail: "flood", DedupeKey: fmt.Sprintf("flood-%d", i)})
		if err != nil {
			t.Fatalf("signal %d of %d: %v", i, limit, err)
		}
	}
	status, body := a.webhook(rig, depositEvent("initiated", "atk-limit", started.SessionID), "")
	if status != http.StatusTooManyRequests || !strings.Contains(body, "signal_limit") {
		t.Fatalf("webhook past the signal limit: %d %s, want 429 signal_limit", status, body)
	}
	families, err := rig.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, f := range families {
		if f.GetName() == bridge.MetricSignalLimit {
			counted = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if counted != 1 {
		t.Fatalf("%s = %v, want 1", bridge.MetricSignalLimit, counted)
	}
}

// Finding 4: a stream of forged kids keeps the request path's JWKS refresh spent, yet a key Connect rotates in
// is taken within the background rotation refresh, not after the next periodic refresh.
func TestAttackForgedKIDsDoNotBlockKeyRotation(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	a := s.newAttacker()
	rig := s.startBridge(bridgeOptions{jwks: bridge.JWKSOptions{UnknownKIDEvery: time.Hour, RotationEvery: 500 * time.Millisecond}})

	ctx, stop := context.WithCancel(context.Background())
	var forged atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			tok := a.jwt(fmt.Sprintf("forged-%d", i), sessionClaims(connecttest.DefaultOrganizationID, "sess-x"))
			if status, _ := rig.sdkEvent(tok, `{"type":"close"}`); status == http.StatusUnauthorized {
				forged.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()
	eventually(t, "forged kids refused", func() bool { return forged.Load() >= 5 })

	if _, err := s.sandbox.RotateKey(nil); err != nil {
		t.Fatal(err)
	}
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "atk-rotate", ReferenceID: "USER01"})
	s.listed("ConnectSessionID = '"+started.SessionID+"'", started.WorkflowID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := rig.sdkEvent(started.JWT, `{"type":"deposit","detail":"submitted","id":"d-1"}`)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated key's session JWT is still refused after 5 s of forged kids: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Finding 5: the JWKS is never taken from a redirect, so an https JWKS URL cannot be downgraded to http.
func TestAttackJWKSRedirectToHTTPIsRefused(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plainHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "evil", "use": "sig",
			"alg": "RS256", "n": b64(key.N.Bytes()), "e": "AQAB"}}})
	}))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/jwks", http.StatusFound))
	defer secure.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := bridge.NewJWKSKeys(ctx, secure.URL+"/jwks", bridge.JWKSOptions{HTTPClient: secure.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	keys.Refresh(ctx)
	time.Sleep(200 * time.Millisecond)
	if got := keys.PublicKeys(ctx); len(got) != 0 || plainHits.Load() != 0 {
		t.Fatalf("keys %v from the redirect, plain http JWKS fetched %d times; want none", got, plainHits.Load())
	}
}

// Finding 8: the public port serves the webhook routes and /healthz only: /readyz (which names internal
// addresses when not ready) and /metrics are on the admin handler.
func TestAttackAdminRoutesAreNotOnThePublicPort(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	rig := s.startBridge(bridgeOptions{})
	for _, path := range []string{bridge.PathReadyz, bridge.PathMetrics} {
		if got := get(t, rig.url+path); got != http.StatusNotFound {
			t.Errorf("public GET %s: %d, want 404", path, got)
		}
	}
	if got := get(t, rig.url+bridge.PathHealthz); got != http.StatusOK {
		t.Errorf("public GET /healthz: %d, want 200", got)
	}
	admin := httptest.NewServer(rig.bridge.AdminHandler())
	defer admin.Close()
	for _, path := range []string{bridge.PathReadyz, bridge.PathMetrics, bridge.PathHealthz} {
		if got := get(t, admin.URL+path); got != http.StatusOK {
			t.Errorf("admin GET %s: %d, want 200", path, got)
		}
	}
}

// Finding 9: the webhook tolerance is capped, so a captured webhook cannot be replayed for a year.
func TestAttackWebhookToleranceIsCapped(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	keys, err := bridge.NewJWKSKeys(context.Background(), s.sandbox.URL+"/api/v1/jwks", bridge.JWKSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	for _, c := range []struct {
		tolerance time.Duration
		ok        bool
	}{{bridge.MaxTolerance, true}, {bridge.MaxTolerance + time.Second, false}, {365 * 24 * time.Hour, false}} {
		_, err := bridge.New(bridge.Options{Temporal: s.client, Keys: keys, PublicURL: "https://hooks.example.com",
			Tolerance: c.tolerance})
		if (err == nil) != c.ok {
			t.Errorf("Tolerance %v: err %v, want ok=%v", c.tolerance, err, c.ok)
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// recordFile names a recorded history of an edge rule's path: the ones recorded under workflows.ChangeEdgeRules
// version 1 alone are "_edge1"; new ones take historySuffix like every other path.
func recordFile(name string) string { return name + historySuffix }

// Finding 3: a widget closed right after the user submitted does not abandon the transfer, and a close abandons
// only after its grace period passed without a Connect event; the transfer's real events then confirm it.
func TestAttackCloseRightAfterSubmitDoesNotAbandon(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	rig := s.startBridge(bridgeOptions{})
	dep := connect.KindDeposit
	play := func(started transfer.Started) {
		t.Helper()
		deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
		requireDelivered(t, deliveries, err)
	}
	relay := func(jwt, body string) {
		t.Helper()
		if status, answer := rig.sdkEvent(jwt, body); status != http.StatusOK {
			t.Fatalf("relay %s: %d %s", body, status, answer)
		}
	}

	// Submitted, then closed at once: not abandoned (default grace), confirmed by its events.
	submitted := s.start(workflows.TransferInput{Kind: dep, TransferID: "atk-submit", ReferenceID: "USER41"})
	s.listed("ConnectSessionID = '"+submitted.SessionID+"'", submitted.WorkflowID)
	relay(submitted.JWT, `{"type":"deposit","detail":"submitted","id":"d-1"}`)
	relay(submitted.JWT, `{"type":"close"}`)
	if st := s.state(submitted.WorkflowID); st.Status != workflows.StatusAwaitingUser || !st.UserSubmitted {
		t.Fatalf("after submit and close: %s (submitted %v), want awaiting_user", st.Status, st.UserSubmitted)
	}
	play(submitted)
	if r, err := s.result(dep, "atk-submit"); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("result %+v, %v; want confirmed", r, err)
	}
	s.checkReplayFile(submitted.WorkflowID, recordFile("deposit_close_after_submit"))

	// Closed without a submit callback, but Connect's event comes within the grace period: confirmed.
	closed := s.start(workflows.TransferInput{Kind: dep, TransferID: "atk-close", ReferenceID: "USER42",
		Timeouts: workflows.Timeouts{CloseGrace: time.Hour}})
	s.listed("ConnectSessionID = '"+closed.SessionID+"'", closed.WorkflowID)
	relay(closed.JWT, `{"type":"close"}`)
	play(closed)
	r, err := s.result(dep, "atk-close")
	if err != nil || r.Status != workflows.StatusConfirmed || r.Events[1].Effect != workflows.EffectIgnored {
		t.Fatalf("result %+v, %v; want confirmed, the close ignored", r, err)
	}
	s.checkReplayFile(closed.WorkflowID, recordFile("deposit_close_then_initiated"))

	// Closed and nothing comes: abandoned once the grace period passed, the close record applied.
	gone := s.start(workflows.TransferInput{Kind: dep, TransferID: "atk-gone", ReferenceID: "USER43",
		Timeouts: workflows.Timeouts{CloseGrace: time.Second}})
	s.listed("ConnectSessionID = '"+gone.SessionID+"'", gone.WorkflowID)
	relay(gone.JWT, `{"type":"close"}`)
	r, err = s.result(dep, "atk-gone")
	if err != nil || r.Status != workflows.StatusAbandoned || r.Events[1].Effect != workflows.EffectApplied {
		t.Fatalf("result %+v, %v; want abandoned, the close applied", r, err)
	}
	s.checkReplayFile(gone.WorkflowID, recordFile("deposit_close_grace_abandoned"))
}

// Finding 7: a signed event that names a transfer through its metadata but carries another session is a
// conflict sent to review, never applied; the transfer's own events still confirm it.
func TestAttackEventOfAnotherSessionGoesToReview(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	a := s.newAttacker()
	rig := s.startBridge(bridgeOptions{})
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "atk-session", ReferenceID: "USER44"})

	body := depositEvent("confirmed", "atk-session", "sess-attacker")
	if status, answer := a.webhook(rig, body, ""); status != http.StatusOK {
		t.Fatalf("forged-session webhook: %d %s (the bridge takes it; the workflow decides)", status, answer)
	}
	ev, err := connect.ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the conflict's review", func() bool {
		_, err := s.client.DescribeWorkflowExecution(s.ctx(), workflows.ReviewWorkflowID(ev.DedupeKey), "")
		return err == nil
	})
	st := s.state(started.WorkflowID)
	if st.Status != workflows.StatusAwaitingUser || st.Events[len(st.Events)-1].Effect != workflows.EffectConflict {
		t.Fatalf("after the forged event: %s, events %+v; want awaiting_user and a conflict", st.Status, st.Events)
	}
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
	requireDelivered(t, deliveries, err)
	if r, err := s.result(connect.KindDeposit, "atk-session"); err != nil || r.Status != workflows.StatusConfirmed ||
		r.ConnectTransferID != s.connectID(started.SessionID) {
		t.Fatalf("result %+v, %v; want confirmed with the real Connect id", r, err)
	}
	s.checkReplayFile(started.WorkflowID, recordFile("deposit_session_conflict"))
}

// Finding 2, the workflow's part: a flood that gets past the bridge (many replicas, or someone with Temporal
// access) never brings a run near Temporal's signal limit: every SignalsPerRun signals the transfer continues as
// new with its state, losing none of them, and its real events still confirm it.
func TestAttackSignalFloodContinuesAsNew(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	s.startWorker()
	s.startBridge(bridgeOptions{}) // the sandbox's webhooks go through it
	started := s.start(workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "atk-can", ReferenceID: "USER45",
		SignalsPerRun: 10})
	const flood = 35
	var wg sync.WaitGroup
	for w := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += 5 {
				err := s.client.SignalWorkflow(context.Background(), started.WorkflowID, "", workflows.SignalSDKEvent,
					workflows.SDKEvent{Type: workflows.SDKTypeEvent, Detail: "flood", DedupeKey: fmt.Sprintf("flood-%d", i)})
				if err != nil {
					t.Errorf("flood signal %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	s.listed("ConnectSessionID = '"+started.SessionID+"' AND ExecutionStatus = 'Running'", started.WorkflowID)
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
	requireDelivered(t, deliveries, err)
	r, err := s.result(connect.KindDeposit, "atk-can")
	if err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("result %+v, %v; want confirmed", r, err)
	}
	taken := 0
	for _, e := range r.Events {
		if e.Source == "sdk" && e.Status == "flood" {
			taken += 1 + e.Duplicates
		}
	}
	if taken != flood {
		t.Fatalf("the transfer recorded %d of %d flood signals: continuing as new lost some", taken, flood)
	}
	// A run hands over after its 10th signal, taking what was already delivered with it; so at least two runs.
	// Visibility is written after the runs close, so the count is waited for, not read once.
	runs := 0
	eventually(t, fmt.Sprintf("at least 2 runs for %d signals at 10 per run", flood), func() bool {
		resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowId = '" + started.WorkflowID + "'"})
		if err != nil {
			t.Fatal(err)
		}
		runs = len(resp.GetExecutions())
		return runs >= 2
	})
	s.checkReplayFile(started.WorkflowID, recordFile("deposit_flood_continued"))
}

// Review finding (issue 12, MachineV2): close 1 is deferred; then, in one workflow task, a Connect event cancels
// it, close 2 is deferred, and close 1's grace timer fires. That old timer must not abandon the transfer: close 2
// gets its own grace. The worker is stopped meanwhile so the three arrive in one workflow task.
func TestAttackOldCloseGraceTimerDoesNotCutALaterClosesGrace(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	w := s.startWorker()
	const grace = 3 * time.Second
	st, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "g",
		ReferenceID: "USERG", Timeouts: workflows.Timeouts{CloseGrace: grace}})
	if err != nil {
		t.Fatal(err)
	}
	sdk := func(key string) {
		if err := s.client.SignalWorkflow(s.ctx(), st.WorkflowID, "", workflows.SignalSDKEvent,
			workflows.SDKEvent{Type: workflows.SDKTypeClose, DedupeKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	sdk("close-1")
	closed1 := time.Now()
	eventually(t, "close 1 deferred", func() bool {
		v, err := s.client.QueryWorkflow(s.ctx(), st.WorkflowID, "", workflows.QueryState)
		var cur workflows.TransferState
		return err == nil && v.Get(&cur) == nil && len(cur.Events) == 2
	})
	w.Stop()
	ev := event(connect.KindDeposit, connect.Status("unexpected"), "cx-g", st.SessionID)
	ev.DedupeKey = "unexpected-1"
	s.signal(connect.KindDeposit, "g", ev)
	sdk("close-2")
	time.Sleep(time.Until(closed1.Add(grace + 500*time.Millisecond)))
	s.startWorker()
	time.Sleep(time.Second) // well inside close 2's grace (sent ~0s after close 1's timer started + grace)
	v, err := s.client.QueryWorkflow(s.ctx(), st.WorkflowID, "", workflows.QueryState)
	if err != nil {
		t.Fatal(err)
	}
	var cur workflows.TransferState
	if err := v.Get(&cur); err != nil {
		t.Fatal(err)
	}
	for _, e := range cur.Events {
		t.Logf("%s %s %s %s", e.Source, e.Name, e.DedupeKey, e.Effect)
	}
	if cur.Status != workflows.StatusAwaitingUser {
		t.Fatalf("status %s %s after close 2 (sent %v ago), want awaiting_user until its grace ends", cur.Status, cur.FailureReason, time.Since(closed1))
	}
}
