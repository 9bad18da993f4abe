// Package activities holds connectflow's Temporal activities: the Connect and Zero Hash API calls.
// Credentials and access tokens live in the worker's clients, never in activity input, output or history.
package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/zerohash"
)

// SessionCreator opens Connect sessions; *connect.Client is one.
type SessionCreator interface {
	CreateSession(ctx context.Context, req connect.SessionRequest) (*connect.Session, error)
}

// OnboardingIssuer issues Zero Hash onboarding tokens; *zerohash.Client is one.
type OnboardingIssuer interface {
	OnboardingToken(ctx context.Context, requestID, email, phone string) (string, error)
}

// Activities are registered on the worker with the shared, long-lived API clients.
type Activities struct {
	Connect  SessionCreator
	ZeroHash OnboardingIssuer
	// Temporal lets a transfer reach other workflows: supersede older transfers, open reviews (temporal.go).
	Temporal Temporal
	// Platform receives every transfer's status changes (platform.go); nil turns notifications off.
	Platform *Platform
}

// CreateSession opens the Connect session for a transfer. req.RequestID makes retries idempotent at Connect.
func (a *Activities) CreateSession(ctx context.Context, req connect.SessionRequest) (connect.Session, error) {
	if a.Connect == nil {
		return connect.Session{}, temporal.NewNonRetryableApplicationError("worker has no Connect client configured", "ConnectNotConfigured", nil)
	}
	s, err := a.Connect.CreateSession(ctx, req)
	if err != nil {
		return connect.Session{}, connectError(err)
	}
	return *s, nil
}

// OnboardingInput asks for one KYC onboarding token. RequestID is a UUIDv4 chosen once and reused on retries.
type OnboardingInput struct {
	RequestID string `json:"request_id"`
	Email     string `json:"email"`
	Phone     string `json:"phone,omitempty"`
}

// OnboardingResult carries the token for the platform's web SDK.
type OnboardingResult struct {
	Token string `json:"token"`
}

// IssueOnboardingToken calls Zero Hash's POST /participants/onboarding_token.
func (a *Activities) IssueOnboardingToken(ctx context.Context, in OnboardingInput) (OnboardingResult, error) {
	if a.ZeroHash == nil {
		return OnboardingResult{}, temporal.NewNonRetryableApplicationError("worker has no Zero Hash client configured", "ZeroHashNotConfigured", nil)
	}
	token, err := a.ZeroHash.OnboardingToken(ctx, in.RequestID, in.Email, in.Phone)
	if err != nil {
		return OnboardingResult{}, zeroHashError(err)
	}
	return OnboardingResult{Token: token}, nil
}

// ErrTypeSessionUnusable is the error type of a session Connect opened but that cannot be used (its JWT expires no
// later than it was issued, or expired before it arrived): the transfer fails with this reason at once instead of
// waiting for an expiry that has already passed. Retrying replays the same session, so it is not retried.
const ErrTypeSessionUnusable = "ConnectSessionUnusable"

// connectError turns a Connect client error into an application error Temporal retries (or not) correctly.
func connectError(err error) error {
	if errors.Is(err, connect.ErrSessionUnusable) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeSessionUnusable, err)
	}
	var apiErr *connect.APIError
	status := 0
	if errors.As(err, &apiErr) {
		status = apiErr.StatusCode
	} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		// Not from the API at all: the request itself was invalid, and retrying cannot fix it.
		return temporal.NewNonRetryableApplicationError(err.Error(), "ConnectInvalidRequest", err)
	}
	retryable, after := connect.RetryInfo(err)
	return applicationError("Connect", status, err, retryable, after)
}

// zeroHashError is connectError for the Zero Hash platform API.
func zeroHashError(err error) error {
	var apiErr *zerohash.APIError
	status := 0
	if errors.As(err, &apiErr) {
		status = apiErr.StatusCode
	} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "ZeroHashInvalidRequest", err)
	}
	retryable, after := zerohash.RetryInfo(err)
	return applicationError("ZeroHash", status, err, retryable, after)
}

// applicationError names the failure by service and HTTP status, e.g. "ConnectForbidden", and carries the
// server's Retry-After as the next retry delay.
func applicationError(service string, status int, err error, retryable bool, after time.Duration) error {
	return temporal.NewApplicationErrorWithOptions(err.Error(), service+StatusTypeName(status), temporal.ApplicationErrorOptions{
		NonRetryable:   !retryable,
		NextRetryDelay: after,
		Cause:          err,
	})
}

// StatusTypeName names an HTTP status for an error type: 403 -> "Forbidden", 0 -> "Unreachable".
func StatusTypeName(status int) string {
	switch {
	case status == 0:
		return "Unreachable"
	case status == http.StatusTooManyRequests:
		return "RateLimited"
	case status >= 500:
		return "ServerError"
	}
	if text := http.StatusText(status); text != "" {
		return camel(text)
	}
	return fmt.Sprintf("HTTP%d", status)
}

// camel turns "Not Found" into "NotFound" and "I'm a teapot" into "ImATeapot".
func camel(s string) string {
	out := make([]byte, 0, len(s))
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			if upper && c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			upper = false
		case c == '\'':
		default:
			upper = true
		}
	}
	return string(out)
}
