package zerohash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/connectflow/connectflow/internal/telemetry"
)

const (
	// PathOnboardingToken is the endpoint that issues a KYC onboarding token.
	PathOnboardingToken = "/participants/onboarding_token"
	// DefaultTimeout bounds one call when Options.HTTPClient is nil.
	DefaultTimeout = 30 * time.Second
	// maxResponseBytes caps how much of any answer is read.
	maxResponseBytes = 64 << 10
	// maxEmailLength is RFC 5321's limit on a forward path.
	maxEmailLength = 254
	// minPhoneDigits and maxPhoneDigits bound a phone number; 15 is E.164's maximum.
	minPhoneDigits, maxPhoneDigits = 6, 15
)

// Options configure a Client. Every field but HTTPClient and Now is required.
type Options struct {
	// BaseURL is the platform API root, e.g. https://api.cert.zerohash.com. Plain http is accepted only for a
	// loopback host (a local sandbox), because the passphrase travels in a header.
	BaseURL    string
	APIKey     string
	APISecret  string // base64 text, as Zero Hash issues it
	Passphrase string
	// HTTPClient sends the requests; nil means one with DefaultTimeout. Redirects are never followed.
	HTTPClient *http.Client
	// Now is the clock used for X-SCX-TIMESTAMP; nil means time.Now.
	Now func() time.Time
}

// Client calls the Zero Hash platform API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	creds Credentials
	http  *http.Client
	now   func() time.Time
}

// New checks opts and returns a Client. Errors name the offending field, never its value.
func New(opts Options) (*Client, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkHeaderValue("APIKey", opts.APIKey); err != nil {
		return nil, err
	}
	if err := checkHeaderValue("Passphrase", opts.Passphrase); err != nil {
		return nil, err
	}
	secret, err := ParseSecret(opts.APISecret)
	if err != nil {
		return nil, fmt.Errorf("zerohash: invalid Options.APISecret: %w", err)
	}
	httpClient := &http.Client{Timeout: DefaultTimeout}
	if opts.HTTPClient != nil {
		copied := *opts.HTTPClient
		httpClient = &copied
	}
	httpClient = telemetry.HTTPClient(httpClient, telemetry.PeerZeroHash) // a span per call when tracing is on
	// A redirect would resend to a path the signature does not cover (and turn the POST into a GET).
	httpClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		base:  base,
		creds: Credentials{APIKey: opts.APIKey, APISecret: secret, Passphrase: opts.Passphrase},
		http:  httpClient,
		now:   now,
	}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("zerohash: Options.BaseURL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, errors.New("zerohash: Options.BaseURL must be an absolute URL")
	}
	switch {
	case u.User != nil:
		return nil, errors.New("zerohash: Options.BaseURL must not carry user info")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, errors.New("zerohash: Options.BaseURL must not have a query or fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, errors.New("zerohash: Options.BaseURL must use https (http only for a loopback host)")
	default:
		return nil, errors.New("zerohash: Options.BaseURL scheme must be https")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHeaderValue rejects what would be empty or would break the header line it is sent in.
func checkHeaderValue(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("zerohash: Options.%s is required", field)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("zerohash: Options.%s contains a control character", field)
		}
	}
	if strings.TrimSpace(v) != v {
		return fmt.Errorf("zerohash: Options.%s has leading or trailing space", field)
	}
	return nil
}

type onboardingRequest struct {
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

type onboardingResponse struct {
	Message struct {
		Token string `json:"token"`
	} `json:"message"`
}

// OnboardingToken asks Zero Hash for a KYC onboarding token for the participant with this email (and optional
// phone number, digits with an optional leading +). requestID is the X-REQUEST-ID: a UUIDv4 the caller chooses
// once and reuses on every retry of this request, which is what makes retrying after a 500 safe.
// A failed call returns an *APIError; RetryInfo says whether to retry (network failures and timeouts are
// retryable, a cancelled ctx is not). Arguments are checked before anything is sent.
func (c *Client) OnboardingToken(ctx context.Context, requestID, email, phone string) (string, error) {
	if err := checkRequestID(requestID); err != nil {
		return "", err
	}
	if err := checkEmail(email); err != nil {
		return "", err
	}
	if err := checkPhone(phone); err != nil {
		return "", err
	}
	body, err := json.Marshal(onboardingRequest{Email: email, PhoneNumber: phone})
	if err != nil {
		return "", fmt.Errorf("zerohash: encode onboarding request: %w", err)
	}
	respBody, err := c.post(ctx, PathOnboardingToken, requestID, body, redactor(phone))
	if err != nil {
		return "", err
	}
	var parsed onboardingResponse
	if err := json.Unmarshal(respBody, &parsed); err != nil {
		return "", &APIError{StatusCode: http.StatusOK, Message: "onboarding token answer is not the documented JSON", RequestID: requestID, Err: err}
	}
	if parsed.Message.Token == "" {
		return "", &APIError{StatusCode: http.StatusOK, Message: "onboarding token answer has no message.token", RequestID: requestID}
	}
	return parsed.Message.Token, nil
}

// post sends one signed POST and returns the body of a 2xx answer; every failure is an *APIError.
func (c *Client) post(ctx context.Context, path, requestID string, body []byte, redact func(string) string) ([]byte, error) {
	return c.send(ctx, http.MethodPost, path, "", requestID, body, maxResponseBytes, redact)
}

// send makes one signed request (path plus rawQuery, both covered by the signature; a GET signs "{}" as its body)
// and returns the body of a 2xx answer; every failure is an *APIError.
// At most limit bytes of an answer are read; a longer one is an error.
func (c *Client) send(ctx context.Context, method, path, rawQuery, requestID string, body []byte, limit int, redact func(string) string) ([]byte, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = rawQuery
	pathWithQuery := u.RequestURI()
	now := c.now()
	timestamp := strconv.FormatInt(now.Unix(), 10)

	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return nil, fmt.Errorf("zerohash: build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderAPIKey, c.creds.APIKey)
	req.Header.Set(HeaderPassphrase, c.creds.Passphrase)
	req.Header.Set(HeaderTimestamp, timestamp)
	req.Header.Set(HeaderSigned, Sign(c.creds.APISecret, timestamp, method, pathWithQuery, body))
	req.Header.Set(HeaderRequestID, requestID)

	resp, err := c.http.Do(req)
	if err != nil {
		// The request may or may not have arrived; the same X-REQUEST-ID makes resending safe, unless the
		// caller itself gave up.
		return nil, &APIError{
			Message:   method + " " + path + " got no answer",
			RequestID: requestID,
			Retryable: !errors.Is(err, context.Canceled),
			Err:       err,
		}
	}
	defer resp.Body.Close()
	echoedID := firstNonEmpty(resp.Header.Get(HeaderRequestID), requestID)

	// One byte over the cap tells a full answer from a truncated one.
	respBody, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := statusError(resp, respBody, c.now(), redact)
		apiErr.RequestID = echoedID
		apiErr.Err = readErr // the status decides the class; a broken error body is kept as the cause
		return nil, apiErr
	}
	if readErr != nil {
		return nil, &APIError{StatusCode: resp.StatusCode, Message: "reading the answer failed", RequestID: echoedID, Retryable: true, Err: readErr}
	}
	if len(respBody) > limit {
		return nil, &APIError{StatusCode: resp.StatusCode, Message: fmt.Sprintf("answer exceeds %d bytes", limit), RequestID: echoedID}
	}
	return respBody, nil
}

// checkRequestID accepts only a canonical 36-character RFC 4122 version-4 UUID.
func checkRequestID(id string) error {
	parsed, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return errors.New("zerohash: requestID is not a UUID in canonical 8-4-4-4-12 form")
	}
	if parsed.Version() != 4 || parsed.Variant() != uuid.RFC4122 {
		return errors.New("zerohash: requestID is not a version-4 UUID")
	}
	return nil
}

// checkEmail wants a bare address (no display name); the error never repeats it.
func checkEmail(email string) error {
	if email == "" {
		return errors.New("zerohash: email is required")
	}
	if len(email) > maxEmailLength {
		return fmt.Errorf("zerohash: email is longer than %d bytes", maxEmailLength)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return errors.New("zerohash: email is not a bare email address")
	}
	return nil
}

// checkPhone accepts an empty phone (it is optional) or digits with an optional leading +.
func checkPhone(phone string) error {
	if phone == "" {
		return nil
	}
	digits := strings.TrimPrefix(phone, "+")
	if len(digits) < minPhoneDigits || len(digits) > maxPhoneDigits {
		return fmt.Errorf("zerohash: phone must have %d to %d digits", minPhoneDigits, maxPhoneDigits)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return errors.New("zerohash: phone must be digits with an optional leading +")
		}
	}
	return nil
}
