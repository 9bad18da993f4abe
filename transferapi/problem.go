package transferapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// problemBase prefixes every problem type; a type never changes once published, so clients may switch on it.
const problemBase = "urn:connectflow:problem:"

// Problem types, one per kind of error. docs/api.md lists them with their statuses.
const (
	TypeUnauthorized        = problemBase + "unauthorized"           // 401: no or wrong credentials
	TypeForbidden           = problemBase + "forbidden"              // 403: the caller lacks the operator role
	TypeNotFound            = problemBase + "not-found"              // 404: no such route
	TypeTransferNotFound    = problemBase + "transfer-not-found"     // 404: no transfer with this kind and id
	TypeMethodNotAllowed    = problemBase + "method-not-allowed"     // 405
	TypeMalformedBody       = problemBase + "malformed-body"         // 400: not one JSON object (a wrong-typed field is 422)
	TypeBodyTooLarge        = problemBase + "body-too-large"         // 413
	TypeUnsupportedMedia    = problemBase + "unsupported-media-type" // 415: Content-Type is not application/json
	TypeInvalidRequest      = problemBase + "invalid-request"        // 422: fields missing, malformed, null, wrong-typed or unknown
	TypeTransferConflict    = problemBase + "transfer-conflict"      // 409: the transfer id exists with another body
	TypeTransferClosed      = problemBase + "transfer-closed"        // 409: the transfer has finished
	TypeTransferBusy        = problemBase + "transfer-busy"          // 409: if_busy=refuse and the reference is busy
	TypeNotResolvable       = problemBase + "not-resolvable"         // 409: only a stalled or timed-out transfer is resolved
	TypeReviewNotFound      = problemBase + "review-not-found"       // 404: no review workflow with this id
	TypeReviewClosed        = problemBase + "review-closed"          // 409: the review was resolved or redelivered already
	TypeNotDeliverable      = problemBase + "not-deliverable"        // 409: the review holds nothing a transfer takes now
	TypeSessionRefused      = problemBase + "session-refused"        // 502: Connect refused the session
	TypeOnboardingRefused   = problemBase + "onboarding-refused"     // 502: Zero Hash refused the onboarding token
	TypeReconcileFailed     = problemBase + "reconcile-failed"       // 502: the reconciliation run failed
	TypeTemporalUnavailable = problemBase + "temporal-unavailable"   // 503: Temporal cannot be reached; retry
	TypeTimeout             = problemBase + "timeout"                // 504: no answer in time (is a worker running?)
	TypeInternal            = problemBase + "internal"               // 500
)

// Problem is an RFC 9457 problem details object. Detail never holds a secret, a token or personal data.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors names each invalid field of a 422, one entry per field.
	Errors []FieldError `json:"errors,omitempty"`
	// Code is the upstream error's code for a 502 (e.g. Connect's "ConnectForbidden").
	Code string `json:"code,omitempty"`
	// RetryAfter mirrors the Retry-After header of a 503, in seconds.
	RetryAfter int `json:"retry_after,omitempty"`

	header http.Header
}

// FieldError is one invalid field: its JSON name (a dotted path for nested fields) and what is wrong.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error makes a Problem usable as an error inside the package.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Title
	}
	return p.Title + ": " + p.Detail
}

// titles are the fixed, human-readable summary of each type.
var titles = map[string]string{
	TypeUnauthorized:        "Missing or invalid credentials",
	TypeForbidden:           "The caller lacks the role this call needs",
	TypeNotFound:            "No such route",
	TypeTransferNotFound:    "No such transfer",
	TypeMethodNotAllowed:    "Method not allowed on this route",
	TypeMalformedBody:       "The body is not the JSON this route takes",
	TypeBodyTooLarge:        "The body is too large",
	TypeUnsupportedMedia:    "The body must be application/json",
	TypeInvalidRequest:      "Invalid request",
	TypeTransferConflict:    "The transfer id exists with a different body",
	TypeTransferClosed:      "The transfer has finished",
	TypeTransferBusy:        "Another transfer of this reference awaits its user",
	TypeNotResolvable:       "The transfer cannot be resolved now",
	TypeReviewNotFound:      "No such review",
	TypeReviewClosed:        "The review was resolved or redelivered already",
	TypeNotDeliverable:      "The review's event cannot be delivered to a transfer",
	TypeSessionRefused:      "Connect refused the session",
	TypeOnboardingRefused:   "Zero Hash refused the onboarding token",
	TypeReconcileFailed:     "The reconciliation run failed",
	TypeTemporalUnavailable: "Temporal is unreachable; retry later",
	TypeTimeout:             "No answer in time",
	TypeInternal:            "Internal error",
}

// statuses are the HTTP status of each type.
var statuses = map[string]int{
	TypeUnauthorized:        http.StatusUnauthorized,
	TypeForbidden:           http.StatusForbidden,
	TypeNotFound:            http.StatusNotFound,
	TypeTransferNotFound:    http.StatusNotFound,
	TypeMethodNotAllowed:    http.StatusMethodNotAllowed,
	TypeMalformedBody:       http.StatusBadRequest,
	TypeBodyTooLarge:        http.StatusRequestEntityTooLarge,
	TypeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	TypeInvalidRequest:      http.StatusUnprocessableEntity,
	TypeTransferConflict:    http.StatusConflict,
	TypeTransferClosed:      http.StatusConflict,
	TypeTransferBusy:        http.StatusConflict,
	TypeNotResolvable:       http.StatusConflict,
	TypeReviewNotFound:      http.StatusNotFound,
	TypeReviewClosed:        http.StatusConflict,
	TypeNotDeliverable:      http.StatusConflict,
	TypeSessionRefused:      http.StatusBadGateway,
	TypeOnboardingRefused:   http.StatusBadGateway,
	TypeReconcileFailed:     http.StatusBadGateway,
	TypeTemporalUnavailable: http.StatusServiceUnavailable,
	TypeTimeout:             http.StatusGatewayTimeout,
	TypeInternal:            http.StatusInternalServerError,
}

// ProblemTypes lists every problem type this API answers with.
func ProblemTypes() []string {
	out := make([]string, 0, len(statuses))
	for t := range statuses {
		out = append(out, t)
	}
	return out
}

// ProblemStatus is the HTTP status a problem type is answered with, or 0 for an unknown type.
func ProblemStatus(typ string) int { return statuses[typ] }

// RetryAfter is what a 503 asks the caller to wait before retrying.
const RetryAfter = 5 * time.Second

// newProblem returns the problem of type typ with its title and status. An unknown type is a programming error
// and panics.
func newProblem(typ, detail string) *Problem {
	status, ok := statuses[typ]
	if !ok {
		panic("transferapi: unknown problem type " + typ)
	}
	p := &Problem{Type: typ, Title: titles[typ], Status: status, Detail: detail}
	switch typ {
	case TypeTemporalUnavailable:
		p.RetryAfter = int(RetryAfter / time.Second)
		p.setHeader("Retry-After", strconv.Itoa(p.RetryAfter))
	case TypeUnauthorized:
		p.setHeader("WWW-Authenticate", `Bearer realm="connectflow"`)
	case TypeForbidden:
		p.setHeader("WWW-Authenticate", `Bearer realm="connectflow", error="insufficient_scope"`)
	}
	return p
}

func (p *Problem) setHeader(k, v string) {
	if p.header == nil {
		p.header = http.Header{}
	}
	p.header.Set(k, v)
}

// invalid is a 422 naming each bad field.
func invalid(errs ...FieldError) *Problem {
	sortFieldErrors(errs)
	detail := ""
	for i, e := range errs {
		if i > 0 {
			detail += "; "
		}
		detail += e.Field + ": " + e.Detail
	}
	p := newProblem(TypeInvalidRequest, detail)
	p.Errors = errs
	return p
}

// WriteProblem answers p as application/problem+json with its headers (Retry-After, WWW-Authenticate).
func WriteProblem(w http.ResponseWriter, p *Problem) {
	for k, v := range p.header {
		w.Header()[k] = v
	}
	body, err := json.Marshal(p)
	if err != nil { // a Problem holds only strings and ints
		panic(err)
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body) // a client that went away cannot be answered
}
