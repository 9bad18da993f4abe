package zerohash

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Retry timing Zero Hash documents.
const (
	// RateLimitBackoff is how long Zero Hash blocks an IP after a 429; used when Retry-After is absent.
	RateLimitBackoff = 10 * time.Second
	// headerAllowRetry on a 503 says the request was not processed and may be sent again.
	headerAllowRetry = "zh-allow-retry"
	// maxErrorText bounds how much server text an error carries.
	maxErrorText = 512
)

// The onboarding endpoint's published meanings of 400 and 403; other endpoints reword them (see Movements).
const (
	msgBadRequest = "platform does not exist or the request is invalid"
	msgForbidden  = "platform is not configured by Zero Hash for this KYC track, or the credentials were rejected"
)

// APIError is a failed platform API call: an HTTP error status, an unusable answer, or no answer at all
// (StatusCode 0). Retryable says whether sending the same request again, with the same X-REQUEST-ID, is safe and
// may succeed; RetryAfter, when non-zero, is how long to wait first.
type APIError struct {
	StatusCode int
	Message    string   // what went wrong, readable; server text has emails and the phone number redacted
	Errors     []string // the server's "errors" list, redacted like Message
	RequestID  string   // X-REQUEST-ID, as echoed by the server or else as sent
	Retryable  bool
	RetryAfter time.Duration
	Err        error // the transport or decoding error behind this one, if any
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("zerohash: ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s: ", e.StatusCode, http.StatusText(e.StatusCode))
	}
	b.WriteString(e.Message)
	if len(e.Errors) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Errors, "; "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// RetryInfo reports whether err (or an error it wraps) is an APIError worth retrying with the same request id,
// and how long to wait first. Any other error is not retryable.
func RetryInfo(err error) (retryable bool, after time.Duration) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Retryable, apiErr.RetryAfter
	}
	return false, 0
}

// errorBody is the union of Zero Hash's error shapes: {"errors":[...]}, {"error":true,"message":...},
// {"error":"Not Found"}. Members stay raw so an unexpected type never fails the decode.
type errorBody struct {
	Errors  []json.RawMessage `json:"errors"`
	Error   json.RawMessage   `json:"error"`
	Message json.RawMessage   `json:"message"`
}

// statusError classifies an HTTP error answer. body is at most maxResponseBytes; redact scrubs PII from server text.
func statusError(resp *http.Response, body []byte, now time.Time, redact func(string) string) *APIError {
	e := &APIError{StatusCode: resp.StatusCode}
	var parsed errorBody
	if json.Unmarshal(body, &parsed) == nil {
		for _, raw := range parsed.Errors {
			e.Errors = append(e.Errors, redact(jsonText(raw)))
		}
	}
	serverText := redact(firstNonEmpty(jsonString(parsed.Message), jsonString(parsed.Error)))

	switch code := resp.StatusCode; {
	case code == http.StatusBadRequest:
		e.Message = msgBadRequest
	case code == http.StatusForbidden:
		e.Message = msgForbidden
	case code == http.StatusNotFound:
		e.Message = "endpoint not found (check BaseURL)"
	case code == http.StatusTooManyRequests:
		e.Message = "rate limited"
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
		if e.RetryAfter == 0 {
			e.RetryAfter = RateLimitBackoff
		}
	case code == http.StatusInternalServerError:
		// The POST may have been applied; a retry is safe only because it reuses the same X-REQUEST-ID, which
		// OnboardingToken requires.
		e.Message = "server error; retry with the same request id"
		e.Retryable = true
	case code == http.StatusServiceUnavailable:
		if strings.EqualFold(strings.TrimSpace(resp.Header.Get(headerAllowRetry)), "true") {
			e.Message = "service unavailable; Zero Hash allows a retry"
			e.Retryable = true
			e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
		} else {
			e.Message = "service unavailable; Zero Hash did not allow a retry (zh-allow-retry absent)"
		}
	case code >= 500:
		e.Message = "server error"
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	case code >= 300 && code < 400:
		e.Message = "unexpected redirect (redirects are not followed: the signature covers the path)"
	default:
		e.Message = "request rejected"
	}
	if serverText != "" {
		e.Message += ": " + serverText
	}
	return e
}

// retryAfter parses Retry-After as delay-seconds or an HTTP date; zero when absent, invalid or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 32); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// jsonString is a JSON string's value; any other JSON value (true, null, an object) is not a message.
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return clip(s)
}

// jsonText is a JSON string's value, or any other JSON value as its compact text.
func jsonText(raw json.RawMessage) string {
	if s := jsonString(raw); s != "" {
		return s
	}
	return clip(string(raw))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func clip(s string) string {
	if len(s) > maxErrorText {
		return s[:maxErrorText] + "..."
	}
	return s
}

// emailPattern finds anything email-like in server text, whatever case the server wrote it in.
var emailPattern = regexp.MustCompile(`[^\s"'<>(),;:\[\]]+@[^\s"'<>(),;:\[\]]+`)

// redactor returns a function scrubbing every email address and the given phone number from server text.
func redactor(phone string) func(string) string {
	digits := strings.TrimPrefix(phone, "+")
	return func(s string) string {
		s = emailPattern.ReplaceAllString(s, "[email redacted]")
		if digits != "" {
			s = strings.ReplaceAll(s, digits, "[phone redacted]")
		}
		return s
	}
}
