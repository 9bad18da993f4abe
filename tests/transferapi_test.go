package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/transferapi/transferapitest"
	"github.com/connectflow/connectflow/workflows"
)

// Bearer tokens of the API tests: a platform backend, and an operator.
const (
	apiBackendToken  = "backend-token-0123456789abcdef0123456789"
	apiOperatorToken = "operator-token-0123456789abcdef012345678"
)

// apiStack is a stack with the transfer API served over real HTTP on loopback.
type apiStack struct {
	*stack
	url  string
	idp  *transferapitest.IdP
	spec *transferapitest.Spec
}

// newAPIStack starts Temporal, the sandbox, a worker (unless noWorker), and the API with tokens and an IdP.
func newAPIStack(t *testing.T, sandbox connecttest.Options, opts transferapi.Options) *apiStack {
	t.Helper()
	s := newStack(t, sandbox)
	// The API's own client, with the caller propagator, as Run dials it.
	c, err := client.Dial(client.Options{HostPort: s.server.GetFrontendHostPort(), Namespace: s.namespace,
		ContextPropagators: []workflow.ContextPropagator{transferapi.CallerPropagator()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	idp := transferapitest.NewIdP(t)
	jwks, err := transferapi.NewJWKS(t.Context(), idp.URL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jwks.Close)
	toks, err := transferapi.ParseTokens("backend:" + apiBackendToken + ",ops-ana:" + apiOperatorToken + ":operator")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := transferapi.NewAuthenticator(toks, &transferapi.JWTConfig{Keyfunc: jwks.Keyfunc,
		Issuer: transferapitest.Issuer, Audience: transferapitest.Audience})
	if err != nil {
		t.Fatal(err)
	}
	opts.Temporal, opts.Auth = c, auth
	opts.TaskQueue = cmpOr(opts.TaskQueue, taskQueue)
	opts.ReadyChecks = append(opts.ReadyChecks, jwks.Ready)
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := transferapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	return &apiStack{stack: s, url: hs.URL, idp: idp, spec: spec}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// apiAnswer is one answer of the API.
type apiAnswer struct {
	status  int
	header  http.Header
	body    []byte
	problem transferapi.Problem
}

// call sends one request over HTTP and checks the answer against the OpenAPI document's operation docPath.
func (a *apiStack) call(method, path, docPath, token string, body any) apiAnswer {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(a.ctx(), method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	ans := apiAnswer{status: resp.StatusCode, header: resp.Header, body: raw}
	if err := a.spec.CheckResponse(method, docPath, resp.StatusCode, resp.Header.Get("Content-Type"), raw); err != nil {
		a.t.Errorf("the answer breaks the OpenAPI document: %v", err)
	}
	if resp.Header.Get("Content-Type") == transferapi.ProblemContentType {
		if err := json.Unmarshal(raw, &ans.problem); err != nil {
			a.t.Fatalf("problem %s: %v", raw, err)
		}
	}
	return ans
}

// want fails unless the answer has status (and, for a problem, type).
func (ans apiAnswer) want(t *testing.T, what string, status int, problemType string) apiAnswer {
	t.Helper()
	if ans.status != status || ans.problem.Type != problemType {
		t.Fatalf("%s: %d %s; want %d %s", what, ans.status, ans.body, status, problemType)
	}
	return ans
}

func (ans apiAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(ans.body, v); err != nil {
		t.Fatalf("decode %s: %v", ans.body, err)
	}
}

const (
	docDeposits    = "/v1/deposits"
	docWithdrawals = "/v1/withdrawals"
	docDeposit     = "/v1/deposits/{transfer_id}"
	docWithdrawal  = "/v1/withdrawals/{transfer_id}"
	docDepositSDK  = "/v1/deposits/{transfer_id}/sdk-events"
	docDepositRes  = "/v1/deposits/{transfer_id}/resolve"
	docTransfers   = "/v1/transfers"
	docOnboarding  = "/v1/onboarding-tokens"
)

func TestTransferAPIDeposit(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	body := map[string]any{"transfer_id": "api-d1", "reference_id": "USER31", "metadata": map[string]string{"order": "31"}}

	var first transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, body).want(t, "new deposit", 201, "").decode(t, &first)
	if first.WorkflowID != "deposit-api-d1" || first.SessionID == "" || first.JWT == "" || first.ExpiresAt.IsZero() ||
		first.Status != workflows.StatusAwaitingUser {
		t.Fatalf("start answer %+v", first)
	}
	if _, ok := a.sandbox.Session(first.SessionID); !ok {
		t.Fatalf("the sandbox has no session %s", first.SessionID)
	}
	var again transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, body).want(t, "same body again", 200, "").decode(t, &again)
	if again != first {
		t.Fatalf("a repeated start must return the same session: %+v, then %+v", first, again)
	}
	other := map[string]any{"transfer_id": "api-d1", "reference_id": "USER32", "await_ledger": true}
	c := a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, other).want(t, "other body", 409, transferapi.TypeTransferConflict)
	if !strings.Contains(c.problem.Detail, "reference_id") || !strings.Contains(c.problem.Detail, "await_ledger") ||
		!strings.Contains(c.problem.Detail, "metadata") {
		t.Fatalf("the conflict must name every differing field: %q", c.problem.Detail)
	}
	// History records who started it.
	if got := a.startedBy(first.WorkflowID); got != "backend" {
		t.Fatalf("caller recorded in history: %q, want backend", got)
	}

	var st transferapi.StatusResponse
	ans := a.call("GET", "/v1/deposits/api-d1", docDeposit, apiBackendToken, nil).want(t, "status", 200, "")
	ans.decode(t, &st)
	if st.Status != workflows.StatusAwaitingUser || st.Session == nil || st.Session.SessionID != first.SessionID {
		t.Fatalf("status %+v", st)
	}
	if bytes.Contains(ans.body, []byte(first.JWT)) {
		t.Fatal("the status answer must not hold the session JWT")
	}
	a.call("GET", "/v1/deposits/nope", docDeposit, apiBackendToken, nil).want(t, "unknown", 404, transferapi.TypeTransferNotFound)
	a.call("GET", "/v1/withdrawals/api-d1", docWithdrawal, apiBackendToken, nil).want(t, "other kind", 404, transferapi.TypeTransferNotFound)

	// SDK relay by the platform's credentials (a JWT from its identity provider here).
	svc := a.idp.Token(t, "svc-frontend-relay")
	a.call("POST", "/v1/deposits/api-d1/sdk-events", docDepositSDK, svc,
		map[string]string{"type": "event", "detail": "deposit.submitted", "id": "e1"}).want(t, "sdk event", 202, "")
	a.call("POST", "/v1/deposits/api-d1/sdk-events", docDepositSDK, svc,
		map[string]string{"type": "event", "detail": "deposit.submitted", "id": "e1"}).want(t, "sdk event again", 202, "")
	eventually(t, "the SDK event in the record", func() bool {
		cur, err := a.transfers.Status(a.ctx(), connect.KindDeposit, "api-d1")
		for _, e := range cur.Events {
			if e.Source == "sdk" && e.Status == "deposit.submitted" {
				return err == nil && e.Duplicates == 1
			}
		}
		return false
	})
	a.call("POST", "/v1/deposits/nope/sdk-events", docDepositSDK, apiBackendToken, map[string]string{"type": "close"}).
		want(t, "sdk event of an unknown transfer", 404, transferapi.TypeTransferNotFound)

	// Resolve: only operators, only stalled or timed-out transfers.
	resolve := map[string]string{"outcome": "failed", "reason": "user gave up"}
	a.call("POST", "/v1/deposits/api-d1/resolve", docDepositRes, apiBackendToken, resolve).want(t, "resolve as backend", 403, transferapi.TypeForbidden)
	a.call("POST", "/v1/deposits/api-d1/resolve", docDepositRes, svc, resolve).want(t, "resolve by a JWT without the role", 403, transferapi.TypeForbidden)
	nr := a.call("POST", "/v1/deposits/api-d1/resolve", docDepositRes, apiOperatorToken, resolve).want(t, "resolve a live one", 409, transferapi.TypeNotResolvable)
	if !strings.Contains(nr.problem.Detail, "only a stalled or timed-out transfer") {
		t.Fatalf("not resolvable: %q", nr.problem.Detail)
	}
	a.call("POST", "/v1/deposits/nope/resolve", docDepositRes, apiOperatorToken, resolve).want(t, "resolve unknown", 404, transferapi.TypeTransferNotFound)

	// The transfer ends; a start with the same body still answers its session, now with the final status.
	a.playLife(connect.KindDeposit, "api-d1", first.SessionID, connect.StatusConfirmed)
	if _, err := a.result(connect.KindDeposit, "api-d1"); err != nil {
		t.Fatal(err)
	}
	var final transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, body).want(t, "start after the end", 200, "").decode(t, &final)
	if final.Status != workflows.StatusConfirmed || final.SessionID != first.SessionID {
		t.Fatalf("start of a finished transfer: %+v", final)
	}
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, other).want(t, "other body after the end", 409, transferapi.TypeTransferConflict)
	a.call("POST", "/v1/deposits/api-d1/sdk-events", docDepositSDK, apiBackendToken, map[string]string{"type": "close"}).
		want(t, "sdk event after the end", 409, transferapi.TypeTransferClosed)
	a.call("POST", "/v1/deposits/api-d1/resolve", docDepositRes, apiOperatorToken, resolve).want(t, "resolve after the end", 409, transferapi.TypeTransferClosed)
	a.call("GET", "/v1/deposits/api-d1", docDeposit, apiBackendToken, nil).want(t, "status after the end", 200, "").decode(t, &st)
	if st.Status != workflows.StatusConfirmed || len(st.Events) < 4 {
		t.Fatalf("final status %+v", st)
	}

	// What every POST route refuses before Temporal, on the real server too.
	for _, route := range []struct{ path, doc string }{{"/v1/deposits", docDeposits}, {"/v1/withdrawals", docWithdrawals},
		{"/v1/deposits/api-d1/sdk-events", docDepositSDK}, {"/v1/deposits/api-d1/resolve", docDepositRes}, {"/v1/onboarding-tokens", docOnboarding}} {
		a.call("POST", route.path, route.doc, apiOperatorToken, map[string]any{"colour": "red"}).want(t, route.path+" unknown field", 422, transferapi.TypeInvalidRequest)
		a.call("POST", route.path, route.doc, apiOperatorToken, []int{1}).want(t, route.path+" not an object", 400, transferapi.TypeMalformedBody)
		a.call("POST", route.path, route.doc, apiOperatorToken, map[string]string{"reason": strings.Repeat("x", 70<<10)}).
			want(t, route.path+" too large", 413, transferapi.TypeBodyTooLarge)
		a.call("POST", route.path, route.doc, apiOperatorToken, nil).want(t, route.path+" no JSON", 415, transferapi.TypeUnsupportedMedia)
		a.call("POST", route.path, route.doc, "", map[string]any{}).want(t, route.path+" no credentials", 401, transferapi.TypeUnauthorized)
	}

	// Service routes.
	a.call("GET", "/healthz", "/healthz", "", nil).want(t, "healthz", 200, "")
	a.call("GET", "/readyz", "/readyz", "", nil).want(t, "readyz", 200, "")
	a.call("GET", "/openapi.json", "/openapi.json", "", nil).want(t, "openapi", 200, "")
	m := a.call("GET", "/metrics", "/metrics", "", nil).want(t, "metrics", 200, "")
	if !bytes.Contains(m.body, []byte(`connectflow_api_requests_total{method="POST",route="/v1/deposits",status="201"} 1`)) {
		t.Fatalf("metrics lack the request counter:\n%s", m.body)
	}
}

// startedBy reads the caller header recorded on a workflow's first event.
func (a *apiStack) startedBy(workflowID string) string {
	a.t.Helper()
	it := a.client.GetWorkflowHistory(a.ctx(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := it.Next()
	if err != nil {
		a.t.Fatal(err)
	}
	p := ev.GetWorkflowExecutionStartedEventAttributes().GetHeader().GetFields()[transferapi.HeaderCaller]
	if p == nil {
		return ""
	}
	var name string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &name); err != nil {
		a.t.Fatal(err)
	}
	return name
}

func TestTransferAPIWithdrawalRefusedByConnect(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{AllowedScopes: []connect.Scope{connect.ScopeDepositSend}}, transferapi.Options{})
	a.startWorker()
	body := map[string]any{"transfer_id": "api-w1", "reference_id": "USER33", "asset": "BTC", "network": "bitcoin", "amount": "0.5"}
	p := a.call("POST", "/v1/withdrawals", docWithdrawals, apiBackendToken, body).want(t, "refused", 502, transferapi.TypeSessionRefused)
	if p.problem.Code == "" || !strings.Contains(p.problem.Detail, "scope") {
		t.Fatalf("the problem must name Connect's error: %+v", p.problem)
	}
	p = a.call("POST", "/v1/withdrawals", docWithdrawals, apiBackendToken, body).want(t, "refused again", 502, transferapi.TypeSessionRefused)
	if p.problem.Code != string(workflows.StatusSessionFailed) || !strings.Contains(p.problem.Detail, "scope") {
		t.Fatalf("a repeated start must say how it ended: %+v", p.problem)
	}
	a.call("POST", "/v1/withdrawals", docWithdrawals, apiBackendToken, map[string]any{"transfer_id": "api-w2", "reference_id": "USER33",
		"asset": "BTC", "network": "bitcoin", "amount": "-1", "colour": "red"}).want(t, "invalid", 422, transferapi.TypeInvalidRequest)
}

func TestTransferAPIListPages(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	// Connect allows one open session per user: one user per transfer.
	for i, id := range []string{"api-l1", "api-l2", "api-l3"} {
		a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, map[string]any{"transfer_id": id, "reference_id": fmt.Sprintf("USER5%d", i+1)}).
			want(t, "start "+id, 201, "")
		time.Sleep(20 * time.Millisecond) // distinct start times
	}
	a.call("POST", "/v1/withdrawals", docWithdrawals, apiBackendToken, map[string]any{"transfer_id": "api-l4", "reference_id": "USER54",
		"asset": "BTC", "network": "bitcoin", "amount": "0.1"}).want(t, "start withdrawal", 201, "")

	list := func(q url.Values) transferapi.TransferPage {
		var page transferapi.TransferPage
		a.call("GET", "/v1/transfers?"+q.Encode(), docTransfers, apiBackendToken, nil).want(t, "list", 200, "").decode(t, &page)
		return page
	}
	q := url.Values{"kind": {"deposit"}, "status": {"awaiting_user"}}
	eventually(t, "visibility shows the three deposits", func() bool { return len(list(q).Transfers) == 3 })
	q.Set("page_size", "2")
	p1 := list(q)
	if len(p1.Transfers) != 2 || p1.NextPageToken == "" {
		t.Fatalf("first page %+v", p1)
	}
	q.Set("page_token", p1.NextPageToken)
	p2 := list(q)
	var got []string
	for _, tr := range append(p1.Transfers, p2.Transfers...) {
		if tr.Kind != connect.KindDeposit || tr.Status != workflows.StatusAwaitingUser {
			t.Fatalf("a transfer outside the filter: %+v", tr)
		}
		got = append(got, tr.TransferID)
	}
	if want := []string{"api-l3", "api-l2", "api-l1"}; !slices.Equal(got, want) || p2.NextPageToken != "" {
		t.Fatalf("pages %v (next %q), want newest first %v and no further page", got, p2.NextPageToken, want)
	}
	all := list(url.Values{})
	if len(all.Transfers) != 4 || all.Transfers[0].TransferID != "api-l4" || all.Transfers[0].Kind != connect.KindWithdrawal {
		t.Fatalf("both kinds, newest first: %+v", all.Transfers)
	}
	one := list(url.Values{"reference_id": {"USER52"}})
	if len(one.Transfers) != 1 || one.Transfers[0].TransferID != "api-l2" || one.Transfers[0].ReferenceID != "USER52" {
		t.Fatalf("by reference_id: %+v", one.Transfers)
	}
	if none := list(url.Values{"reference_id": {"USER52' OR TransferKind = 'deposit"}}); len(none.Transfers) != 0 {
		t.Fatalf("a quote in reference_id must not change the query: %+v", none.Transfers)
	}
	a.call("GET", "/v1/transfers?page_token=bm90LWEtdG9rZW4", docTransfers, apiBackendToken, nil).want(t, "forged page token", 422, transferapi.TypeInvalidRequest)
	a.call("GET", "/v1/transfers?kind=withdrawal&page_token="+p1.NextPageToken, docTransfers, apiBackendToken, nil).
		want(t, "page token of other filters", 422, transferapi.TypeInvalidRequest)
	a.call("GET", "/v1/transfers?status=done", docTransfers, apiBackendToken, nil).want(t, "bad status", 422, transferapi.TypeInvalidRequest)
	a.call("GET", "/v1/transfers", docTransfers, "", nil).want(t, "no credentials", 401, transferapi.TypeUnauthorized)
	noExp := a.idp.Sign(t, jwt.SigningMethodRS256, transferapitest.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "svc",
		Issuer: transferapitest.Issuer, Audience: jwt.ClaimStrings{transferapitest.Audience}}})
	a.call("GET", "/v1/transfers", docTransfers, noExp, nil).want(t, "a JWT without exp", 401, transferapi.TypeUnauthorized)
}

func TestTransferAPIOnboarding(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	var tok transferapi.OnboardingResponse
	a.call("POST", "/v1/onboarding-tokens", docOnboarding, apiBackendToken,
		map[string]string{"email": "kyc@example.com", "phone_number": "+15550100"}).want(t, "onboarding", 200, "").decode(t, &tok)
	if tok.Token == "" {
		t.Fatal("no token")
	}
	if err := a.sandbox.Fail(connecttest.EndpointOnboarding, connecttest.Fault{Status: http.StatusForbidden}); err != nil {
		t.Fatal(err)
	}
	p := a.call("POST", "/v1/onboarding-tokens", docOnboarding, apiBackendToken, map[string]string{"email": "kyc@example.com"}).
		want(t, "onboarding refused", 502, transferapi.TypeOnboardingRefused)
	if p.problem.Code == "" || strings.Contains(string(p.body), "kyc@example.com") {
		t.Fatalf("the problem must name Zero Hash's error and not the address: %s", p.body)
	}
}

// TestTransferAPITimeout: Temporal answers but no worker polls the task queue: 504, not 503.
func TestTransferAPITimeout(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{TaskQueue: "no-worker-here", RequestTimeout: 2 * time.Second})
	p := a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, map[string]any{"transfer_id": "api-t1", "reference_id": "USER36"}).
		want(t, "no worker", 504, transferapi.TypeTimeout)
	if !strings.Contains(p.problem.Detail, "no-worker-here") {
		t.Fatalf("the problem must name the task queue: %q", p.problem.Detail)
	}
}

// serveProcess runs `starter serve` as a real process with env added to the test's environment, and waits until
// its /healthz answers. It is stopped with SIGTERM when the test ends, and must exit 0.
func serveProcess(t *testing.T, bin string, env ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(append(os.Environ(), "STARTER_ADDR="+addr, plaintextEnv), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("starter serve did not exit cleanly on SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("starter serve ignored SIGTERM")
		}
		if strings.Contains(stderr.String(), apiBackendToken) {
			t.Errorf("the log holds a token:\n%s", stderr.String())
		}
	})
	base := "http://" + addr
	eventually(t, "starter serve answers /healthz", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func TestStarterServeCommand(t *testing.T) {
	bin := buildBinary(t, "starter")
	// -h names every setting.
	out, err := exec.Command(bin, "serve", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("serve -h: %v\n%s", err, out)
	}
	for _, env := range []string{transferapi.EnvAddr, transferapi.EnvAPITokens, transferapi.EnvAPITokensFile, transferapi.EnvJWKSURL,
		transferapi.EnvJWTIssuer, transferapi.EnvJWTAudience, "TEMPORAL_ADDRESS", "-starter-api-tokens", "default 127.0.0.1:8081"} {
		if !strings.Contains(string(out), env) {
			t.Errorf("serve -h does not name %s:\n%s", env, out)
		}
	}
	// No credentials configured: a usage error naming the variable, exit 2.
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "STARTER_API_TOKENS=", "STARTER_API_TOKENS_FILE=", "STARTER_JWKS_URL=")
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "STARTER_API_TOKENS") {
		t.Fatalf("serve without credentials: %v\n%s", err, out)
	}

	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	tokensFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokensFile, []byte("# platform backends\nbackend:"+apiBackendToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := serveProcess(t, bin, "STARTER_API_TOKENS_FILE="+tokensFile, "TEMPORAL_ADDRESS="+a.server.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE="+a.namespace, "TEMPORAL_TASK_QUEUE="+taskQueue)
	a.url = up
	a.call("GET", "/readyz", "/readyz", "", nil).want(t, "readyz", 200, "")
	var started transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, map[string]any{"transfer_id": "serve-1", "reference_id": "USER60"}).
		want(t, "start through starter serve", 201, "").decode(t, &started)
	if got := a.startedBy(started.WorkflowID); got != "backend" {
		t.Fatalf("starter serve must record the caller in history, got %q", got)
	}

	// Temporal unreachable: the API still starts, and answers 503 with Retry-After.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	a.url = serveProcess(t, bin, "STARTER_API_TOKENS=backend:"+apiBackendToken, "TEMPORAL_ADDRESS="+deadAddr,
		"STARTER_TEMPORAL_TIMEOUT=1s")
	a.call("GET", "/readyz", "/readyz", "", nil).want(t, "readyz without Temporal", 503, "")
	p := a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, map[string]any{"transfer_id": "serve-2", "reference_id": "USER61"}).
		want(t, "Temporal down", 503, transferapi.TypeTemporalUnavailable)
	if p.header.Get("Retry-After") != "5" {
		t.Fatalf("503 without Retry-After: %v", p.header)
	}
	a.call("GET", "/v1/deposits/serve-2", docDeposit, apiBackendToken, nil).want(t, "status, Temporal down", 503, transferapi.TypeTemporalUnavailable)
}

// TestTransferAPIAndBridgeRelayCountOnce: one SDK callback relayed by the frontend through the bridge and by the
// backend through the API is one event with one duplicate.
func TestTransferAPIAndBridgeRelayCountOnce(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	rig := a.startBridge(bridgeOptions{})
	var started transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, map[string]any{"transfer_id": "both-1", "reference_id": "USER70"}).
		want(t, "start", 201, "").decode(t, &started)
	a.listed(fmt.Sprintf("ConnectSessionID = '%s'", started.SessionID), started.WorkflowID)
	// A callback that changes state: the bridge does not forward informational ones (docs/security.md).
	const callback = `{"type":"deposit","detail":"submitted","id":"cb-9"}`
	if status, body := rig.sdkEvent(started.JWT, callback); status != http.StatusOK {
		t.Fatalf("bridge relay: %d %s", status, body)
	}
	var cb map[string]string
	if err := json.Unmarshal([]byte(callback), &cb); err != nil {
		t.Fatal(err)
	}
	a.call("POST", "/v1/deposits/both-1/sdk-events", docDepositSDK, apiBackendToken, cb).want(t, "API relay", 202, "")
	eventually(t, "one SDK event with one duplicate", func() bool {
		st, err := a.transfers.Status(a.ctx(), connect.KindDeposit, "both-1")
		var n, dups int
		for _, e := range st.Events {
			if e.Source == "sdk" {
				n++
				dups = e.Duplicates
			}
		}
		return err == nil && n == 1 && dups == 1
	})
}

// if_busy over the API: refuse answers 409 transfer-busy while another transfer of the reference awaits its user
// and starts nothing; the default supersedes the older transfer; anything else is a 422 naming the field.
func TestTransferAPIIfBusy(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	first := map[string]any{"transfer_id": "busy-1", "reference_id": "USER-BUSY"}
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, first).want(t, "first", 201, "")
	eventually(t, "busy-1 listed as awaiting_user", func() bool {
		var page struct {
			Transfers []struct {
				WorkflowID string `json:"workflow_id"`
			} `json:"transfers"`
		}
		ans := a.call("GET", "/v1/transfers?reference_id=USER-BUSY&status=awaiting_user", docTransfers, apiBackendToken, nil)
		if ans.status != 200 {
			return false
		}
		ans.decode(t, &page)
		return len(page.Transfers) == 1 && page.Transfers[0].WorkflowID == "deposit-busy-1"
	})
	refused := a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "busy-2", "reference_id": "USER-BUSY", "if_busy": "refuse"}).
		want(t, "refused", 409, transferapi.TypeTransferBusy)
	if !strings.Contains(refused.problem.Detail, "deposit-busy-1") {
		t.Fatalf("the problem must name the busy transfer: %+v", refused.problem)
	}
	a.call("GET", "/v1/deposits/busy-2", docDeposit, apiBackendToken, nil).want(t, "nothing started", 404, transferapi.TypeTransferNotFound)
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "busy-3", "reference_id": "USER-BUSY", "if_busy": "wait"}).
		want(t, "bad if_busy", 422, transferapi.TypeInvalidRequest)
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "busy-4", "reference_id": "USER-BUSY"}).want(t, "superseding", 201, "")
	r, err := a.result(connect.KindDeposit, "busy-1")
	if err != nil || r.Status != workflows.StatusSuperseded || r.SupersededBy != "deposit-busy-4" {
		t.Fatalf("busy-1: %+v, %v; want superseded by deposit-busy-4", r, err)
	}
}

// POST /v1/reconcile (issue 17 through the API): operators only; a run Zero Hash refuses is a 502 that leaves the
// cursor; a run that reads a dropped movement answers its summary and settles the transfer.
func TestTransferAPIReconcile(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	const doc = "/v1/reconcile"
	a.call("POST", "/v1/reconcile", doc, apiBackendToken, nil).want(t, "backend token", 403, transferapi.TypeForbidden)
	a.call("POST", "/v1/reconcile", doc, "", nil).want(t, "no token", 401, transferapi.TypeUnauthorized)

	var started transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "api-rc", "reference_id": "USER-API-RC", "await_ledger": true}).
		want(t, "start", 201, "").decode(t, &started)
	const cx = "cx-api-rc"
	a.signal(connect.KindDeposit, "api-rc", event(connect.KindDeposit, connect.StatusConfirmed, cx, started.SessionID))
	a.listed(fmt.Sprintf("ConnectTransferID = '%s' AND TransferStatus = 'confirmed'", cx), started.WorkflowID)
	a.sandbox.DropBalanceWebhooks(0)
	a.emitDeposit("mv-api-rc", cx)
	a.sandbox.ResumeBalanceWebhooks()

	if err := a.sandbox.Fail(connecttest.EndpointMovements, connecttest.Fault{Status: 403, Times: 1}); err != nil {
		t.Fatal(err)
	}
	failed := a.call("POST", "/v1/reconcile", doc, apiOperatorToken, nil).want(t, "refused run", 502, transferapi.TypeReconcileFailed)
	if failed.problem.Code == "" {
		t.Fatalf("the problem must name Zero Hash's error: %+v", failed.problem)
	}
	if st := a.cursorState(); st.Version != 0 {
		t.Fatalf("a failed run moved the cursor: %+v", st)
	}

	var sum struct {
		WorkflowID string `json:"workflow_id"`
		Seen       int    `json:"seen"`
		Applied    int    `json:"applied"`
	}
	a.call("POST", "/v1/reconcile", doc, apiOperatorToken, nil).want(t, "run", 200, "").decode(t, &sum)
	if sum.WorkflowID == "" || sum.Seen < 1 || sum.Applied != 1 {
		t.Fatalf("summary %+v: want the dropped movement applied once", sum)
	}
	r, err := a.result(connect.KindDeposit, "api-rc")
	if err != nil || r.Status != workflows.StatusSettled || r.Ledger == nil || r.Ledger.Via != "reconciliation" {
		t.Fatalf("api-rc: %+v, %v; want settled through reconciliation", r, err)
	}
}
