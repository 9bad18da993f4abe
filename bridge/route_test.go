package bridge_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// TestConnectRouting walks the one decision every route shares: signal the transfer, acknowledge what a closed
// transfer already covers, or open a review; and answer 503 when Temporal does not take it.
func TestConnectRouting(t *testing.T) {
	sessionQuery := "WorkflowType = 'TransferWorkflow' AND ConnectSessionID = 'sess-9'"
	cases := []struct {
		name      string
		event     string
		metadata  map[string]string
		setup     func(*fakeTemporal)
		status    int
		outcome   string
		signalTo  string // the transfer signalled, "" for none
		reviewID  string // the review started, "" for none
		reason    string // its ReviewInput.Reason
		reviewFor string // its TransferWorkflowID
	}{
		{name: "deposit routed by session metadata", event: "connect.deposit.broadcasted",
			metadata: routed(connect.KindDeposit, "T1"), status: 200, outcome: "signaled", signalTo: "deposit-T1"},
		{name: "withdrawal routed by session metadata", event: "connect.withdrawal.confirmed",
			metadata: routed(connect.KindWithdrawal, "W1"), status: 200, outcome: "signaled", signalTo: "withdrawal-W1"},
		{name: "no metadata: found by ConnectSessionID, skipping its review", event: "connect.deposit.initiated",
			setup:  func(f *fakeTemporal) { f.running(sessionQuery, "review-deposit:cx-9:unexpected", "deposit-T9") },
			status: 200, outcome: "signaled", signalTo: "deposit-T9"},
		{name: "no transfer anywhere", event: "connect.deposit.confirmed", status: 200, outcome: "review",
			reviewID: "review-deposit:cx-9:confirmed", reason: workflows.ReviewNoTransfer},
		{name: "metadata names a workflow that never existed", event: "connect.deposit.confirmed",
			metadata: routed(connect.KindDeposit, "GHOST"), status: 200, outcome: "review",
			setup:    func(f *fakeTemporal) { f.absent["deposit-GHOST"] = true },
			reviewID: "review-deposit:cx-9:confirmed", reason: workflows.ReviewNoTransfer, reviewFor: "deposit-GHOST"},
		{name: "unexpected deposit goes straight to review", event: "connect.deposit.unexpected",
			metadata: routed(connect.KindDeposit, "T1"), status: 200, outcome: "review",
			reviewID: "review-deposit:cx-9:unexpected", reason: workflows.ReviewUnexpected, reviewFor: "deposit-T1"},
		{name: "unknown event name goes straight to review", event: "connect.deposit.teleported",
			metadata: routed(connect.KindDeposit, "T1"), status: 200, outcome: "review",
			reviewID: "review-deposit:cx-9:unknown:connect.deposit.teleported", reason: workflows.ReviewUnknownEvent,
			reviewFor: "deposit-T1"},
		{name: "closed confirmed covers a late broadcasted", event: "connect.deposit.broadcasted",
			metadata: routed(connect.KindDeposit, "T1"),
			setup:    func(f *fakeTemporal) { f.closed["deposit-T1"] = workflows.StatusConfirmed },
			status:   200, outcome: "acknowledged"},
		{name: "closed settled covers a redelivered confirmed", event: "connect.deposit.confirmed",
			metadata: routed(connect.KindDeposit, "T1"),
			setup:    func(f *fakeTemporal) { f.closed["deposit-T1"] = workflows.StatusSettled },
			status:   200, outcome: "acknowledged"},
		{name: "confirmed after failed contradicts: review", event: "connect.deposit.confirmed",
			metadata: routed(connect.KindDeposit, "T1"),
			setup:    func(f *fakeTemporal) { f.closed["deposit-T1"] = workflows.StatusFailed },
			status:   200, outcome: "review", reviewID: "review-deposit:cx-9:confirmed",
			reason: workflows.ReviewClosedConflict, reviewFor: "deposit-T1"},
		{name: "confirmed after expired contradicts: review", event: "connect.deposit.confirmed",
			metadata: routed(connect.KindDeposit, "T1"),
			setup:    func(f *fakeTemporal) { f.closed["deposit-T1"] = workflows.StatusExpired },
			status:   200, outcome: "review", reviewID: "review-deposit:cx-9:confirmed",
			reason: workflows.ReviewClosedConflict, reviewFor: "deposit-T1"},
		{name: "failed after confirmed contradicts: review", event: "connect.deposit.failed",
			metadata: routed(connect.KindDeposit, "T1"),
			setup:    func(f *fakeTemporal) { f.closed["deposit-T1"] = workflows.StatusConfirmed },
			status:   200, outcome: "review", reviewID: "review-deposit:cx-9:failed",
			reason: workflows.ReviewClosedConflict, reviewFor: "deposit-T1"},
		{name: "its review was resolved already: handled", event: "connect.deposit.unexpected",
			setup: func(f *fakeTemporal) {
				f.startErr = func(string) error {
					return serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "")
				}
			},
			status: 200, outcome: "review_closed"},
		{name: "Temporal refuses the signal", event: "connect.deposit.confirmed",
			metadata: routed(connect.KindDeposit, "T1"),
			setup: func(f *fakeTemporal) {
				f.signalErr = func(string) error { return serviceerror.NewUnavailable("connection refused") }
			},
			status: 503, outcome: "unavailable"},
		{name: "Temporal refuses the review", event: "connect.deposit.unexpected",
			setup: func(f *fakeTemporal) {
				f.startErr = func(string) error { return serviceerror.NewUnavailable("connection refused") }
			},
			status: 503, outcome: "unavailable"},
		{name: "Temporal does not answer in time", event: "connect.deposit.confirmed",
			metadata: routed(connect.KindDeposit, "T1"),
			setup:    func(f *fakeTemporal) { f.block = true },
			status:   503, outcome: "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{temporalTimeout: 200 * time.Millisecond})
			if c.setup != nil {
				c.setup(h.temporal)
			}
			body := eventBody(t, c.event, "cx-9", "sess-9", c.metadata)
			before := time.Now()
			path, url := bridge.PathConnectDeposits, depositsURL
			if strings.HasPrefix(c.event, "connect.withdrawal.") {
				path, url = bridge.PathConnectWithdrawals, withdrawalURL
			}
			got := h.send(t, signedWebhook(t, path, url, body, before))
			if got.status != c.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.body, c.status)
			}
			if c.status == http.StatusServiceUnavailable && got.header.Get("Retry-After") != "5" {
				t.Errorf("503 without Retry-After: %v", got.header)
			}
			if n := metric(t, h.reg, bridge.MetricRequests, map[string]string{"route": path, "outcome": c.outcome}); n != 1 {
				t.Errorf("requests{outcome=%q} = %v, want 1 (answer %s)", c.outcome, n, got.body)
			}
			signals, starts := h.temporal.calls()
			if c.signalTo == "" && len(signals) > 0 {
				t.Fatalf("unexpected signals %+v", signals)
			}
			if c.signalTo != "" {
				if len(signals) != 1 || signals[0].workflowID != c.signalTo || signals[0].signal != workflows.SignalConnectEvent {
					t.Fatalf("signals %+v, want one %s to %s", signals, workflows.SignalConnectEvent, c.signalTo)
				}
				s := eventOf(t, signals[0].arg)
				if s.Event.Name != c.event || s.Event.TransferID != "cx-9" || s.Event.DedupeKey == "" || s.ReceivedAt.Before(before.Truncate(time.Second)) {
					t.Fatalf("signalled %+v", s)
				}
			}
			if c.reviewID == "" {
				if c.outcome != "review_closed" && c.outcome != "unavailable" && len(starts) > 0 {
					t.Fatalf("unexpected reviews %+v", starts)
				}
				return
			}
			if len(starts) != 1 {
				t.Fatalf("reviews %+v, want one", starts)
			}
			r := starts[0]
			if r.workflowID != c.reviewID || r.signal != workflows.SignalReviewEvent || r.input.Reason != c.reason ||
				r.input.TransferWorkflowID != c.reviewFor || r.input.ConnectTransferID != "cx-9" || r.input.SessionID != "sess-9" {
				t.Fatalf("review %+v, want %s reason %s for %q", r, c.reviewID, c.reason, c.reviewFor)
			}
			if r.options.ID != c.reviewID || r.options.TaskQueue != "test-queue" ||
				r.options.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
				t.Fatalf("review start options %+v", r.options)
			}
			if eventOf(t, r.arg).Event.Name != c.event {
				t.Fatalf("review carries %+v", r.arg)
			}
		})
	}
}

// TestBalanceRouting: movements reach their transfer by ConnectTransferID; strangers go to review.
func TestBalanceRouting(t *testing.T) {
	transferQuery := "WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'cx-1'"
	cases := []struct {
		name     string
		mv       zerohash.Movement
		setup    func(*fakeTemporal)
		status   int
		outcome  string
		signalTo string
		reviewID string
		reason   string
	}{
		{name: "deposit movement settles its transfer", mv: zerohash.Movement{MovementID: "m1", Change: "0.013",
			MovementType: "deposit", DepositReferenceID: "cx-1"},
			setup:  func(f *fakeTemporal) { f.running(transferQuery, "deposit-T1") },
			status: 200, outcome: "signaled", signalTo: "deposit-T1"},
		{name: "withdrawal movement by its request id", mv: zerohash.Movement{MovementID: "m2", Change: "-0.5",
			WithdrawalRequestID: "cx-1"},
			setup:  func(f *fakeTemporal) { f.running(transferQuery, "withdrawal-W1") },
			status: 200, outcome: "signaled", signalTo: "withdrawal-W1"},
		{name: "a reference no transfer has", mv: zerohash.Movement{MovementID: "m3", Change: "1",
			DepositReferenceID: "cx-1"},
			status: 200, outcome: "review", reviewID: "review-ledger:m3", reason: workflows.ReviewUnmatchedLedger},
		{name: "a movement of no Connect transfer", mv: zerohash.Movement{MovementID: "m4", Change: "1",
			MovementType: "trade"}, status: 200, outcome: "acknowledged"},
		{name: "a closed confirmed transfer covers its movement", mv: zerohash.Movement{MovementID: "m5",
			Change: "1", DepositReferenceID: "cx-1"},
			setup: func(f *fakeTemporal) {
				f.running(transferQuery, "deposit-T1")
				f.closed["deposit-T1"] = workflows.StatusConfirmed
			},
			status: 200, outcome: "acknowledged"},
		{name: "a closed failed transfer does not", mv: zerohash.Movement{MovementID: "m6", Change: "1",
			DepositReferenceID: "cx-1"},
			setup: func(f *fakeTemporal) {
				f.running(transferQuery, "deposit-T1")
				f.closed["deposit-T1"] = workflows.StatusFailed
			},
			status: 200, outcome: "review", reviewID: "review-ledger:m6", reason: workflows.ReviewClosedConflict},
		{name: "Temporal down", mv: zerohash.Movement{MovementID: "m7", Change: "1", DepositReferenceID: "cx-1"},
			setup: func(f *fakeTemporal) { f.block = true }, status: 503, outcome: "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{temporalTimeout: 200 * time.Millisecond})
			if c.setup != nil {
				c.setup(h.temporal)
			}
			got := h.send(t, balanceWebhook(t, c.mv))
			if got.status != c.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.body, c.status)
			}
			if n := metric(t, h.reg, bridge.MetricRequests, map[string]string{"route": bridge.PathZeroHashBalances, "outcome": c.outcome}); n != 1 {
				t.Errorf("requests{outcome=%q} = %v, want 1 (answer %s)", c.outcome, n, got.body)
			}
			signals, starts := h.temporal.calls()
			switch {
			case c.signalTo != "":
				if len(signals) != 1 || signals[0].workflowID != c.signalTo || signals[0].signal != workflows.SignalLedger {
					t.Fatalf("signals %+v, want ledger to %s", signals, c.signalTo)
				}
				m, ok := signals[0].arg.(workflows.LedgerMovement)
				if !ok || m.MovementID != c.mv.MovementID || m.Change != c.mv.Change || m.Asset != "BTC" || m.At.IsZero() {
					t.Fatalf("ledger payload %+v", signals[0].arg)
				}
			case len(signals) > 0:
				t.Fatalf("unexpected signals %+v", signals)
			}
			switch {
			case c.reviewID != "":
				if len(starts) != 1 || starts[0].workflowID != c.reviewID || starts[0].signal != workflows.SignalLedger ||
					starts[0].input.Reason != c.reason || starts[0].input.ConnectTransferID != "cx-1" {
					t.Fatalf("reviews %+v, want %s for %s", starts, c.reviewID, c.reason)
				}
			case len(starts) > 0:
				t.Fatalf("unexpected reviews %+v", starts)
			}
		})
	}
}

// TestSDKEvents: a relayed callback that changes state reaches the session's transfer with a stable dedupe key;
// a repeat is answered duplicate without a signal, and callbacks that change nothing are not forwarded.
func TestSDKEvents(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectSessionID = 'sess-1'", "deposit-T1")
	send := func(body string) answer { return h.send(t, sdkRelay(t, "sess-1", body)) }
	for _, c := range []struct{ body, want string }{
		{`{"type":"close"}`, `{"outcome":"signaled"}`},
		{`{"type":"close"}`, `{"outcome":"duplicate"}`}, // the frontend retried: same key, no second signal
		{`{"type":"deposit","detail":"submitted","id":"d-1"}`, `{"outcome":"signaled"}`},
		{`{"type":"event","detail":"deposit.submitted","id":"e-1"}`, `{"outcome":"not_forwarded"}`},
		{`{"type":"error","detail":"x","id":"e-2"}`, `{"outcome":"not_forwarded"}`},
	} {
		if got := send(c.body); got.status != http.StatusOK || got.body != c.want {
			t.Fatalf("%s: status %d %s, want %s", c.body, got.status, got.body, c.want)
		}
	}
	signals, _ := h.temporal.calls()
	if len(signals) != 2 {
		t.Fatalf("signals %+v, want 2", signals)
	}
	keys := make([]string, len(signals))
	for i, s := range signals {
		e, ok := s.arg.(workflows.SDKEvent)
		if !ok || s.workflowID != "deposit-T1" || s.signal != workflows.SignalSDKEvent {
			t.Fatalf("signal %+v", s)
		}
		if !strings.HasPrefix(e.DedupeKey, "sdk:sess-1:"+e.Type+":") {
			t.Fatalf("dedupe key %q does not name session and type", e.DedupeKey)
		}
		keys[i] = e.DedupeKey
	}
	if keys[0] == keys[1] {
		t.Fatalf("dedupe keys %q: distinct callbacks must not share a key", keys)
	}

	t.Run("session no transfer has", func(t *testing.T) {
		got := h.send(t, sdkRelay(t, "sess-unknown", `{"type":"close"}`))
		if got.status != http.StatusNotFound {
			t.Fatalf("status %d (%s), want 404", got.status, got.body)
		}
	})
	t.Run("transfer already closed", func(t *testing.T) {
		h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectSessionID = 'sess-2'", "deposit-T2")
		h.temporal.mu.Lock()
		h.temporal.closed["deposit-T2"] = workflows.StatusConfirmed
		h.temporal.mu.Unlock()
		if got := h.send(t, sdkRelay(t, "sess-2", `{"type":"close"}`)); got.status != http.StatusOK || got.body != `{"outcome":"acknowledged"}` {
			t.Fatalf("status %d (%s), want 200 acknowledged", got.status, got.body)
		}
	})
}

// TestReadiness: /readyz needs JWKS keys and an answering Temporal; /healthz only a running process.
func TestReadiness(t *testing.T) {
	// A short refresh interval so the probe after recovery may refetch; the one during the outage used it up.
	h := newHarness(t, harnessOptions{jwksDown: true, unknownKIDEvery: 100 * time.Millisecond})
	get := func(path string) answer {
		req, err := http.NewRequest(http.MethodGet, h.admin.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, req)
	}
	if got := get(bridge.PathHealthz); got.status != http.StatusOK {
		t.Fatalf("healthz %d", got.status)
	}
	if got := get(bridge.PathReadyz); got.status != http.StatusServiceUnavailable || !strings.Contains(got.body, "jwks") {
		t.Fatalf("readyz with the JWKS down: %d %s", got.status, got.body)
	}
	h.jwks.down.Store(false) // the JWKS recovers: readiness refetches it
	if got := get(bridge.PathReadyz); got.status != http.StatusOK {
		t.Fatalf("readyz after the JWKS recovered: %d %s", got.status, got.body)
	}
	h.temporal.mu.Lock()
	h.temporal.healthErr = serviceerror.NewUnavailable("connection refused")
	h.temporal.mu.Unlock()
	if got := get(bridge.PathReadyz); got.status != http.StatusServiceUnavailable || !strings.Contains(got.body, "temporal") {
		t.Fatalf("readyz with Temporal down: %d %s", got.status, got.body)
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // Temporal comes back while WaitReady polls
		h.temporal.mu.Lock()
		h.temporal.healthErr = nil
		h.temporal.mu.Unlock()
	}()
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.bridge.WaitReady(wctx); err != nil {
		t.Fatalf("WaitReady after Temporal recovered: %v", err)
	}
	h.bridge.Close()
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if err := h.bridge.WaitReady(short); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("WaitReady on a closed bridge: %v", err)
	}
	if err := h.bridge.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Ready after Close: %v", err)
	}
}

// TestMetricsAndLogs: /metrics exposes the series, and the log holds no body, PII, JWT or secret.
func TestMetricsAndLogs(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	w := withBearer(t, signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, time.Now()), testKey(t, 0), kidA, time.Now())
	if got := h.send(t, w); got.status != http.StatusOK {
		t.Fatalf("status %d", got.status)
	}
	bad := signedWebhook(t, bridge.PathConnectDeposits, depositsURL, append([]byte(" "), body...), time.Now())
	bad.header.Set(connect.HeaderSignature, w.header.Get(connect.HeaderSignature))
	if got := h.send(t, bad); got.status != http.StatusUnauthorized {
		t.Fatalf("status %d", got.status)
	}
	sdk := sdkRelay(t, "sess-1", `{"type":"close","detail":"jane.doe@example.com"}`)
	h.send(t, sdk)
	zh := balanceWebhook(t, zerohash.Movement{MovementID: "m1", Change: "1", DepositReferenceID: "cx-1"})
	h.send(t, zh)

	req, err := http.NewRequest(http.MethodGet, h.admin.URL+bridge.PathMetrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	exposition := do(t, req).body
	for _, want := range []string{
		`connectflow_bridge_requests_total{outcome="signaled",route="/webhooks/connect/deposits"} 1`,
		`connectflow_bridge_verification_failures_total{reason="signature_mismatch"} 1`,
		`connectflow_bridge_signal_seconds_count 3`,
	} {
		if !strings.Contains(exposition, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"workflow_id":"deposit-T1"`) || !strings.Contains(logs, `"reason":"signature_mismatch"`) {
		t.Fatalf("log lacks the routing and the reason:\n%s", logs)
	}
	secrets := []string{"jane.doe@example.com", "USER01", zhSecret, w.header.Get("Authorization")[len("Bearer "):],
		sdk.header.Get("Authorization")[len("Bearer "):], w.header.Get(connect.HeaderSignature), string(body)}
	if leaked, ok := containsAny(logs, secrets...); ok {
		t.Fatalf("log leaks %q:\n%s", leaked, logs)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	keys := noKeys{}
	good := bridge.Options{Temporal: newFakeTemporal(), PublicURL: publicURL, ZeroHashWebhookSecret: "s", Keys: keys}
	cases := []struct {
		name  string
		spoil func(*bridge.Options)
		want  string
	}{
		{"no temporal", func(o *bridge.Options) { o.Temporal = nil }, "Temporal"},
		{"no keys", func(o *bridge.Options) { o.Keys = nil }, "Keys"},
		{"no public URL", func(o *bridge.Options) { o.PublicURL = "" }, "PublicURL"},
		{"relative public URL", func(o *bridge.Options) { o.PublicURL = "/hooks" }, "PublicURL"},
		{"plain http to a remote host", func(o *bridge.Options) { o.PublicURL = "http://hooks.example.com" }, "PublicURL"},
		{"public URL with a query", func(o *bridge.Options) { o.PublicURL = "https://h.example.com/?a=1" }, "PublicURL"},
		{"timestamps required with no Zero Hash scheme", func(o *bridge.Options) {
			o.ZeroHashWebhookSecret, o.ZeroHashRequireTimestamp = "", true
		}, "ZeroHashRequireTimestamp"},
		{"negative Zero Hash tolerance", func(o *bridge.Options) { o.ZeroHashTolerance = -time.Second }, "ZeroHashTolerance"},
		{"Zero Hash tolerance over the cap", func(o *bridge.Options) { o.ZeroHashTolerance = bridge.MaxTolerance + time.Second }, "ZeroHashTolerance"},
		{"jwt-only auth", func(o *bridge.Options) { o.Auth = "jwt" }, "removed"},
		{"unknown auth mode", func(o *bridge.Options) { o.Auth = "none" }, "Auth"},
		{"sub-second tolerance", func(o *bridge.Options) { o.Tolerance = time.Millisecond }, "Tolerance"},
		{"body limit over 1 MiB", func(o *bridge.Options) { o.MaxBody = 2 << 20 }, "MaxBody"},
	}
	for _, c := range cases {
		o := good
		c.spoil(&o)
		if _, err := bridge.New(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.want)
		}
	}
	if _, err := bridge.New(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	// The Zero Hash secret is optional: a platform with only RSA, or with no balance webhooks, starts without it.
	for name, spoil := range map[string]func(*bridge.Options){
		"no Zero Hash scheme": func(o *bridge.Options) { o.ZeroHashWebhookSecret = "" },
		"RSA only": func(o *bridge.Options) {
			o.ZeroHashWebhookSecret, o.ZeroHashWebhookPublicKey, o.ZeroHashRequireTimestamp = "", &testKey(t, 1).PublicKey, true
		},
	} {
		o := good
		spoil(&o)
		if _, err := bridge.New(o); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// noKeys is a KeySource without keys, for option checks.
type noKeys struct{}

func (noKeys) Keyfunc(context.Context) jwt.Keyfunc {
	return func(*jwt.Token) (any, error) { return nil, errors.New("no keys") }
}
func (noKeys) PublicKeys(context.Context) []connect.PublicKey { return nil }
func (noKeys) Refresh(context.Context) bool                   { return false }

// panickingKeys fails the way a bug would: a panic in the middle of verification.
type panickingKeys struct{ noKeys }

func (panickingKeys) PublicKeys(context.Context) []connect.PublicKey { panic("key source bug") }

// TestPanicAnswers500AndKeepsServing: a panic is one 500 and a log line, not a dead process or a leaked request.
func TestPanicAnswers500AndKeepsServing(t *testing.T) {
	logs := &syncBuffer{}
	b, err := bridge.New(bridge.Options{Temporal: newFakeTemporal(), PublicURL: publicURL, Auth: bridge.AuthSignature,
		ZeroHashWebhookSecret: zhSecret, Keys: panickingKeys{}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	h := &harness{server: srv}
	body := eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
	w := signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, time.Now())
	for range 2 {
		if got := h.send(t, w); got.status != http.StatusInternalServerError || got.body != `{"error":"internal"}` {
			t.Fatalf("status %d %s, want 500", got.status, got.body)
		}
	}
	if !strings.Contains(logs.String(), "key source bug") || strings.Contains(logs.String(), "jane.doe@example.com") {
		t.Fatalf("log should name the panic and nothing of the request:\n%s", logs)
	}
}

// TestWrongMethodIs405: only POST reaches a webhook handler.
func TestWrongMethodIs405(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for _, path := range []string{bridge.PathConnectDeposits, bridge.PathZeroHashBalances, bridge.PathSDKEvents} {
		req, err := http.NewRequest(http.MethodGet, h.server.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := do(t, req); got.status != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, got.status)
		}
	}
	h.temporal.requireNoSignal(t)
}
