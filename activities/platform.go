package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/platformhook"
)

// DefaultPlatformRetryFor is how long one notification is retried before it goes to review (PLATFORM_WEBHOOK_RETRY_FOR).
const DefaultPlatformRetryFor = 72 * time.Hour

// DefaultPlatformTimeout bounds one delivery attempt: no answer within it counts as a failed attempt.
const DefaultPlatformTimeout = 10 * time.Second

// Platform is where a worker posts transfer notifications: the platform's webhook URL and the Standard Webhooks
// secrets each message is signed with (one signature per secret, newest first, for rotation).
type Platform struct {
	URL      string // as PLATFORM_WEBHOOK_URL takes it (settings.CheckURL): no query; its path may hold a token
	Secrets  []platformhook.Secret
	RetryFor time.Duration // how long one notification is retried; 0 is DefaultPlatformRetryFor
	// HTTPClient sends the notifications; nil uses NewPlatformHTTPClient(DefaultPlatformTimeout). Whatever its
	// CheckRedirect, NotifyPlatform never follows a redirect: a 3xx is a failed attempt.
	HTTPClient *http.Client
}

// NewPlatformHTTPClient is the client that posts notifications: each attempt bounded by timeout, and redirects
// never followed, so the 3xx itself is the answer (Standard Webhooks: a 3xx is a failure; only a 2xx from the
// configured URL acknowledges). Every client that sends notifications is built here.
func NewPlatformHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: noRedirects}
}

// noRedirects makes an http.Client return a redirect response as it is instead of following it.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// PlatformConfig is what a transfer learns from its worker, once, when it starts (recorded in its history, so a
// worker restarted with other settings does not change what an open transfer does).
type PlatformConfig struct {
	Enabled  bool          `json:"enabled"`
	RetryFor time.Duration `json:"retry_for,omitempty"`
}

// Notification is one status change of one transfer, as the workflow hands it to NotifyPlatform. Every retry of
// the activity sends the same body and the same webhook-id; only webhook-timestamp and the signature change.
type Notification struct {
	WebhookID string           `json:"webhook_id"` // "<workflow_id>:<sequence>", see workflows.WebhookID
	Type      string           `json:"type"`       // "<kind>.<status>", e.g. "deposit.confirmed"
	Timestamp time.Time        `json:"timestamp"`  // when the status changed
	Data      NotificationData `json:"data"`
}

// NotificationData is the "data" object of a notification's body. Every field is always present (empty when
// unknown), so the platform's schema does not depend on the status.
type NotificationData struct {
	WorkflowID        string `json:"workflow_id"`
	Kind              string `json:"kind"`
	TransferID        string `json:"transfer_id"`
	ReferenceID       string `json:"reference_id"`
	Status            string `json:"status"`
	PreviousStatus    string `json:"previous_status"`
	Sequence          int    `json:"sequence"` // 1, 2, 3, ... per transfer, in the order the statuses changed
	Asset             string `json:"asset"`
	Network           string `json:"network"`
	Amount            string `json:"amount"`
	TxHash            string `json:"tx_hash"`
	ConnectTransferID string `json:"connect_transfer_id"`
	FailureReason     string `json:"failure_reason"`
	ResolvedBy        string `json:"resolved_by"` // the operator who resolved the transfer, if one did
}

// Body is the JSON body posted for n: {"type", "timestamp" (RFC 3339, UTC), "data"}.
func (n Notification) Body() ([]byte, error) {
	return json.Marshal(struct {
		Type      string           `json:"type"`
		Timestamp string           `json:"timestamp"`
		Data      NotificationData `json:"data"`
	}{n.Type, n.Timestamp.UTC().Format(time.RFC3339Nano), n.Data})
}

// ErrTypePlatformNotConfigured is the error of a notification on a worker without PLATFORM_WEBHOOK_URL. It is
// retried: the transfer asked for notifications when it started, so the fix is the worker's settings.
const ErrTypePlatformNotConfigured = "PlatformNotConfigured"

// PlatformNotifications tells a starting transfer whether this worker delivers notifications, and for how long
// each is retried. The workflow runs it as a local activity, once per transfer.
func (a *Activities) PlatformNotifications(context.Context) (PlatformConfig, error) {
	if a.Platform == nil || a.Platform.URL == "" {
		return PlatformConfig{}, nil
	}
	retryFor := a.Platform.RetryFor
	if retryFor <= 0 {
		retryFor = DefaultPlatformRetryFor
	}
	return PlatformConfig{Enabled: true, RetryFor: retryFor}, nil
}

// NotifyPlatform posts one signed notification to the platform. A 2xx answer from p.URL itself is the
// acknowledgement; anything else (another status, a 3xx, whose redirect is never followed, no answer within the
// timeout, a refused connection) is an error Temporal retries with backoff, after the platform's Retry-After when
// it sent one, until the workflow's retry window ends. Errors name the host of p.URL, never its path.
func (a *Activities) NotifyPlatform(ctx context.Context, n Notification) error {
	p := a.Platform
	if p == nil || p.URL == "" || len(p.Secrets) == 0 {
		return temporal.NewApplicationError("notification "+n.WebhookID+": this worker has no PLATFORM_WEBHOOK_URL and PLATFORM_WEBHOOK_SECRET", ErrTypePlatformNotConfigured)
	}
	body, err := n.Body()
	if err != nil {
		return temporal.NewNonRetryableApplicationError("notification "+n.WebhookID+": encode body: "+err.Error(), "PlatformInvalidNotification", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return temporal.NewNonRetryableApplicationError("notification "+n.WebhookID+": "+err.Error(), "PlatformInvalidRequest", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "connectflow-worker")
	if err := platformhook.SetHeaders(req.Header, p.Secrets, n.WebhookID, time.Now(), body); err != nil {
		return temporal.NewNonRetryableApplicationError("notification "+n.WebhookID+": sign: "+err.Error(), "PlatformInvalidNotification", err)
	}
	var hc *http.Client
	if p.HTTPClient == nil {
		hc = NewPlatformHTTPClient(DefaultPlatformTimeout)
	} else {
		noFollow := *p.HTTPClient // a shallow copy: it shares the transport and its connections
		noFollow.CheckRedirect = noRedirects
		hc = &noFollow
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The URL's path may carry a token: name the host only.
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("notification %s: platform %s unreachable: %s", n.WebhookID, req.URL.Host, unwrapURLError(err)),
			"Platform"+StatusTypeName(0), temporal.ApplicationErrorOptions{})
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	why := ""
	if resp.StatusCode >= 300 && resp.StatusCode < 400 { // the Location is not quoted: it may carry a token too
		why = ": redirects are not followed, only a 2xx acknowledges (set PLATFORM_WEBHOOK_URL to the URL that answers)"
	}
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("notification %s: platform %s answered %s%s", n.WebhookID, req.URL.Host, resp.Status, why),
		"Platform"+StatusTypeName(resp.StatusCode), temporal.ApplicationErrorOptions{NextRetryDelay: RetryAfter(resp.Header.Get("Retry-After"), time.Now())})
}

// unwrapURLError drops *url.Error's "Post \"<url>\":" prefix, which would repeat the URL (and any token in its path).
func unwrapURLError(err error) string {
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// maxRetryAfter caps a platform's Retry-After, so a typo there cannot park a notification for its whole window.
const maxRetryAfter = time.Hour

// RetryAfter reads a Retry-After header (delay-seconds or an HTTP date) as a delay from now; 0 when absent,
// malformed or in the past, which leaves the retry policy's backoff in charge. It is capped at an hour.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
