package transferapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWKS timings.
const (
	jwksRefreshInterval = 15 * time.Minute
	jwksUnknownKIDEvery = time.Minute // least time between refreshes forced by an unknown kid
	jwksWaitMax         = 3 * time.Second
	jwksHTTPTimeout     = 10 * time.Second
	jwksProbeKID        = "connectflow/refresh-probe" // a kid no JWKS holds: reading it forces a refetch
)

// ErrJWKSRedirect is why a JWKS fetch that answered with a redirect failed: keys are taken only from the URL
// configured, never from wherever it points.
var ErrJWKSRedirect = errors.New("the JWKS URL answered with a redirect, which is refused")

// JWKS is the identity provider's key set, fetched over HTTP with keyfunc and jwkset, refreshed every 15 minutes
// and (at most once a minute) when a token names an unknown kid.
type JWKS struct {
	keyfunc keyfunc.Keyfunc
	client  jwkset.Storage
	store   jwkset.Storage
	cancel  context.CancelFunc
}

// NewJWKS starts fetching url. A JWKS that cannot be fetched now is not an error: Ready fails and JWTs are refused
// until a refresh succeeds. httpClient nil means one with a 10 s timeout; either way redirects are refused.
func NewJWKS(ctx context.Context, url string, httpClient *http.Client, logger *slog.Logger) (*JWKS, error) {
	if url == "" {
		return nil, errors.New("transferapi: JWKS URL is empty")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var hc http.Client
	if httpClient != nil {
		hc = *httpClient
	} else {
		hc.Timeout = jwksHTTPTimeout
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return ErrJWKSRedirect }
	ctx, cancel := context.WithCancel(ctx)
	store := jwkset.NewMemoryStorage()
	remote, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:                    &hc,
		Ctx:                       ctx,
		HTTPTimeout:               jwksHTTPTimeout,
		NoErrorReturnFirstHTTPReq: true, // an identity provider down at start fails readiness, not the process
		RefreshErrorHandler: func(ctx context.Context, err error) {
			logger.WarnContext(ctx, "JWKS refresh failed", "err", err)
		},
		RefreshInterval: jwksRefreshInterval,
		Storage:         store,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("transferapi: JWKS: %w", err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: remote},
		RateLimitWaitMax:  jwksWaitMax,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("transferapi: JWKS client: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("transferapi: keyfunc: %w", err)
	}
	return &JWKS{keyfunc: kf, client: client, store: store, cancel: cancel}, nil
}

// Keyfunc finds the key of a JWT, for JWTConfig.Keyfunc.
func (j *JWKS) Keyfunc(ctx context.Context) jwt.Keyfunc { return j.keyfunc.KeyfuncCtx(ctx) }

// Ready reports an error while the JWKS holds no key, after one rate-limited attempt to refetch it.
func (j *JWKS) Ready(ctx context.Context) error {
	if keys, err := j.store.KeyReadAll(ctx); err == nil && len(keys) > 0 {
		return nil
	}
	_, _ = j.client.KeyRead(ctx, jwksProbeKID) // never found: the read only forces the refetch
	if keys, err := j.store.KeyReadAll(ctx); err == nil && len(keys) > 0 {
		return nil
	}
	return errors.New("jwks: holds no key (unreachable, redirecting, or empty?)")
}

// Close stops the background refresh.
func (j *JWKS) Close() { j.cancel() }
