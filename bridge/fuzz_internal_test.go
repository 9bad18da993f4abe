package bridge

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// FuzzParseSDKRelay checks the body a frontend relays: no body panics the parser, an accepted one is within bounds
// with a known type, and its dedupe key names the session and type and is the same for every relay of it.
// Seeds: the cases below and testdata/fuzz/FuzzParseSDKRelay.
func FuzzParseSDKRelay(f *testing.F) {
	for _, seed := range []string{
		`{"type":"close"}`, `{"type":"event","detail":"deposit.submitted","id":"e-1"}`,
		`{"type":"deposit","detail":"COMPLETED","id":"d-1"}`, `{"type":"error","detail":"E123"}`,
		`{"type":"teleport"}`, `{"type":1}`, `[]`, `null`, ``, `{"type":"close","detail":"` + strings.Repeat("x", 300) + `"}`,
		`{"type":"close","Type":"event"}`, `{"type":"close","detail":"a\u0000b"}`,
	} {
		f.Add("sess-1", []byte(seed))
	}
	known := map[string]bool{workflows.SDKTypeClose: true, workflows.SDKTypeEvent: true, workflows.SDKTypeDeposit: true,
		workflows.SDKTypeWithdrawal: true, workflows.SDKTypeError: true}
	f.Fuzz(func(t *testing.T, session string, body []byte) {
		in, err := parseSDKRelay(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error with no text")
			}
			return
		}
		if !known[in.Type] || utf8.RuneCountInString(in.Detail) > workflows.MaxSDKDetail || utf8.RuneCountInString(in.ID) > workflows.MaxSDKID {
			t.Fatalf("accepted %+v", in)
		}
		key := sdkDedupeKey(session, in)
		if !strings.HasPrefix(key, "sdk:"+session+":"+in.Type+":") || key != sdkDedupeKey(session, in) {
			t.Fatalf("dedupe key %q does not name session %q and type %q, or is not stable", key, session, in.Type)
		}
		// A relay whose detail or id differs is another callback: it must not share the key.
		other := in
		other.Detail += "x"
		if sdkDedupeKey(session, other) == key {
			t.Fatalf("two callbacks share key %q", key)
		}
	})
}

// FuzzConnectMessage checks routing of any event the parser accepts: it targets only a transfer workflow id built
// from its own metadata, always has a review to fall back on, keyed by the event's dedupe key, and sends
// unexpected deposits and unknown events straight to review.
func FuzzConnectMessage(f *testing.F) {
	for _, seed := range []string{
		`{"event":"connect.deposit.confirmed","deposit":{"id":"cx-1"},"session":{"id":"s-1","metadata":{"connectflow_transfer_id":"T1","connectflow_kind":"deposit"}}}`,
		`{"event":"connect.withdrawal.failed","deposit":{"id":"cx-2"},"session":{"id":"s-2","metadata":{"connectflow_transfer_id":"W1","connectflow_kind":"withdrawal"}}}`,
		`{"event":"connect.deposit.unexpected","deposit":{"id":"cx-3"},"session":{"id":"s-3","metadata":{"connectflow_transfer_id":"T3","connectflow_kind":"deposit"}}}`,
		`{"event":"connect.deposit.teleported","deposit":{"id":"cx-4"}}`,
		`{"event":"connect.deposit.confirmed","deposit":{"id":"cx-5"},"session":{"metadata":{"connectflow_transfer_id":"T5","connectflow_kind":"teleport"}}}`,
		`{"event":"connect.deposit.confirmed","session":{"metadata":{"connectflow_transfer_id":"","connectflow_kind":"deposit"}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := connect.ParseEvent(body)
		if err != nil {
			return
		}
		m := connectMessage(ev, time.Unix(1753371727, 0))
		if m.signal != workflows.SignalConnectEvent || m.review == nil || m.review.key != ev.DedupeKey {
			t.Fatalf("message %+v for %+v", m, ev)
		}
		if sig, ok := m.arg.(workflows.EventSignal); !ok || sig.Event.DedupeKey != ev.DedupeKey {
			t.Fatalf("signal argument %+v does not carry the event", m.arg)
		}
		id, kind := ev.Metadata[workflows.MetadataTransferID], connect.Kind(ev.Metadata[workflows.MetadataKind])
		switch {
		case m.target == "" && id != "" && kind.Valid():
			t.Fatalf("metadata names %s-%s, message has no target", kind, id)
		case m.target != "" && m.target != workflows.WorkflowID(kind, id):
			t.Fatalf("target %q is not built from the metadata (%q, %q)", m.target, kind, id)
		case m.target != "" && !isTransferWorkflowID(m.target):
			t.Fatalf("target %q is not a transfer workflow id", m.target)
		}
		straight := ev.Status == connect.StatusUnexpected || ev.Status == connect.StatusUnknown
		if m.review.now != straight || (straight && m.review.input.Reason == "") {
			t.Fatalf("status %s: review now=%v reason %q", ev.Status, m.review.now, m.review.input.Reason)
		}
		if _, err := json.Marshal(m.arg); err != nil {
			t.Fatalf("the signal argument does not encode: %v", err)
		}
	})
}

// FuzzConnectHeaderChecks checks the client-id and x-zh-hook-payload-type checks with any header values and event
// name: a payload type passes only when absent, or exactly the route's published type with an event whose kind (if
// any) is the route's; a client-id passes only when absent, "Connect" or our client id, or when no id is set.
func FuzzConnectHeaderChecks(f *testing.F) {
	f.Add(true, "connect_deposit.status_changed", "connect.deposit.confirmed", true, "Connect", "our-id")
	f.Add(false, "connect_withdrawal.status_changed", "connect.withdrawals.submitted", true, "our-id", "our-id")
	f.Add(true, "connect_withdrawal.status_changed", "connect.deposit.confirmed", true, "x", "")
	f.Add(false, "", "connect.withdrawal.failed", false, "", "our-id")
	f.Add(true, " connect_deposit.status_changed ", "weird", true, "connect", "our-id")
	f.Fuzz(func(t *testing.T, withdrawals bool, payloadType, eventName string, sendClientID bool, clientID, ours string) {
		route := routeConnectDeposits
		if withdrawals {
			route = routeConnectWithdrawals
		}
		h := http.Header{}
		if payloadType != "" {
			h.Set(connect.HeaderPayloadType, payloadType)
		}
		if sendClientID {
			h.Set(connect.HeaderClientID, clientID)
		}
		kind, _ := connect.NormalizeEventName(eventName)
		err := checkPayloadType(route, h, connect.Event{Name: eventName, Kind: kind})
		want := PayloadTypeConnectDeposit
		if withdrawals {
			want = PayloadTypeConnectWithdrawal
		}
		ok := payloadType == "" || (strings.TrimSpace(payloadType) == want && (kind == "" || kind == routeKind(route)))
		if (err == nil) != ok {
			t.Fatalf("payload type %q, event %q on %s: err %v, want ok=%v", payloadType, eventName, routePaths[route], err, ok)
		}
		b := &Bridge{clientID: ours}
		err = b.checkClientID(h)
		got := strings.TrimSpace(h.Get(connect.HeaderClientID))
		ok = ours == "" || !sendClientID || got == "Connect" || got == ours
		if (err == nil) != ok {
			t.Fatalf("client-id %q (sent=%v), ours %q: err %v, want ok=%v", clientID, sendClientID, ours, err, ok)
		}
		// The refusal is one fixed text: it never repeats what was sent or our client id.
		if err != nil && err.Error() != `header client-id is not "Connect" nor this organization's Connect client id (CONNECT_CLIENT_ID)` {
			t.Fatalf("refusal text %q", err)
		}
	})
}

// isTransferWorkflowID reports whether id is a workflows.WorkflowID, not a review's.
func isTransferWorkflowID(id string) bool {
	_, ok := workflows.TransferKindOf(id)
	return ok
}

// TestSDKRelayBoundsCountCharacters: detail and id are bounded in characters, as the transfer API bounds them, so
// a relay one accepts the other accepts too.
func TestSDKRelayBoundsCountCharacters(t *testing.T) {
	body := func(detail, id string) []byte {
		b, err := json.Marshal(map[string]string{"type": "error", "detail": detail, "id": id})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := parseSDKRelay(body(strings.Repeat("é", workflows.MaxSDKDetail), strings.Repeat("ü", workflows.MaxSDKID))); err != nil {
		t.Errorf("%d-character detail and %d-character id of 2-byte letters refused: %v", workflows.MaxSDKDetail, workflows.MaxSDKID, err)
	}
	if _, err := parseSDKRelay(body(strings.Repeat("é", workflows.MaxSDKDetail+1), "")); err == nil || !strings.Contains(err.Error(), "detail") {
		t.Errorf("detail of %d characters: err %v, want one naming detail", workflows.MaxSDKDetail+1, err)
	}
	if _, err := parseSDKRelay(body("", strings.Repeat("x", workflows.MaxSDKID+1))); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("id of %d characters: err %v, want one naming id", workflows.MaxSDKID+1, err)
	}
}
