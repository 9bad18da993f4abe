package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/platformhook"
)

func testNotification() Notification {
	return Notification{WebhookID: "deposit-d-1:2", Type: "deposit.confirmed",
		Timestamp: time.Date(2026, 11, 30, 12, 0, 0, 0, time.FixedZone("x", 3600)),
		Data: NotificationData{WorkflowID: "deposit-d-1", Kind: "deposit", TransferID: "d-1", ReferenceID: "USER01",
			Status: "confirmed", PreviousStatus: "broadcasted", Sequence: 2, Asset: "BTC", Amount: "0.013"}}
}

func TestNotificationBody(t *testing.T) {
	body, err := testNotification().Body()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"deposit.confirmed","timestamp":"2026-11-30T11:00:00Z","data":{"workflow_id":"deposit-d-1",` +
		`"kind":"deposit","transfer_id":"d-1","reference_id":"USER01","status":"confirmed","previous_status":"broadcasted",` +
		`"sequence":2,"asset":"BTC","network":"","amount":"0.013","tx_hash":"","connect_transfer_id":"","failure_reason":"",` +
		`"resolved_by":""}}`
	if string(body) != want {
		t.Fatalf("body\n got %s\nwant %s", body, want)
	}
}

func platformFor(t *testing.T, h http.HandlerFunc) (*Activities, []platformhook.Secret) {
	t.Helper()
	secrets, err := platformhook.ParseSecrets(platformhook.NewSecret() + " " + platformhook.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// A token in the path, as a platform may ask (settings.CheckURL refuses a URL with a query at start).
	return &Activities{Platform: &Platform{URL: srv.URL + "/hook/s3cr3t-path-token", Secrets: secrets,
		HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}}}, secrets
}

func TestNotifyPlatformSignsWithEverySecret(t *testing.T) {
	var got http.Header
	var body []byte
	a, secrets := platformFor(t, func(w http.ResponseWriter, r *http.Request) {
		got, body = r.Header.Clone(), must(io.ReadAll(r.Body))
		w.WriteHeader(http.StatusAccepted)
	})
	if err := a.NotifyPlatform(context.Background(), testNotification()); err != nil {
		t.Fatalf("NotifyPlatform: %v", err)
	}
	if got.Get("Content-Type") != "application/json" || got.Get(platformhook.HeaderID) != "deposit-d-1:2" {
		t.Fatalf("headers: %v", got)
	}
	if n := len(strings.Fields(got.Get(platformhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want one per secret", n)
	}
	for i, s := range secrets { // a platform that knows either secret verifies
		if id, err := platformhook.Verify([]platformhook.Secret{s}, got, body, platformhook.VerifyOptions{}); err != nil || id != "deposit-d-1:2" {
			t.Fatalf("verify with secret %d: %q, %v", i, id, err)
		}
	}
	want, _ := testNotification().Body()
	if string(body) != string(want) {
		t.Fatalf("body %s", body)
	}
}

func TestNotifyPlatformFailuresAreRetried(t *testing.T) {
	cases := []struct {
		name     string
		h        http.HandlerFunc
		wantType string
		delay    time.Duration
	}{
		{"500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, "PlatformServerError", 0},
		{"503 retry-after", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}, "PlatformServerError", 7 * time.Second},
		{"429", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }, "PlatformRateLimited", 0},
		{"400", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) }, "PlatformBadRequest", 0},
		{"redirect is not an acknowledgement", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(304) }, "Platform", 0},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}, "PlatformUnreachable", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, _ := platformFor(t, c.h)
			err := a.NotifyPlatform(context.Background(), testNotification())
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("want an application error, got %T %v", err, err)
			}
			if appErr.NonRetryable() || !strings.HasPrefix(appErr.Type(), c.wantType) || appErr.NextRetryDelay() != c.delay {
				t.Fatalf("error %v: type %s, non-retryable %v, delay %s", err, appErr.Type(), appErr.NonRetryable(), appErr.NextRetryDelay())
			}
			if strings.Contains(err.Error(), "s3cr3t-path-token") || !strings.Contains(err.Error(), "deposit-d-1:2") {
				t.Fatalf("error must name the notification and not the URL's path: %v", err)
			}
		})
	}
}

// TestNotifyPlatformRedirectIsAFailedAttempt: Standard Webhooks counts a 3xx as a failure ("following redirects
// causes unnecessary load"); only a 2xx from the configured URL acknowledges. A redirect to a server that answers
// 200 (a login page, say) must be a retryable failure that names the status, and the target must see nothing.
func TestNotifyPlatformRedirectIsAFailedAttempt(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		followed.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(target.Close)
	secrets := must(platformhook.ParseSecrets(platformhook.NewSecret()))
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/login?next=s3cr3t-location", code)
		}))
		t.Cleanup(platform.Close)
		for name, hc := range map[string]*http.Client{
			"default client": nil,
			"given client":   {Timeout: 2 * time.Second}, // its default policy would follow
		} {
			t.Run(fmt.Sprintf("%d %s", code, name), func(t *testing.T) {
				before := followed.Load()
				a := &Activities{Platform: &Platform{URL: platform.URL + "/hook/s3cr3t-path", Secrets: secrets, HTTPClient: hc}}
				err := a.NotifyPlatform(context.Background(), testNotification())
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) {
					t.Fatalf("a %d was taken as an acknowledgement: %v", code, err)
				}
				if appErr.NonRetryable() || appErr.Type() != "Platform"+StatusTypeName(code) {
					t.Fatalf("error %v: type %s, non-retryable %v", err, appErr.Type(), appErr.NonRetryable())
				}
				msg := err.Error()
				if !strings.Contains(msg, strconv.Itoa(code)) || !strings.Contains(msg, "redirects are not followed") ||
					!strings.Contains(msg, "deposit-d-1:2") {
					t.Fatalf("error must name the notification, the status and that redirects are not followed: %v", err)
				}
				if strings.Contains(msg, "s3cr3t") {
					t.Fatalf("error quotes the URL's path or the redirect's Location: %v", err)
				}
				if n := followed.Load() - before; n != 0 {
					t.Fatalf("the redirect target received %d requests", n)
				}
			})
		}
	}
}

func TestNotifyPlatformNotConfiguredIsRetried(t *testing.T) {
	err := (&Activities{}).NotifyPlatform(context.Background(), testNotification())
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypePlatformNotConfigured || appErr.NonRetryable() {
		t.Fatalf("got %v", err)
	}
	if cfg, err := (&Activities{}).PlatformNotifications(context.Background()); err != nil || cfg.Enabled {
		t.Fatalf("no platform: %+v, %v", cfg, err)
	}
	cfg, err := (&Activities{Platform: &Platform{URL: "https://p.example"}}).PlatformNotifications(context.Background())
	if err != nil || !cfg.Enabled || cfg.RetryFor != DefaultPlatformRetryFor {
		t.Fatalf("platform: %+v, %v", cfg, err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "0": 0, "-3": 0, "12": 12 * time.Second, " 5 ": 5 * time.Second, "soon": 0,
		"99999999999999999999": 0, "86400": time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := RetryAfter(v, now); got != want {
			t.Errorf("RetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
