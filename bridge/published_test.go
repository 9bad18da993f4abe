package bridge_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestPublishedConnectHeaderSet: the exact header set Connect's webhook page publishes (no bearer) over the guide's
// sample bodies is accepted by the default bridge on both routes, and signalled.
func TestPublishedConnectHeaderSet(t *testing.T) {
	var fixture map[string]json.RawMessage
	if err := json.Unmarshal(readFile(t, "testdata/connect_webhook_headers_published.json"), &fixture); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key, path, url, signalTo string
	}{
		{"deposit", bridge.PathConnectDeposits, depositsURL, "deposit-T1"},
		{"withdrawal", bridge.PathConnectWithdrawals, withdrawalURL, "withdrawal-W1"},
	} {
		t.Run(c.key, func(t *testing.T) {
			var set struct {
				BodyFile string            `json:"body_file"`
				Headers  map[string]string `json:"headers"`
			}
			if err := json.Unmarshal(fixture[c.key], &set); err != nil {
				t.Fatal(err)
			}
			body := readFile(t, filepath.Join("testdata", set.BodyFile))
			h := newHarness(t, harnessOptions{clientID: "30da17fb-15b2-4723-a63c-0488356e1ed0"})
			h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectSessionID = '16b0e957-f3fd-41d0-b312-f2ec291de6e4'", c.signalTo)
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			sig, err := connect.Sign(testKey(t, 0), ts, http.MethodPost, c.url, body)
			if err != nil {
				t.Fatal(err)
			}
			hdr := http.Header{}
			for k, v := range set.Headers {
				hdr.Set(k, v)
			}
			hdr.Set(connect.HeaderTimestamp, ts)
			hdr.Set(connect.HeaderSignature, sig)
			got := h.send(t, webhook{path: c.path, header: hdr, body: body})
			if got.status != http.StatusOK || got.body != `{"outcome":"signaled"}` {
				t.Fatalf("status %d %s, want 200 signaled", got.status, got.body)
			}
			signals, _ := h.temporal.calls()
			if len(signals) != 1 || signals[0].workflowID != c.signalTo {
				t.Fatalf("signals %+v, want one to %s", signals, c.signalTo)
			}
		})
	}
}

// TestConnectHeaderChecks: client-id and x-zh-hook-payload-type are accepted when absent (the guide's form) or
// right, and refused 400 without a signal when wrong (TestBadRequestsNeverSignal has the refusals).
func TestConnectHeaderChecks(t *testing.T) {
	body := eventBody(t, "connect.withdrawal.initiated", "cx-1", "sess-1", routed(connect.KindWithdrawal, "W1"))
	for name, c := range map[string]struct {
		clientID string
		set      map[string]string // "" deletes
	}{
		"published client-id with our id configured": {clientID: "our-id", set: map[string]string{}},
		"our client id as client-id":                 {clientID: "our-id", set: map[string]string{connect.HeaderClientID: "our-id"}},
		"no client-id header":                        {clientID: "our-id", set: map[string]string{connect.HeaderClientID: ""}},
		"any client-id when none is configured":      {set: map[string]string{connect.HeaderClientID: "whatever"}},
		"no payload type header (the guide's form)":  {set: map[string]string{connect.HeaderPayloadType: ""}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{clientID: c.clientID})
			w := signedWebhook(t, bridge.PathConnectWithdrawals, withdrawalURL, body, time.Now())
			for k, v := range c.set {
				if v == "" {
					w.header.Del(k)
				} else {
					w.header.Set(k, v)
				}
			}
			if got := h.send(t, w); got.status != http.StatusOK {
				t.Fatalf("status %d %s, want 200", got.status, got.body)
			}
			if signals, _ := h.temporal.calls(); len(signals) != 1 || signals[0].workflowID != "withdrawal-W1" {
				t.Fatalf("signals %+v", signals)
			}
		})
	}
	t.Run("a 400 names the header", func(t *testing.T) {
		h := newHarness(t, harnessOptions{clientID: "our-id"})
		w := signedWebhook(t, bridge.PathConnectWithdrawals, withdrawalURL, body, time.Now())
		w.header.Set(connect.HeaderClientID, "their-id")
		got := h.send(t, w)
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "client-id") || strings.Contains(got.body, "our-id") {
			t.Fatalf("status %d %s: want 400 naming client-id, not our id", got.status, got.body)
		}
		h.temporal.requireNoSignal(t)
	})
}

// TestEventIDDedupe: a redelivery of an event id the bridge answered 2xx is answered duplicate without a second
// signal; an event id whose delivery failed is not remembered; another id with the same transfer and status is
// signalled (the workflow dedupes it on transfer + status).
func TestEventIDDedupe(t *testing.T) {
	h := newHarness(t, harnessOptions{temporalTimeout: 200 * time.Millisecond})
	withID := func(id string) []byte {
		var m map[string]any
		if err := json.Unmarshal(eventBody(t, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1")), &m); err != nil {
			t.Fatal(err)
		}
		m["event_id"] = id
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := func(id string) answer {
		return h.send(t, signedWebhook(t, bridge.PathConnectDeposits, depositsURL, withID(id), time.Now()))
	}
	h.temporal.mu.Lock()
	h.temporal.signalErr = func(string) error { return errUnavailableForTest }
	h.temporal.mu.Unlock()
	if got := send("evt-1"); got.status != http.StatusServiceUnavailable {
		t.Fatalf("first delivery while Temporal refuses: %d %s", got.status, got.body)
	}
	h.temporal.mu.Lock()
	h.temporal.signalErr = nil
	h.temporal.mu.Unlock()
	for i, want := range []string{`{"outcome":"signaled"}`, `{"outcome":"duplicate"}`, `{"outcome":"duplicate"}`} {
		if got := send("evt-1"); got.status != http.StatusOK || got.body != want {
			t.Fatalf("delivery %d of evt-1: %d %s, want %s", i+2, got.status, got.body, want)
		}
	}
	if got := send("evt-2"); got.body != `{"outcome":"signaled"}` {
		t.Fatalf("evt-2: %s", got.body)
	}
	// The same id on the other route is another event.
	wb := eventBody(t, "connect.withdrawal.confirmed", "cx-2", "sess-2", routed(connect.KindWithdrawal, "W1"))
	var m map[string]any
	_ = json.Unmarshal(wb, &m)
	m["event_id"] = "evt-1"
	wb, _ = json.Marshal(m)
	if got := h.send(t, signedWebhook(t, bridge.PathConnectWithdrawals, withdrawalURL, wb, time.Now())); got.body != `{"outcome":"signaled"}` {
		t.Fatalf("evt-1 on withdrawals: %s", got.body)
	}
	signals, _ := h.temporal.calls()
	if len(signals) != 3 {
		t.Fatalf("%d signals, want 3 (evt-1 once, evt-2, the withdrawal): %+v", len(signals), signals)
	}
	if ev := eventOf(t, signals[0].arg).Event; ev.EventID != "evt-1" || ev.DedupeKey != "deposit:cx-1:confirmed" {
		t.Fatalf("signalled event id %q key %q", ev.EventID, ev.DedupeKey)
	}
	if n := metric(t, h.reg, bridge.MetricRequests, map[string]string{"route": bridge.PathConnectDeposits, "outcome": "duplicate"}); n != 2 {
		t.Fatalf("duplicate requests = %v, want 2", n)
	}
}

// TestTopLevelIDIsNotTakenForAnEventID: the published page says only that each webhook has a unique event id, not in
// which field. A payload without "event_id" whose top-level "id" is the transfer's own id must not make the
// transfer's next status a duplicate: initiated then confirmed with the same top-level id are both signalled, while
// a redelivery of one of them is still answered duplicate, and an "event_id" is still taken as it is.
func TestTopLevelIDIsNotTakenForAnEventID(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	with := func(name, field, id string) []byte {
		var m map[string]any
		if err := json.Unmarshal(eventBody(t, name, "cx-1", "sess-1", routed(connect.KindDeposit, "T1")), &m); err != nil {
			t.Fatal(err)
		}
		m[field] = id
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := func(body []byte) string {
		return h.send(t, signedWebhook(t, bridge.PathConnectDeposits, depositsURL, body, time.Now())).body
	}
	for i, c := range []struct{ name, field, id, want string }{
		{"connect.deposit.initiated", "id", "cx-1", `{"outcome":"signaled"}`},
		{"connect.deposit.confirmed", "id", "cx-1", `{"outcome":"signaled"}`},  // same id, next status: not a duplicate
		{"connect.deposit.confirmed", "id", "cx-1", `{"outcome":"duplicate"}`}, // a redelivery: a duplicate
		{"connect.deposit.failed", "event_id", "evt-9", `{"outcome":"signaled"}`},
		{"connect.deposit.failed", "event_id", "evt-9", `{"outcome":"duplicate"}`},
	} {
		if got := send(with(c.name, c.field, c.id)); got != c.want {
			t.Fatalf("delivery %d, %s with %s %q: %s, want %s", i, c.name, c.field, c.id, got, c.want)
		}
	}
	signals, _ := h.temporal.calls()
	var statuses []connect.Status
	for _, s := range signals {
		statuses = append(statuses, eventOf(t, s.arg).Event.Status)
	}
	if want := []connect.Status{connect.StatusInitiated, connect.StatusConfirmed, connect.StatusFailed}; !slices.Equal(statuses, want) {
		t.Fatalf("signalled statuses %v, want %v", statuses, want)
	}
	// The transfer's own dedupe key (transfer + status) is unchanged by the id it came with.
	if ev := eventOf(t, signals[1].arg).Event; ev.DedupeKey != "deposit:cx-1:confirmed" || ev.EventID != "cx-1" {
		t.Fatalf("confirmed: dedupe key %q, event id %q", ev.DedupeKey, ev.EventID)
	}
}

// TestPublishedBalanceHeaderSet: Zero Hash's full published header set (zerohash/testdata, legacy + timed, HMAC +
// RSA) over the guide's deposit sample verifies on a bridge configured for both schemes, and the movement reaches
// review (no transfer has it) normalised: asset as sent, change "10.00" -> "10".
func TestPublishedBalanceHeaderSet(t *testing.T) {
	var v struct {
		BodyFile string            `json:"body_file"`
		Headers  map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(readFile(t, "../zerohash/testdata/webhook_headers_deposit_completed.json"), &v); err != nil {
		t.Fatal(err)
	}
	body := readFile(t, filepath.Join("../zerohash/testdata", v.BodyFile))
	block, _ := pem.Decode(readFile(t, "../zerohash/testdata/webhook_rsa_test_public.pem"))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := strconv.ParseInt(v.Headers[zerohash.HeaderHookTimestamp], 10, 64)
	for _, o := range []harnessOptions{
		{zhSecret: "whsec-test-0123456789"},
		{zhSecret: "-", zhKey: pubKey(t, pub), zhRequireTS: true},
		{zhSecret: "whsec-test-0123456789", zhKey: pubKey(t, pub), zhRequireTS: true},
	} {
		o.now = func() time.Time { return time.UnixMilli(ts).Add(30 * time.Second) }
		h := newHarness(t, o)
		hdr := http.Header{}
		hdr.Set("Content-Type", "application/json")
		for k, val := range v.Headers {
			hdr.Set(k, val)
		}
		got := h.send(t, webhook{path: bridge.PathZeroHashBalances, header: hdr, body: body})
		if got.status != http.StatusOK || got.body != `{"outcome":"review"}` {
			t.Fatalf("%+v: %d %s, want 200 review", o, got.status, got.body)
		}
		_, starts := h.temporal.calls()
		if len(starts) != 1 {
			t.Fatalf("review starts %+v", starts)
		}
		lm, ok := starts[0].arg.(workflows.LedgerMovement)
		if !ok || lm.Asset != "USD" || lm.Change != "10" || lm.MovementID != "bcc65fa1-1a1d-4a77-9f0b-cad3968b50db" {
			t.Fatalf("review got %#v", starts[0].arg)
		}
		if starts[0].input.ConnectTransferID != "be2e16a9-32a7-4e25-b255-031a17c7615b" || starts[0].input.Reason != workflows.ReviewUnmatchedLedger {
			t.Fatalf("review input %+v", starts[0].input)
		}
	}
}

// TestBalanceWebhookSchemes: an RSA-only bridge takes RSA-signed webhooks (legacy or timed) and signals the
// movement normalised; a bridge requiring timestamps takes a timed one; a bridge with no scheme answers 404 with
// the settings to set.
func TestBalanceWebhookSchemes(t *testing.T) {
	mv := zerohash.Movement{MovementID: "m1", Change: "0010.500", DepositReferenceID: "cx-1"}
	rsaSigned := func(t *testing.T, timed bool) webhook {
		w := balanceWebhook(t, mv)
		for _, k := range []string{zerohash.HeaderHookSignature, zerohash.HeaderHookTimedSignature} {
			w.header.Del(k)
		}
		header, ts := zerohash.HeaderHookRSASignature, ""
		if timed {
			header, ts = zerohash.HeaderHookTimedRSASignature, w.header.Get(zerohash.HeaderHookTimestamp)
		}
		sig, err := zerohash.SignRSAWebhook(testKey(t, 1), w.body, ts)
		if err != nil {
			t.Fatal(err)
		}
		w.header.Set(header, sig)
		return w
	}
	for _, timed := range []bool{false, true} {
		h := newHarness(t, harnessOptions{zhSecret: "-", zhKey: &testKey(t, 1).PublicKey, zhRequireTS: timed})
		h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'cx-1'", "deposit-T1")
		if got := h.send(t, rsaSigned(t, timed)); got.status != http.StatusOK || got.body != `{"outcome":"signaled"}` {
			t.Fatalf("RSA timed=%v: %d %s", timed, got.status, got.body)
		}
		signals, _ := h.temporal.calls()
		if len(signals) != 1 || signals[0].signal != workflows.SignalLedger {
			t.Fatalf("signals %+v", signals)
		}
		if lm := signals[0].arg.(workflows.LedgerMovement); lm.Change != "10.5" || lm.Asset != "BTC" {
			t.Fatalf("movement %+v, want change 10.5 asset BTC", lm)
		}
	}
	h := newHarness(t, harnessOptions{zhRequireTS: true})
	h.temporal.running("WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'cx-1'", "deposit-T1")
	if got := h.send(t, balanceWebhook(t, mv)); got.status != http.StatusOK {
		t.Fatalf("timed HMAC with timestamps required: %d %s", got.status, got.body)
	}
	off := newHarness(t, harnessOptions{zhSecret: "-"})
	got := off.send(t, balanceWebhook(t, mv))
	if got.status != http.StatusNotFound || !strings.Contains(got.body, "not_configured") || !strings.Contains(got.body, "ZEROHASH_WEBHOOK_SECRET") {
		t.Fatalf("no scheme: %d %s", got.status, got.body)
	}
	off.temporal.requireNoSignal(t)
}

// TestLedgerMovementOf: the normalisation the transfer compares against.
func TestLedgerMovementOf(t *testing.T) {
	for in, want := range map[[2]string][2]string{
		{" btc ", "10.00"}: {"BTC", "10"},
		{"usdc", "-0.50"}:  {"USDC", "-0.5"},
		{"ETH", "007.5"}:   {"ETH", "7.5"},
		{"SOL", "0.0100"}:  {"SOL", "0.01"},
		{"SOL", "-000"}:    {"SOL", "0"},
		{"SOL", "1.5e-3"}:  {"SOL", "0.0015"},
		{"SOL", "not-a-n"}: {"SOL", "not-a-n"},
	} {
		lm := bridge.LedgerMovementOf(in[0], zerohash.Movement{MovementID: "m", Change: in[1]})
		if lm.Asset != want[0] || lm.Change != want[1] {
			t.Errorf("LedgerMovementOf(%q, %q) = %q, %q; want %q, %q", in[0], in[1], lm.Asset, lm.Change, want[0], want[1])
		}
	}
}

// TestLedgerRouterOutsideTheBridge: RouteMovement is usable on its own (a reconciliation activity's path).
func TestLedgerRouterOutsideTheBridge(t *testing.T) {
	f := newFakeTemporal()
	f.running("WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'wr-1'", "withdrawal-W1")
	lr := bridge.LedgerRouter{Temporal: f}
	route, err := lr.RouteMovement(t.Context(), "sol", zerohash.Movement{MovementID: "m9", Change: "0.010", WithdrawalRequestID: "wr-1"})
	if err != nil || route.Outcome != bridge.LedgerSignaled || route.WorkflowID != "withdrawal-W1" || route.Movement.Change != "0.01" {
		t.Fatalf("route %+v, %v", route, err)
	}
	route, err = lr.RouteMovement(t.Context(), "sol", zerohash.Movement{MovementID: "m10", Change: "1"})
	if err != nil || route.Outcome != bridge.LedgerNotOurs {
		t.Fatalf("a trade's movement: %+v, %v", route, err)
	}
	f.block = true
	lr.Timeout = 50 * time.Millisecond
	if _, err := lr.RouteMovement(t.Context(), "sol", zerohash.Movement{MovementID: "m11", Change: "1", DepositReferenceID: "cx-3"}); err == nil {
		t.Fatal("Temporal unreachable, yet no error")
	}
}

var errUnavailableForTest = serviceerror.NewUnavailable("connection refused")

func pubKey(tb testing.TB, k any) *rsa.PublicKey {
	tb.Helper()
	p, ok := k.(*rsa.PublicKey)
	if !ok {
		tb.Fatalf("key is %T", k)
	}
	return p
}
