package zerohash_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

const (
	testWebhookSecret = "whsec-test-0123456789"
	// depositSampleSig is HMAC-SHA256 of testdata/balance_deposit_completed.json under testWebhookSecret, derived once
	// with: openssl dgst -sha256 -hmac 'whsec-test-0123456789' testdata/balance_deposit_completed.json
	depositSampleSig = "caa374d9cbdfc504f95688e6355116941fb94ac7e170b8c46e14b320d8a32581"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hookHeader(sig string) http.Header {
	h := http.Header{}
	if sig != "" {
		h.Set(zerohash.HeaderHookSignature, sig)
	}
	return h
}

func TestSignBalanceWebhookKnownAnswer(t *testing.T) {
	body := readTestdata(t, "balance_deposit_completed.json")
	if got := zerohash.SignBalanceWebhook(testWebhookSecret, body); got != depositSampleSig {
		t.Fatalf("SignBalanceWebhook = %s, want %s", got, depositSampleSig)
	}
}

func TestVerifyBalanceWebhook(t *testing.T) {
	body := readTestdata(t, "balance_deposit_completed.json")
	flipped := bytes.Clone(body)
	flipped[bytes.Index(flipped, []byte(`"10.00"`))+2] = '9' // "10.00" -> "19.00"
	tests := []struct {
		name       string
		secret     string
		header     http.Header
		body       []byte
		wantErr    error
		wantStatus int
	}{
		{name: "good", secret: testWebhookSecret, header: hookHeader(depositSampleSig), body: body},
		{name: "good, upper-case hex", secret: testWebhookSecret, header: hookHeader(strings.ToUpper(depositSampleSig)), body: body},
		{name: "one changed byte", secret: testWebhookSecret, header: hookHeader(depositSampleSig), body: flipped, wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "trailing newline dropped", secret: testWebhookSecret, header: hookHeader(depositSampleSig), body: bytes.TrimRight(body, "\n"), wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "wrong secret", secret: "whsec-other", header: hookHeader(depositSampleSig), body: body, wantErr: zerohash.ErrSignatureMismatch, wantStatus: 403},
		{name: "missing header", secret: testWebhookSecret, header: hookHeader(""), body: body, wantErr: zerohash.ErrMissingHeader, wantStatus: 400},
		{name: "non-hex header", secret: testWebhookSecret, header: hookHeader(strings.Repeat("zz", 32)), body: body, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400},
		{name: "base64 instead of hex", secret: testWebhookSecret, header: hookHeader("yqN02cvfxQT5VojmNVEWlB+5SsfhcLjEbhSzINijJYE="), body: body, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400},
		{name: "truncated hex", secret: testWebhookSecret, header: hookHeader(depositSampleSig[:62]), body: body, wantErr: zerohash.ErrMalformedHeader, wantStatus: 400},
		{name: "empty secret", secret: "", header: hookHeader(depositSampleSig), body: body, wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := zerohash.VerifyBalanceWebhook(tt.secret, tt.header, tt.body)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("VerifyBalanceWebhook: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("VerifyBalanceWebhook accepted")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got := zerohash.VerifyStatus(err); got != tt.wantStatus {
				t.Errorf("VerifyStatus = %d, want %d", got, tt.wantStatus)
			}
			if strings.Contains(err.Error(), testWebhookSecret) {
				t.Errorf("err %q leaks the secret", err)
			}
		})
	}
}

func depositSampleEvent() zerohash.BalanceEvent {
	return zerohash.BalanceEvent{
		AccountGroup: "PLAT01", AccountLabel: "general", AccountType: "available", Asset: "USD", Balance: "10",
		ParticipantCode: "PART01", RunID: "4149614", RunType: "deposit", Timestamp: 1743593652,
		Movements: []zerohash.Movement{{
			AccountID: "363d0c5f-1163-47c9-8de2-97cfbecdd1e6", Change: "10.00",
			DepositReferenceID: "be2e16a9-32a7-4e25-b255-031a17c7615b", MovementID: "bcc65fa1-1a1d-4a77-9f0b-cad3968b50db",
			MovementTimestamp: 1746112989822, MovementType: "deposit",
		}},
	}
}

func TestParseBalanceEventGuideSamples(t *testing.T) {
	tests := []struct {
		file         string
		want         zerohash.BalanceEvent
		wantTime     time.Time
		wantMoveTime time.Time
	}{
		{
			file:         "balance_deposit_completed.json",
			want:         depositSampleEvent(),
			wantTime:     time.Date(2025, 4, 2, 11, 34, 12, 0, time.UTC), // timestamp in seconds
			wantMoveTime: time.Date(2025, 5, 1, 15, 23, 9, 822e6, time.UTC),
		},
		{
			file: "balance_withdrawal_completed.json",
			want: zerohash.BalanceEvent{
				AccountGroup: "N2833C", AccountLabel: "general", AccountType: "collateral", Asset: "SOL", Balance: "0.01",
				ParticipantCode: "PART01", RunID: "4150535", RunType: "withdrawal", Timestamp: 1746113199073,
				Movements: []zerohash.Movement{{
					AccountID: "a33bb05d-7e06-4069-921d-a83deebfc319", Change: "0.01",
					MovementID: "c979b77b-80a0-49da-b287-0cc044731954", MovementTimestamp: 1746113199139,
					MovementType: "withdrawal_pending", WithdrawalRequestID: "44b23087-8845-4667-9fa8-03b7055dba6b",
				}},
			},
			wantTime:     time.Date(2025, 5, 1, 15, 26, 39, 73e6, time.UTC), // timestamp in milliseconds
			wantMoveTime: time.Date(2025, 5, 1, 15, 26, 39, 139e6, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := zerohash.ParseBalanceEvent(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("ParseBalanceEvent: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if !got.Time().Equal(tt.wantTime) {
				t.Errorf("Time() = %v, want %v", got.Time(), tt.wantTime)
			}
			if !got.Movements[0].Time().Equal(tt.wantMoveTime) {
				t.Errorf("movement Time() = %v, want %v", got.Movements[0].Time(), tt.wantMoveTime)
			}
		})
	}
}

func TestParseBalanceEventLenientTypes(t *testing.T) {
	tests := []struct {
		name       string
		balance    string // raw JSON
		change     string // raw JSON
		runID      string // raw JSON
		timestamp  string // raw JSON
		wantBal    string
		wantChange string
		wantRunID  string
		wantTS     int64
	}{
		{"documented strings", `"10"`, `"10.00"`, `"4149614"`, `1743593652`, "10", "10.00", "4149614", 1743593652},
		{"numbers keep their digits", `10.50`, `-0.000000000000000001`, `4149614`, `"1743593652"`, "10.50", "-0.000000000000000001", "4149614", 1743593652},
		{"exponent expanded exactly", `1.5e-3`, `-2.5E+3`, `"r-1"`, `1746113199073`, "0.0015", "-2500", "r-1", 1746113199073},
		{"large exponent", `12E2`, `0.1e1`, `"x"`, `1`, "1200", "1", "x", 1},
		{"tiny", `0e0`, `5e-20`, `"x"`, `1`, "0", "0.00000000000000000005", "x", 1},
		{"huge integer beyond float64", `123456789012345678901234567890`, `"0.1"`, `"x"`, `1`, "123456789012345678901234567890", "0.1", "x", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"account_type":"available","asset":"USD","participant_code":"PART01","balance":` + tt.balance +
				`,"run_id":` + tt.runID + `,"timestamp":` + tt.timestamp +
				`,"movements":[{"movement_id":"m1","change":` + tt.change + `}]}`
			ev, err := zerohash.ParseBalanceEvent([]byte(body))
			if err != nil {
				t.Fatalf("ParseBalanceEvent: %v", err)
			}
			if ev.Balance != tt.wantBal || ev.Movements[0].Change != tt.wantChange || ev.RunID != tt.wantRunID || ev.Timestamp != tt.wantTS {
				t.Errorf("got balance %q change %q run_id %q timestamp %d; want %q %q %q %d",
					ev.Balance, ev.Movements[0].Change, ev.RunID, ev.Timestamp, tt.wantBal, tt.wantChange, tt.wantRunID, tt.wantTS)
			}
		})
	}
}

// withField returns the deposit sample with one top-level key replaced by raw JSON (or removed when raw is "").
func withField(t *testing.T, key, raw string) []byte {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(readTestdata(t, "balance_deposit_completed.json"), &obj); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(obj, key)
	} else {
		obj[key] = json.RawMessage(raw)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBalanceEventRejectsBadInput(t *testing.T) {
	sample := readTestdata(t, "balance_deposit_completed.json")
	movement := func(fields string) string { return `[{` + fields + `}]` }
	huge := withField(t, "account_label", `"`+strings.Repeat("a", zerohash.MaxBalanceWebhookBytes)+`"`)
	tests := []struct {
		name      string
		body      []byte
		wantField string
	}{
		{"empty", nil, `"body" is not a JSON object`},
		{"truncated", sample[:len(sample)/2], `"body" is not valid JSON`},
		{"not JSON", []byte("account_balance.changed"), `"body" is not a JSON object`},
		{"array", []byte(`[` + string(sample) + `]`), `"body" is not a JSON object`},
		{"null", []byte(`null`), `"body" is not a JSON object`},
		{"trailing garbage", append(bytes.Clone(sample), '}'), `"body" is not valid JSON`},
		{"over 1 MiB", huge, `over the 1048576-byte limit`},
		{"asset missing", withField(t, "asset", ""), `"asset" is required`},
		{"asset null", withField(t, "asset", "null"), `"asset" is required`},
		{"asset empty", withField(t, "asset", `""`), `"asset" is required`},
		{"asset a number", withField(t, "asset", `5`), `"asset" must be a string`},
		{"participant_code missing", withField(t, "participant_code", ""), `"participant_code" is required`},
		{"account_type an object", withField(t, "account_type", `{}`), `"account_type" must be a string`},
		{"account_label a bool", withField(t, "account_label", `true`), `"account_label" must be a string`},
		{"balance missing", withField(t, "balance", ""), `"balance" is required`},
		{"balance a bool", withField(t, "balance", `true`), `"balance" must be a decimal string or a JSON number`},
		{"balance words", withField(t, "balance", `"ten"`), `"balance" must be a decimal`},
		{"balance with comma", withField(t, "balance", `"1,000.00"`), `"balance" must be a decimal`},
		{"balance leading dot", withField(t, "balance", `".5"`), `"balance" must be a decimal`},
		{"balance NaN", withField(t, "balance", `"NaN"`), `"balance" must be a decimal`},
		{"balance exponent too large", withField(t, "balance", `1e999999999`), `"balance" has an exponent beyond`},
		{"run_id a bool", withField(t, "run_id", `false`), `"run_id" must be a string or an integer`},
		{"run_id fractional", withField(t, "run_id", `1.5`), `"run_id" must be a string or an integer`},
		{"timestamp missing", withField(t, "timestamp", ""), `"timestamp" is required`},
		{"timestamp zero", withField(t, "timestamp", `0`), `"timestamp" must not be zero`},
		{"timestamp negative", withField(t, "timestamp", `-1743593652`), `"timestamp" must be a non-negative integer`},
		{"timestamp fractional", withField(t, "timestamp", `1743593652.5`), `"timestamp" must be a non-negative integer`},
		{"timestamp RFC 3339", withField(t, "timestamp", `"2025-04-02T11:34:12Z"`), `"timestamp" must be a non-negative integer`},
		{"timestamp overflow", withField(t, "timestamp", `99999999999999999999`), `"timestamp" must be a non-negative integer`},
		{"movements an object", withField(t, "movements", `{}`), `"movements" must be an array`},
		{"movement a number", withField(t, "movements", `[1]`), `"movements[0]" is not a JSON object`},
		{"movement change missing", withField(t, "movements", movement(`"movement_id":"m1"`)), `"movements[0].change" is required`},
		{"movement id missing", withField(t, "movements", movement(`"change":"1"`)), `"movements[0].movement_id" is required`},
		{"second movement bad", withField(t, "movements", `[{"movement_id":"m1","change":"1"},{"movement_id":"m2","change":"x"}]`), `"movements[1].change" must be a decimal`},
		{"movement_timestamp a word", withField(t, "movements", movement(`"movement_id":"m1","change":"1","movement_timestamp":"soon"`)), `"movements[0].movement_timestamp" must be a non-negative integer`},
		{"movement_type a number", withField(t, "movements", movement(`"movement_id":"m1","change":"1","movement_type":3`)), `"movements[0].movement_type" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := zerohash.ParseBalanceEvent(tt.body)
			if err == nil {
				t.Fatalf("ParseBalanceEvent accepted it: %+v", ev)
			}
			if !errors.Is(err, zerohash.ErrInvalidPayload) || zerohash.VerifyStatus(err) != http.StatusBadRequest {
				t.Errorf("err = %v, want ErrInvalidPayload (400)", err)
			}
			if !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantField)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error text is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestParseBalanceEventSizeLimitIsInclusive(t *testing.T) {
	sample := readTestdata(t, "balance_deposit_completed.json")
	pad := zerohash.MaxBalanceWebhookBytes - len(sample)
	body := append(bytes.Clone(sample), bytes.Repeat([]byte(" "), pad)...) // trailing whitespace is valid JSON
	if _, err := zerohash.ParseBalanceEvent(body); err != nil {
		t.Fatalf("a body of exactly %d bytes: %v", len(body), err)
	}
	if _, err := zerohash.ParseBalanceEvent(append(body, ' ')); !errors.Is(err, zerohash.ErrInvalidPayload) {
		t.Fatalf("a body one byte over the limit: err = %v, want ErrInvalidPayload", err)
	}
}

func TestParseBalanceEventAcceptsMinimalAndUnknownFields(t *testing.T) {
	body := []byte(`{"account_type":"available","asset":"BTC","participant_code":"P","balance":"0","timestamp":1,
		"movements":[],"new_field":{"nested":[1,2]},"account_group":null}`)
	ev, err := zerohash.ParseBalanceEvent(body)
	if err != nil {
		t.Fatalf("ParseBalanceEvent: %v", err)
	}
	want := zerohash.BalanceEvent{AccountType: "available", Asset: "BTC", ParticipantCode: "P", Balance: "0", Timestamp: 1, Movements: []zerohash.Movement{}}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("got %+v, want %+v", ev, want)
	}
}

// TestBalanceWebhookOverHTTP drives ConstructBalanceEvent behind a real loopback handler, as a receiver would run it.
func TestBalanceWebhookOverHTTP(t *testing.T) {
	var (
		mu       sync.Mutex
		received []zerohash.BalanceEvent
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, zerohash.MaxBalanceWebhookBytes+1))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		ev, err := zerohash.ConstructBalanceEvent(testWebhookSecret, r.Header, body)
		if err != nil {
			http.Error(w, err.Error(), zerohash.VerifyStatus(err))
			return
		}
		mu.Lock()
		received = append(received, ev)
		mu.Unlock()
	}))
	defer srv.Close()

	deposit := readTestdata(t, "balance_deposit_completed.json")
	withdrawal := readTestdata(t, "balance_withdrawal_completed.json")
	notJSON := []byte("not json")
	tests := []struct {
		name        string
		body        []byte
		sig         string
		payloadType string
		notifID     string
		wantStatus  int
	}{
		{"deposit", deposit, depositSampleSig, zerohash.PayloadTypeBalanceChanged, "n-1", 200},
		{"withdrawal without payload type header", withdrawal, zerohash.SignBalanceWebhook(testWebhookSecret, withdrawal), "", "n-2", 200},
		{"forged", deposit, zerohash.SignBalanceWebhook("guessed", deposit), zerohash.PayloadTypeBalanceChanged, "n-3", 403},
		{"unsigned", deposit, "", zerohash.PayloadTypeBalanceChanged, "n-4", 400},
		{"other payload type", deposit, depositSampleSig, "connect_deposit.status_changed", "n-5", 400},
		{"signed but not JSON", notJSON, zerohash.SignBalanceWebhook(testWebhookSecret, notJSON), zerohash.PayloadTypeBalanceChanged, "n-6", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.sig != "" {
				req.Header.Set(zerohash.HeaderHookSignature, tt.sig)
			}
			if tt.payloadType != "" {
				req.Header.Set(zerohash.HeaderPayloadType, tt.payloadType)
			}
			req.Header.Set(zerohash.HeaderHookNotificationID, tt.notifID)
			req.Header.Set(zerohash.HeaderHookTimestamp, "1746113199073")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 2 || received[0].NotificationID != "n-1" || received[1].NotificationID != "n-2" {
		t.Fatalf("received %+v, want the deposit (n-1) and the withdrawal (n-2)", received)
	}
	wantDeposit := depositSampleEvent()
	wantDeposit.NotificationID = "n-1"
	if !reflect.DeepEqual(received[0], wantDeposit) {
		t.Errorf("deposit = %+v, want %+v", received[0], wantDeposit)
	}
}

var plainDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func FuzzParseBalanceEvent(f *testing.F) {
	for _, name := range []string{"balance_deposit_completed.json", "balance_withdrawal_completed.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := zerohash.ParseBalanceEvent(body)
		if err != nil {
			if !errors.Is(err, zerohash.ErrInvalidPayload) {
				t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
			}
			return
		}
		if ev.Asset == "" || ev.AccountType == "" || ev.ParticipantCode == "" || ev.Timestamp <= 0 {
			t.Fatalf("accepted an event missing a required field: %+v", ev)
		}
		if !plainDecimal.MatchString(ev.Balance) {
			t.Fatalf("balance %q is not plain decimal text", ev.Balance)
		}
		for i, m := range ev.Movements {
			if m.MovementID == "" || !plainDecimal.MatchString(m.Change) || m.MovementTimestamp < 0 {
				t.Fatalf("movement %d invalid: %+v", i, m)
			}
		}
		_ = ev.Time()
		// The JSON form of an accepted event is itself a valid body that parses back to the same event.
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		ev2, err := zerohash.ParseBalanceEvent(again)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", again, err)
		}
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, ev2)
		}
	})
}

func BenchmarkVerifyBalanceWebhook(b *testing.B) {
	body := readTestdata(b, "balance_deposit_completed.json")
	h := hookHeader(zerohash.SignBalanceWebhook(testWebhookSecret, body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := zerohash.VerifyBalanceWebhook(testWebhookSecret, h, body); err != nil {
			b.Fatal(err)
		}
	}
}
