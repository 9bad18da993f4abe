package connect

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectflow/connectflow/internal/telemetry"
)

const (
	sessionsPath          = "/sessions"
	headerConnectClientID = "x-connect-client-id"

	defaultRequestTimeout = 30 * time.Second
	defaultDialTimeout    = 10 * time.Second
	// defaultMaxIdleConns keeps a burst's connections for the next burst, all to the one Connect host: over
	// HTTP/1.1 a connection beyond the idle limit is closed and later re-dialed, TLS handshake included.
	defaultMaxIdleConns = 100
)

// Options configures a Client. BaseURL, ClientID, ClientSecret and OrganizationID are required.
type Options struct {
	BaseURL      string // e.g. https://api.sandbox.connect.xyz/api/v1 (a trailing slash is ignored)
	ClientID     string // Connect API client_id
	ClientSecret string // Connect API client_secret; never logged or returned
	// OrganizationID is the organization_id Connect issued: sent in the token request and as x-connect-client-id
	// on every session request (the OpenAPI: it "must match the organization ID in the JWT").
	OrganizationID string
	// Audience is the token request's audience; default the scheme and host of BaseURL
	// (https://api.sandbox.connect.xyz for https://api.sandbox.connect.xyz/api/v1), as in the OpenAPI's example.
	Audience string
	// WithdrawalScope is the scope of withdrawal sessions: ScopeWithdrawalRequest (default, the OpenAPI's) or
	// ScopeWithdrawalSend (the guide's). Deposit sessions always ask for ScopeDepositSend.
	WithdrawalScope Scope
	// OrgKey, when set, signs every session request (headers timestamp, signature); see Sign.
	OrgKey *rsa.PrivateKey
	// RequireSignature makes New fail without an OrgKey, for organizations whose Connect requires signed requests.
	RequireSignature bool
	HTTPClient       *http.Client     // default: a shared client with timeouts and a pooled transport
	RefreshAhead     time.Duration    // refresh this long before expiry; default min(60s, lifetime/10); at most lifetime/2
	Now              func() time.Time // default time.Now; injectable for tests
}

// Client calls the Connect API. It is safe for concurrent use and shares one access token among its callers.
type Client struct {
	opts        Options
	baseURL     string
	sessionsURL string
	http        *http.Client
	now         func() time.Time
	tokens      tokenSource
}

// ErrOptions wraps every Options problem New reports; the message names the field.
var ErrOptions = errors.New("connect: invalid options")

// New checks opts, fills its defaults (Audience, WithdrawalScope) and returns a Client. It makes no network call.
func New(opts Options) (*Client, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(opts.ClientID) == "":
		return nil, fmt.Errorf("%w: Options.ClientID is empty", ErrOptions)
	case strings.TrimSpace(opts.ClientSecret) == "":
		return nil, fmt.Errorf("%w: Options.ClientSecret is empty", ErrOptions)
	case strings.TrimSpace(opts.OrganizationID) == "":
		return nil, fmt.Errorf("%w: Options.OrganizationID is empty: Connect issues it with the API credentials", ErrOptions)
	case opts.RefreshAhead < 0:
		return nil, fmt.Errorf("%w: Options.RefreshAhead %v is negative", ErrOptions, opts.RefreshAhead)
	case opts.RequireSignature && opts.OrgKey == nil:
		return nil, fmt.Errorf("%w: Options.RequireSignature is set but Options.OrgKey is nil: signed requests need the organization's private key", ErrOptions)
	}
	if err := CheckWithdrawalScope(opts.WithdrawalScope); err != nil {
		return nil, fmt.Errorf("%w: Options.WithdrawalScope: %w", ErrOptions, err)
	}
	if opts.WithdrawalScope == "" {
		opts.WithdrawalScope = DefaultWithdrawalScope
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience(base)
	}
	if opts.OrgKey != nil {
		if err := opts.OrgKey.Validate(); err != nil {
			return nil, fmt.Errorf("%w: Options.OrgKey is not a usable RSA key: %w", ErrOptions, err)
		}
	}
	c := &Client{opts: opts, baseURL: base, sessionsURL: base + sessionsPath, http: opts.HTTPClient, now: opts.Now}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	c.http = telemetry.HTTPClient(c.http, telemetry.PeerConnect) // a span per call when tracing is on
	if c.now == nil {
		c.now = time.Now
	}
	c.tokens.c = c
	return c, nil
}

// CheckWithdrawalScope accepts "" (the default) and the scopes in WithdrawalScopes.
func CheckWithdrawalScope(s Scope) error {
	if s == "" || slices.Contains(WithdrawalScopes, s) {
		return nil
	}
	return fmt.Errorf("%q is not a withdrawal scope: use %s (the OpenAPI's, the default) or %s (the guide's)",
		safeText(string(s), 64, nil), ScopeWithdrawalRequest, ScopeWithdrawalSend)
}

// DefaultAudience is the token audience for a Connect API base URL: its scheme and host, without the path
// (https://api.sandbox.connect.xyz for https://api.sandbox.connect.xyz/api/v1). A URL that does not parse gives "".
func DefaultAudience(baseURL string) string {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// WithdrawalScope is the scope this Client's withdrawal sessions ask for.
func (c *Client) WithdrawalScope() Scope { return c.opts.WithdrawalScope }

// Audience is the audience this Client's token requests send.
func (c *Client) Audience() string { return c.opts.Audience }

// parseBaseURL accepts an absolute http(s) URL without credentials, query or fragment and drops a trailing slash.
func parseBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", errors.New("connect: Options.BaseURL is empty")
	case err != nil:
		return "", fmt.Errorf("connect: Options.BaseURL does not parse: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("connect: Options.BaseURL scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return "", errors.New("connect: Options.BaseURL has no host")
	case u.User != nil:
		return "", errors.New("connect: Options.BaseURL must not carry credentials; use ClientID and ClientSecret")
	case u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("connect: Options.BaseURL must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// defaultHTTPClient is shared by every Client so their connections pool together.
var defaultHTTPClient = sync.OnceValue(func() *http.Client {
	return &http.Client{
		Timeout: defaultRequestTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          defaultMaxIdleConns,
			MaxIdleConnsPerHost:   defaultMaxIdleConns,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   defaultDialTimeout,
			ResponseHeaderTimeout: defaultRequestTimeout,
			ExpectContinueTimeout: time.Second,
		},
		// An API answer that redirects is a misconfiguration; following it would resend credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
})

// TokenFetches is the number of /oauth/token requests this Client has made, for tests and benchmarks.
func (c *Client) TokenFetches() int64 { return c.tokens.fetches.Load() }

// CreateSession opens a Connect session for req. Retries of one logical request must reuse req.RequestID; the
// request_id Connect sees is SessionRequestID(req.RequestID), a UUID. A session Connect answers with but that cannot
// be used (its JWT's exp is not after its iat, or it expired before it arrived) is an error wrapping
// ErrSessionUnusable.
func (c *Client) CreateSession(ctx context.Context, req SessionRequest) (*Session, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	scope := ScopeDepositSend
	if req.Kind == KindWithdrawal {
		scope = c.opts.WithdrawalScope
	}
	body, err := encodeSessionRequest(req, scope)
	if err != nil {
		return nil, fmt.Errorf("connect: create session: encode request: %w", err)
	}
	status, answer, err := c.postAuthorized(ctx, OpCreateSession, c.sessionsURL, body)
	if err != nil {
		withScopeHint(err, scope)
		return nil, err
	}
	return decodeSession(status, answer, req, c.now())
}

// postAuthorized POSTs body with the access token. On a 401 it drops that token, fetches a new one and tries
// once more; a second 401 is returned. It returns the status and body of a 2xx answer.
func (c *Client) postAuthorized(ctx context.Context, op, url string, body []byte) (int, []byte, error) {
	const attempts = 2
	for attempt := 1; ; attempt++ {
		token, err := c.tokens.token(ctx)
		if err != nil {
			return 0, nil, err
		}
		req, err := c.newRequest(ctx, op, url, body, token)
		if err != nil {
			return 0, nil, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return 0, nil, networkError(op, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt < attempts {
			discard(resp)
			c.tokens.invalidate(token)
			continue
		}
		return c.readAnswer(op, resp, body, token)
	}
}

// newRequest builds an authorized JSON POST, signed with the organization key when one is configured.
func (c *Client) newRequest(ctx context.Context, op, url string, body []byte, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("connect: %s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(headerConnectClientID, c.opts.OrganizationID) // the OpenAPI: must match the JWT's organization
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.opts.OrgKey != nil {
		timestamp := strconv.FormatInt(c.now().Unix(), 10)
		signature, err := Sign(c.opts.OrgKey, timestamp, http.MethodPost, url, body)
		if err != nil {
			return nil, fmt.Errorf("connect: %s: sign request: %w", op, err)
		}
		req.Header.Set(HeaderTimestamp, timestamp)
		req.Header.Set(HeaderSignature, signature)
	}
	return req, nil
}

// readAnswer returns a 2xx answer's status and body, or the APIError for any other status. token is the access
// token the request carried ("" for the token request itself); like the secret, it is kept out of the error.
func (c *Client) readAnswer(op string, resp *http.Response, sent []byte, token string) (int, []byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, nil, statusError(op, resp, c.now(), sent, c.opts.ClientSecret, token)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxSuccessBody))
	if err != nil {
		return 0, nil, networkError(op, err)
	}
	return resp.StatusCode, answer, nil
}

// discard drains a little of a body we will not use so the connection can be reused, then closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // best effort: only connection reuse is at stake
	_ = resp.Body.Close()
}
