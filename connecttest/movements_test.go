package connecttest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/zerohash"
)

func sandboxZeroHash(t *testing.T, srv *connecttest.Server, now func() time.Time) *zerohash.Client {
	t.Helper()
	c, err := zerohash.New(zerohash.Options{BaseURL: srv.URL, APIKey: connecttest.DefaultAPIKey,
		APISecret: connecttest.DefaultAPISecret, Passphrase: connecttest.DefaultPassphrase, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMovementsServesAnnouncedAndDropped: GET /movements serves exactly the movements the sandbox announced by
// balance webhook (delivered or not) and those whose webhooks it dropped, newest first, paged and filtered as
// Zero Hash publishes it, through the real signed client.
func TestMovementsServesAnnouncedAndDropped(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	srv := newSandbox(t, connecttest.Options{Now: clock.Now})
	var received atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { received.Add(1) }))
	defer hook.Close()
	if err := srv.SetWebhookURLs("", "", hook.URL); err != nil {
		t.Fatal(err)
	}
	emit := func(id, kind, ref string) connecttest.Delivery {
		t.Helper()
		clock.Advance(time.Second)
		mv := zerohash.Movement{MovementID: id, Change: "0.5", MovementType: kind}
		if kind == zerohash.MovementTypeDeposit {
			mv.DepositReferenceID = ref
		} else {
			mv.WithdrawalRequestID, mv.Change = ref, "-0.5"
		}
		d, err := srv.EmitBalance(context.Background(), zerohash.BalanceEvent{Asset: "ETH", Balance: "1",
			ParticipantCode: "PART01", Movements: []zerohash.Movement{mv}})
		if err != nil {
			t.Fatalf("emit %s: %v", id, err)
		}
		return d
	}
	emit("m1", "deposit", "d-1")
	emit("m2", "withdrawal", "w-1")
	srv.DropBalanceWebhooks(time.Minute)
	dropped := emit("m3", "deposit", "d-2")
	if !dropped.Dropped || dropped.Delivered || len(dropped.Attempts) != 0 {
		t.Fatalf("dropped delivery %+v", dropped)
	}
	clock.Advance(2 * time.Minute) // the drop window ends by itself
	emit("m4", "deposit", "d-3")
	if n := received.Load(); n != 3 {
		t.Fatalf("receiver got %d webhooks, want 3 (m3 dropped)", n)
	}

	c := sandboxZeroHash(t, srv, clock.Now)
	ctx := context.Background()
	page, err := c.Movements(ctx, zerohash.MovementsQuery{Page: 1, PageSize: 2})
	if err != nil {
		t.Fatalf("GET /movements: %v", err)
	}
	if page.Page != 1 || page.TotalPages != 2 || ids(page) != "m4,m3" {
		t.Fatalf("page 1: %+v", page)
	}
	if m := page.Movements[1]; m.Asset != "ETH" || m.DepositReferenceID != "d-2" || m.AccountID == "" || m.MovementTimestamp == 0 {
		t.Fatalf("dropped movement served as %+v", m)
	}
	page, err = c.Movements(ctx, zerohash.MovementsQuery{Page: 2, PageSize: 2})
	if err != nil || ids(page) != "m2,m1" || page.More(2) {
		t.Fatalf("page 2: %+v, %v", page, err)
	}
	page, err = c.Movements(ctx, zerohash.MovementsQuery{MovementType: "deposit", SinceMillis: page.Movements[1].MovementTimestamp + 1})
	if err != nil || ids(page) != "m4,m3" {
		t.Fatalf("deposits since after m1: %+v, %v", page, err)
	}
	page, err = c.Movements(ctx, zerohash.MovementsQuery{AccountID: "nobody"})
	if err != nil || len(page.Movements) != 0 {
		t.Fatalf("unknown account: %+v, %v", page, err)
	}

	// Older than two months: no longer served.
	clock.Advance(connecttest.MovementsRetention + time.Second)
	if page, err = c.Movements(ctx, zerohash.MovementsQuery{}); err != nil || len(page.Movements) != 0 {
		t.Fatalf("after the retention: %+v, %v", page, err)
	}
}

func ids(p zerohash.MovementsPage) string {
	var out []string
	for _, m := range p.Movements {
		out = append(out, m.MovementID)
	}
	return strings.Join(out, ",")
}

func TestMovementsRejectsAndFaults(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	ctx := context.Background()

	// Unsigned: 400 naming the header; wrong key: 403.
	a := doJSON(t, http.MethodGet, srv.URL+"/movements", nil, nil)
	if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), zerohash.HeaderAPIKey) {
		t.Fatalf("unsigned: %d %s", a.status, a.body)
	}
	bad, err := zerohash.New(zerohash.Options{BaseURL: srv.URL, APIKey: "other", APISecret: connecttest.DefaultAPISecret,
		Passphrase: connecttest.DefaultPassphrase})
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *zerohash.APIError
	if _, err := bad.Movements(ctx, zerohash.MovementsQuery{}); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong key: %v", err)
	}
	// A query outside the published range is a 400 naming the parameter (sent raw: the client refuses it).
	c := sandboxZeroHash(t, srv, nil)
	raw := signedGET(t, srv, "/movements?page_size=101")
	if raw.status != http.StatusBadRequest || !strings.Contains(string(raw.body), "page_size") {
		t.Fatalf("page_size=101: %d %s", raw.status, raw.body)
	}

	// Injected faults: a 429 with Retry-After, then a 500, then served.
	if err := srv.Fail(connecttest.EndpointMovements, connecttest.Fault{Status: 429, RetryAfter: 2 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Fail(connecttest.EndpointMovements, connecttest.Fault{Status: 500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Movements(ctx, zerohash.MovementsQuery{})
	if retry, after := zerohash.RetryInfo(err); !retry || after != 2*time.Second {
		t.Fatalf("429: %v (retry %v after %v)", err, retry, after)
	}
	_, err = c.Movements(ctx, zerohash.MovementsQuery{})
	if retry, _ := zerohash.RetryInfo(err); !retry || !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
		t.Fatalf("500: %v", err)
	}
	if _, err := c.Movements(ctx, zerohash.MovementsQuery{}); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	if n := srv.Count(connecttest.EndpointMovements); n != 6 {
		t.Fatalf("movements requests counted %d, want 6", n)
	}
}

// signedGET sends a GET signed with the sandbox's credentials, whatever its query.
func signedGET(t *testing.T, srv *connecttest.Server, pathWithQuery string) answer {
	t.Helper()
	secret, err := zerohash.ParseSecret(connecttest.DefaultAPISecret)
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set(zerohash.HeaderAPIKey, connecttest.DefaultAPIKey)
	h.Set(zerohash.HeaderPassphrase, connecttest.DefaultPassphrase)
	h.Set(zerohash.HeaderTimestamp, ts)
	h.Set(zerohash.HeaderSigned, zerohash.Sign(secret, ts, http.MethodGet, pathWithQuery, nil))
	a, err := send(http.MethodGet, srv.URL+pathWithQuery, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDropSwitchControlAPI: the control API turns dropping on until turned off, and POST /sandbox/balances
// emits through it.
func TestDropSwitchControlAPI(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	for _, c := range []struct {
		body string
		want int
	}{{`{}`, 400}, {`{"drop":true,"for_ms":-1}`, 400}, {`{"drop":true}`, 204}} {
		if a := doJSON(t, http.MethodPost, srv.URL+"/sandbox/balance-webhooks/drop", []byte(c.body), nil); a.status != c.want {
			t.Fatalf("drop %s: %d %s, want %d", c.body, a.status, a.body, c.want)
		}
	}
	// No balance URL is configured, yet a dropped webhook needs none.
	a := doJSON(t, http.MethodPost, srv.URL+"/sandbox/balances",
		[]byte(`{"asset":"BTC","balance":"1","participant_code":"P1","movements":[{"movement_id":"x1","change":"0.1","movement_type":"deposit","deposit_reference_id":"d-9"}]}`), nil)
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"dropped":true`) {
		t.Fatalf("emit while dropping: %d %s", a.status, a.body)
	}
	a = doJSON(t, http.MethodPost, srv.URL+"/sandbox/balances", []byte(`{"asset":"BTC"}`), nil)
	if a.status != http.StatusBadRequest {
		t.Fatalf("emit an invalid event: %d %s", a.status, a.body)
	}
	if a := doJSON(t, http.MethodPost, srv.URL+"/sandbox/balance-webhooks/drop", []byte(`{"drop":false}`), nil); a.status != 204 {
		t.Fatalf("resume: %d", a.status)
	}
	a = doJSON(t, http.MethodPost, srv.URL+"/sandbox/balances", []byte(`{"asset":"BTC","balance":"1","participant_code":"P1","movements":[]}`), nil)
	if a.status != http.StatusConflict {
		t.Fatalf("emit with no balance URL and no drop: %d %s", a.status, a.body)
	}
	if ms := srv.Movements(); len(ms) != 1 || ms[0].MovementID != "x1" || ms[0].Asset != "BTC" {
		t.Fatalf("ledger %+v", ms)
	}
	page, err := sandboxZeroHash(t, srv, nil).Movements(context.Background(), zerohash.MovementsQuery{MovementType: "deposit"})
	if err != nil || ids(page) != "x1" {
		t.Fatalf("GET /movements: %+v, %v", page, err)
	}
}
