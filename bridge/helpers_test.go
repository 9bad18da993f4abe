package bridge_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
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
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// publicURL is deliberately not the test server's address: the signed URL comes from configuration, not Host.
const (
	publicURL     = "https://hooks.example.com"
	depositsURL   = publicURL + bridge.PathConnectDeposits
	withdrawalURL = publicURL + bridge.PathConnectWithdrawals
	zhSecret      = "test-zerohash-webhook-secret"
	kidA          = "key-a"
	kidB          = "key-b"
)

// Keys are generated once per test binary: 0 and 1 are Connect's (published as kidA and kidB), 2 is an attacker's.
var (
	keysOnce sync.Once
	keyPool  [3]*rsa.PrivateKey
	keysErr  error
)

func testKey(tb testing.TB, i int) *rsa.PrivateKey {
	tb.Helper()
	keysOnce.Do(func() {
		for j := range keyPool {
			if keyPool[j], keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		tb.Fatalf("generate test keys: %v", keysErr)
	}
	return keyPool[i]
}

// jwksServer publishes RSA public keys as a JWKS over loopback HTTP and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  []map[string]string
	hits  atomic.Int64
	down  atomic.Bool
	extra []map[string]string // published as they are: keys of other types or uses
}

func newJWKSServer(tb testing.TB) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		set := map[string]any{"keys": append(append([]map[string]string{}, s.keys...), s.extra...)}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(set); err != nil {
			tb.Errorf("encode JWKS: %v", err)
		}
	}))
	tb.Cleanup(s.Close)
	return s
}

// publish adds an RSA signing key under kid.
func (s *jwksServer) publish(kid string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, map[string]string{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	})
}

// fakeTemporal is a Temporal that records what the bridge asked and answers as configured.
type fakeTemporal struct {
	mu        sync.Mutex
	signals   []signalCall
	starts    []startCall
	queries   []string
	describes []string

	signalErr func(workflowID string) error                  // nil: accept every signal
	startErr  func(workflowID string) error                  // nil: accept every signal-with-start
	closed    map[string]workflows.Status                    // closed workflows and their TransferStatus
	absent    map[string]bool                                // workflow ids that never existed
	found     map[string][]*workflowpb.WorkflowExecutionInfo // visibility query -> executions
	healthErr error
	block     bool // every call waits for its context to end, like an unreachable server
}

type signalCall struct {
	workflowID, signal string
	arg                any
}

type startCall struct {
	workflowID, signal string
	arg                any
	options            client.StartWorkflowOptions
	input              workflows.ReviewInput
}

func newFakeTemporal() *fakeTemporal {
	return &fakeTemporal{closed: map[string]workflows.Status{}, absent: map[string]bool{},
		found: map[string][]*workflowpb.WorkflowExecutionInfo{}}
}

func (f *fakeTemporal) wait(ctx context.Context) error {
	if !f.block {
		return nil
	}
	<-ctx.Done()
	return serviceerror.NewDeadlineExceeded(ctx.Err().Error())
}

func (f *fakeTemporal) SignalWorkflow(ctx context.Context, workflowID, _, signalName string, arg any) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, closed := f.closed[workflowID]; closed {
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	if f.absent[workflowID] {
		return serviceerror.NewNotFound("workflow not found for ID: " + workflowID)
	}
	if f.signalErr != nil {
		if err := f.signalErr(workflowID); err != nil {
			return err
		}
	}
	f.signals = append(f.signals, signalCall{workflowID, signalName, arg})
	return nil
}

func (f *fakeTemporal) SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
	options client.StartWorkflowOptions, _ any, workflowArgs ...any) (client.WorkflowRun, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		if err := f.startErr(workflowID); err != nil {
			return nil, err
		}
	}
	in, _ := workflowArgs[0].(workflows.ReviewInput)
	f.starts = append(f.starts, startCall{workflowID, signalName, signalArg, options, in})
	return nil, nil
}

func (f *fakeTemporal) DescribeWorkflowExecution(ctx context.Context, workflowID, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes = append(f.describes, workflowID)
	st, ok := f.closed[workflowID]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + workflowID)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(string(st))
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution:        &commonpb.WorkflowExecution{WorkflowId: workflowID},
		Status:           enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{"TransferStatus": p}},
	}}, nil
}

func (f *fakeTemporal) ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, req.GetQuery())
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: f.found[req.GetQuery()]}, nil
}

func (f *fakeTemporal) CheckHealth(ctx context.Context, _ *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &client.CheckHealthResponse{}, f.healthErr
}

// running lists id as a running execution for a visibility query.
func (f *fakeTemporal) running(query string, ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.found[query] = append(f.found[query], &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: id},
			Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
		})
	}
}

// calls returns copies of what reached Temporal so far.
func (f *fakeTemporal) calls() ([]signalCall, []startCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]signalCall(nil), f.signals...), append([]startCall(nil), f.starts...)
}

// requireNoSignal fails unless nothing reached any workflow.
func (f *fakeTemporal) requireNoSignal(tb testing.TB) {
	tb.Helper()
	signals, starts := f.calls()
	if len(signals) > 0 || len(starts) > 0 {
		tb.Fatalf("want no signal, got signals %+v and review starts %+v", signals, starts)
	}
}

// harness is one bridge on a loopback server with its JWKS, fake Temporal, metrics and logs.
type harness struct {
	bridge   *bridge.Bridge
	server   *httptest.Server
	admin    *httptest.Server // the admin port: /readyz, /metrics
	temporal *fakeTemporal
	jwks     *jwksServer
	reg      *prometheus.Registry
	logs     *syncBuffer
}

type harnessOptions struct {
	auth            bridge.AuthMode
	clientID        string // Options.ConnectClientID
	zhSecret        string // default zhSecret; "-" for none
	zhKey           *rsa.PublicKey
	zhRequireTS     bool
	now             func() time.Time // Options.Now
	temporalTimeout time.Duration
	jwksDown        bool
	unknownKIDEvery time.Duration // default one minute: a second forced refresh within a test is rate-limited
}

func newHarness(tb testing.TB, o harnessOptions) *harness {
	tb.Helper()
	h := &harness{temporal: newFakeTemporal(), jwks: newJWKSServer(tb), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	h.jwks.publish(kidA, &testKey(tb, 0).PublicKey)
	h.jwks.down.Store(o.jwksDown)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	keys, err := bridge.NewJWKSKeys(ctx, h.jwks.URL, bridge.JWKSOptions{
		RefreshInterval: time.Hour, UnknownKIDEvery: cmp.Or(o.unknownKIDEvery, time.Minute), WaitMax: 2 * time.Second,
	})
	if err != nil {
		tb.Fatalf("NewJWKSKeys: %v", err)
	}
	secret := cmp.Or(o.zhSecret, zhSecret)
	if secret == "-" {
		secret = ""
	}
	h.bridge, err = bridge.New(bridge.Options{
		Temporal: h.temporal, TaskQueue: "test-queue", PublicURL: publicURL, Auth: o.auth, ConnectClientID: o.clientID,
		ZeroHashWebhookSecret: secret, ZeroHashWebhookPublicKey: o.zhKey, ZeroHashRequireTimestamp: o.zhRequireTS,
		Keys: keys, TemporalTimeout: o.temporalTimeout, Now: o.now,
		Logger:     slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: h.reg,
	})
	if err != nil {
		tb.Fatalf("bridge.New: %v", err)
	}
	tb.Cleanup(h.bridge.Close)
	h.server = httptest.NewServer(h.bridge.Handler())
	tb.Cleanup(h.server.Close)
	h.admin = httptest.NewServer(h.bridge.AdminHandler())
	tb.Cleanup(h.admin.Close)
	return h
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// webhook is one request to the bridge, signed like Connect unless a test spoils it.
type webhook struct {
	path   string
	header http.Header
	body   []byte
}

// webhookClaims are the bearer JWT claims Connect puts on a webhook.
func webhookClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": bridge.ConnectIssuer, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": uuid.NewString()}
}

// signJWT signs claims with RS256 under kid.
func signJWT(tb testing.TB, key *rsa.PrivateKey, kid string, claims jwt.Claims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign JWT: %v", err)
	}
	return s
}

// signedWebhook signs body for url at now with key A, as Connect does: client-id, payload type, timestamp, signature.
func signedWebhook(tb testing.TB, path, url string, body []byte, now time.Time) webhook {
	tb.Helper()
	return signedWith(tb, testKey(tb, 0), kidA, path, url, body, now)
}

func signedWith(tb testing.TB, key *rsa.PrivateKey, kid, path, url string, body []byte, now time.Time) webhook {
	tb.Helper()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig, err := connect.Sign(key, ts, http.MethodPost, url, body)
	if err != nil {
		tb.Fatalf("sign webhook: %v", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	// The published header set (docs.zerohash.com/reference/connect-webhooks): client-id, timestamp, signature,
	// x-zh-hook-payload-type. No bearer: withBearer adds one.
	h.Set(connect.HeaderClientID, "Connect")
	h.Set(connect.HeaderPayloadType, bridge.PayloadTypeConnectDeposit)
	if path == bridge.PathConnectWithdrawals {
		h.Set(connect.HeaderPayloadType, bridge.PayloadTypeConnectWithdrawal)
	}
	h.Set(connect.HeaderTimestamp, ts)
	h.Set(connect.HeaderSignature, sig)
	return webhook{path: path, header: h, body: body}
}

// withBearer adds the bearer JWT the guide's Connect sends, signed with key under kid at now.
func withBearer(tb testing.TB, w webhook, key *rsa.PrivateKey, kid string, now time.Time) webhook {
	tb.Helper()
	w.header.Set("Authorization", "Bearer "+signJWT(tb, key, kid, webhookClaims(now)))
	return w
}

// eventBody is a guide-shaped Connect webhook body; metadata nil leaves the session without routing keys.
func eventBody(tb testing.TB, name, connectID, sessionID string, metadata map[string]string) []byte {
	tb.Helper()
	body, err := json.Marshal(map[string]any{
		"event": name,
		"deposit": map[string]any{"id": connectID, "asset": "BTC", "network": "bitcoin", "amount": "0.013",
			"created_at": "2025-07-24T15:42:07.123456789Z", "updated_at": "2025-07-24T15:42:07.123456789Z",
			"transaction": nil},
		"account": map[string]string{"reference_id": "USER01"},
		"session": map[string]any{"id": sessionID, "metadata": metadata},
	})
	if err != nil {
		tb.Fatalf("encode event: %v", err)
	}
	return body
}

// routed is the metadata the transfer workflow puts in its session.
func routed(kind connect.Kind, transferID string) map[string]string {
	return map[string]string{workflows.MetadataTransferID: transferID, workflows.MetadataKind: string(kind),
		"customer_email": "jane.doe@example.com"}
}

// balanceWebhook is a signed account_balance.changed webhook with one movement.
func balanceWebhook(tb testing.TB, mv zerohash.Movement) webhook {
	tb.Helper()
	mv.MovementTimestamp = time.Now().UnixMilli()
	ev := zerohash.BalanceEvent{AccountGroup: "PLAT01", AccountLabel: "general", AccountType: "available", Asset: "BTC",
		Balance: "1.5", ParticipantCode: "CUST01", RunID: "42", RunType: "deposit", Timestamp: time.Now().UnixMilli(),
		Movements: []zerohash.Movement{mv}}
	body, err := json.Marshal(ev)
	if err != nil {
		tb.Fatalf("encode balance event: %v", err)
	}
	// The published header set (docs.zerohash.com/reference/webhook-security): legacy and timed HMAC.
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook(zhSecret, body))
	h.Set(zerohash.HeaderHookTimestamp, ts)
	h.Set(zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook(zhSecret, body, ts))
	h.Set(zerohash.HeaderHookNotificationID, "notif-"+mv.MovementID)
	h.Set(zerohash.HeaderPayloadType, zerohash.PayloadTypeBalanceChanged)
	return webhook{path: bridge.PathZeroHashBalances, header: h, body: body}
}

// sessionJWT is a Connect session JWT as the guide prints it (RFC 3339 times), signed with key A.
func sessionJWT(tb testing.TB, sessionID string, now time.Time) string {
	tb.Helper()
	return signJWT(tb, testKey(tb, 0), kidA, jwt.MapClaims{
		"iss": bridge.ConnectIssuer, "sub": "acct-1", "jti": uuid.NewString(),
		"iat": now.UTC().Format(time.RFC3339Nano), "exp": now.Add(time.Hour).UTC().Format(time.RFC3339Nano),
		"organization": map[string]string{"id": "org-1"},
		"account":      map[string]string{"id": "acct-1", "reference_id": "USER01"},
		"session":      map[string]string{"id": sessionID},
	})
}

// sdkRelay is a POST /v1/sdk-events request authenticated by a session JWT.
func sdkRelay(tb testing.TB, sessionID, body string) webhook {
	tb.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+sessionJWT(tb, sessionID, time.Now()))
	return webhook{path: bridge.PathSDKEvents, header: h, body: []byte(body)}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// send posts w to the harness's server.
func (h *harness) send(tb testing.TB, w webhook) answer {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, h.server.URL+w.path, bytes.NewReader(w.body))
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	req.Header = w.header.Clone()
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) answer {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// metric returns the value of the series name{labels} in reg, or 0 when it does not exist.
func metric(tb testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.GetCounter() != nil:
					return m.GetCounter().GetValue()
				case m.GetHistogram() != nil:
					return float64(m.GetHistogram().GetSampleCount())
				case m.GetGauge() != nil:
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// eventOf returns the EventSignal a call carried, failing the test for any other payload.
func eventOf(tb testing.TB, arg any) workflows.EventSignal {
	tb.Helper()
	s, ok := arg.(workflows.EventSignal)
	if !ok {
		tb.Fatalf("signal payload is %T, want workflows.EventSignal", arg)
	}
	return s
}

// containsAny reports the first of needles found in s.
func containsAny(s string, needles ...string) (string, bool) {
	for _, n := range needles {
		if n != "" && strings.Contains(s, n) {
			return n, true
		}
	}
	return "", false
}
