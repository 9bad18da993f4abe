package zerohash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

// TestParseMovementsPagePublishedExample: the example answer Zero Hash publishes for its movements endpoints
// (docs.zerohash.com account movements reference; the same sample is mirrored at
// docs.ndax.in/v3/private-endpoints/accounts/movement), copied verbatim into testdata. Its quirks are kept: ids
// are strings, null marks an absent reference, and two movements (a deposit and a withdrawal) share one
// movement_id, so the parser must keep both.
func TestParseMovementsPagePublishedExample(t *testing.T) {
	page, err := zerohash.ParseMovementsPage(readTestdata(t, "movements_published_example.json"))
	if err != nil {
		t.Fatalf("ParseMovementsPage: %v", err)
	}
	if page.Page != 1 || page.TotalPages != 40 || len(page.Movements) != 4 {
		t.Fatalf("page %d of %d with %d movements, want 1 of 40 with 4", page.Page, page.TotalPages, len(page.Movements))
	}
	want := []zerohash.Movement{
		{RunID: "500", MovementTimestamp: 1554395972174, MovementID: "ab938734-0aa6-4378-baa1-2cc56aeee757",
			MovementType: "final_settlement", TradeID: "951806f4-d3ba-42c4-96fe-8083cd3202cf", Change: "100"},
		{RunID: "500", MovementTimestamp: 1554395972174, MovementID: "d8f902be-f8c3-4f9c-ac66-67000510900d",
			MovementType: "final_settlement", TradeID: "3ad29e08-8b4f-435b-89aa-17b7a298b350", Change: "-200"},
		{RunID: "498", MovementTimestamp: 1554395972000, MovementID: "c6af3d80-1aca-4280-b96b-a9b8d7ced46a",
			MovementType: "deposit", DepositReferenceID: "ebedc42f-85c3-4468-8894-1cb6f49f7a04", Change: "10000"},
		{RunID: "497", MovementTimestamp: 1554395972000, MovementID: "c6af3d80-1aca-4280-b96b-a9b8d7ced46a",
			MovementType: "withdrawal", WithdrawalRequestID: "100", Change: "-50"},
	}
	for i := range want {
		if page.Movements[i] != want[i] {
			t.Errorf("movement %d:\n got %+v\nwant %+v", i, page.Movements[i], want[i])
		}
	}
	if got := page.Movements[2].Time(); !got.Equal(time.UnixMilli(1554395972000)) {
		t.Errorf("Time() = %v", got)
	}
	if !page.More(4) {
		t.Error("page 1 of 40 says there is no more")
	}
}

func TestParseMovementsPageForms(t *testing.T) {
	tests := []struct {
		name, body string
		want       zerohash.MovementsPage
		wantErr    string // a substring naming the field; "" means success
	}{
		{name: "numbers as text, nanoseconds, asset and account",
			body: `{"message":[{"movement_id":7,"change":1.5e-3,"movement_timestamp":"1554395972000123456","asset":"BTC","account_id":"acc-1","parent_link_id":"p-1"}],"page":"2","total_pages":"3"}`,
			want: zerohash.MovementsPage{Page: 2, TotalPages: 3, Movements: []zerohash.Movement{{MovementID: "7", Change: "0.0015",
				MovementTimestamp: 1554395972000, Asset: "BTC", AccountID: "acc-1", ParentLinkID: "p-1"}}}},
		{name: "empty page, no page numbers", body: `{"message":[]}`, want: zerohash.MovementsPage{Movements: []zerohash.Movement{}}},
		{name: "no message", body: `{"page":1}`, wantErr: `"message" is required`},
		{name: "message not an array", body: `{"message":{}}`, wantErr: `"message" must be an array`},
		{name: "movement without id", body: `{"message":[{"change":"1"}]}`, wantErr: `"message[0].movement_id" is required`},
		{name: "bad change", body: `{"message":[{"movement_id":"a","change":"1"},{"movement_id":"b","change":"ten"}]}`, wantErr: `"message[1].change"`},
		{name: "negative timestamp", body: `{"message":[{"movement_id":"a","change":"1","movement_timestamp":-5}]}`, wantErr: `"message[0].movement_timestamp"`},
		{name: "item not an object", body: `{"message":[3]}`, wantErr: `"message[0]"`},
		{name: "bad total_pages", body: `{"message":[],"total_pages":-1}`, wantErr: `"total_pages"`},
		{name: "not an object", body: `[]`, wantErr: `"body"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := zerohash.ParseMovementsPage([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, zerohash.ErrInvalidPayload) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidPayload naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMovementsPage: %v", err)
			}
			if got.Page != tt.want.Page || got.TotalPages != tt.want.TotalPages || len(got.Movements) != len(tt.want.Movements) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got.Movements {
				if got.Movements[i] != tt.want.Movements[i] {
					t.Errorf("movement %d: got %+v, want %+v", i, got.Movements[i], tt.want.Movements[i])
				}
			}
		})
	}
}

func TestMovementsQueryEncodeAndValidate(t *testing.T) {
	q := zerohash.MovementsQuery{Page: 3, PageSize: 100, MovementType: "deposit", AccountID: "a b",
		SinceMillis: 1554395972000, BeforeMillis: 1554395973000}
	want := "page=3&page_size=100&movement_type=deposit&account_id=a+b&movement_timestamp[gte]=1554395972000&movement_timestamp[lt]=1554395973000"
	if got := q.Encode(); got != want {
		t.Fatalf("Encode() = %s\nwant %s", got, want)
	}
	if got := (zerohash.MovementsQuery{}).Encode(); got != "" {
		t.Fatalf("zero query encodes as %q", got)
	}
	for _, bad := range []zerohash.MovementsQuery{{PageSize: 101}, {Page: -1}, {PageSize: -1}, {SinceMillis: 5, BeforeMillis: 5}, {SinceMillis: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// movementsFake is a platform API serving GET /movements: it verifies every request with VerifyRequest and the
// published formula recomputed inline (a GET signs "{}"), and answers with the scripted function.
type movementsFake struct {
	t      *testing.T
	answer func(w http.ResponseWriter, r *http.Request, attempt int)

	mu      sync.Mutex
	queries []string
}

func (f *movementsFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := zerohash.VerifyRequest(r, body, testCreds(f.t), serverClock); err != nil {
		f.t.Errorf("fake: %v", err)
		w.WriteHeader(zerohash.VerifyStatus(err))
		return
	}
	inline := inlineSign(testSecret(f.t), r.Header.Get(zerohash.HeaderTimestamp)+"GET"+r.RequestURI+"{}")
	if got := r.Header.Get(zerohash.HeaderSigned); got != inline || len(body) != 0 {
		f.t.Errorf("fake: X-SCX-SIGNED = %s, inline recomputation over {} = %s (body %q)", got, inline, body)
	}
	if r.Method != http.MethodGet || r.URL.Path != zerohash.PathMovements || r.Header.Get(zerohash.HeaderRequestID) == "" {
		f.t.Errorf("fake: got %s %s, request id %q", r.Method, r.URL.Path, r.Header.Get(zerohash.HeaderRequestID))
	}
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.RawQuery)
	n := len(f.queries)
	f.mu.Unlock()
	f.answer(w, r, n)
}

func TestMovementsSignedGETAndPage(t *testing.T) {
	example := readTestdata(t, "movements_published_example.json")
	f := &movementsFake{t: t, answer: func(w http.ResponseWriter, r *http.Request, _ int) {
		if got := r.URL.Query().Get(zerohash.ParamTimestampGTE); got != "1554395972000" {
			t.Errorf("movement_timestamp[gte] = %q", got)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(example)
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, testOptions(srv.URL))
	page, err := c.Movements(context.Background(), zerohash.MovementsQuery{Page: 1, PageSize: 4, MovementType: "deposit", SinceMillis: 1554395972000})
	if err != nil {
		t.Fatalf("Movements: %v", err)
	}
	if len(page.Movements) != 4 || page.TotalPages != 40 {
		t.Fatalf("page = %+v", page)
	}
	if want := "page=1&page_size=4&movement_type=deposit&movement_timestamp[gte]=1554395972000"; f.queries[0] != want {
		t.Fatalf("query sent = %s, want %s", f.queries[0], want)
	}
	if _, err := c.Movements(context.Background(), zerohash.MovementsQuery{PageSize: 500}); err == nil || len(f.queries) != 1 {
		t.Fatalf("page_size 500 was sent (err %v)", err)
	}
}

func TestMovementsErrorsAndRetryRules(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		retryable bool
		after     time.Duration
	}{
		{name: "429 with Retry-After", status: 429, header: map[string]string{"Retry-After": "3"}, retryable: true, after: 3 * time.Second},
		{name: "429 without Retry-After waits the published block", status: 429, retryable: true, after: zerohash.RateLimitBackoff},
		{name: "500", status: 500, body: `{"error":"boom"}`, retryable: true},
		{name: "503 without zh-allow-retry is still safe for a GET", status: 503, retryable: true},
		{name: "400", status: 400, body: `{"errors":["page_size must be at most 100"]}`},
		{name: "403", status: 403, body: `{"error":true,"message":"forbidden"}`},
		{name: "200 with a body that is not the documented JSON", status: 200, body: `{"message":"nope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &movementsFake{t: t, answer: func(w http.ResponseWriter, _ *http.Request, _ int) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			_, err := newClient(t, testOptions(srv.URL)).Movements(context.Background(), zerohash.MovementsQuery{Page: 1})
			var apiErr *zerohash.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("err = %v, want an APIError with status %d", err, tt.status)
			}
			if strings.Contains(err.Error(), "KYC") {
				t.Errorf("GET /movements error speaks of the onboarding endpoint: %v", err)
			}
			retryable, after := zerohash.RetryInfo(err)
			if retryable != tt.retryable || after != tt.after {
				t.Fatalf("RetryInfo = %v, %v; want %v, %v (%v)", retryable, after, tt.retryable, tt.after, err)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestMovementsPagingToTheEnd(t *testing.T) {
	// Three pages of two, served by the fake; the caller pages until More says stop.
	f := &movementsFake{t: t, answer: func(w http.ResponseWriter, r *http.Request, _ int) {
		body := map[string]string{
			"1": `{"message":[{"movement_id":"m1","change":"1"},{"movement_id":"m2","change":"1"}],"page":1,"total_pages":3}`,
			"2": `{"message":[{"movement_id":"m3","change":"1"},{"movement_id":"m4","change":"1"}],"page":2,"total_pages":3}`,
			"3": `{"message":[{"movement_id":"m5","change":"1"}],"page":3,"total_pages":3}`,
		}[r.URL.Query().Get("page")]
		_, _ = io.WriteString(w, body)
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, testOptions(srv.URL))
	var ids []string
	for n := 1; ; n++ {
		page, err := c.Movements(context.Background(), zerohash.MovementsQuery{Page: n, PageSize: 2})
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		for _, m := range page.Movements {
			ids = append(ids, m.MovementID)
		}
		if !page.More(2) {
			break
		}
	}
	if strings.Join(ids, ",") != "m1,m2,m3,m4,m5" {
		t.Fatalf("paged %v", ids)
	}
}

// FuzzParseMovementsPage: any body either parses into movements that each have an id and a decimal change, or
// fails with ErrInvalidPayload; it never panics. Seeds: the published example and the cases below.
func FuzzParseMovementsPage(f *testing.F) {
	f.Add(readTestdata(f, "movements_published_example.json"))
	f.Add([]byte(`{"message":[{"movement_id":7,"change":1.5e-3,"movement_timestamp":"1554395972000123456"}],"page":"2"}`))
	f.Add([]byte(`{"message":[{"movement_id":"a","change":"-0.5","deposit_reference_id":null}],"total_pages":1}`))
	f.Add([]byte(`{"message":null}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := zerohash.ParseMovementsPage(body)
		if err != nil {
			if !errors.Is(err, zerohash.ErrInvalidPayload) {
				t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
			}
			return
		}
		for i, m := range page.Movements {
			if m.MovementID == "" || m.Change == "" {
				t.Fatalf("movement %d parsed without id or change: %+v", i, m)
			}
			if m.MovementTimestamp < 0 || m.MovementTimestamp >= 1_000_000_000_000_000 {
				t.Fatalf("movement %d timestamp %d is not milliseconds", i, m.MovementTimestamp)
			}
		}
		if page.Page < 0 || page.TotalPages < 0 {
			t.Fatalf("negative page numbers %+v", page)
		}
	})
}
