// Package bridge is connectflow's webhook bridge: it verifies Connect's and Zero Hash's webhooks and the Auth SDK
// callbacks a platform's frontend relays, and turns each into a signal on the transfer workflow it concerns, or
// into a review workflow when no open transfer can take it. It answers 2xx only once Temporal has accepted.
//
//	keys, _ := bridge.NewJWKSKeys(ctx, jwksURL, bridge.JWKSOptions{})
//	b, _ := bridge.New(bridge.Options{Temporal: c, PublicURL: "https://hooks.example.com", Keys: keys, ...})
//	http.ListenAndServe(":8080", b.Handler())
package bridge

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry/gintrace"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// Route paths. Register PublicURL + each webhook path with Connect and Zero Hash: it is the URL Connect signs.
const (
	PathConnectDeposits    = "/webhooks/connect/deposits"
	PathConnectWithdrawals = "/webhooks/connect/withdrawals"
	PathZeroHashBalances   = "/webhooks/zerohash/balances"
	PathSDKEvents          = "/v1/sdk-events"
	PathHealthz            = "/healthz"
	PathReadyz             = "/readyz"
	PathMetrics            = "/metrics"
)

// routeID indexes the POST routes for metrics.
type routeID uint8

const (
	routeConnectDeposits routeID = iota
	routeConnectWithdrawals
	routeZeroHashBalances
	routeSDKEvents
	numRoutes
)

var routePaths = [numRoutes]string{PathConnectDeposits, PathConnectWithdrawals, PathZeroHashBalances, PathSDKEvents}

// Defaults of Options.
const (
	DefaultMaxBody         = 1 << 20
	DefaultTemporalTimeout = 5 * time.Second
	// RetryAfter is the Retry-After of a 503: Temporal did not take the message, so the sender should resend it.
	RetryAfter = 5 * time.Second
	// readyTimeout bounds the Temporal health check behind /readyz.
	readyTimeout = 3 * time.Second
	// MaxTolerance bounds both replay windows: Options.Tolerance (CONNECT_WEBHOOK_TOLERANCE) and
	// Options.ZeroHashTolerance (ZEROHASH_WEBHOOK_TOLERANCE).
	MaxTolerance = 10 * time.Minute
	// DefaultSDKRate and DefaultSDKBurst: a user's widget sends a handful of callbacks per transfer.
	DefaultSDKRate  = 1.0 // per second, per session
	DefaultSDKBurst = 20
	// sdkDedupeTTL is how long a relayed SDK callback's dedupe key is remembered; the workflow dedupes beyond it.
	sdkDedupeTTL = 10 * time.Minute
	// pooledBufferMax keeps an unusually large body's buffer out of the pool, so the pool stays small.
	pooledBufferMax = 64 << 10
)

// Options configure a Bridge.
type Options struct {
	// Temporal signals and starts workflows; a client.Client. Required.
	Temporal Temporal
	// TaskQueue is where review workflows start; default workflows.DefaultTaskQueue.
	TaskQueue string
	// PublicURL is the base URL Connect posts to, e.g. https://hooks.example.com; the signed URL is PublicURL plus
	// the route path, never built from the Host header. Required.
	PublicURL string
	// Auth says which webhook credentials are required; default AuthSignature.
	Auth AuthMode
	// ConnectClientID is the organization's Connect client id. When set, a Connect webhook's client-id header, if
	// present, must be Connect's published value "Connect" or this id; any other value is refused 400. Absent
	// header: accepted (the guide's form has none). "" skips the check.
	ConnectClientID string
	// Tolerance is how far a webhook's signed timestamp may be from now, either way; default 300 s, at most
	// MaxTolerance (a longer window lets a captured webhook be replayed for longer).
	Tolerance time.Duration
	// OrganizationID is our Connect organization id (CONNECT_ORGANIZATION_ID). When set, an SDK relay's session
	// JWT must name it (organization.id), and a webhook bearer JWT that names an organization must name it.
	OrganizationID string
	// SDKRate and SDKBurst bound the SDK callbacks one session may relay (a token bucket per session); past them
	// the answer is 429 rate_limited. Defaults DefaultSDKRate and DefaultSDKBurst.
	SDKRate  float64
	SDKBurst int
	// MaxBody is the largest request body accepted; default and maximum 1 MiB (connect.MaxEventSize).
	MaxBody int64
	// ZeroHashWebhookSecret is the HMAC secret of balance webhooks (x-zh-hook-signature-256, and the timestamped
	// x-zh-hook-signature); "" when Zero Hash signs this platform's webhooks with RSA only, or sends none.
	ZeroHashWebhookSecret string
	// ZeroHashWebhookPublicKey is Zero Hash's webhook RSA key (x-zh-hook-rsa-signature-256, x-zh-hook-rsa-signature);
	// nil when not configured. With neither it nor the secret, PathZeroHashBalances answers 404 not_configured.
	ZeroHashWebhookPublicKey *rsa.PublicKey
	// ZeroHashRequireTimestamp refuses balance webhooks signed only with the legacy (untimed) headers.
	ZeroHashRequireTimestamp bool
	// ZeroHashTolerance bounds x-zh-hook-timestamp's distance from now; default zerohash.DefaultWebhookTolerance,
	// at most MaxTolerance.
	ZeroHashTolerance time.Duration
	// Keys supplies Connect's public keys; NewJWKSKeys builds one from a JWKS URL. Required. Close closes it when
	// it has a Close method.
	Keys KeySource
	// TemporalTimeout bounds each Temporal call a request makes; default 5 s.
	TemporalTimeout time.Duration
	// Logger gets one line per request, never a body, a secret or a JWT; default slog.Default().
	Logger *slog.Logger
	// Registerer takes the bridge's metrics; default a new registry. /metrics serves it when it is also a
	// prometheus.Gatherer (a *prometheus.Registry is), else prometheus.DefaultGatherer.
	Registerer prometheus.Registerer
	// Now is the clock for signature windows and JWT times; default time.Now.
	Now func() time.Time
}

// Bridge is the webhook bridge's HTTP handler and what it needs to verify and route.
type Bridge struct {
	engine    *gin.Engine // the public port: webhook routes and /healthz
	admin     *gin.Engine // the admin port: /readyz, /metrics, /healthz
	verify    *verifier
	router    *router
	keys      KeySource
	temporal  Temporal
	zh        zerohash.WebhookVerifier
	zhOn      bool // a balance webhook scheme is configured
	ledger    LedgerRouter
	clientID  string
	recent    *recentSet // Connect event ids answered 2xx lately
	recentSDK *recentSet // SDK callback dedupe keys answered 2xx lately
	sdkLimits *sessionLimiter
	maxBody   int64
	webhookAt [numRoutes]string // the full URL Connect signs, per route
	now       func() time.Time
	log       *slog.Logger
	metrics   *metrics
	closed    atomic.Bool
	closeOnce sync.Once
}

// New checks opts and builds the bridge's handler.
func New(opts Options) (*Bridge, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	if err := registerKeyMetrics(opts.Registerer, opts.Keys); err != nil {
		return nil, err
	}
	b := &Bridge{
		verify:    newVerifier(opts.Auth, opts.Keys, opts.Tolerance, opts.Now),
		recentSDK: newRecentSet(recentEventIDs).withTTL(sdkDedupeTTL, opts.Now),
		sdkLimits: newSessionLimiter(opts.SDKRate, opts.SDKBurst),
		router:    &router{temporal: opts.Temporal, taskQueue: opts.TaskQueue, timeout: opts.TemporalTimeout},
		keys:      opts.Keys,
		temporal:  opts.Temporal,
		zh: zerohash.WebhookVerifier{Secret: opts.ZeroHashWebhookSecret, PublicKey: opts.ZeroHashWebhookPublicKey,
			RequireTimestamp: opts.ZeroHashRequireTimestamp, Tolerance: opts.ZeroHashTolerance, Now: opts.Now},
		zhOn:     opts.ZeroHashWebhookSecret != "" || opts.ZeroHashWebhookPublicKey != nil,
		ledger:   LedgerRouter{Temporal: opts.Temporal, TaskQueue: opts.TaskQueue, Timeout: opts.TemporalTimeout},
		clientID: opts.ConnectClientID,
		recent:   newRecentSet(recentEventIDs),
		maxBody:  opts.MaxBody,
		now:      opts.Now,
		log:      opts.Logger,
		metrics:  m,
	}
	base := strings.TrimRight(opts.PublicURL, "/")
	for r := range numRoutes {
		b.webhookAt[r] = base + routePaths[r]
	}
	b.verify.org = opts.OrganizationID
	for _, a := range []string{opts.OrganizationID, opts.ConnectClientID, base, base + "/"} {
		if a != "" {
			b.verify.audiences = append(b.verify.audiences, a)
		}
	}
	gatherer, ok := opts.Registerer.(prometheus.Gatherer)
	if !ok {
		gatherer = prometheus.DefaultGatherer
	}

	gin.SetMode(gin.ReleaseMode) // process-wide in Gin: no route dump or debug warnings on stdout
	e := gin.New()
	e.HandleMethodNotAllowed = true
	gintrace.UseGin(e, "connectflow-bridge") // a span per webhook when tracing is on (docs/tracing.md)
	e.Use(b.recoverPanic)
	e.POST(PathConnectDeposits, b.handle(routeConnectDeposits, b.connectWebhook))
	e.POST(PathConnectWithdrawals, b.handle(routeConnectWithdrawals, b.connectWebhook))
	e.POST(PathZeroHashBalances, b.handle(routeZeroHashBalances, b.balanceWebhook))
	e.POST(PathSDKEvents, b.handle(routeSDKEvents, b.sdkEvent))
	e.GET(PathHealthz, func(c *gin.Context) { b.writeJSON(c, http.StatusOK, bodyOK) })
	b.engine = e

	// The admin port: readiness (with its detail: internal addresses) and metrics, never on the public port.
	a := gin.New()
	a.HandleMethodNotAllowed = true
	a.Use(b.recoverPanic)
	a.GET(PathHealthz, func(c *gin.Context) { b.writeJSON(c, http.StatusOK, bodyOK) })
	a.GET(PathReadyz, b.readyz)
	a.GET(PathMetrics, gin.WrapH(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	b.admin = a
	return b, nil
}

func (o *Options) fill() error {
	if o.Temporal == nil {
		return errors.New("bridge: Options.Temporal is required")
	}
	if o.Keys == nil {
		return errors.New("bridge: Options.Keys is required")
	}
	if o.PublicURL == "" {
		return errors.New("bridge: Options.PublicURL is required")
	}
	if err := settings.CheckURL(o.PublicURL); err != nil {
		return fmt.Errorf("bridge: Options.PublicURL: %w", err)
	}
	if o.ZeroHashRequireTimestamp && o.ZeroHashWebhookSecret == "" && o.ZeroHashWebhookPublicKey == nil {
		return errors.New("bridge: Options.ZeroHashRequireTimestamp needs ZeroHashWebhookSecret or ZeroHashWebhookPublicKey")
	}
	if o.ZeroHashTolerance < 0 || o.ZeroHashTolerance > MaxTolerance {
		return fmt.Errorf("bridge: Options.ZeroHashTolerance %v: must be 0 (the default) to %v (a longer window lets a captured webhook be replayed longer)", o.ZeroHashTolerance, MaxTolerance)
	}
	o.ZeroHashTolerance = cmp.Or(o.ZeroHashTolerance, zerohash.DefaultWebhookTolerance)
	o.TaskQueue = cmp.Or(o.TaskQueue, workflows.DefaultTaskQueue)
	o.Auth = cmp.Or(o.Auth, AuthSignature)
	if _, err := ParseAuthMode(string(o.Auth)); err != nil {
		return fmt.Errorf("bridge: Options.Auth: %w", err)
	}
	o.Tolerance = cmp.Or(o.Tolerance, connect.DefaultTolerance)
	o.SDKRate = cmp.Or(o.SDKRate, DefaultSDKRate)
	o.SDKBurst = cmp.Or(o.SDKBurst, DefaultSDKBurst)
	o.MaxBody = cmp.Or(o.MaxBody, DefaultMaxBody)
	o.TemporalTimeout = cmp.Or(o.TemporalTimeout, DefaultTemporalTimeout)
	switch {
	case o.Tolerance < time.Second:
		return fmt.Errorf("bridge: Options.Tolerance %v: must be at least 1s", o.Tolerance)
	case o.Tolerance > MaxTolerance:
		return fmt.Errorf("bridge: Options.Tolerance %v: must be at most %v (a longer window lets a captured webhook be replayed longer)", o.Tolerance, MaxTolerance)
	case o.SDKRate < 0 || o.SDKBurst < 0:
		return fmt.Errorf("bridge: Options.SDKRate %v and SDKBurst %d: must not be negative", o.SDKRate, o.SDKBurst)
	case o.MaxBody < 0 || o.MaxBody > connect.MaxEventSize:
		return fmt.Errorf("bridge: Options.MaxBody %d: must be 1..%d bytes", o.MaxBody, connect.MaxEventSize)
	case o.TemporalTimeout < 0:
		return fmt.Errorf("bridge: Options.TemporalTimeout %v: must not be negative", o.TemporalTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Handler serves the public port: the webhook and SDK routes and /healthz. /readyz and /metrics are not on it:
// serve AdminHandler on a listener only operators reach (BRIDGE_ADMIN_ADDR, loopback by default).
func (b *Bridge) Handler() http.Handler { return b.engine }

// AdminHandler serves the admin port: /readyz (with the reason when not ready), /metrics and /healthz.
func (b *Bridge) AdminHandler() http.Handler { return b.admin }

// Ready reports why the bridge cannot take webhooks now: closed, no JWKS key, or Temporal not answering.
func (b *Bridge) Ready(ctx context.Context) error {
	if b.closed.Load() {
		return errors.New("bridge: closed")
	}
	var problems []error
	if len(b.keys.PublicKeys(ctx)) == 0 && !(b.keys.Refresh(ctx) && len(b.keys.PublicKeys(ctx)) > 0) {
		problems = append(problems, errors.New("jwks: holds no RSA signing key (JWKS unreachable?)"))
	}
	hctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := b.temporal.CheckHealth(hctx, &client.CheckHealthRequest{}); err != nil {
		problems = append(problems, fmt.Errorf("temporal: %w", err))
	}
	return errors.Join(problems...)
}

// WaitReady polls Ready until it passes or ctx ends, for a process that starts the bridge beside its dependencies.
func (b *Bridge) WaitReady(ctx context.Context) error {
	for {
		err := b.Ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook bridge not ready: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close makes Ready fail, so a load balancer drains the bridge, and stops the key source's refreshes.
func (b *Bridge) Close() {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		if c, ok := b.keys.(interface{ Close() }); ok {
			c.Close()
		}
	})
}

func (b *Bridge) readyz(c *gin.Context) {
	if err := b.Ready(c.Request.Context()); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not_ready", "detail": err.Error()})
		return
	}
	b.writeJSON(c, http.StatusOK, bodyReady)
}

// recoverPanic answers 500 for a handler panic and logs it with the route, never the request.
func (b *Bridge) recoverPanic(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { // net/http's own signal to abort the response: let it through
			panic(v)
		}
		b.log.Error("bridge handler panicked", "route", c.FullPath(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		b.writeJSON(c, http.StatusInternalServerError, bodyInternal)
		c.Abort()
	}()
	c.Next()
}

// result is what processing one request came to.
type result struct {
	outcome    outcome
	reason     string // verification failure label, for unauthorized
	workflowID string // the workflow that took the message
	event      string // event name or SDK type, for the log
	key        string // dedupe key or notification id, for the log
	err        error  // why: a parse error or a Temporal failure; logged, answered only for malformed
	routed     bool   // Temporal was asked: observe the signal latency
	routedIn   time.Duration
}

// process verifies and routes one request whose body has been read.
type process func(ctx context.Context, route routeID, r *http.Request, body []byte) result

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handle runs the steps every POST route shares: size and type checks, reading the body, process, the answer,
// the metrics and the log line.
func (b *Bridge) handle(route routeID, p process) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		r := c.Request
		var res result
		switch {
		case r.ContentLength > b.maxBody:
			res = result{outcome: outcomeTooLarge}
		case !jsonOrNone(r.Header.Get("Content-Type")):
			res = result{outcome: outcomeUnsupportedMediaType}
		default:
			buf := bufferPool.Get().(*bytes.Buffer)
			buf.Reset()
			res = b.readAndProcess(c, route, buf, p)
			if buf.Cap() <= pooledBufferMax {
				bufferPool.Put(buf)
			}
		}
		b.answer(c, res)
		b.record(c.Request.Context(), route, res, time.Since(start))
	}
}

func (b *Bridge) readAndProcess(c *gin.Context, route routeID, buf *bytes.Buffer, p process) result {
	r := c.Request
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, r.Body, b.maxBody)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return result{outcome: outcomeTooLarge}
		}
		return result{outcome: outcomeMalformed, err: fmt.Errorf("read body: %w", err)}
	}
	return p(r.Context(), route, r, buf.Bytes())
}

// jsonOrNone accepts a body declared application/json, or one with no (or an empty) Content-Type: Connect's
// published webhook headers carry none, and every body is verified and parsed as JSON anyway. A Content-Type that
// is present and not JSON is refused 415.
func jsonOrNone(contentType string) bool {
	return strings.TrimSpace(contentType) == "" || isJSON(contentType)
}

// isJSON accepts application/json with any parameters, without allocating.
func isJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/json")
}

const jsonContentType = "application/json"

// Answer bodies, built once: an answer says what happened, never why a credential failed.
var (
	bodyOK       = []byte(`{"status":"ok"}`)
	bodyReady    = []byte(`{"status":"ready"}`)
	bodyInternal = []byte(`{"error":"internal"}`)
	outcomeBody  [numOutcomes][]byte
	retryAfter   = strconv.Itoa(int(RetryAfter / time.Second))
)

func init() {
	for o := range numOutcomes {
		key := "error"
		if outcome(o).status() < http.StatusMultipleChoices {
			key = "outcome"
		}
		outcomeBody[o] = []byte(`{"` + key + `":"` + outcome(o).String() + `"}`)
	}
}

// status is the HTTP status an outcome answers with.
func (o outcome) status() int {
	switch o {
	case outcomeSignaled, outcomeAcknowledged, outcomeReview, outcomeReviewClosed, outcomeDuplicate, outcomeNotForwarded:
		return http.StatusOK
	case outcomeRateLimited, outcomeSignalLimit:
		return http.StatusTooManyRequests
	case outcomeNoTransfer, outcomeNotConfigured:
		return http.StatusNotFound
	case outcomeUnavailable, outcomeJWKSUnavailable:
		return http.StatusServiceUnavailable
	case outcomeUnauthorized:
		return http.StatusUnauthorized
	case outcomeTooLarge:
		return http.StatusRequestEntityTooLarge
	case outcomeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

func (b *Bridge) answer(c *gin.Context, res result) {
	status := res.outcome.status()
	switch res.outcome {
	case outcomeUnavailable, outcomeRateLimited, outcomeJWKSUnavailable:
		c.Header("Retry-After", retryAfter)
	case outcomeMalformed:
		// The sender proved who it is, so it may learn what was wrong with its message.
		c.JSON(status, gin.H{"error": res.outcome.String(), "detail": res.err.Error()})
		return
	case outcomeTooLarge:
		c.JSON(status, gin.H{"error": res.outcome.String(), "detail": fmt.Sprintf("body over %d bytes", b.maxBody)})
		return
	case outcomeUnsupportedMediaType:
		c.JSON(status, gin.H{"error": res.outcome.String(), "detail": "Content-Type, when sent, must be application/json"})
		return
	case outcomeNotConfigured:
		c.JSON(status, gin.H{"error": res.outcome.String(), "detail": "Zero Hash balance webhooks are not configured " +
			"on this bridge: set ZEROHASH_WEBHOOK_SECRET or ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE"})
		return
	}
	b.writeJSON(c, status, outcomeBody[res.outcome])
}

// jsonContentTypeHeader is shared by every answer: net/http only reads header values.
var jsonContentTypeHeader = []string{jsonContentType}

// writeJSON writes a prebuilt JSON body without the per-answer allocations of gin's renderers.
func (b *Bridge) writeJSON(c *gin.Context, status int, body []byte) {
	c.Writer.Header()["Content-Type"] = jsonContentTypeHeader
	c.Writer.WriteHeader(status)
	if _, err := c.Writer.Write(body); err != nil {
		// The client went away; the request is counted already and its sender will retry.
		b.log.DebugContext(c.Request.Context(), "write answer", "route", c.FullPath(), "err", err)
	}
}

// record counts the request and logs one line: what, where, how; never the body, a header value or a secret.
func (b *Bridge) record(ctx context.Context, route routeID, res result, took time.Duration) {
	b.metrics.requests[route][res.outcome].Inc()
	if res.reason != "" {
		b.metrics.verifyFailed.WithLabelValues(res.reason).Inc()
	}
	if res.routed {
		b.metrics.signalSeconds.Observe(res.routedIn.Seconds())
	}
	level := slog.LevelInfo
	switch res.outcome {
	case outcomeUnauthorized:
		level = slog.LevelWarn
	case outcomeUnavailable, outcomeJWKSUnavailable:
		level = slog.LevelError
	case outcomeSignalLimit:
		level = slog.LevelError
		b.metrics.signalLimit.Inc()
	}
	if !b.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("route", routePaths[route]),
		slog.String("outcome", res.outcome.String()),
		slog.Int("status", res.outcome.status()),
		slog.Duration("took", took),
	}
	for _, a := range [...]struct{ k, v string }{
		{"workflow_id", res.workflowID}, {"event", res.event}, {"key", res.key}, {"reason", res.reason},
	} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("err", res.err.Error()))
	}
	msg := "bridge request"
	if res.outcome == outcomeSignalLimit {
		// Alert on this line (or the signal-limit metric): a workflow takes no more signals, so its real events are
		// refused until a person looks.
		msg = "ALERT: Temporal refuses more signals to this workflow; its Connect events are refused until a person looks"
	}
	b.log.LogAttrs(ctx, level, msg, attrs...)
}
