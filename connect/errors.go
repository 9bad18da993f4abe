package connect

import (
	"encoding/json"
	"errors"
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

// APIError is a failed call to Connect: a network error (StatusCode 0) or an error answer.
type APIError struct {
	Op         string        // OpToken or OpCreateSession
	StatusCode int           // 0 for network errors
	ErrorCode  string        // Connect's `code`, else its `error` (e.g. invalid_client)
	Message    string        // Connect's `message` / `error_description`, or "HTTP <status>" for non-JSON answers
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
			if e.Message != "" {
				b.WriteString(": ")
				b.WriteString(e.Message)
			}
		}
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
		e.ErrorCode = firstNonEmpty(jsonText(eb.Code), jsonText(eb.Error))
		e.Message = firstNonEmpty(jsonText(eb.Message), jsonText(eb.ErrorDescription))
		e.ErrorCode = safeText(e.ErrorCode, maxMessageLen, sensitive)
		e.Message = safeText(e.Message, maxMessageLen, sensitive)
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
