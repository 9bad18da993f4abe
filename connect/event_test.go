package connect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	evtGuideTransferID = "f2d4a13e-8a52-45e3-9825-b0b18c9a8233"
	evtGuideSessionID  = "16b0e957-f3fd-41d0-b312-f2ec291de6e4"
	evtGuideTxHash     = "0xf3b9c88212d7a8d611d6f97a4b6e96b2b2c1b7..."
)

// evtSample reads one corrected sample from testdata/events.
func evtSample(tb testing.TB, name string) []byte {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		tb.Fatalf("read sample: %v", err)
	}
	return body
}

func evtTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// evtAssertEqual compares events field by field, times by instant.
func evtAssertEqual(t *testing.T, got, want Event) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("event mismatch\n got %s\nwant %s", g, w)
	}
}

func TestParseEventSamples(t *testing.T) {
	guideCreated := evtTime(t, "2025-07-24T15:42:07.123456789Z")
	tests := []struct {
		file string
		want Event
	}{
		{"guide_deposit_initiated.json", Event{
			Name: "connect.deposit.initiated", Kind: KindDeposit, Status: StatusInitiated,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "BTC", Network: "bitcoin", Amount: "0.013", Source: "coinbase",
			CreatedAt: guideCreated, UpdatedAt: guideCreated,
			DedupeKey: "deposit:" + evtGuideTransferID + ":initiated",
		}},
		{"guide_deposit_confirmed.json", Event{
			Name: "connect.deposit.confirmed", Kind: KindDeposit, Status: StatusConfirmed,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "BTC", Network: "bitcoin", Amount: "0.013", TxHash: evtGuideTxHash,
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:35:00.123456789Z"),
			DedupeKey: "deposit:" + evtGuideTransferID + ":confirmed",
		}},
		{"guide_withdrawal_initiated.json", Event{
			Name: "connect.withdrawal.initiated", Kind: KindWithdrawal, Status: StatusInitiated,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "BTC", Network: "bitcoin", Amount: "0.013", Source: "XYZ",
			CreatedAt: guideCreated, UpdatedAt: guideCreated,
			DedupeKey: "withdrawal:" + evtGuideTransferID + ":initiated",
		}},
		{"guide_withdrawal_confirmed.json", Event{
			Name: "connect.withdrawal.confirmed", Kind: KindWithdrawal, Status: StatusConfirmed,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "BTC", Network: "bitcoin", Amount: "0.013", TxHash: evtGuideTxHash,
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:35:00.123456789Z"),
			DedupeKey: "withdrawal:" + evtGuideTransferID + ":confirmed",
		}},
		{"deposits_pending.json", Event{
			Name: "connect.deposits.pending", Kind: KindDeposit, Status: StatusInitiated,
			TransferID: "0b6f5a53-8f0e-4c47-9a8e-8d1b0d3f2a11", SessionID: "2c1e8d7a-5b2f-4a0e-9d4c-7e6f5a4b3c2d",
			ReferenceID: "USER02", Asset: "USDC", Network: "ethereum", Amount: "250.50", Source: "metamask",
			Metadata: map[string]string{
				"order_id": "ord-42", "attempt": "2", "vip": "true", "tags": `["a","b"]`,
				"nested": `{"x":1,"y":"z"}`, "note": "null",
			},
			CreatedAt: evtTime(t, "2025-07-24T15:42:07Z"), UpdatedAt: evtTime(t, "2025-07-24T13:42:08.5Z"),
			DedupeKey: "deposit:0b6f5a53-8f0e-4c47-9a8e-8d1b0d3f2a11:initiated",
		}},
		{"deposits_unexpected.json", Event{
			Name: "connect.deposits.unexpected", Kind: KindDeposit, Status: StatusUnexpected,
			TransferID: "9a8b7c6d-1111-4222-8333-944455556666", Asset: "ETH", Network: "ethereum", Amount: "1.25",
			TxHash: "0xabc123", CreatedAt: evtTime(t, "2025-07-25T08:00:00.000000001Z"),
			DedupeKey: "deposit:9a8b7c6d-1111-4222-8333-944455556666:unexpected",
		}},
		{"withdrawals_submitted.json", Event{
			Name: "connect.withdrawals.submitted", Kind: KindWithdrawal, Status: StatusInitiated,
			TransferID: "5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222", SessionID: "7f6e5d4c-3b2a-4190-8877-665544332211",
			ReferenceID: "USER03", Asset: "SOL", Network: "solana", Amount: "0.01", Source: "phantom",
			Metadata:  map[string]string{"purpose": "payout"},
			CreatedAt: guideCreated, UpdatedAt: guideCreated,
			DedupeKey: "withdrawal:5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222:initiated",
		}},
		{"deposit_detected.json", Event{
			Name: "connect.deposit.detected", Kind: KindDeposit, Status: StatusBroadcasted,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "BTC", Network: "bitcoin", Amount: "0.013", Source: "coinbase", TxHash: "0x77aa",
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:50:00Z"),
			DedupeKey: "deposit:" + evtGuideTransferID + ":broadcasted",
		}},
		{"deposit_broadcasted_block_number.json", Event{
			Name: "connect.deposit.broadcasted", Kind: KindDeposit, Status: StatusBroadcasted,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "ETH", Network: "ethereum", Amount: "1.000000000000000001",
			TxHash:    "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:43:07.123456789Z"),
			DedupeKey: "deposit:" + evtGuideTransferID + ":broadcasted",
		}},
		{"withdrawal_abandoned.json", Event{
			Name: "connect.withdrawal.abandoned", Kind: KindWithdrawal, Status: StatusFailed,
			TransferID: "5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222", SessionID: "7f6e5d4c-3b2a-4190-8877-665544332211",
			ReferenceID: "USER03", Asset: "SOL", Network: "solana", Amount: "0.01", FailureReason: "abandoned",
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T16:42:07.123456789Z"),
			DedupeKey: "withdrawal:5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222:failed",
		}},
		{"deposit_failed_reasons.json", Event{
			Name: "connect.deposit.failed", Kind: KindDeposit, Status: StatusFailed,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "BTC", Network: "bitcoin", Amount: "0.013", FailureReason: "exchange_rejected",
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:44:07.123456789Z"),
			DedupeKey: "deposit:" + evtGuideTransferID + ":failed",
		}},
		{"withdrawal_failed_error_object.json", Event{
			Name: "connect.withdrawal.failed", Kind: KindWithdrawal, Status: StatusFailed,
			TransferID: "5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222", SessionID: "7f6e5d4c-3b2a-4190-8877-665544332211",
			ReferenceID: "USER03", Asset: "SOL", Network: "solana", Amount: "0.01",
			FailureReason: `{"code":"NETWORK_ERROR","message":"rpc unavailable"}`,
			DedupeKey:     "withdrawal:5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222:failed",
		}},
		{"withdrawal_key_fees_top.json", Event{
			Name: "connect.withdrawal.confirmed", Kind: KindWithdrawal, Status: StatusConfirmed,
			TransferID: "5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222", SessionID: "7f6e5d4c-3b2a-4190-8877-665544332211",
			ReferenceID: "USER03", Asset: "SOL", Network: "solana", Amount: "0.01",
			TxHash:    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW",
			Metadata:  map[string]string{"purpose": "payout"},
			Fees:      &Fees{Amount: "0.000005", Asset: "SOL", Type: "ADDITIVE"},
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:45:07.123456789Z"),
			DedupeKey: "withdrawal:5e4d3c2b-aaaa-4bbb-8ccc-dddd11112222:confirmed",
		}},
		{"deposit_fees_netted.json", Event{
			Name: "connect.deposit.confirmed", Kind: KindDeposit, Status: StatusConfirmed,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, ReferenceID: "USER01",
			Asset: "USDC", Network: "ethereum", Amount: "100.00", TxHash: "0x01",
			Fees:      &Fees{Amount: "0.15", Asset: "USDC", Type: "NETTED"},
			CreatedAt: guideCreated, UpdatedAt: evtTime(t, "2025-07-24T15:35:00.123456789Z"),
			DedupeKey: "deposit:" + evtGuideTransferID + ":confirmed",
		}},
		{"deposit_unknown_status.json", Event{
			Name: "connect.deposit.refunded", Kind: KindDeposit, Status: StatusUnknown,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID, Amount: "0.013",
			DedupeKey: "deposit:" + evtGuideTransferID + ":unknown:connect.deposit.refunded",
		}},
		{"mixed_case_name.json", Event{
			Name: "Connect.Deposit.CONFIRMED", Kind: KindDeposit, Status: StatusConfirmed,
			TransferID: evtGuideTransferID, SessionID: evtGuideSessionID,
			Asset: "BTC", Network: "bitcoin", Amount: "0.013",
			DedupeKey: "deposit:" + evtGuideTransferID + ":confirmed",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseEvent(evtSample(t, tt.file))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			evtAssertEqual(t, got, tt.want)
			if k := DedupeKey(got); k != got.DedupeKey {
				t.Errorf("DedupeKey(event) = %q, want the key ParseEvent set, %q", k, got.DedupeKey)
			}
		})
	}
}

// TestParseEventGuideQuirks asserts, one by one, the quirks connect-facts.md lists for the guide's webhooks.
func TestParseEventGuideQuirks(t *testing.T) {
	t.Run("withdrawal webhooks carry the transfer under deposit", func(t *testing.T) {
		for _, file := range []string{"guide_withdrawal_initiated.json", "guide_withdrawal_confirmed.json"} {
			body := evtSample(t, file)
			if !bytes.Contains(body, []byte(`"deposit": {`)) || bytes.Contains(body, []byte(`"withdrawal"`)) {
				t.Fatalf("%s no longer has the quirk this test is about", file)
			}
			e, err := ParseEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != KindWithdrawal || e.TransferID != evtGuideTransferID || e.Amount != "0.013" {
				t.Errorf("%s: kind %q id %q amount %q, want withdrawal %s 0.013", file, e.Kind, e.TransferID, e.Amount, evtGuideTransferID)
			}
		}
	})
	t.Run("a withdrawal key wins over deposit for withdrawal events", func(t *testing.T) {
		e, err := ParseEvent([]byte(`{"event":"connect.withdrawal.confirmed","deposit":{"id":"from-deposit"},"withdrawal":{"id":"from-withdrawal"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if e.TransferID != "from-withdrawal" {
			t.Errorf("TransferID = %q, want from-withdrawal", e.TransferID)
		}
	})
	t.Run("block_number holds a timestamp string", func(t *testing.T) {
		e, err := ParseEvent(evtSample(t, "guide_deposit_confirmed.json"))
		if err != nil {
			t.Fatal(err)
		}
		if e.TxHash != evtGuideTxHash {
			t.Errorf("TxHash = %q", e.TxHash)
		}
	})
	t.Run("updated_at earlier than created_at is kept as sent", func(t *testing.T) {
		for _, file := range []string{"guide_deposit_confirmed.json", "guide_withdrawal_confirmed.json"} {
			e, err := ParseEvent(evtSample(t, file))
			if err != nil {
				t.Fatal(err)
			}
			if !e.UpdatedAt.Before(e.CreatedAt) || e.UpdatedAt.Nanosecond() != 123456789 {
				t.Errorf("%s: created %v updated %v, want updated earlier, nanoseconds kept", file, e.CreatedAt, e.UpdatedAt)
			}
		}
	})
	t.Run("the guide's samples as printed are not JSON", func(t *testing.T) {
		_, err := ParseEvent(evtSample(t, "guide_as_printed_deposit_initiated.txt"))
		if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("ParseEvent(printed sample) = %v, want a not-valid-JSON error", err)
		}
	})
	t.Run("redeliveries share a dedupe key", func(t *testing.T) {
		body := evtSample(t, "guide_deposit_confirmed.json")
		var compact bytes.Buffer
		if err := json.Compact(&compact, body); err != nil {
			t.Fatal(err)
		}
		first, err1 := ParseEvent(body)
		again, err2 := ParseEvent(body)
		reformatted, err3 := ParseEvent(compact.Bytes())
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatal(err1, err2, err3)
		}
		if first.DedupeKey != again.DedupeKey || first.DedupeKey != reformatted.DedupeKey {
			t.Errorf("keys differ: %q %q %q", first.DedupeKey, again.DedupeKey, reformatted.DedupeKey)
		}
	})
}

func TestNormalizeEventName(t *testing.T) {
	type want struct {
		kind   Kind
		status Status
	}
	statuses := map[string]Status{
		"initiated": StatusInitiated, "pending": StatusInitiated, "submitted": StatusInitiated,
		"broadcasted": StatusBroadcasted, "detected": StatusBroadcasted,
		"confirmed": StatusConfirmed, "failed": StatusFailed, "abandoned": StatusFailed,
	}
	nouns := map[string]Kind{"deposit": KindDeposit, "deposits": KindDeposit, "withdrawal": KindWithdrawal, "withdrawals": KindWithdrawal}
	tests := map[string]want{}
	for noun, kind := range nouns {
		for status, norm := range statuses {
			tests["connect."+noun+"."+status] = want{kind, norm}
			tests[strings.ToUpper("connect."+noun+"."+status)] = want{kind, norm}
		}
		tests["connect."+noun+".refunded"] = want{kind, StatusUnknown}
		tests["connect."+noun] = want{kind, StatusUnknown}
		tests["connect."+noun+".confirmed.v2"] = want{kind, StatusUnknown}
	}
	for name, w := range map[string]want{
		"connect.deposit.unexpected":       {KindDeposit, StatusUnexpected},
		"connect.deposits.unexpected":      {KindDeposit, StatusUnexpected},
		"Connect.Deposits.Unexpected":      {KindDeposit, StatusUnexpected},
		"connect.withdrawal.unexpected":    {KindWithdrawal, StatusUnknown}, // unexpected is deposit-only
		"connect.withdrawals.unexpected":   {KindWithdrawal, StatusUnknown},
		"connect.transfer.confirmed":       {"", StatusUnknown},
		"zerohash.deposit.confirmed":       {"", StatusUnknown},
		"connect_deposit.status_changed":   {"", StatusUnknown},
		"connect..confirmed":               {"", StatusUnknown},
		"connect.deposit.":                 {KindDeposit, StatusUnknown},
		"connect.deposit.confirmed ":       {KindDeposit, StatusUnknown},
		" connect.deposit.confirmed":       {"", StatusUnknown},
		"connect.deposit.confirmedconfirm": {KindDeposit, StatusUnknown},
		"connect.deposit.deposit":          {KindDeposit, StatusUnknown}, // a noun is not a status
		"connect.confirmed.deposit":        {"", StatusUnknown},          // nor a status a noun
		"connect":                          {"", StatusUnknown},
		"":                                 {"", StatusUnknown},
	} {
		tests[name] = w
	}
	for name, w := range tests {
		kind, status := NormalizeEventName(name)
		if kind != w.kind || status != w.status {
			t.Errorf("NormalizeEventName(%q) = (%q, %q), want (%q, %q)", name, kind, status, w.kind, w.status)
		}
	}
}

func TestParseEventRejectsBadInput(t *testing.T) {
	guide := evtSample(t, "guide_deposit_confirmed.json")
	huge := append([]byte(`{"event":"connect.deposit.confirmed","pad":"`), bytes.Repeat([]byte("x"), MaxEventSize)...)
	huge = append(huge, `"}`...)
	tests := []struct {
		name     string
		body     string
		wantText string
	}{
		{"empty", "", "empty"},
		{"whitespace only", " \n\t ", "empty"},
		{"truncated", string(guide[:len(guide)/2]), "not valid JSON"},
		{"truncated by one byte", string(guide[:len(guide)-2]), "not valid JSON"},
		{"not JSON", "event=connect.deposit.confirmed", "not valid JSON"},
		{"trailing garbage", `{"event":"connect.deposit.confirmed"} x`, "not valid JSON"},
		{"array top level", `[{"event":"connect.deposit.confirmed"}]`, "JSON array, want an object"},
		{"string top level", `"connect.deposit.confirmed"`, "JSON string, want an object"},
		{"number top level", `42`, "JSON number, want an object"},
		{"null top level", `null`, "JSON null, want an object"},
		{"event missing", `{"deposit":{"id":"x"}}`, `no "event" name`},
		{"event null", `{"event":null}`, `no "event" name`},
		{"event a number", `{"event":7}`, `"event": want string, got number`},
		{"event an object", `{"event":{"name":"connect.deposit.confirmed"}}`, `"event": want string, got object`},
		{"event empty", `{"event":""}`, `"event" is empty`},
		{"deposit a string", `{"event":"connect.deposit.confirmed","deposit":"f2d4"}`, `"deposit": want object, got string`},
		{"deposit an array", `{"event":"connect.deposit.confirmed","deposit":[]}`, `"deposit": want object, got array`},
		{"withdrawal a number", `{"event":"connect.withdrawal.confirmed","withdrawal":1}`, `"withdrawal": want object, got number`},
		{"deposit.id a number", `{"event":"connect.deposit.confirmed","deposit":{"id":42}}`, `"deposit.id": want string, got number`},
		{"deposit.asset an object", `{"event":"connect.deposit.confirmed","deposit":{"asset":{}}}`, `"deposit.asset": want string, got object`},
		{"deposit.transaction a string", `{"event":"connect.deposit.confirmed","deposit":{"transaction":"0xabc"}}`, `"deposit.transaction": want object, got string`},
		{"deposit.transaction.hash a number", `{"event":"connect.deposit.confirmed","deposit":{"transaction":{"hash":1}}}`, `"deposit.transaction.hash": want string, got number`},
		{"deposit.amount a boolean", `{"event":"connect.deposit.confirmed","deposit":{"amount":true}}`, `"deposit.amount": want number or decimal string, got boolean`},
		{"deposit.amount not a number", `{"event":"connect.deposit.confirmed","deposit":{"amount":"lots"}}`, `"deposit.amount": "lots" is not a decimal number`},
		{"withdrawal.amount with a comma", `{"event":"connect.withdrawal.confirmed","withdrawal":{"amount":"1,000"}}`, `"withdrawal.amount": "1,000" is not a decimal number`},
		{"deposit.amount huge exponent", `{"event":"connect.deposit.confirmed","deposit":{"amount":1e999}}`, `"deposit.amount": "1e999" has an exponent beyond`},
		{"session a string", `{"event":"connect.deposit.confirmed","session":"16b0"}`, `"session": want object, got string`},
		{"session.id a number", `{"event":"connect.deposit.confirmed","session":{"id":16}}`, `"session.id": want string, got number`},
		{"session.metadata an array", `{"event":"connect.deposit.confirmed","session":{"metadata":["a"]}}`, `"session.metadata": want object, got array`},
		{"account a boolean", `{"event":"connect.deposit.confirmed","account":true}`, `"account": want object, got boolean`},
		{"account.reference_id a number", `{"event":"connect.deposit.confirmed","account":{"reference_id":1}}`, `"account.reference_id": want string, got number`},
		{"fees a string", `{"event":"connect.deposit.confirmed","fees":"0.1"}`, `"fees": want object, got string`},
		{"fees.amount an object", `{"event":"connect.deposit.confirmed","fees":{"amount":{}}}`, `"fees.amount": want number or decimal string, got object`},
		{"deposit.fees.type a number", `{"event":"connect.deposit.confirmed","deposit":{"fees":{"type":1}}}`, `"deposit.fees.type": want string, got number`},
		{"over MaxEventSize", string(huge), "over the 1048576-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEvent([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseEvent = %+v, want an error", e)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("ParseEvent error = %q, want it to contain %q", err, tt.wantText)
			}
			if !reflect.DeepEqual(e, Event{}) {
				t.Errorf("ParseEvent returned a partial event with its error: %+v", e)
			}
		})
	}
}

func TestParseEventTolerates(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, e Event)
	}{
		{"unknown event name is kept, not dropped", `{"event":"connect.payout.settled","payout":{"id":"p1"}}`, func(t *testing.T, e Event) {
			if e.Kind != "" || e.Status != StatusUnknown || e.Name != "connect.payout.settled" || e.DedupeKey == "" {
				t.Errorf("got %+v", e)
			}
		}},
		{"unknown fields everywhere", `{"event":"connect.deposit.confirmed","v":2,"deposit":{"id":"d1","extra":{"a":[1,2]}},"session":{"id":"s1","x":null},"account":{"reference_id":"U","kyc":"ok"}}`, func(t *testing.T, e Event) {
			if e.TransferID != "d1" || e.SessionID != "s1" || e.ReferenceID != "U" {
				t.Errorf("got %+v", e)
			}
		}},
		{"null objects", `{"event":"connect.deposit.initiated","deposit":null,"withdrawal":null,"session":null,"account":null,"fees":null}`, func(t *testing.T, e Event) {
			if e.TransferID != "" || e.Fees != nil || e.Metadata != nil || !strings.HasPrefix(e.DedupeKey, "deposit:") {
				t.Errorf("got %+v", e)
			}
		}},
		{"times absent, malformed or non-string are zero", `{"event":"connect.deposit.initiated","deposit":{"id":"d","created_at":"yesterday","updated_at":1753371727}}`, func(t *testing.T, e Event) {
			if !e.CreatedAt.IsZero() || !e.UpdatedAt.IsZero() {
				t.Errorf("times = %v %v, want zero", e.CreatedAt, e.UpdatedAt)
			}
		}},
		{"top-level times used when the transfer has none", `{"event":"connect.deposit.unexpected","created_at":"2025-07-24T15:42:07.5Z"}`, func(t *testing.T, e Event) {
			if e.CreatedAt.UnixNano() != evtTime(t, "2025-07-24T15:42:07.5Z").UnixNano() {
				t.Errorf("CreatedAt = %v", e.CreatedAt)
			}
		}},
		{"top-level reason when the transfer has none", `{"event":"connect.deposit.failed","deposit":{"id":"d"},"status_reason":"expired"}`, func(t *testing.T, e Event) {
			if e.FailureReason != "expired" {
				t.Errorf("FailureReason = %q", e.FailureReason)
			}
		}},
		{"given reason beats abandoned", `{"event":"connect.deposit.abandoned","deposit":{"id":"d","failure_reason":"user_closed"}}`, func(t *testing.T, e Event) {
			if e.Status != StatusFailed || e.FailureReason != "user_closed" {
				t.Errorf("got %q %q", e.Status, e.FailureReason)
			}
		}},
		{"escaped strings decoded", `{"event":"connect.deposit.confirmed","deposit":{"id":"d\u002d1"},"session":{"id":"s","metadata":{"q":"a\"b"}}}`, func(t *testing.T, e Event) {
			if e.TransferID != "d-1" || e.Metadata["q"] != `a"b` {
				t.Errorf("got %q %q", e.TransferID, e.Metadata["q"])
			}
		}},
		{"empty metadata is nil", `{"event":"connect.deposit.confirmed","session":{"id":"s","metadata":{}}}`, func(t *testing.T, e Event) {
			if e.Metadata != nil {
				t.Errorf("Metadata = %#v", e.Metadata)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEvent([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			tt.check(t, e)
		})
	}
}

func TestParseEventSizeLimit(t *testing.T) {
	prefix, suffix := `{"event":"connect.deposit.confirmed","pad":"`, `"}`
	exact := prefix + strings.Repeat("x", MaxEventSize-len(prefix)-len(suffix)) + suffix
	if len(exact) != MaxEventSize {
		t.Fatalf("built %d bytes", len(exact))
	}
	if _, err := ParseEvent([]byte(exact)); err != nil {
		t.Errorf("ParseEvent(exactly MaxEventSize) = %v", err)
	}
	if _, err := ParseEvent([]byte(exact + " ")); err == nil {
		t.Error("ParseEvent(MaxEventSize+1) accepted")
	}
}

func TestDecimalText(t *testing.T) {
	tests := []struct {
		raw, want, wantErr string
	}{
		{`0.013`, "0.013", ""},
		{`"0.013"`, "0.013", ""},
		{`"1.50"`, "1.50", ""},
		{`250`, "250", ""},
		{`-2.5`, "-2.5", ""},
		{`1.000000000000000001`, "1.000000000000000001", ""},
		{`"123456789012345678901234567890.000000000000000000001"`, "123456789012345678901234567890.000000000000000000001", ""},
		{`1e-8`, "0.00000001", ""},
		{`1.5E+3`, "1500", ""},
		{`-2.5e1`, "-25", ""},
		{`12.34e-1`, "1.234", ""},
		{`0e5`, "0", ""},
		{`0.0e1`, "0", ""},
		{`1e0`, "1", ""},
		{`1e007`, "10000000", ""},
		{`"3.0e-2"`, "0.030", ""},
		{`""`, "", ""},
		{`null`, "", ""},
		{``, "", ""},
		{`1e65`, "", "exponent beyond"},
		{`"1,5"`, "", "not a decimal number"},
		{`"01"`, "", "not a decimal number"},
		{`".5"`, "", "not a decimal number"},
		{`"5."`, "", "not a decimal number"},
		{`"+1"`, "", "not a decimal number"},
		{`"0x10"`, "", "not a decimal number"},
		{`" 1"`, "", "not a decimal number"},
		{`"NaN"`, "", "not a decimal number"},
		{`"1e"`, "", "not a decimal number"},
		{`"-"`, "", "not a decimal number"},
		{`[1]`, "", "got array"},
	}
	for _, tt := range tests {
		got, err := decimalText(json.RawMessage(tt.raw), "x.amount")
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("decimalText(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"x.amount"`)):
			t.Errorf("decimalText(%s) = %q, %v; want an error naming x.amount containing %q", tt.raw, got, err, tt.wantErr)
		}
	}
}

func TestDedupeKey(t *testing.T) {
	parse := func(t *testing.T, body string) Event {
		t.Helper()
		e, err := ParseEvent([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Run("status is part of the key", func(t *testing.T) {
		initiated := parse(t, string(evtSample(t, "guide_deposit_initiated.json")))
		confirmed := parse(t, string(evtSample(t, "guide_deposit_confirmed.json")))
		if initiated.DedupeKey == confirmed.DedupeKey {
			t.Errorf("initiated and confirmed share %q", initiated.DedupeKey)
		}
	})
	t.Run("aliases of one status share the key", func(t *testing.T) {
		a := parse(t, `{"event":"connect.deposit.initiated","deposit":{"id":"d1"}}`)
		b := parse(t, `{"event":"CONNECT.DEPOSITS.PENDING","deposit":{"id":"d1"}}`)
		if a.DedupeKey != b.DedupeKey || a.DedupeKey != "deposit:d1:initiated" {
			t.Errorf("keys %q and %q, want both deposit:d1:initiated", a.DedupeKey, b.DedupeKey)
		}
	})
	t.Run("deposit and withdrawal with one id differ", func(t *testing.T) {
		a := parse(t, `{"event":"connect.deposit.confirmed","deposit":{"id":"x"}}`)
		b := parse(t, `{"event":"connect.withdrawal.confirmed","deposit":{"id":"x"}}`)
		if a.DedupeKey == b.DedupeKey {
			t.Errorf("both %q", a.DedupeKey)
		}
	})
	t.Run("session id stands in for a missing transfer id", func(t *testing.T) {
		e := parse(t, `{"event":"connect.deposits.unexpected","deposit":{"amount":"1"},"session":{"id":"s-9"}}`)
		if e.DedupeKey != "deposit:s-9:unexpected" {
			t.Errorf("DedupeKey = %q", e.DedupeKey)
		}
	})
	t.Run("body hash when both ids are missing", func(t *testing.T) {
		body := evtSample(t, "unexpected_no_ids.json")
		sum := sha256.Sum256(body)
		e := parse(t, string(body))
		if want := "deposit:" + hex.EncodeToString(sum[:]) + ":unexpected"; e.DedupeKey != want {
			t.Errorf("DedupeKey = %q, want %q", e.DedupeKey, want)
		}
		if again := parse(t, string(body)); again.DedupeKey != e.DedupeKey {
			t.Errorf("redelivery key %q != %q", again.DedupeKey, e.DedupeKey)
		}
		other := parse(t, strings.Replace(string(body), `"3"`, `"4"`, 1))
		if other.DedupeKey == e.DedupeKey {
			t.Error("different id-less bodies share a key")
		}
		if DedupeKey(e) != e.DedupeKey {
			t.Errorf("DedupeKey(e) = %q, want the stored body key", DedupeKey(e))
		}
	})
	t.Run("different unknown events for one transfer differ", func(t *testing.T) {
		a := parse(t, `{"event":"connect.deposit.refunded","deposit":{"id":"d1"}}`)
		b := parse(t, `{"event":"connect.deposit.reversed","deposit":{"id":"d1"}}`)
		if a.DedupeKey == b.DedupeKey {
			t.Errorf("both %q", a.DedupeKey)
		}
	})
	t.Run("hand-built event without ids still gets a stable key", func(t *testing.T) {
		e := Event{Name: "connect.deposit.unexpected", Kind: KindDeposit, Status: StatusUnexpected, Amount: "1", Metadata: map[string]string{"b": "2", "a": "1"}}
		k1, k2 := DedupeKey(e), DedupeKey(e)
		e.Amount = "2"
		if k1 == "" || k1 != k2 || DedupeKey(e) == k1 || !strings.HasPrefix(k1, "deposit:") || !strings.HasSuffix(k1, ":unexpected") {
			t.Errorf("keys %q %q %q", k1, k2, DedupeKey(e))
		}
	})
	t.Run("exported DedupeKey recomputes from ids", func(t *testing.T) {
		e := Event{Kind: KindWithdrawal, Status: StatusFailed, TransferID: "w1", SessionID: "s1", DedupeKey: "stale"}
		if got := DedupeKey(e); got != "withdrawal:w1:failed" {
			t.Errorf("DedupeKey = %q", got)
		}
	})
}

// TestEventID: the payload's unique event id is read from event_id, else a top-level id, and stands in for the
// transfer and session ids in the dedupe key when both are missing.
func TestEventID(t *testing.T) {
	long := strings.Repeat("e", 200)
	cases := []struct {
		name, body, wantID, wantKey string
	}{
		{"event_id", `{"event":"connect.deposit.confirmed","event_id":"evt-1","deposit":{"id":"cx-1"}}`, "evt-1", "deposit:cx-1:confirmed"},
		{"top-level id", `{"event":"connect.deposit.confirmed","id":"evt-2","deposit":{"id":"cx-1"}}`, "evt-2", "deposit:cx-1:confirmed"},
		{"event_id wins over id", `{"event":"connect.deposit.confirmed","event_id":"evt-3","id":"other","deposit":{"id":"cx-1"}}`, "evt-3", "deposit:cx-1:confirmed"},
		{"numeric id", `{"event":"connect.deposit.confirmed","event_id":12345,"deposit":{"id":"cx-1"}}`, "12345", "deposit:cx-1:confirmed"},
		{"object id ignored", `{"event":"connect.deposit.confirmed","event_id":{"a":1},"deposit":{"id":"cx-1"}}`, "", "deposit:cx-1:confirmed"},
		{"no transfer or session: key from the event id", `{"event":"connect.deposit.unexpected","event_id":"evt-4"}`, "evt-4", "deposit:event-evt-4:unexpected"},
		{"odd characters are hashed in the key", `{"event":"connect.deposit.unexpected","event_id":"a b/c"}`, "a b/c", "deposit:event-" + hashHex([]byte("a b/c"))[:32] + ":unexpected"},
		{"a long id is kept as its hash", `{"event":"connect.deposit.confirmed","event_id":"` + long + `","deposit":{"id":"cx-1"}}`, "sha256:" + hashHex([]byte(long)), "deposit:cx-1:confirmed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := ParseEvent([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if e.EventID != c.wantID || e.DedupeKey != c.wantKey {
				t.Fatalf("EventID %q, DedupeKey %q; want %q, %q", e.EventID, e.DedupeKey, c.wantID, c.wantKey)
			}
			if k := DedupeKey(Event{Name: e.Name, Kind: e.Kind, Status: e.Status, EventID: e.EventID}); e.TransferID == "" && k != e.DedupeKey {
				t.Fatalf("DedupeKey of a hand-built event %q, ParseEvent %q", k, e.DedupeKey)
			}
		})
	}
	// Two deliveries of one id-less event differing only in formatting share the key when they carry an event id.
	a, _ := ParseEvent([]byte(`{"event":"connect.deposit.unexpected","event_id":"evt-5"}`))
	b, _ := ParseEvent([]byte(`{ "event_id": "evt-5", "event": "connect.deposit.unexpected" }`))
	if a.DedupeKey != b.DedupeKey {
		t.Fatalf("keys differ: %q %q", a.DedupeKey, b.DedupeKey)
	}
}

// TestIdempotencyKey: an "event_id" is the key as it is; a top-level "id" (read when there is no event_id, the
// published page naming no field) is qualified with the transfer's dedupe key, so if it is the transfer's own id
// two statuses of one transfer never share a key, while redeliveries of one event still do.
func TestIdempotencyKey(t *testing.T) {
	key := func(body string) string {
		t.Helper()
		e, err := ParseEvent([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return e.IdempotencyKey()
	}
	initiated := key(`{"event":"connect.deposit.initiated","id":"cx-1","deposit":{"id":"cx-1"}}`)
	confirmed := key(`{"event":"connect.deposit.confirmed","id":"cx-1","deposit":{"id":"cx-1"}}`)
	if initiated == confirmed {
		t.Fatalf("initiated and confirmed with the same top-level id share the key %q", initiated)
	}
	if again := key(`{ "id": "cx-1", "event": "connect.deposit.confirmed", "deposit": {"id": "cx-1"} }`); again != confirmed {
		t.Fatalf("a redelivery's key %q, first %q", again, confirmed)
	}
	for _, c := range []struct{ body, want string }{
		{`{"event":"connect.deposit.confirmed","event_id":"evt-1","deposit":{"id":"cx-1"}}`, "evt-1"},
		{`{"event":"connect.deposit.confirmed","event_id":"evt-1","id":"cx-1","deposit":{"id":"cx-1"}}`, "evt-1"},
		{`{"event":"connect.deposit.confirmed","deposit":{"id":"cx-1"}}`, ""},
	} {
		if got := key(c.body); got != c.want {
			t.Errorf("%s: key %q, want %q", c.body, got, c.want)
		}
	}
	// A hand-built event's event id is taken as Connect's own.
	if got := (Event{EventID: "evt-2", Kind: KindDeposit, Status: StatusConfirmed, TransferID: "cx-1"}).IdempotencyKey(); got != "evt-2" {
		t.Errorf("hand-built event: key %q", got)
	}
}
