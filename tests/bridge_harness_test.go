package tests

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connecttest"
)

// bridgeRig is the webhook bridge on a loopback port, wired into a stack: its keys come from the sandbox's JWKS,
// the sandbox's webhook URLs are the bridge's routes, and the Temporal client it signals through can be swapped.
type bridgeRig struct {
	t        *testing.T
	url      string // the public URL: the sandbox signs webhooks for it
	bridge   *bridge.Bridge
	temporal *swappableTemporal
	reg      *prometheus.Registry
	answers  *answerLog
}

type bridgeOptions struct {
	auth            bridge.AuthMode
	temporalTimeout time.Duration
	// zhSecret is ZeroHashWebhookSecret: default the sandbox's; "-" for none.
	zhSecret string
	// zhRSA configures the sandbox's Zero Hash webhook RSA key; zhRequireTS refuses legacy-only balance webhooks.
	zhRSA, zhRequireTS bool
}

// startBridge serves a bridge for s and points the sandbox's webhooks at it.
func (s *stack) startBridge(o bridgeOptions) *bridgeRig {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	keys, err := bridge.NewJWKSKeys(ctx, s.sandbox.URL+"/api/v1/jwks", bridge.JWKSOptions{})
	if err != nil {
		s.t.Fatalf("JWKS keys: %v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	rig := &bridgeRig{t: s.t, url: "http://" + srv.Listener.Addr().String(), temporal: &swappableTemporal{},
		reg: prometheus.NewRegistry(), answers: &answerLog{}}
	rig.temporal.use(s.client)
	secret := cmp.Or(o.zhSecret, connecttest.DefaultWebhookSecret)
	if secret == "-" {
		secret = ""
	}
	var zhKey *rsa.PublicKey
	if o.zhRSA {
		if zhKey, err = s.sandbox.ZeroHashWebhookPublicKey(); err != nil {
			s.t.Fatal(err)
		}
	}
	// The sandbox sends Connect's published header set; the guide's bearer JWT only where the mode requires one.
	s.sandbox.SetWebhookBearer(o.auth == bridge.AuthSignatureJWT)
	rig.bridge, err = bridge.New(bridge.Options{
		Temporal: rig.temporal, TaskQueue: taskQueue, PublicURL: rig.url, Auth: o.auth,
		ZeroHashWebhookSecret: secret, ZeroHashWebhookPublicKey: zhKey, ZeroHashRequireTimestamp: o.zhRequireTS,
		Keys: keys, TemporalTimeout: o.temporalTimeout,
		Logger: slog.New(slog.DiscardHandler), Registerer: rig.reg,
	})
	if err != nil {
		s.t.Fatalf("bridge: %v", err)
	}
	srv.Config.Handler = rig.answers.wrap(rig.bridge.Handler())
	srv.Start()
	s.t.Cleanup(srv.Close)
	s.t.Cleanup(rig.bridge.Close)
	err = s.sandbox.SetWebhookURLs(rig.url+bridge.PathConnectDeposits, rig.url+bridge.PathConnectWithdrawals,
		rig.url+bridge.PathZeroHashBalances)
	if err != nil {
		s.t.Fatalf("point the sandbox at the bridge: %v", err)
	}
	if err := rig.bridge.Ready(s.ctx()); err != nil {
		s.t.Fatalf("bridge not ready: %v", err)
	}
	return rig
}

// requests is the bridge's request counter for one route and outcome.
func (r *bridgeRig) requests(route, outcome string) float64 {
	r.t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		r.t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != bridge.MetricRequests {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "route") == route && label(m, "outcome") == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sdkEvent relays an Auth SDK callback as the platform's frontend does, with the session JWT as bearer.
func (r *bridgeRig) sdkEvent(sessionJWT, body string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+bridge.PathSDKEvents, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+sessionJWT)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("relay SDK event: %v", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, string(answer)
}

// swappableTemporal lets a test swap the bridge's Temporal client while it serves, to model an outage.
type swappableTemporal struct {
	current atomic.Value // bridge.Temporal
}

func (s *swappableTemporal) use(c bridge.Temporal) { s.current.Store(&c) }
func (s *swappableTemporal) get() bridge.Temporal  { return *s.current.Load().(*bridge.Temporal) }

func (s *swappableTemporal) SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error {
	return s.get().SignalWorkflow(ctx, workflowID, runID, signalName, arg)
}

func (s *swappableTemporal) SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
	options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error) {
	return s.get().SignalWithStartWorkflow(ctx, workflowID, signalName, signalArg, options, workflow, workflowArgs...)
}

func (s *swappableTemporal) DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return s.get().DescribeWorkflowExecution(ctx, workflowID, runID)
}

func (s *swappableTemporal) ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return s.get().ListWorkflow(ctx, req)
}

func (s *swappableTemporal) CheckHealth(ctx context.Context, req *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return s.get().CheckHealth(ctx, req)
}

// unreachableTemporal is a real SDK client whose server address has nothing listening: what the bridge sees while
// Temporal is down. Lazy, as the webhookbridge command builds its client, so creating it does not fail.
func (s *stack) unreachableTemporal() client.Client {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		s.t.Fatal(err)
	}
	c, err := client.NewLazyClient(client.Options{HostPort: addr, Namespace: s.namespace})
	if err != nil {
		s.t.Fatalf("lazy client: %v", err)
	}
	s.t.Cleanup(c.Close)
	return c
}

// listed waits until visibility lists workflowID for query, as the bridge's lookups need.
func (s *stack) listed(query, workflowID string) {
	s.t.Helper()
	eventually(s.t, workflowID+" listed for "+query, func() bool {
		resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			s.t.Fatalf("list %s: %v", query, err)
		}
		for _, ex := range resp.GetExecutions() {
			if ex.GetExecution().GetWorkflowId() == workflowID {
				return true
			}
		}
		return false
	})
}

// answerLog records every answer the bridge gave: route, status and Retry-After.
type answerLog struct {
	mu      sync.Mutex
	answers []recordedAnswer
}

type recordedAnswer struct {
	path, retryAfter string
	status           int
}

func (l *answerLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.answers = append(l.answers, recordedAnswer{path: r.URL.Path, status: rec.status, retryAfter: w.Header().Get("Retry-After")})
	})
}

func (l *answerLog) all() []recordedAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]recordedAnswer(nil), l.answers...)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// requireDelivered fails unless every delivery got a 2xx, reporting the attempts of any that did not.
func requireDelivered(t *testing.T, deliveries []connecttest.Delivery, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("play: %v", err)
	}
	var b bytes.Buffer
	for _, d := range deliveries {
		if !d.Delivered {
			b.WriteString(d.Event + ": ")
			for _, a := range d.Attempts {
				b.WriteString(a.Answer + " ")
			}
		}
	}
	if b.Len() > 0 {
		t.Fatalf("undelivered webhooks: %s", b.String())
	}
}
