package bridge

import (
	"cmp"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/connectflow/connectflow/connect"
)

// KeySource supplies Connect's public keys for both checks: the JWT and the request signature.
type KeySource interface {
	// Keyfunc finds the key for a JWT, refreshing the JWKS (rate-limited) when the token names an unknown kid.
	Keyfunc(ctx context.Context) jwt.Keyfunc
	// PublicKeys returns the JWKS's RSA keys for connect.VerifyWebhook; the list is read-only.
	PublicKeys(ctx context.Context) []connect.PublicKey
	// Refresh refetches the JWKS unless the rate limit forbids it now, and reports whether it did.
	Refresh(ctx context.Context) bool
}

// Defaults of JWKSOptions.
const (
	DefaultJWKSRefreshInterval = 15 * time.Minute
	DefaultJWKSUnknownKIDEvery = time.Minute
	DefaultJWKSWaitMax         = 3 * time.Second
	DefaultJWKSHTTPTimeout     = 10 * time.Second
	DefaultJWKSRotationEvery   = 10 * time.Second
	// refreshProbeKID is a kid no JWKS holds: reading it is how jwkset is made to refetch.
	refreshProbeKID = "connectflow/refresh-probe"
)

// JWKSOptions tune NewJWKSKeys; the zero value is ready to use.
type JWKSOptions struct {
	// HTTPClient fetches the JWKS; default a client with HTTPTimeout. Redirects are refused either way: a JWKS
	// that redirects (to http, or anywhere) is not Connect's.
	HTTPClient *http.Client
	// RefreshInterval is how often the JWKS is refetched in the background; default 15 min.
	RefreshInterval time.Duration
	// UnknownKIDEvery is the least time between refreshes forced by an unknown kid, or by a webhook signature or
	// JWT that no key verifies (a JWT without kid, a body signed by a newer key); default 1 min. It keeps forged
	// kids and signatures from hammering Connect.
	UnknownKIDEvery time.Duration
	// WaitMax bounds how long one request may wait for a forced refresh, rate-limit wait included; default 3 s.
	WaitMax time.Duration
	// RotationEvery is the least time between the background refreshes a request asks for when it met a kid or a
	// signature no key verifies (a rotation, or a forgery); default 10 s. It has its own rate limit, apart from
	// UnknownKIDEvery, so a stream of forged kids that keeps the request path's limit spent cannot keep a rotated
	// key out for longer than this.
	RotationEvery time.Duration
	// HTTPTimeout bounds each background fetch; default 10 s.
	HTTPTimeout time.Duration
	// Logger gets refresh failures; default discards.
	Logger *slog.Logger
}

// JWKSKeys is a KeySource backed by keyfunc and jwkset: a JWKS fetched over HTTP, refreshed periodically and on
// unknown kids, with the RSA keys converted once per change.
type JWKSKeys struct {
	keyfunc keyfunc.Keyfunc
	client  jwkset.Storage // reads through to HTTP; an unknown kid triggers a rate-limited refresh
	store   *versionedStorage
	cache   atomic.Pointer[convertedKeys]
	cancel  context.CancelFunc
	// rotation refetches on its own limiter when kicked: see JWKSOptions.RotationEvery.
	rotation jwkset.Storage
	kick     chan struct{}
	// failures counts failed JWKS fetches (background, forced and first); the store keeps the last success.
	failures atomic.Uint64
}

// convertedKeys is the RSA key list of one storage version.
type convertedKeys struct {
	version uint64
	keys    []connect.PublicKey
}

// NewJWKSKeys starts fetching the JWKS at url. A JWKS that cannot be fetched now is not an error: the keys stay
// empty (so Bridge.Ready fails) until a refresh succeeds. ctx, or Close, ends the background refresh.
func NewJWKSKeys(ctx context.Context, url string, opts JWKSOptions) (*JWKSKeys, error) {
	if url == "" {
		return nil, errors.New("bridge: JWKS URL is empty")
	}
	opts.RefreshInterval = cmp.Or(opts.RefreshInterval, DefaultJWKSRefreshInterval)
	opts.UnknownKIDEvery = cmp.Or(opts.UnknownKIDEvery, DefaultJWKSUnknownKIDEvery)
	opts.WaitMax = cmp.Or(opts.WaitMax, DefaultJWKSWaitMax)
	opts.HTTPTimeout = cmp.Or(opts.HTTPTimeout, DefaultJWKSHTTPTimeout)
	opts.RotationEvery = cmp.Or(opts.RotationEvery, DefaultJWKSRotationEvery)
	if opts.RefreshInterval < 0 || opts.UnknownKIDEvery < 0 || opts.WaitMax < 0 || opts.HTTPTimeout < 0 || opts.RotationEvery < 0 {
		return nil, errors.New("bridge: JWKS options: durations must not be negative")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.HTTPTimeout}
	}
	hc := *opts.HTTPClient // a copy: the caller's client keeps its own redirect policy
	hc.CheckRedirect = refuseRedirect
	opts.HTTPClient = &hc
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	store := &versionedStorage{MemoryJWKSet: jwkset.NewMemoryStorage()}
	k := &JWKSKeys{store: store, cancel: cancel, kick: make(chan struct{}, 1)}
	remote, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:                    opts.HTTPClient,
		Ctx:                       ctx,
		HTTPTimeout:               opts.HTTPTimeout,
		NoErrorReturnFirstHTTPReq: true, // a JWKS down at start fails readiness, not the process
		RefreshErrorHandler: func(ctx context.Context, err error) {
			k.failures.Add(1)
			log.WarnContext(ctx, "JWKS refresh failed", "err", err)
		},
		RefreshInterval: opts.RefreshInterval,
		Storage:         store,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bridge: JWKS %s: %w", url, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: remote},
		RateLimitWaitMax:  opts.WaitMax,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(opts.UnknownKIDEvery), 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bridge: JWKS client: %w", err)
	}
	rotation, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: remote},
		RefreshUnknownKID: rate.NewLimiter(rate.Every(opts.RotationEvery), 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bridge: JWKS rotation client: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bridge: keyfunc: %w", err)
	}
	k.keyfunc, k.client, k.rotation = kf, client, rotation
	go k.refreshOnKick(ctx)
	return k, nil
}

// errRedirect is why a JWKS fetch that was redirected fails.
var errRedirect = errors.New("the JWKS URL redirected: refused (set CONNECT_JWKS_URL to the final https URL)")

// refuseRedirect is the JWKS client's CheckRedirect: no redirect is followed, so no https-to-http downgrade either.
func refuseRedirect(*http.Request, []*http.Request) error { return errRedirect }

// refreshOnKick refetches the JWKS, at most once per RotationEvery, after a request met a kid or a signature no
// key verifies. It waits on its own limiter, so forged kids spending the request path's limit cannot delay it.
func (k *JWKSKeys) refreshOnKick(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.kick:
			// Waits for its limiter (bounded by ctx), then refetches: reading a kid no JWKS holds is how.
			_, _ = k.rotation.KeyRead(ctx, refreshProbeKID)
		}
	}
}

// askRotationRefresh asks the background for a refresh; many asks while one is pending make one refresh.
func (k *JWKSKeys) askRotationRefresh() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Keyfunc returns keyfunc's jwt.Keyfunc bound to ctx; a token whose kid is unknown also asks the background for a
// refresh (see JWKSOptions.RotationEvery), so a rotated key is taken within RotationEvery whatever forged kids do.
func (k *JWKSKeys) Keyfunc(ctx context.Context) jwt.Keyfunc {
	inner := k.keyfunc.KeyfuncCtx(ctx)
	return func(tok *jwt.Token) (any, error) {
		key, err := inner(tok)
		if err != nil {
			k.askRotationRefresh()
		}
		return key, err
	}
}

// PublicKeys returns the RSA signing keys of the JWKS, converted again only after the JWKS changed.
func (k *JWKSKeys) PublicKeys(ctx context.Context) []connect.PublicKey {
	version := k.store.version.Load() // read before the keys, so a concurrent change is seen next time
	if c := k.cache.Load(); c != nil && c.version == version {
		return c.keys
	}
	all, err := k.store.KeyReadAll(ctx)
	if err != nil {
		return nil // the memory storage never fails; nothing cached means no key verifies
	}
	keys := make([]connect.PublicKey, 0, len(all))
	for _, j := range all {
		m := j.Marshal()
		if m.USE != jwkset.UseSig && m.USE != "" {
			continue // an encryption key never signs webhooks
		}
		if pub, ok := j.Key().(*rsa.PublicKey); ok {
			keys = append(keys, connect.PublicKey{KID: m.KID, Key: pub})
		}
	}
	k.cache.Store(&convertedKeys{version: version, keys: keys})
	return keys
}

// Refresh forces a rate-limited refetch: jwkset refetches only on a read of an unknown kid, so it reads one.
func (k *JWKSKeys) Refresh(ctx context.Context) bool {
	k.askRotationRefresh() // the request path's limit may be spent by forgeries: the background's is not
	before := k.store.version.Load()
	_, err := k.client.KeyRead(ctx, refreshProbeKID)
	if err != nil && !errors.Is(err, jwkset.ErrKeyNotFound) {
		return false // rate-limited or canceled: no fetch happened
	}
	return k.store.version.Load() != before
}

// Close stops the background refresh.
func (k *JWKSKeys) Close() { k.cancel() }

// versionedStorage counts every change, so converted keys are rebuilt only when the JWKS changed.
type versionedStorage struct {
	*jwkset.MemoryJWKSet
	version     atomic.Uint64
	lastSuccess atomic.Int64 // Unix nanoseconds of the last JWKS stored; 0 never
}

// KeyReplaceAll is how jwkset stores each fetched JWKS: a success is a refresh that worked.
func (s *versionedStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	defer s.version.Add(1)
	err := s.MemoryJWKSet.KeyReplaceAll(ctx, given)
	if err == nil {
		s.lastSuccess.Store(time.Now().UnixNano())
	}
	return err
}

func (s *versionedStorage) KeyWrite(ctx context.Context, jwk jwkset.JWK) error {
	defer s.version.Add(1)
	return s.MemoryJWKSet.KeyWrite(ctx, jwk)
}

func (s *versionedStorage) KeyDelete(ctx context.Context, keyID string) (bool, error) {
	defer s.version.Add(1)
	return s.MemoryJWKSet.KeyDelete(ctx, keyID)
}

// JWKS metric names (JWKSKeys is a prometheus.Collector; bridge.New registers it with the bridge's metrics).
const (
	// MetricJWKSKeys is the number of RSA signing keys the bridge verifies with now: 0 means every webhook fails.
	MetricJWKSKeys = "connectflow_bridge_jwks_keys"
	// MetricJWKSRefreshFailures counts JWKS fetches that failed (the first, the periodic and the forced ones).
	MetricJWKSRefreshFailures = "connectflow_bridge_jwks_refresh_failures_total"
	// MetricJWKSLastSuccess is when a JWKS was last fetched and stored, in Unix seconds (0: never).
	MetricJWKSLastSuccess = "connectflow_bridge_jwks_last_success_timestamp_seconds"
)

var (
	descJWKSKeys = prometheus.NewDesc(MetricJWKSKeys,
		"RSA signing keys of Connect's JWKS the bridge verifies with now (0: no webhook verifies).", nil, nil)
	descJWKSFailures = prometheus.NewDesc(MetricJWKSRefreshFailures,
		"JWKS fetches that failed: the first, the periodic and the ones an unknown kid forced.", nil, nil)
	descJWKSLastSuccess = prometheus.NewDesc(MetricJWKSLastSuccess,
		"When Connect's JWKS was last fetched and stored, in Unix seconds (0: never).", nil, nil)
)

// Describe implements prometheus.Collector.
func (k *JWKSKeys) Describe(ch chan<- *prometheus.Desc) {
	ch <- descJWKSKeys
	ch <- descJWKSFailures
	ch <- descJWKSLastSuccess
}

// Collect implements prometheus.Collector: the values as they are at the scrape.
func (k *JWKSKeys) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descJWKSKeys, prometheus.GaugeValue, float64(len(k.PublicKeys(context.Background()))))
	ch <- prometheus.MustNewConstMetric(descJWKSFailures, prometheus.CounterValue, float64(k.failures.Load()))
	last := 0.0
	if ns := k.store.lastSuccess.Load(); ns != 0 {
		last = float64(ns) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descJWKSLastSuccess, prometheus.GaugeValue, last)
}
