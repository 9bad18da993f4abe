package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Op names carried by APIError.
const (
	OpToken         = "token"
	OpCreateSession = "create session"
)

const (
	// maxErrorBody caps how much of an error answer is read; Connect's error JSON is tiny.
	maxErrorBody = 64 << 10
	// defaultRateLimitDelay is the wait on a 429 that names none: Zero Hash blocks a throttled caller for 10 s.
	defaultRateLimitDelay = 10 * time.Second
	// maxRetryAfter bounds a server-supplied delay so a hostile or broken header cannot stall a caller for days.
	maxRetryAfter = 24 * time.Hour
	// maxMessageLen keeps server-supplied text in an error readable and bounded.
	maxMessageLen = 300
	// maxExcerptLen is how much of a non-JSON error body may appear in a message.
	maxExcerptLen = 80
	// echoWindow is the shortest run shared with a credential or our request that makes text unsafe to show.
	echoWindow = 8
	// withheld replaces server text that repeats a credential.
	withheld = "[withheld: the answer repeated a credential]"
)

// Error body shapes an APIError can come from.
const (
	ShapeOAuth   = "oauth"   // POST /oauth/token: {error, error_description} (RFC 6749)
	ShapeConnect = "connect" // POST /sessions: {error, code, message}, code a gRPC status code
)

// APIError is a failed call to Connect: a network error (StatusCode 0) or an error answer.
type APIError struct {
	Op         string // OpToken or OpCreateSession
	StatusCode int    // 0 for network errors
	// ErrorCode names the error: a textual `code`, else `error` (e.g. invalid_client, scope_not_allowed).
	ErrorCode string
	// Code is a numeric `code` as sent (the sessions shape's gRPC status code, e.g. "7"); CodeName is its gRPC
	// name (PERMISSION_DENIED) when it is one.
	Code, CodeName string
	// Shape is ShapeOAuth or ShapeConnect when the body was one of the published error shapes, else "".
	Shape      string
	Message    string        // Connect's `message` / `error_description`, or "HTTP <status>" for non-JSON answers
	Hint       string        // what to change on our side, when the answer says it (e.g. a scope the organization lacks)
	Retryable  bool          // whether sending the same request again can succeed
	RetryAfter time.Duration // from Retry-After on 429/503; 10 s on a 429 without it; 0 = use backoff
	Err        error         // underlying network error, if any
}

// Error describes the failure; it never holds the client secret, an access token or a session JWT.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("connect: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.StatusCode == 0 {
		if e.Err != nil {
			b.WriteString(e.Err.Error())
		} else {
			b.WriteString(e.Message)
		}
	} else {
		status := "HTTP " + strconv.Itoa(e.StatusCode)
		switch {
		case e.ErrorCode == "" && strings.HasPrefix(e.Message, status):
			b.WriteString(e.Message) // a non-JSON answer's message already names the status
		default:
			b.WriteString(status)
			if e.ErrorCode != "" {
				b.WriteString(" ")
				b.WriteString(e.ErrorCode)
			}
			if e.Code != "" {
				b.WriteString(" (code ")
				b.WriteString(e.Code)
				if e.CodeName != "" {
					b.WriteString(" ")
					b.WriteString(e.CodeName)
				}
				b.WriteString(")")
			}
			if e.Message != "" {
				b.WriteString(": ")
				b.WriteString(e.Message)
			}
		}
	}
	if e.Hint != "" {
		b.WriteString(" [")
		b.WriteString(e.Hint)
		b.WriteString("]")
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the underlying network error, if any.
func (e *APIError) Unwrap() error { return e.Err }

// RetryInfo reports whether a retry can help and the delay the server asked for (0 = use backoff).
// Errors that are not *APIError (bad input, malformed answers wrapped elsewhere) are not retryable.
func RetryInfo(err error) (retryable bool, after time.Duration) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Retryable, apiErr.RetryAfter
	}
	return false, 0
}

// retryableStatus is the classification table: timeouts, throttling and server faults may pass; the rest will not.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// networkError wraps a failure to get an answer at all (dial, TLS, reset, timeout, cancelled ctx).
// The request may not have reached Connect, and our calls are idempotent, so it is retryable.
func networkError(op string, err error) *APIError {
	return &APIError{Op: op, Err: err, Retryable: true}
}

// errorBody is the union of Connect's error shapes: {error, code, message} and OAuth's {error, error_description}.
type errorBody struct {
	Error            json.RawMessage `json:"error"`
	Code             json.RawMessage `json:"code"`
	Message          json.RawMessage `json:"message"`
	ErrorDescription json.RawMessage `json:"error_description"`
}

// statusError builds the APIError for a non-2xx answer. It reads at most maxErrorBody bytes of resp.Body.
// sensitive lists credentials that must not be echoed; request is the body we sent (never echoed either).
func statusError(op string, resp *http.Response, now time.Time, request []byte, sensitive ...string) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a short read still classifies by status
	e := &APIError{
		Op:         op,
		StatusCode: resp.StatusCode,
		Retryable:  retryableStatus(resp.StatusCode),
		RetryAfter: retryAfter(resp, now),
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && (eb.Error != nil || eb.Code != nil || eb.Message != nil || eb.ErrorDescription != nil) {
		code := jsonText(eb.Code)
		if isNumber(code) {
			e.Code, e.CodeName = code, grpcCodeName(code)
			code = ""
		}
		e.ErrorCode = safeText(firstNonEmpty(code, jsonText(eb.Error)), maxMessageLen, sensitive)
		e.Message = safeText(firstNonEmpty(jsonText(eb.Message), jsonText(eb.ErrorDescription)), maxMessageLen, sensitive)
		e.Code = safeText(e.Code, 20, nil)
		switch {
		case eb.ErrorDescription != nil:
			e.Shape = ShapeOAuth
		case eb.Code != nil || eb.Message != nil:
			e.Shape = ShapeConnect
		}
		return e
	}
	e.Message = "HTTP " + strconv.Itoa(resp.StatusCode)
	// A proxy page or plain-text error helps debugging, but only if it cannot repeat a credential or our request.
	if excerpt := safeText(string(body), maxExcerptLen, append(sensitive, string(request))); excerpt != "" && excerpt != withheld {
		e.Message += ": " + excerpt
	}
	return e
}

// retryAfter reads Retry-After (delta seconds or HTTP date) on 429 and 503; a 429 without one waits 10 s.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	var d time.Duration
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Duration(min(max(secs, 0), int64(maxRetryAfter/time.Second))) * time.Second
		} else if at, err := http.ParseTime(v); err == nil {
			d = min(max(at.Sub(now), 0), maxRetryAfter)
		}
	}
	if d == 0 && resp.StatusCode == http.StatusTooManyRequests {
		d = defaultRateLimitDelay
	}
	return d
}

// jsonText turns a JSON string or number into text; objects, arrays, booleans and null give "".
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// isNumber reports whether s is a plain non-negative integer.
func isNumber(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// grpcCodeNames are the gRPC status codes by number, the `code` of Connect's {error, code, message} errors.
var grpcCodeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// grpcCodeName names a numeric gRPC status code, or "" for a number that is not one.
func grpcCodeName(code string) string {
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 || n >= len(grpcCodeNames) {
		return ""
	}
	return grpcCodeNames[n]
}

// WithdrawalScopeSetting is the worker setting that chooses Options.WithdrawalScope; scope hints name it.
const WithdrawalScopeSetting = "CONNECT_WITHDRAWAL_SCOPE"

// withScopeHint adds to a 403 whose message is about scopes what to change: for a withdrawal scope, the setting
// that picks the other published scope; for the deposit scope, the organization's configuration at Zero Hash.
func withScopeHint(err error, sent Scope) {
	var e *APIError
	if !errors.As(err, &e) || e.StatusCode != http.StatusForbidden || e.Op != OpCreateSession {
		return
	}
	text := strings.ToLower(e.Message)
	if !strings.Contains(text, "scope") {
		return
	}
	switch sent {
	case ScopeWithdrawalRequest, ScopeWithdrawalSend:
		other := ScopeWithdrawalSend
		if sent == ScopeWithdrawalSend {
			other = ScopeWithdrawalRequest
		}
		e.Hint = fmt.Sprintf("Connect refused scope %s for this organization: set %s=%s, or ask Zero Hash to enable %s",
			sent, WithdrawalScopeSetting, other, sent)
	default:
		e.Hint = fmt.Sprintf("Connect refused scope %s for this organization: ask Zero Hash to enable it", sent)
	}
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// safeText makes server text fit for an error string: printable, one line, at most limit runes,
// and replaced by withheld if it shares an echoWindow-long run with any sensitive value.
func safeText(s string, limit int, sensitive []string) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if n >= limit {
			b.WriteString("...")
			break
		}
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	out := b.String()
	if echoes(out, sensitive) {
		return withheld
	}
	return out
}

// echoes reports whether text contains any run of echoWindow bytes (or a whole shorter value) of a sensitive value.
func echoes(text string, sensitive []string) bool {
	if text == "" {
		return false
	}
	grams := make(map[string]struct{}, len(text))
	for i := 0; i+echoWindow <= len(text); i++ {
		grams[text[i:i+echoWindow]] = struct{}{}
	}
	for _, s := range sensitive {
		switch {
		case s == "":
		case len(s) < echoWindow:
			if strings.Contains(text, s) {
				return true
			}
		default:
			for i := 0; i+echoWindow <= len(s); i++ {
				if _, ok := grams[s[i:i+echoWindow]]; ok {
					return true
				}
			}
		}
	}
	return false
}
