package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	tokenPath = "/oauth/token"
	// defaultTokenLifetime applies when an answer omits expires_in: Connect documents 1 h as the default.
	defaultTokenLifetime = time.Hour
	// maxLifetime bounds a server-supplied expires_in so a broken value cannot overflow a time.Duration.
	maxLifetime = 30 * 24 * time.Hour
	// maxRefreshAhead is the default early-refresh margin for long-lived tokens.
	maxRefreshAhead = 60 * time.Second
	// tokenFetchTimeout bounds the shared fetch, which runs detached from any one caller's context.
	tokenFetchTimeout = 30 * time.Second
	// maxSuccessBody caps a success answer; tokens and session JWTs are a few KiB.
	maxSuccessBody = 1 << 20
	tokenFlightKey = "token"
)

// accessToken is the cached Connect access token. It never leaves the package.
type accessToken struct {
	value     string
	refreshAt time.Time // when callers stop using it and fetch a new one
}

// tokenSource keeps one access token per Client and lets concurrent callers share one fetch.
type tokenSource struct {
	c       *Client
	mu      sync.Mutex
	current *accessToken
	flight  singleflight.Group
	fetches atomic.Int64
}

// token returns a token that is not due for refresh, fetching one if needed. A caller whose ctx ends stops
// waiting, but the fetch it joined carries on for the others.
func (ts *tokenSource) token(ctx context.Context) (string, error) {
	if tok := ts.fresh(); tok != "" {
		return tok, nil
	}
	ch := ts.flight.DoChan(tokenFlightKey, func() (any, error) {
		// Another flight may have stored a token between our check and this flight starting.
		if tok := ts.fresh(); tok != "" {
			return tok, nil
		}
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
		defer cancel()
		return ts.fetch(fetchCtx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", networkError(OpToken, ctx.Err())
	}
}

// fresh returns the cached token if it is not yet due for refresh.
func (ts *tokenSource) fresh() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.current != nil && ts.c.now().Before(ts.current.refreshAt) {
		return ts.current.value
	}
	return ""
}

// invalidate drops tok after Connect rejected it, unless a newer token has already replaced it.
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.current != nil && ts.current.value == tok {
		ts.current = nil
	}
}

// GrantTypeClientCredentials is the only grant_type the Connect OpenAPI allows on POST /oauth/token.
const GrantTypeClientCredentials = "client_credentials"

// tokenRequest is the POST /oauth/token body. The Connect OpenAPI marks all five fields required; the guide's
// sample sends only client_id and client_secret, which Connect's published contract does not promise to accept.
type tokenRequest struct {
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
	Audience       string `json:"audience"`
	GrantType      string `json:"grant_type"`
	OrganizationID string `json:"organization_id"`
}

// tokenAnswer is the /oauth/token success body.
type tokenAnswer struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresIn   *float64 `json:"expires_in"`
}

// fetch asks Connect for a new access token and caches it.
func (ts *tokenSource) fetch(ctx context.Context) (string, error) {
	c := ts.c
	reqBody, err := json.Marshal(tokenRequest{
		ClientID:       c.opts.ClientID,
		ClientSecret:   c.opts.ClientSecret,
		Audience:       c.opts.Audience,
		GrantType:      GrantTypeClientCredentials,
		OrganizationID: c.opts.OrganizationID,
	})
	if err != nil {
		return "", fmt.Errorf("connect: token: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+tokenPath, bytes.NewReader(reqBody))
	if err != nil {
		return "", fmt.Errorf("connect: token: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	obtained := c.now() // measure lifetime from before the request so the token never outlives our view of it
	ts.fetches.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", networkError(OpToken, err)
	}
	status, body, err := c.readAnswer(OpToken, resp, reqBody, "")
	if err != nil {
		return "", err
	}
	var ans tokenAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return "", badAnswer(OpToken, status, "answer is not a JSON token object", err)
	}
	if ans.AccessToken == "" {
		return "", badAnswer(OpToken, status, "answer has no access_token", nil)
	}
	if ans.TokenType != "" && !strings.EqualFold(ans.TokenType, "Bearer") {
		return "", badAnswer(OpToken, status, fmt.Sprintf("unsupported token_type %q", safeText(ans.TokenType, 32, nil)), nil)
	}
	lifetime := defaultTokenLifetime
	if ans.ExpiresIn != nil {
		if *ans.ExpiresIn <= 0 {
			return "", badAnswer(OpToken, status, fmt.Sprintf("expires_in %v is not positive", *ans.ExpiresIn), nil)
		}
		lifetime = secondsToDuration(*ans.ExpiresIn)
	}
	tok := &accessToken{
		value:     ans.AccessToken,
		refreshAt: obtained.Add(lifetime - refreshMargin(c.opts.RefreshAhead, lifetime)),
	}
	ts.mu.Lock()
	ts.current = tok
	ts.mu.Unlock()
	return tok.value, nil
}

// refreshMargin is how long before expiry to refresh: the configured margin, else min(60 s, lifetime/10),
// never more than half the lifetime so a short-lived token is still reused.
func refreshMargin(configured, lifetime time.Duration) time.Duration {
	margin := configured
	if margin == 0 {
		margin = min(maxRefreshAhead, lifetime/10)
	}
	return min(margin, lifetime/2)
}

// secondsToDuration converts an expires_in in seconds, capped at maxLifetime.
func secondsToDuration(secs float64) time.Duration {
	if secs >= maxLifetime.Seconds() {
		return maxLifetime
	}
	return time.Duration(secs * float64(time.Second))
}

// badAnswer is a 2xx whose body we cannot use. Sending the same request again would get the same answer.
func badAnswer(op string, status int, msg string, cause error) *APIError {
	if cause != nil {
		msg += ": " + safeText(cause.Error(), maxMessageLen, nil)
	}
	return &APIError{Op: op, StatusCode: status, ErrorCode: "bad_answer", Message: msg}
}
