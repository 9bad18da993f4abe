package zerohash_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

const (
	testEmail     = "alice@example.com"
	testPhone     = "33512345678"
	testToken     = "eyJhbGciOiJIUzI1NiJ9.onboarding-token-for-tests.c2lnbmF0dXJl"
	testRequestID = "6f1c2a4e-3b7d-4c8e-9a1f-2d3e4f5a6b7c"
)

// serverClock is the fake Zero Hash's clock; clients in these tests sign with it unless a test skews them.
var serverClock = time.Date(2025, 7, 24, 15, 42, 7, 0, time.UTC)

// answer scripts the fake's reply to a request that passed verification; attempt counts from 1.
type answer func(w http.ResponseWriter, r *http.Request, attempt int)

// fakeZeroHash is a platform API that checks each request twice, with VerifyRequest and with an inline HMAC
// recomputation, and records what it received.
type fakeZeroHash struct {
	t      *testing.T
	answer answer

	mu         sync.Mutex
	attempts   int
	requestIDs []string
	bodies     []map[string]any
	verifyErrs []error
}

func newFake(t *testing.T, a answer) (*fakeZeroHash, *httptest.Server) {
	t.Helper()
	f := &fakeZeroHash{t: t, answer: a}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeZeroHash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake: read body: %v", err)
		return
	}
	if err := zerohash.VerifyRequest(r, body, testCreds(f.t), serverClock); err != nil {
		f.mu.Lock()
		f.verifyErrs = append(f.verifyErrs, err)
		f.mu.Unlock()
		w.WriteHeader(zerohash.VerifyStatus(err))
		_ = json.NewEncoder(w).Encode(map[string]any{"error": true, "message": err.Error()})
		return
	}
	// Independent of the package: Zero Hash's published formula, recomputed here.
	inline := inlineSign(testSecret(f.t), r.Header.Get(zerohash.HeaderTimestamp)+r.Method+r.URL.RequestURI()+string(body))
	if got := r.Header.Get(zerohash.HeaderSigned); got != inline {
		f.t.Errorf("fake: X-SCX-SIGNED = %s, inline recomputation = %s", got, inline)
	}
	if r.Method != http.MethodPost || r.URL.Path != zerohash.PathOnboardingToken {
		f.t.Errorf("fake: got %s %s", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("fake: Content-Type = %q", ct)
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil {
		f.t.Errorf("fake: body is not JSON: %v", err)
	}
	f.mu.Lock()
	f.attempts++
	attempt := f.attempts
	f.requestIDs = append(f.requestIDs, r.Header.Get(zerohash.HeaderRequestID))
	f.bodies = append(f.bodies, decoded)
	f.mu.Unlock()

	w.Header().Set(zerohash.HeaderRequestID, r.Header.Get(zerohash.HeaderRequestID))
	if f.answer != nil {
		f.answer(w, r, attempt)
		return
	}
	grantToken(w, r, attempt)
}

func (f *fakeZeroHash) snapshot() (ids []string, bodies []map[string]any, verifyErrs []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requestIDs...), append([]map[string]any(nil), f.bodies...), append([]error(nil), f.verifyErrs...)
}

// grantToken is the documented 200 answer.
func grantToken(w http.ResponseWriter, r *http.Request, _ int) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"message":{"email":"`+testEmail+`","token":"`+testToken+`"}}`)
}

func reply(status int, header map[string]string, body string) answer {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func testOptions(baseURL string) zerohash.Options {
	return zerohash.Options{
		BaseURL:    baseURL,
		APIKey:     testAPIKey,
		APISecret:  testSecretB64,
		Passphrase: testPassphrase,
		Now:        func() time.Time { return serverClock },
	}
}

func newClient(t *testing.T, opts zerohash.Options) *zerohash.Client {
	t.Helper()
	c, err := zerohash.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// assertNoSecrets fails if text carries PII or a credential.
func assertNoSecrets(t *testing.T, text string) {
	t.Helper()
	for _, s := range []string{testEmail, testPhone, testToken, testPassphrase, testSecretB64, string(testSecret(t))} {
		if strings.Contains(text, s) {
			t.Errorf("%q leaks %q", text, s)
		}
	}
}

func TestOnboardingTokenSuccess(t *testing.T) {
	tests := []struct {
		name      string
		phone     string
		tls       bool
		basePath  string
		wantPhone bool
	}{
		{name: "email and phone", phone: testPhone, wantPhone: true},
		{name: "email only", phone: ""},
		{name: "phone with plus", phone: "+" + testPhone, wantPhone: true},
		{name: "over TLS", phone: testPhone, tls: true, wantPhone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeZeroHash{t: t}
			var srv *httptest.Server
			if tt.tls {
				srv = httptest.NewTLSServer(f)
			} else {
				srv = httptest.NewServer(f)
			}
			defer srv.Close()
			opts := testOptions(srv.URL + "/")
			if tt.tls {
				opts.HTTPClient = srv.Client()
			}
			token, err := newClient(t, opts).OnboardingToken(context.Background(), testRequestID, testEmail, tt.phone)
			if err != nil {
				t.Fatalf("OnboardingToken: %v", err)
			}
			if token != testToken {
				t.Errorf("token = %q, want %q", token, testToken)
			}
			ids, bodies, verifyErrs := f.snapshot()
			if len(verifyErrs) != 0 || len(ids) != 1 {
				t.Fatalf("server saw %d accepted requests, verify errors %v", len(ids), verifyErrs)
			}
			if ids[0] != testRequestID {
				t.Errorf("X-REQUEST-ID = %q, want %q", ids[0], testRequestID)
			}
			if bodies[0]["email"] != testEmail {
				t.Errorf("body email = %v", bodies[0]["email"])
			}
			phone, hasPhone := bodies[0]["phone_number"]
			if hasPhone != tt.wantPhone || (tt.wantPhone && phone != tt.phone) {
				t.Errorf("body phone_number = %v (present %v), want %q", phone, hasPhone, tt.phone)
			}
			if len(bodies[0]) != 1+btoi(tt.wantPhone) {
				t.Errorf("body has unexpected keys: %v", bodies[0])
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestOnboardingTokenClockWindow(t *testing.T) {
	tests := []struct {
		name   string
		skew   time.Duration
		wantOK bool
	}{
		{"in sync", 0, true},
		{"60s slow", -60 * time.Second, true},
		{"60s fast", 60 * time.Second, true},
		{"61s slow", -61 * time.Second, false},
		{"61s fast", 61 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t, nil)
			opts := testOptions(srv.URL)
			opts.Now = func() time.Time { return serverClock.Add(tt.skew) }
			_, err := newClient(t, opts).OnboardingToken(context.Background(), testRequestID, testEmail, testPhone)
			_, _, verifyErrs := f.snapshot()
			if tt.wantOK {
				if err != nil {
					t.Fatalf("OnboardingToken: %v", err)
				}
				return
			}
			var apiErr *zerohash.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Retryable {
				t.Fatalf("err = %v, want a non-retryable 403", err)
			}
			if len(verifyErrs) != 1 || !errors.Is(verifyErrs[0], zerohash.ErrStaleTimestamp) {
				t.Errorf("server verify errors = %v, want one ErrStaleTimestamp", verifyErrs)
			}
		})
	}
}

func TestOnboardingTokenWrongCredentialsRejectedByServer(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*zerohash.Options)
		wantErr error
	}{
		{"wrong passphrase", func(o *zerohash.Options) { o.Passphrase = "not-the-passphrase" }, zerohash.ErrCredentialsMismatch},
		{"wrong api key", func(o *zerohash.Options) { o.APIKey = "not-the-key" }, zerohash.ErrCredentialsMismatch},
		{"wrong secret", func(o *zerohash.Options) { o.APISecret = base64.StdEncoding.EncodeToString([]byte("another secret")) }, zerohash.ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t, nil)
			opts := testOptions(srv.URL)
			tt.mutate(&opts)
			_, err := newClient(t, opts).OnboardingToken(context.Background(), testRequestID, testEmail, testPhone)
			var apiErr *zerohash.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Retryable {
				t.Fatalf("err = %v, want a non-retryable 403", err)
			}
			if _, _, verifyErrs := f.snapshot(); len(verifyErrs) != 1 || !errors.Is(verifyErrs[0], tt.wantErr) {
				t.Errorf("server verify errors = %v, want %v", verifyErrs, tt.wantErr)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestOnboardingTokenRetryReusesRequestID(t *testing.T) {
	tests := []struct {
		name  string
		first answer
	}{
		{"after 500", reply(http.StatusInternalServerError, nil, `{"errors":["internal error"]}`)},
		{"after 503 with zh-allow-retry", reply(http.StatusServiceUnavailable, map[string]string{"zh-allow-retry": "true"}, ``)},
		{"after 429", reply(http.StatusTooManyRequests, map[string]string{"Retry-After": "1"}, ``)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
				if attempt == 1 {
					tt.first(w, r, attempt)
					return
				}
				grantToken(w, r, attempt)
			})
			c := newClient(t, testOptions(srv.URL))
			// The caller's retry loop, as an activity would run it: same request id every time.
			var token string
			var err error
			for attempt := 1; attempt <= 3; attempt++ {
				token, err = c.OnboardingToken(context.Background(), testRequestID, testEmail, testPhone)
				if retryable, _ := zerohash.RetryInfo(err); !retryable {
					break
				}
			}
			if err != nil || token != testToken {
				t.Fatalf("after retry: token %q, err %v", token, err)
			}
			ids, _, verifyErrs := f.snapshot()
			if len(ids) != 2 || ids[0] != testRequestID || ids[1] != testRequestID {
				t.Errorf("X-REQUEST-IDs = %v, want the same id twice", ids)
			}
			if len(verifyErrs) != 0 {
				t.Errorf("server verify errors = %v", verifyErrs)
			}
		})
	}
}

func TestOnboardingTokenErrorClasses(t *testing.T) {
	longBody := `{"errors":["` + strings.Repeat("x", 70<<10) + `"]}`
	retryDate := serverClock.Add(7 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name          string
		answer        answer
		wantStatus    int
		wantRetryable bool
		wantAfter     time.Duration
		wantText      []string
		wantErrors    []string
	}{
		{name: "400 platform does not exist", answer: reply(400, nil, `{"errors":["Platform does not exist"]}`),
			wantStatus: 400, wantText: []string{"platform does not exist", "Platform does not exist"}, wantErrors: []string{"Platform does not exist"}},
		{name: "400 errors as objects", answer: reply(400, nil, `{"errors":[{"field":"email","reason":"invalid"}, 7]}`),
			wantStatus: 400, wantErrors: []string{`{"field":"email","reason":"invalid"}`, "7"}},
		{name: "400 echoing the email and phone", answer: reply(400, nil, `{"errors":["participant ALICE@Example.com with phone `+testPhone+` not found"]}`),
			wantStatus: 400, wantErrors: []string{"participant [email redacted] with phone [phone redacted] not found"}},
		{name: "400 not JSON", answer: reply(400, nil, `<html>bad request</html>`), wantStatus: 400, wantText: []string{"platform does not exist"}},
		{name: "400 body over 64 KiB", answer: reply(400, nil, longBody), wantStatus: 400},
		{name: "403 not configured for KYC track", answer: reply(403, nil, `{"error":true,"message":"Forbidden"}`),
			wantStatus: 403, wantText: []string{"not configured by Zero Hash for this KYC track", "Forbidden"}},
		{name: "404", answer: reply(404, nil, `{"error":"Not Found"}`), wantStatus: 404, wantText: []string{"endpoint not found", "Not Found"}},
		{name: "429 with Retry-After seconds", answer: reply(429, map[string]string{"Retry-After": "3"}, ``),
			wantStatus: 429, wantRetryable: true, wantAfter: 3 * time.Second, wantText: []string{"rate limited"}},
		{name: "429 with Retry-After date", answer: reply(429, map[string]string{"Retry-After": retryDate}, ``),
			wantStatus: 429, wantRetryable: true, wantAfter: 7 * time.Second},
		{name: "429 without Retry-After", answer: reply(429, nil, `{"error":"Too Many Requests"}`),
			wantStatus: 429, wantRetryable: true, wantAfter: zerohash.RateLimitBackoff},
		{name: "429 with garbage Retry-After", answer: reply(429, map[string]string{"Retry-After": "soon"}, ``),
			wantStatus: 429, wantRetryable: true, wantAfter: zerohash.RateLimitBackoff},
		{name: "500 retryable with same request id", answer: reply(500, nil, `{"errors":["internal"]}`),
			wantStatus: 500, wantRetryable: true, wantText: []string{"same request id"}},
		{name: "503 with zh-allow-retry", answer: reply(503, map[string]string{"zh-allow-retry": "true"}, ``),
			wantStatus: 503, wantRetryable: true},
		{name: "503 with zh-allow-retry TRUE and Retry-After", answer: reply(503, map[string]string{"zh-allow-retry": "TRUE", "Retry-After": "2"}, ``),
			wantStatus: 503, wantRetryable: true, wantAfter: 2 * time.Second},
		{name: "503 without zh-allow-retry", answer: reply(503, nil, ``),
			wantStatus: 503, wantText: []string{"did not allow a retry"}},
		{name: "503 with zh-allow-retry false", answer: reply(503, map[string]string{"zh-allow-retry": "false"}, ``),
			wantStatus: 503},
		{name: "502", answer: reply(502, nil, ``), wantStatus: 502, wantRetryable: true},
		{name: "504", answer: reply(504, nil, ``), wantStatus: 504, wantRetryable: true},
		{name: "401", answer: reply(401, nil, `{"error":true,"message":"Unauthorized"}`), wantStatus: 401, wantText: []string{"Unauthorized"}},
		{name: "422", answer: reply(422, nil, ``), wantStatus: 422},
		{name: "200 not JSON", answer: reply(200, nil, `token please`), wantStatus: 200, wantText: []string{"not the documented JSON"}},
		{name: "200 without token", answer: reply(200, nil, `{"message":{"email":"`+testEmail+`"}}`), wantStatus: 200, wantText: []string{"no message.token"}},
		{name: "200 with message as string", answer: reply(200, nil, `{"message":"ok"}`), wantStatus: 200},
		{name: "200 over 64 KiB", answer: reply(200, nil, `{"message":{"token":"`+strings.Repeat("t", 70<<10)+`"}}`), wantStatus: 200, wantText: []string{"exceeds 65536 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFake(t, tt.answer)
			token, err := newClient(t, testOptions(srv.URL)).OnboardingToken(context.Background(), testRequestID, testEmail, testPhone)
			if err == nil {
				t.Fatalf("OnboardingToken returned token %q, want an error", token)
			}
			var apiErr *zerohash.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if apiErr.StatusCode != tt.wantStatus {
				t.Errorf("StatusCode = %d, want %d", apiErr.StatusCode, tt.wantStatus)
			}
			retryable, after := zerohash.RetryInfo(err)
			if retryable != tt.wantRetryable || after != tt.wantAfter || apiErr.Retryable != retryable {
				t.Errorf("RetryInfo = %v, %v; want %v, %v", retryable, after, tt.wantRetryable, tt.wantAfter)
			}
			if apiErr.RequestID != testRequestID {
				t.Errorf("RequestID = %q, want %q", apiErr.RequestID, testRequestID)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
			if tt.wantErrors != nil && strings.Join(apiErr.Errors, "|") != strings.Join(tt.wantErrors, "|") {
				t.Errorf("Errors = %q, want %q", apiErr.Errors, tt.wantErrors)
			}
			if len(err.Error()) > 2048 {
				t.Errorf("error text is %d bytes; server text must be clipped", len(err.Error()))
			}
			assertNoSecrets(t, err.Error())
			assertNoSecrets(t, strings.ToLower(err.Error()))
		})
	}
}

func TestOnboardingTokenRedirectNotFollowed(t *testing.T) {
	var followed int
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed++ }))
	defer target.Close()
	f, srv := newFake(t, reply(http.StatusFound, map[string]string{"Location": target.URL + "/elsewhere"}, ``))
	_, err := newClient(t, testOptions(srv.URL)).OnboardingToken(context.Background(), testRequestID, testEmail, testPhone)
	var apiErr *zerohash.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusFound || apiErr.Retryable {
		t.Fatalf("err = %v, want a non-retryable 302 APIError", err)
	}
	if ids, _, _ := f.snapshot(); len(ids) != 1 || followed != 0 {
		t.Errorf("requests: origin %d, redirect target %d; want 1 and 0", len(ids), followed)
	}
}

func TestOnboardingTokenTransportFailures(t *testing.T) {
	closedURL := func(t *testing.T) string {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		return srv.URL
	}
	hangsUp := func(t *testing.T) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	// stalls answers only when the client gives up, so the client's own timeout is what ends the call.
	stalls := func(t *testing.T) string {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // the server notices a client hang-up only once the body is read
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) }) // runs first: cleanups are last-in, first-out
		return srv.URL
	}
	tests := []struct {
		name          string
		server        func(t *testing.T) string
		httpClient    *http.Client
		ctx           func() (context.Context, context.CancelFunc)
		wantRetryable bool
		wantTimeout   bool
		wantIs        error
	}{
		{name: "connection refused", server: closedURL, wantRetryable: true},
		{name: "connection closed without answer", server: hangsUp, wantRetryable: true},
		{name: "http client timeout", server: stalls, httpClient: &http.Client{Timeout: 50 * time.Millisecond}, wantRetryable: true, wantTimeout: true},
		{name: "caller deadline", server: stalls, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, wantRetryable: true, wantTimeout: true, wantIs: context.DeadlineExceeded},
		{name: "caller cancelled", server: stalls, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, wantRetryable: false, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(tt.server(t))
			opts.HTTPClient = tt.httpClient
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, err := newClient(t, opts).OnboardingToken(ctx, testRequestID, testEmail, testPhone)
			var apiErr *zerohash.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if apiErr.StatusCode != 0 || apiErr.Err == nil || apiErr.RequestID != testRequestID {
				t.Errorf("APIError = %+v, want status 0, a cause and the request id", apiErr)
			}
			if retryable, _ := zerohash.RetryInfo(err); retryable != tt.wantRetryable {
				t.Errorf("retryable = %v, want %v (err %v)", retryable, tt.wantRetryable, err)
			}
			var netErr net.Error
			if tt.wantTimeout && !(errors.As(err, &netErr) && netErr.Timeout()) {
				t.Errorf("err = %v, want a timeout", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestOnboardingTokenRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name, requestID, email, phone string
		wantText                      string
	}{
		{name: "empty request id", requestID: "", email: testEmail, wantText: "requestID"},
		{name: "request id not a uuid", requestID: "retry-1", email: testEmail, wantText: "requestID"},
		{name: "request id v1", requestID: "6f1c2a4e-3b7d-11ee-9a1f-2d3e4f5a6b7c", email: testEmail, wantText: "version-4"},
		{name: "request id v7", requestID: "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", email: testEmail, wantText: "version-4"},
		{name: "request id nil uuid", requestID: "00000000-0000-0000-0000-000000000000", email: testEmail, wantText: "version-4"},
		{name: "request id wrong variant", requestID: "6f1c2a4e-3b7d-4c8e-ca1f-2d3e4f5a6b7c", email: testEmail, wantText: "version-4"},
		{name: "request id urn form", requestID: "urn:uuid:" + testRequestID, email: testEmail, wantText: "canonical"},
		{name: "request id braces", requestID: "{" + testRequestID + "}", email: testEmail, wantText: "canonical"},
		{name: "request id no hyphens", requestID: strings.ReplaceAll(testRequestID, "-", ""), email: testEmail, wantText: "canonical"},
		{name: "empty email", requestID: testRequestID, email: "", wantText: "email is required"},
		{name: "email without at", requestID: testRequestID, email: "alice.example.com", wantText: "email"},
		{name: "email with display name", requestID: testRequestID, email: "Alice <" + testEmail + ">", wantText: "email"},
		{name: "email with spaces", requestID: testRequestID, email: " " + testEmail, wantText: "email"},
		{name: "email too long", requestID: testRequestID, email: strings.Repeat("a", 250) + "@example.com", wantText: "longer than 254"},
		{name: "phone with letters", requestID: testRequestID, email: testEmail, phone: "3351234567x", wantText: "phone"},
		{name: "phone too short", requestID: testRequestID, email: testEmail, phone: "12345", wantText: "phone"},
		{name: "phone too long", requestID: testRequestID, email: testEmail, phone: "1234567890123456", wantText: "phone"},
		{name: "phone formatted", requestID: testRequestID, email: testEmail, phone: "+33 5 12 34 56 78", wantText: "phone"},
	}
	f, srv := newFake(t, nil)
	c := newClient(t, testOptions(srv.URL))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.OnboardingToken(context.Background(), tt.requestID, tt.email, tt.phone)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantText)
			}
			if retryable, _ := zerohash.RetryInfo(err); retryable {
				t.Error("a bad argument must not be retryable")
			}
			for _, v := range []string{tt.email, tt.phone} {
				if v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("error %q echoes %q", err, v)
				}
			}
		})
	}
	if ids, _, _ := f.snapshot(); len(ids) != 0 {
		t.Errorf("server received %d requests for bad arguments", len(ids))
	}
	// An upper-case v4 uuid is still a v4 uuid.
	if _, err := c.OnboardingToken(context.Background(), strings.ToUpper(testRequestID), testEmail, ""); err != nil {
		t.Errorf("upper-case request id: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(o *zerohash.Options)
		wantText string
		secret   string // a value that must not appear in the error
	}{
		{"empty BaseURL", func(o *zerohash.Options) { o.BaseURL = "" }, "Options.BaseURL", ""},
		{"relative BaseURL", func(o *zerohash.Options) { o.BaseURL = "/participants" }, "Options.BaseURL", ""},
		{"unparseable BaseURL", func(o *zerohash.Options) { o.BaseURL = "https://api.zerohash.com:port:x" }, "Options.BaseURL", ""},
		{"ftp BaseURL", func(o *zerohash.Options) { o.BaseURL = "ftp://api.zerohash.com" }, "Options.BaseURL", ""},
		{"plain http to a remote host", func(o *zerohash.Options) { o.BaseURL = "http://api.zerohash.com" }, "Options.BaseURL", ""},
		{"BaseURL with user info", func(o *zerohash.Options) { o.BaseURL = "https://user:hunter2@api.zerohash.com" }, "Options.BaseURL", "hunter2"},
		{"BaseURL with query", func(o *zerohash.Options) { o.BaseURL = "https://api.zerohash.com?x=1" }, "Options.BaseURL", ""},
		{"empty APIKey", func(o *zerohash.Options) { o.APIKey = "" }, "Options.APIKey", ""},
		{"APIKey with newline", func(o *zerohash.Options) { o.APIKey = "key\r\nX-Injected: 1" }, "Options.APIKey", "X-Injected"},
		{"APIKey with padding", func(o *zerohash.Options) { o.APIKey = " key " }, "Options.APIKey", ""},
		{"empty APISecret", func(o *zerohash.Options) { o.APISecret = "" }, "Options.APISecret", ""},
		{"APISecret not base64", func(o *zerohash.Options) { o.APISecret = "not*base64*secret" }, "Options.APISecret", "not*base64*secret"},
		{"empty Passphrase", func(o *zerohash.Options) { o.Passphrase = "" }, "Options.Passphrase", ""},
		{"Passphrase with control char", func(o *zerohash.Options) { o.Passphrase = "pass\x00word" }, "Options.Passphrase", "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions("https://api.cert.zerohash.com")
			tt.mutate(&opts)
			c, err := zerohash.New(opts)
			if err == nil || c != nil {
				t.Fatalf("New = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err = %q, want it to name %q", err, tt.wantText)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("err = %q echoes the value", err)
			}
		})
	}
	for _, ok := range []string{"https://api.zerohash.com", "https://api.cert.zerohash.com/", "http://127.0.0.1:8080", "http://localhost:9000/zh", "http://[::1]:80"} {
		if _, err := zerohash.New(testOptions(ok)); err != nil {
			t.Errorf("New(BaseURL %s): %v", ok, err)
		}
	}
}

func TestOnboardingTokenBaseURLPathIsSigned(t *testing.T) {
	// A sandbox mounted under a prefix: the signed path must be the one the server sees.
	var (
		mu        sync.Mutex
		gotPath   string
		verifyErr error
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		mu.Lock()
		gotPath = r.URL.Path
		verifyErr = zerohash.VerifyRequest(r, body, testCreds(t), serverClock)
		mu.Unlock()
		grantToken(w, r, 1)
	}))
	defer srv.Close()
	token, err := newClient(t, testOptions(srv.URL+"/zh/")).OnboardingToken(context.Background(), testRequestID, testEmail, "")
	if err != nil || token != testToken {
		t.Fatalf("OnboardingToken = %q, %v", token, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotPath != "/zh"+zerohash.PathOnboardingToken {
		t.Errorf("server path = %q, want the prefix kept", gotPath)
	}
	if verifyErr != nil {
		t.Errorf("VerifyRequest on the prefixed path: %v", verifyErr)
	}
}
