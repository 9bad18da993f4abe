package transferapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/transferapi"
)

func TestWriteProblem(t *testing.T) {
	for _, typ := range transferapi.ProblemTypes() {
		if !strings.HasPrefix(typ, "urn:connectflow:problem:") || transferapi.ProblemStatus(typ) < 400 {
			t.Errorf("problem type %q: status %d", typ, transferapi.ProblemStatus(typ))
		}
	}
	rec := httptest.NewRecorder()
	p := &transferapi.Problem{Type: transferapi.TypeInvalidRequest, Title: "Invalid request", Status: 422,
		Errors: []transferapi.FieldError{{Field: "amount", Detail: "must be a positive decimal"}}}
	transferapi.WriteProblem(rec, p)
	if rec.Code != 422 || rec.Header().Get("Content-Type") != transferapi.ProblemContentType {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["type"] != transferapi.TypeInvalidRequest || got["status"] != float64(422) || got["title"] == "" {
		t.Fatalf("body %s", rec.Body)
	}
}

// offlineServer is a Server whose Temporal is unreachable (a closed port): every check before Temporal is real.
func offlineServer(t *testing.T) *httptest.Server {
	t.Helper()
	return offlineServerLogging(t, slog.New(slog.DiscardHandler))
}

func offlineServerLogging(t *testing.T, logger *slog.Logger) *httptest.Server {
	t.Helper()
	return offlineServerWith(t, logger, 1024)
}

// offlineServerWith is offlineServer with a logger and a body bound.
func offlineServerWith(t *testing.T, logger *slog.Logger, maxBody int64) *httptest.Server {
	t.Helper()
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	toks, err := transferapi.ParseTokens("backend:" + tokenA + ",ops:" + tokenB + ":operator")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := transferapi.NewAuthenticator(toks, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := transferapi.New(transferapi.Options{Temporal: c, Auth: auth, TemporalTimeout: time.Second,
		MaxBody: maxBody, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

type answer struct {
	status  int
	header  http.Header
	problem transferapi.Problem
	raw     string
}

func call(t *testing.T, method, url, token, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.Header.Get("Content-Type") == transferapi.ProblemContentType {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a.problem); err != nil {
			t.Fatalf("problem body %s: %v", raw, err)
		}
		if a.problem.Status != resp.StatusCode || a.problem.Title == "" || transferapi.ProblemStatus(a.problem.Type) != resp.StatusCode {
			t.Fatalf("problem %+v does not match status %d", a.problem, resp.StatusCode)
		}
	}
	return a
}

func TestProblemsBeforeTemporal(t *testing.T) {
	hs := offlineServer(t)
	const js = "application/json"
	deposit := `{"transfer_id":"t-1","reference_id":"USER01"}`
	for _, tc := range []struct {
		name, method, path, token, contentType, body string
		status                                       int
		typ                                          string
		fields                                       []string
	}{
		{"no token", "POST", "/v1/deposits", "", js, deposit, 401, transferapi.TypeUnauthorized, nil},
		{"wrong token", "GET", "/v1/transfers", tokenA + "0", "", "", 401, transferapi.TypeUnauthorized, nil},
		{"resolve without operator role", "POST", "/v1/deposits/t-1/resolve", tokenA, js, `{"outcome":"failed","reason":"x"}`, 403, transferapi.TypeForbidden, nil},
		{"text body", "POST", "/v1/deposits", tokenA, "text/plain", deposit, 415, transferapi.TypeUnsupportedMedia, nil},
		{"too large", "POST", "/v1/deposits", tokenA, js, `{"transfer_id":"` + strings.Repeat("x", 2000) + `"}`, 413, transferapi.TypeBodyTooLarge, nil},
		{"not JSON", "POST", "/v1/deposits", tokenA, js, `{"transfer_id":`, 400, transferapi.TypeMalformedBody, nil},
		{"an array", "POST", "/v1/deposits", tokenA, js, `[1]`, 400, transferapi.TypeMalformedBody, nil},
		{"unknown fields", "POST", "/v1/deposits", tokenA, js, `{"transfer_id":"t-1","reference_id":"U","user":"x","amout":"1"}`, 422, transferapi.TypeInvalidRequest, []string{"amout", "user"}},
		{"wrong type", "POST", "/v1/withdrawals", tokenA, js, `{"transfer_id":"t-1","reference_id":"U","amount":0.5}`, 422, transferapi.TypeInvalidRequest, []string{"amount"}},
		{"missing fields", "POST", "/v1/withdrawals", tokenA, js, `{"transfer_id":"t 1"}`, 422, transferapi.TypeInvalidRequest, []string{"amount", "asset", "network", "reference_id", "transfer_id"}},
		{"bad amount", "POST", "/v1/withdrawals", tokenA, js, `{"transfer_id":"t1","reference_id":"U","asset":"BTC","network":"bitcoin","amount":"0.0"}`, 422, transferapi.TypeInvalidRequest, []string{"amount"}},
		{"deposit with amount", "POST", "/v1/deposits", tokenA, js, `{"transfer_id":"t1","reference_id":"U","amount":"1"}`, 422, transferapi.TypeInvalidRequest, []string{"amount"}},
		{"reserved metadata", "POST", "/v1/deposits", tokenA, js, `{"transfer_id":"t1","reference_id":"U","metadata":{"connectflow_kind":"x"}}`, 422, transferapi.TypeInvalidRequest, []string{"metadata.connectflow_kind"}},
		{"bad sdk type", "POST", "/v1/deposits/t1/sdk-events", tokenA, js, `{"type":"opened"}`, 422, transferapi.TypeInvalidRequest, []string{"type"}},
		{"bad outcome", "POST", "/v1/deposits/t1/resolve", tokenB, js, `{"outcome":"settled","reason":""}`, 422, transferapi.TypeInvalidRequest, []string{"outcome", "reason"}},
		{"redeliver without operator role", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenA, js, `{"reason":"x"}`, 403, transferapi.TypeForbidden, nil},
		{"redeliver not a review id", "POST", "/v1/reviews/deposit-t1/redeliver", tokenB, js, `{"reason":"x"}`, 404, transferapi.TypeReviewNotFound, nil},
		{"redeliver not JSON", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenB, js, `reason=x`, 400, transferapi.TypeMalformedBody, nil},
		{"redeliver bad fields", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenB, js, `{"reason":" ","kind":"refund"}`, 422, transferapi.TypeInvalidRequest, []string{"kind", "reason", "transfer_id"}},
		{"redeliver names its operator", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenB, js, `{"reason":"r","operator":"eve"}`, 422, transferapi.TypeInvalidRequest, []string{"operator"}},
		{"redeliver kind without transfer", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenB, js, `{"reason":"r","kind":"deposit"}`, 422, transferapi.TypeInvalidRequest, []string{"transfer_id"}},
		{"redeliver without reason", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenB, js, `{}`, 422, transferapi.TypeInvalidRequest, []string{"reason"}},
		{"temporal down, redeliver", "POST", "/v1/reviews/review-deposit:cx-1:confirmed/redeliver", tokenB, js, `{"reason":"r"}`, 503, transferapi.TypeTemporalUnavailable, nil},
		{"bad email", "POST", "/v1/onboarding-tokens", tokenA, js, `{"email":"Ana <ana@example.com>","phone_number":"call me"}`, 422, transferapi.TypeInvalidRequest, []string{"email", "phone_number"}},
		{"bad list query", "GET", "/v1/transfers?kind=refund&status=done&page_size=1000&page_token=***&sort=asc", tokenA, "", "", 422, transferapi.TypeInvalidRequest, []string{"kind", "page_size", "page_token", "sort", "status"}},
		{"no route", "GET", "/v1/refunds", tokenA, "", "", 404, transferapi.TypeNotFound, nil},
		{"wrong method", "DELETE", "/v1/deposits", tokenA, "", "", 405, transferapi.TypeMethodNotAllowed, nil},
		{"temporal down", "POST", "/v1/deposits", tokenA, js, deposit, 503, transferapi.TypeTemporalUnavailable, nil},
		{"temporal down, list", "GET", "/v1/transfers", tokenA, "", "", 503, transferapi.TypeTemporalUnavailable, nil},
	} {
		a := call(t, tc.method, hs.URL+tc.path, tc.token, tc.contentType, tc.body)
		if a.status != tc.status || a.problem.Type != tc.typ {
			t.Errorf("%s: %d %s; want %d %s", tc.name, a.status, a.raw, tc.status, tc.typ)
			continue
		}
		var fields []string
		for _, e := range a.problem.Errors {
			fields = append(fields, e.Field)
		}
		if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("%s: fields %v, want %v (%s)", tc.name, fields, tc.fields, a.raw)
		}
		switch tc.status {
		case 401:
			if a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: no WWW-Authenticate", tc.name)
			}
		case 503:
			if a.header.Get("Retry-After") != "5" || a.problem.RetryAfter != 5 {
				t.Errorf("%s: Retry-After %q / %d", tc.name, a.header.Get("Retry-After"), a.problem.RetryAfter)
			}
		}
		if strings.Contains(a.raw, "ana@example.com") || strings.Contains(a.raw, tokenA) {
			t.Errorf("%s: the answer repeats personal data or a token: %s", tc.name, a.raw)
		}
	}
	for _, path := range []string{"/healthz", "/openapi.json", "/metrics"} {
		if a := call(t, "GET", hs.URL+path, "", "", ""); a.status != 200 {
			t.Errorf("GET %s without credentials: %d", path, a.status)
		}
	}
	if a := call(t, "GET", hs.URL+"/readyz", "", "", ""); a.status != 503 || !strings.Contains(a.raw, "temporal") {
		t.Errorf("/readyz with Temporal down: %d %s", a.status, a.raw)
	}
}

// TestRequestLog: one line per request naming the caller, the route and the problem; never a token or the body.
func TestRequestLog(t *testing.T) {
	var logs syncBuffer
	hs := offlineServerLogging(t, slog.New(slog.NewJSONHandler(&logs, nil)))
	call(t, "POST", hs.URL+"/v1/onboarding-tokens", tokenA, "application/json", `{"email":"kyc@example.com","phone_number":"nope"}`)
	call(t, "GET", hs.URL+"/v1/transfers", tokenA+"x", "", "")
	call(t, "POST", hs.URL+"/v1/deposits/t1/resolve", tokenA, "application/json", `{}`)
	// The line is written after the answer is sent: wait for it.
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lines = strings.Split(strings.TrimSpace(logs.String()), "\n"); len(lines) >= 3 {
			break
		}
	}
	if len(lines) != 3 {
		t.Fatalf("want one line per request, got:\n%s", logs.String())
	}
	for i, want := range []string{`"caller":"backend"`, `"status":401`, `"problem":"urn:connectflow:problem:forbidden"`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"route":"/v1/`) {
			t.Errorf("log line %d lacks %s: %s", i, want, lines[i])
		}
	}
	for _, secret := range []string{tokenA, "kyc@example.com", "nope"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
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
