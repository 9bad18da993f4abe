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
	"strconv"
	"strings"
	"sync"
	"time"
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

// Options configures a Client. BaseURL, ClientID and ClientSecret are required.
type Options struct {
	BaseURL      string           // e.g. https://api.sandbox.connect.xyz/api/v1 (a trailing slash is ignored)
	ClientID     string           // Connect API client_id
	ClientSecret string           // Connect API client_secret; never logged or returned
	OrgKey       *rsa.PrivateKey  // optional: signs outbound requests (headers timestamp, signature)
	HTTPClient   *http.Client     // default: a shared client with timeouts and a pooled transport
	RefreshAhead time.Duration    // refresh this long before expiry; default min(60s, lifetime/10); at most lifetime/2
	Now          func() time.Time // default time.Now; injectable for tests
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

// New checks opts and returns a Client. It makes no network call.
func New(opts Options) (*Client, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(opts.ClientID) == "":
		return nil, errors.New("connect: Options.ClientID is empty")
	case strings.TrimSpace(opts.ClientSecret) == "":
		return nil, errors.New("connect: Options.ClientSecret is empty")
	case opts.RefreshAhead < 0:
		return nil, fmt.Errorf("connect: Options.RefreshAhead %v is negative", opts.RefreshAhead)
	}
	if opts.OrgKey != nil {
		if err := opts.OrgKey.Validate(); err != nil {
			return nil, fmt.Errorf("connect: Options.OrgKey is not a usable RSA key: %w", err)
		}
	}
	c := &Client{opts: opts, baseURL: base, sessionsURL: base + sessionsPath, http: opts.HTTPClient, now: opts.Now}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.tokens.c = c
	return c, nil
}

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

// CreateSession opens a Connect session for req. Retries of one logical request must reuse req.RequestID.
func (c *Client) CreateSession(ctx context.Context, req SessionRequest) (*Session, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	body, err := encodeSessionRequest(req)
	if err != nil {
		return nil, fmt.Errorf("connect: create session: encode request: %w", err)
	}
	status, answer, err := c.postAuthorized(ctx, OpCreateSession, c.sessionsURL, body)
	if err != nil {
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
	req.Header.Set(headerConnectClientID, c.opts.ClientID)
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
