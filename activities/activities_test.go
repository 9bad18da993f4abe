package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/zerohash"
)

type fakeConnect struct{ err error }

func (f fakeConnect) CreateSession(context.Context, connect.SessionRequest) (*connect.Session, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &connect.Session{ID: "sess-1", JWT: "jwt"}, nil
}

type fakeZeroHash struct{ err error }

func (f fakeZeroHash) OnboardingToken(context.Context, string, string, string) (string, error) {
	return "tok", f.err
}

func TestErrorsBecomeTypedApplicationErrors(t *testing.T) {
	cases := []struct {
		name      string
		run       func(*Activities) error
		wantType  string
		retryable bool
		delay     time.Duration
	}{
		{"connect 403", connectCall(&connect.APIError{Op: connect.OpCreateSession, StatusCode: 403, Message: "scope not allowed"}), "ConnectForbidden", false, 0},
		{"connect 400", connectCall(&connect.APIError{StatusCode: 400}), "ConnectBadRequest", false, 0},
		{"connect 404", connectCall(&connect.APIError{StatusCode: 404}), "ConnectNotFound", false, 0},
		{"connect 409", connectCall(&connect.APIError{StatusCode: 409}), "ConnectConflict", false, 0},
		{"connect 429", connectCall(&connect.APIError{StatusCode: 429, Retryable: true, RetryAfter: 7 * time.Second}), "ConnectRateLimited", true, 7 * time.Second},
		{"connect 503", connectCall(&connect.APIError{StatusCode: 503, Retryable: true}), "ConnectServerError", true, 0},
		{"connect network", connectCall(&connect.APIError{Retryable: true, Err: errors.New("connection refused")}), "ConnectUnreachable", true, 0},
		{"connect invalid request", connectCall(fmt.Errorf("%w: ReferenceID is empty", connect.ErrInvalidSessionRequest)), "ConnectInvalidRequest", false, 0},
		{"connect session unusable", connectCall(fmt.Errorf("%w: session JWT exp 2025-07-24T15:42:07Z is not after its iat 2025-07-24T15:42:07Z", connect.ErrSessionUnusable)), ErrTypeSessionUnusable, false, 0},
		{"connect not configured", func(a *Activities) error { a.Connect = nil; return connectCall(nil)(a) }, "ConnectNotConfigured", false, 0},
		{"zerohash 403", zeroHashCall(&zerohash.APIError{StatusCode: 403}), "ZeroHashForbidden", false, 0},
		{"zerohash 503 allow retry", zeroHashCall(&zerohash.APIError{StatusCode: 503, Retryable: true}), "ZeroHashServerError", true, 0},
		{"zerohash 429", zeroHashCall(&zerohash.APIError{StatusCode: 429, Retryable: true, RetryAfter: 10 * time.Second}), "ZeroHashRateLimited", true, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run(&Activities{})
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("want an application error, got %T %v", err, err)
			}
			if appErr.Type() != c.wantType || appErr.NonRetryable() == c.retryable || appErr.NextRetryDelay() != c.delay {
				t.Fatalf("got type %q nonRetryable %v delay %v; want %q retryable %v delay %v",
					appErr.Type(), appErr.NonRetryable(), appErr.NextRetryDelay(), c.wantType, c.retryable, c.delay)
			}
		})
	}
}

func connectCall(err error) func(*Activities) error {
	return func(a *Activities) error {
		if a.Connect == nil && err != nil {
			a.Connect = fakeConnect{err: err}
		}
		_, got := a.CreateSession(context.Background(), connect.SessionRequest{})
		return got
	}
}

func zeroHashCall(err error) func(*Activities) error {
	return func(a *Activities) error {
		a.ZeroHash = fakeZeroHash{err: err}
		_, got := a.IssueOnboardingToken(context.Background(), OnboardingInput{RequestID: "r", Email: "e@example.com"})
		return got
	}
}

func TestSuccessPassesResultsThrough(t *testing.T) {
	a := &Activities{Connect: fakeConnect{}, ZeroHash: fakeZeroHash{}}
	s, err := a.CreateSession(context.Background(), connect.SessionRequest{})
	if err != nil || s.ID != "sess-1" || s.JWT != "jwt" {
		t.Fatalf("session %+v, %v", s, err)
	}
	out, err := a.IssueOnboardingToken(context.Background(), OnboardingInput{})
	if err != nil || out.Token != "tok" {
		t.Fatalf("onboarding %+v, %v", out, err)
	}
}

func TestStatusTypeName(t *testing.T) {
	for status, want := range map[int]string{0: "Unreachable", 401: "Unauthorized", 408: "RequestTimeout",
		418: "ImATeapot", 422: "UnprocessableEntity", 429: "RateLimited", 500: "ServerError", 599: "ServerError", 499: "HTTP499"} {
		if got := StatusTypeName(status); got != want {
			t.Errorf("StatusTypeName(%d) = %q, want %q", status, got, want)
		}
	}
}

// Through real HTTP: a session the sandbox issues already expired (its clock two hours behind) fails the activity
// at once with a named, non-retryable error instead of a transfer that would expire on arrival.
func TestCreateSessionUnusableSessionIsNonRetryable(t *testing.T) {
	srv := connecttest.NewServer(t, connecttest.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }, TokenTTL: 4 * time.Hour})
	c, err := connect.New(connect.Options{BaseURL: srv.URL + "/api/v1", ClientID: connecttest.DefaultClientID,
		ClientSecret: connecttest.DefaultClientSecret, OrganizationID: connecttest.DefaultOrganizationID})
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Connect: c}
	_, err = a.CreateSession(context.Background(), connect.SessionRequest{RequestID: "deposit-late", Kind: connect.KindDeposit, ReferenceID: "LATE"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeSessionUnusable || !appErr.NonRetryable() ||
		!strings.Contains(appErr.Error(), "before it arrived") {
		t.Fatalf("err %v, want a non-retryable %s saying the session expired before it arrived", err, ErrTypeSessionUnusable)
	}
}
