package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The classification table: every status the brief lists, answered by /sessions.
func TestErrorClassification(t *testing.T) {
	clock := newFakeClock()
	httpDate := clock.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	connectError := func(code, message string) string {
		return fmt.Sprintf(`{"error":"%s","code":"%s","message":"%s"}`, http.StatusText(400), code, message)
	}
	tests := []struct {
		status        int
		retryAfter    string
		body          string
		wantRetryable bool
		wantAfter     time.Duration
		wantCode      string
		wantMessage   string
	}{
		{408, "", connectError("timeout", "request timed out"), true, 0, "timeout", "request timed out"},
		{429, "7", connectError("rate_limited", "slow down"), true, 7 * time.Second, "rate_limited", "slow down"},
		{429, httpDate, connectError("rate_limited", "slow down"), true, 2 * time.Minute, "rate_limited", "slow down"},
		{429, "", connectError("rate_limited", "slow down"), true, 10 * time.Second, "rate_limited", "slow down"},
		{429, "soon", "", true, 10 * time.Second, "", "HTTP 429"},
		{500, "", connectError("internal", "boom"), true, 0, "internal", "boom"},
		{502, "", "<html><body>502 Bad Gateway</body></html>", true, 0, "", "HTTP 502: <html><body>502 Bad Gateway</body></html>"},
		{503, "30", `{"error":"unavailable","message":"maintenance"}`, true, 30 * time.Second, "unavailable", "maintenance"},
		{503, "", "", true, 0, "", "HTTP 503"},
		{400, "", connectError("invalid_body", "metadata must be an object"), false, 0, "invalid_body", "metadata must be an object"},
		{401, "", connectError("invalid_token", "access token rejected"), false, 0, "invalid_token", "access token rejected"},
		{403, "", connectError("scopes_not_allowed", "request signature rejected"), false, 0, "scopes_not_allowed", "request signature rejected"},
		{404, "", `{"error":"Not Found"}`, false, 0, "Not Found", ""},
		{409, "", connectError("session_active", "a session is already active"), false, 0, "session_active", "a session is already active"},
		{422, "", `{"code":1234,"message":"amount below the minimum"}`, false, 0, "", "amount below the minimum"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.retryAfter), func(t *testing.T) {
			f := newFakeConnect(t)
			f.set(func(f *fakeConnect) {
				f.onSession = func(w http.ResponseWriter, _ *http.Request, _ int64) bool {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(tt.body))
					return true
				}
			})
			c := newTestClient(t, f, func(o *Options) { o.Now = clock.Now })
			_, err := c.CreateSession(context.Background(), depositRequest("req"))
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if apiErr.Op != OpCreateSession || apiErr.StatusCode != tt.status || apiErr.Retryable != tt.wantRetryable ||
				apiErr.RetryAfter != tt.wantAfter || apiErr.ErrorCode != tt.wantCode || apiErr.Message != tt.wantMessage {
				t.Fatalf("got  %#v\nwant status %d retryable %v after %v code %q message %q",
					apiErr, tt.status, tt.wantRetryable, tt.wantAfter, tt.wantCode, tt.wantMessage)
			}
			if retryable, after := RetryInfo(fmt.Errorf("activity: %w", err)); retryable != tt.wantRetryable || after != tt.wantAfter {
				t.Fatalf("RetryInfo through a wrap = %v %v", retryable, after)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.status)) {
				t.Fatalf("error %q does not name the status", err)
			}
			wantSessionCalls := int64(1)
			if tt.status == http.StatusUnauthorized {
				wantSessionCalls = 2 // the one refresh-and-retry
			}
			if n := f.sessionCalls.Load(); n != wantSessionCalls {
				t.Fatalf("session requests = %d, want %d", n, wantSessionCalls)
			}
			assertNoCredentials(t, f, err)
		})
	}
}

func TestNetworkErrorsAreRetryable(t *testing.T) {
	t.Run("closed server", func(t *testing.T) {
		f := newFakeConnect(t)
		c := newTestClient(t, f, nil)
		f.srv.Close()
		_, err := c.CreateSession(context.Background(), depositRequest("req"))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 0 || !apiErr.Retryable || apiErr.Err == nil || apiErr.Op != OpToken {
			t.Fatalf("err = %#v, want a retryable network APIError from the token call", err)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Fatalf("err = %v, want it to unwrap to *net.OpError", err)
		}
		assertNoCredentials(t, f, err)
	})

	t.Run("connection dropped on /sessions", func(t *testing.T) {
		f := newFakeConnect(t)
		f.set(func(f *fakeConnect) {
			f.onSession = func(w http.ResponseWriter, _ *http.Request, _ int64) bool {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return true
				}
				_ = conn.Close() // the client sees the connection die with no answer
				return true
			}
		})
		c := newTestClient(t, f, nil)
		_, err := c.CreateSession(context.Background(), depositRequest("req"))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 0 || !apiErr.Retryable || apiErr.Op != OpCreateSession || apiErr.Err == nil {
			t.Fatalf("err = %#v, want a retryable network APIError from create session", err)
		}
		assertNoCredentials(t, f, err)
	})

	// The slow server answers only when the test ends, so each case fails on its own deadline.
	slowSessions := func(t *testing.T, f *fakeConnect) {
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		f.set(func(f *fakeConnect) {
			f.onSession = func(_ http.ResponseWriter, r *http.Request, _ int64) bool {
				select {
				case <-r.Context().Done():
				case <-done:
				}
				return true
			}
		})
	}

	t.Run("context deadline", func(t *testing.T) {
		f := newFakeConnect(t)
		slowSessions(t, f)
		c := newTestClient(t, f, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.CreateSession(ctx, depositRequest("req"))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || !apiErr.Retryable || apiErr.StatusCode != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %#v, want a retryable APIError wrapping context.DeadlineExceeded", err)
		}
		assertNoCredentials(t, f, err)
	})

	t.Run("http client timeout", func(t *testing.T) {
		f := newFakeConnect(t)
		slowSessions(t, f)
		c := newTestClient(t, f, func(o *Options) { o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} })
		_, err := c.CreateSession(context.Background(), depositRequest("req"))
		var apiErr *APIError
		var netErr net.Error
		if !errors.As(err, &apiErr) || !apiErr.Retryable || !errors.As(err, &netErr) || !netErr.Timeout() {
			t.Fatalf("err = %#v, want a retryable APIError wrapping a timeout", err)
		}
		assertNoCredentials(t, f, err)
	})
}

func TestRetryInfoOnOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("plain"), ErrInvalidSessionRequest, context.Canceled} {
		if retryable, after := RetryInfo(err); retryable || after != 0 {
			t.Errorf("RetryInfo(%v) = %v %v, want false 0", err, retryable, after)
		}
	}
}

// Servers that echo what we sent must not get our credentials or request into an error string.
func TestErrorsNeverEchoCredentials(t *testing.T) {
	tests := []struct {
		name   string
		status int
		// body builds the answer from the request the server received.
		body        func(auth, reqBody string) string
		wantMessage string
	}{
		{"JSON message repeating the bearer token", 400,
			func(auth, _ string) string { return `{"code":"bad","message":"rejected ` + auth + `"}` }, withheld},
		{"JSON code repeating part of the token", 403,
			func(auth, _ string) string {
				return `{"code":"` + auth[len(auth)-10:] + `","message":"no"}`
			}, "no"},
		{"text body echoing the request", 500,
			func(_, reqBody string) string { return "could not process " + reqBody }, "HTTP 500"},
		{"text body echoing the token", 502,
			func(auth, _ string) string { return "upstream said " + auth }, "HTTP 502"},
		{"HTML body echoing the token past the excerpt", 504,
			func(auth, _ string) string { return "<html>gateway timeout</html>" + strings.Repeat("-", 100) + auth },
			"HTTP 504: <html>gateway timeout</html>" + strings.Repeat("-", maxExcerptLen-28) + "..."},
		{"text body whose excerpt reaches the token", 504,
			func(auth, _ string) string { return "gateway timeout" + strings.Repeat(" ", 200) + auth }, "HTTP 504"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConnect(t)
			f.set(func(f *fakeConnect) {
				f.onSession = func(w http.ResponseWriter, r *http.Request, _ int64) bool {
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(tt.body(r.Header.Get("Authorization"), string(f.lastRequest().Body))))
					return true
				}
			})
			c := newTestClient(t, f, nil)
			_, err := c.CreateSession(context.Background(), depositRequest("req-echo"))
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("err = %v, want a %d APIError", err, tt.status)
			}
			if apiErr.Message != tt.wantMessage {
				t.Fatalf("message = %q, want %q", apiErr.Message, tt.wantMessage)
			}
			if apiErr.ErrorCode != "" && apiErr.ErrorCode != "bad" && apiErr.ErrorCode != withheld {
				t.Fatalf("code = %q", apiErr.ErrorCode)
			}
			assertNoCredentials(t, f, err)
			if strings.Contains(err.Error(), "req-echo") {
				t.Fatalf("error %q echoes the request", err)
			}
		})
	}

	t.Run("token endpoint echoing the secret", func(t *testing.T) {
		f := newFakeConnect(t)
		f.set(func(f *fakeConnect) {
			f.onToken = func(w http.ResponseWriter, _ *http.Request) bool {
				writeJSON(w, 401, map[string]any{"error": "invalid_client", "error_description": "bad secret " + testSecret[:20]})
				return true
			}
		})
		c := newTestClient(t, f, nil)
		_, err := c.CreateSession(context.Background(), depositRequest("req"))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Message != withheld || apiErr.ErrorCode != "invalid_client" {
			t.Fatalf("err = %#v", err)
		}
		assertNoCredentials(t, f, err)
		if strings.Contains(err.Error(), testSecret[:20]) {
			t.Fatalf("error %q contains part of the secret", err)
		}
	})
}

func TestErrorBodyReadIsCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(strings.Repeat("x", 4*maxErrorBody)))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	counting := &countingReader{r: resp.Body}
	resp.Body = counting
	apiErr := statusError(OpCreateSession, resp, time.Now(), nil)
	if counting.n > maxErrorBody {
		t.Fatalf("read %d bytes of the error body, cap is %d", counting.n, maxErrorBody)
	}
	if len(apiErr.Message) > len("HTTP 502: ")+maxExcerptLen+len("...") {
		t.Fatalf("message is %d bytes long", len(apiErr.Message))
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingReader) Close() error { return nil }

func TestSafeText(t *testing.T) {
	tests := []struct {
		in        string
		limit     int
		sensitive []string
		want      string
	}{
		{"plain", 10, nil, "plain"},
		{"  line one\n\tline\x00 two  ", 40, nil, "line one line two"},
		{"abcdefghijkl", 5, nil, "abcde..."},
		{"token is SECRETVALUE123", 100, []string{"xxSECRETVALUExx"}, withheld},
		{"short abc here", 100, []string{"abc"}, withheld},
		{"unrelated text", 100, []string{"SECRETVALUE123", ""}, "unrelated text"},
	}
	for _, tt := range tests {
		if got := safeText(tt.in, tt.limit, tt.sensitive); got != tt.want {
			t.Errorf("safeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAPIErrorString(t *testing.T) {
	tests := []struct {
		err  *APIError
		want string
	}{
		{&APIError{Op: OpToken, StatusCode: 401, ErrorCode: "invalid_client", Message: "Client authentication failed"},
			"connect: token: HTTP 401 invalid_client: Client authentication failed"},
		{&APIError{Op: OpCreateSession, StatusCode: 502, Message: "HTTP 502: Bad Gateway", Retryable: true},
			"connect: create session: HTTP 502: Bad Gateway"},
		{&APIError{Op: OpCreateSession, StatusCode: 429, ErrorCode: "rate_limited", Retryable: true, RetryAfter: 10 * time.Second},
			"connect: create session: HTTP 429 rate_limited (retry after 10s)"},
		{&APIError{Op: OpCreateSession, Err: context.DeadlineExceeded, Retryable: true},
			"connect: create session: context deadline exceeded"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
