// Package connecttest is a Zero Hash Connect sandbox: a real HTTP server that plays Connect's token, session and
// JWKS endpoints, the Zero Hash platform's onboarding-token endpoint, and Connect's signed transfer webhooks.
// Tests start one like an httptest.Server; the sandbox command runs one as a process.
//
//	srv := connecttest.NewServer(t, connecttest.Options{DepositWebhookURL: bridge.URL + "/webhooks/deposits"})
//	// point the client at srv.URL + "/api/v1", open a session, then:
//	deliveries, err := srv.Play(ctx, sessionID, connecttest.Play{Duplicates: 1, Shuffle: true})
//
// Routes:
//
//	POST /api/v1/oauth/token               access token: client_id, client_secret, audience, grant_type
//	                                       (client_credentials) and organization_id are all required, as in the
//	                                       Connect OpenAPI; errors {error, error_description} (OAuth)
//	POST /api/v1/sessions                  open a session (also /api/v1/v1/sessions, the guide's spelling);
//	                                       x-connect-client-id must be the organization id, request_id (when
//	                                       sent) a UUID, scopes from the published enum plus the guide's
//	                                       user:withdrawal:send; errors {error, code (gRPC code), message}.
//	                                       A new session for a reference_id invalidates that account's older
//	                                       active session (no 409): the older one is never played
//	GET  /api/v1/jwks                      the public keys that sign session JWTs and webhooks
//	POST /participants/onboarding_token    platform API, X-SCX HMAC-signed
//	GET  /movements                        platform API, X-SCX HMAC-signed: every movement announced by balance
//	                                       webhook (delivered, undelivered or dropped), newest first, paged with
//	                                       page/page_size (max 100), filtered by movement_type, account_id and
//	                                       movement_timestamp[gt|gte|lt|lte]
//
// Control API, unauthenticated because it is a sandbox:
//
//	GET    /sandbox/sessions               sessions opened so far (SessionInfo list; invalidated_at and
//	                                       replaced_by tell which ones a newer session invalidated)
//	POST   /sandbox/sessions/{id}/play     {"outcome":"confirmed|failed|unexpected|none","duplicates":2,"shuffle":true,
//	                                       "late":true,"delay_ms":100,"seed":7,"failure_reason":"..."} -> 202, the
//	                                       life plays in the background (fields as in Play; all optional);
//	                                       409 session_invalidated for a session a newer one replaced
//	GET    /sandbox/deliveries             every webhook delivery with its attempts
//	GET    /sandbox/stats                  request counters, sessions and deliveries (Stats)
//	POST   /sandbox/faults                 {"endpoint":"token","status":503,"retry_after_ms":1000,"latency_ms":0,
//	                                       "drop":false,"times":2,"rate":0.5,"seed":1} arms a Fault
//	DELETE /sandbox/faults                 disarms every fault (endpoints: token, sessions, jwks, onboarding,
//	                                       movements)
//	POST   /sandbox/balances               emit an account_balance.changed webhook (body: its payload, defaults
//	                                       as in EmitBalance); answers the Delivery
//	POST   /sandbox/balance-webhooks/drop  {"drop":true,"for_ms":60000} drops balance webhooks for a while (no
//	                                       for_ms: until {"drop":false}); dropped movements stay in GET /movements
package connecttest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/zerohash"
)

// Defaults for the credentials a sandbox accepts when Options leaves them empty. They are public on purpose: the
// sandbox guards nothing real.
const (
	DefaultClientID       = "sandbox-client-id"
	DefaultClientSecret   = "sandbox-client-secret"
	DefaultOrganizationID = "4789efea-e034-4e6f-b8a0-5289aacec427" // the guide's sample organization
	DefaultAPIKey         = "sandbox-api-key"
	DefaultAPISecret      = "c2FuZGJveC1wbGF0Zm9ybS1hcGktc2VjcmV0LTAwMzI=" // base64 of "sandbox-platform-api-secret-0032"
	DefaultPassphrase     = "sandbox-passphrase"
	DefaultWebhookSecret  = "sandbox-webhook-secret"

	DefaultTokenTTL           = time.Hour
	DefaultSessionTTL         = time.Hour
	DefaultSignatureTolerance = 5 * time.Minute
	DefaultAutoPlayAfter      = time.Second

	DefaultAsset   = "BTC"
	DefaultNetwork = "bitcoin"
	DefaultAmount  = "0.013"
)

// Options configures a sandbox. The zero value is a working sandbox on a free loopback port.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// PublicURL is the base URL clients address the sandbox by (scheme://host[:port]) when it is not the
	// listener's, e.g. from another container. Organization signatures cover it plus the request path.
	PublicURL string

	// ClientID and ClientSecret are the Connect API credentials the token endpoint accepts.
	ClientID, ClientSecret string
	// OrganizationID is the organization the credentials belong to: the token request's organization_id and every
	// session request's x-connect-client-id must equal it, and it goes into session JWTs; default
	// DefaultOrganizationID.
	OrganizationID string
	// Audience is the token request's required audience; default the sandbox's base URL (scheme and host, as a
	// client derives it from its API URL).
	Audience string
	// GuideTokenRequest also accepts the guide's token request, {client_id, client_secret} without audience,
	// grant_type and organization_id. Off by default: the sandbox plays the published contract.
	GuideTokenRequest bool
	// TokenTTL and SessionTTL are the access token and session lifetimes; default one hour each.
	TokenTTL, SessionTTL time.Duration
	// AllowedScopes are the session scopes the organization may ask for; default user:deposit:send,
	// user:withdrawal:request (the OpenAPI's) and user:withdrawal:send (the guide's variant, kept so organizations
	// set up from the guide keep working). A scope outside it is answered 403, as Connect answers a scope the
	// organization was not given.
	AllowedScopes []connect.Scope
	// OrgPublicKey, when set, makes POST /sessions require the organization's request signature.
	OrgPublicKey *rsa.PublicKey
	// SignatureTolerance is how far an organization signature's timestamp may be from now; default 5 min.
	SignatureTolerance time.Duration
	// NumericJWTTimes writes session JWT iat/exp as NumericDate numbers, not the guide's RFC 3339 strings.
	NumericJWTTimes bool
	// SigningKey is the first JWKS key; nil generates a 2048-bit key.
	SigningKey *rsa.PrivateKey

	// APIKey, APISecret (base64, as Zero Hash issues it) and Passphrase are the platform API credentials.
	APIKey, APISecret, Passphrase string
	// WebhookSecret signs account_balance.changed webhooks (x-zh-hook-signature-256 and x-zh-hook-signature).
	WebhookSecret string
	// ZeroHashWebhookKey signs balance webhooks with RSA too (x-zh-hook-rsa-signature-256 and
	// x-zh-hook-rsa-signature); nil generates a 2048-bit key on first use. See ZeroHashWebhookPublicKey.
	ZeroHashWebhookKey *rsa.PrivateKey
	// WebhookBearer adds a short-lived bearer JWT to every Connect webhook, as the guide's Connect does. Off by
	// default: Connect's published webhook headers are client-id, timestamp, signature and x-zh-hook-payload-type.
	WebhookBearer bool

	// DepositWebhookURL, WithdrawalWebhookURL and BalanceWebhookURL are where webhooks go; SetWebhookURLs
	// changes them later.
	DepositWebhookURL, WithdrawalWebhookURL, BalanceWebhookURL string
	// Redelivery is the Connect webhooks' retry schedule (Connect publishes exponential backoff, no count).
	Redelivery Redelivery
	// BalanceRedelivery is the Zero Hash balance webhooks' retry schedule; the zero value is ZeroHashRedelivery.
	BalanceRedelivery Redelivery
	// HTTPClient delivers webhooks; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Asset, Network and Amount fill webhooks when the session has no withdrawal_details; default 0.013 BTC on bitcoin.
	Asset, Network, Amount string

	// AutoPlay, when set, plays every new session's life by itself AutoPlayAfter (default 1 s) after it opens.
	AutoPlay      *Play
	AutoPlayAfter time.Duration

	// Now is the sandbox's clock for tokens, sessions, JWTs and signature windows; default time.Now.
	Now func() time.Time
	// Logger gets one line per notable event, never secrets, tokens or JWTs; default discards.
	Logger *slog.Logger
	// ControlRoutes adds routes to the control API, each a ServeMux pattern "METHOD /sandbox/..." (e.g. the dev
	// stack's "POST /sandbox/platform/faults", which makes its demo platform fail deliveries).
	ControlRoutes map[string]http.Handler
}

// Server is a running sandbox.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234; the Connect API is under URL + "/api/v1".
	URL string

	opts  Options
	creds zerohash.Credentials
	log   *slog.Logger
	keys  keySet

	httpSrv *http.Server
	ctx     context.Context // canceled by Close: stops plays and fault latencies
	cancel  context.CancelFunc
	playMu  sync.Mutex // orders starting a background play against Close
	plays   sync.WaitGroup
	closed  sync.Once

	bearer    atomic.Bool // Options.WebhookBearer, changed by SetWebhookBearer
	zhKeyOnce sync.Once
	zhKey     *rsa.PrivateKey
	zhKeyErr  error

	requests counters
	faults   faultTable
	state    state
	hooks    hookLog
	ledger   ledger
}

// New starts a sandbox listening on opts.Addr.
func New(opts Options) (*Server, error) {
	opts.fill()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	secret, err := zerohash.ParseSecret(opts.APISecret)
	if err != nil {
		return nil, &OptionError{Field: "APISecret", Err: err}
	}
	first, err := newSigningKey(opts.SigningKey)
	if err != nil {
		return nil, &OptionError{Field: "SigningKey", Err: err}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, &OptionError{Field: "Addr", Err: err}
	}
	s := &Server{
		URL:   cmp.Or(opts.PublicURL, listenerURL(ln.Addr())),
		opts:  opts,
		creds: zerohash.Credentials{APIKey: opts.APIKey, APISecret: secret, Passphrase: opts.Passphrase},
		log:   opts.Logger,
	}
	s.keys.keys = []signingKey{first}
	s.bearer.Store(opts.WebhookBearer)
	s.state.init(opts)
	handler, err := s.routes()
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sandbox server stopped", "err", err)
		}
	}()
	s.log.Info("sandbox listening", "url", s.URL, "kid", first.kid)
	return s, nil
}

// NewServer starts a sandbox for a test and closes it when the test ends, like httptest.NewServer. tb may be nil
// (then a start failure panics and the caller closes the server).
func NewServer(tb testing.TB, opts Options) *Server {
	if tb != nil {
		tb.Helper()
	}
	s, err := New(opts)
	if err != nil {
		if tb == nil {
			panic(err)
		}
		tb.Fatalf("start Connect sandbox: %v", err)
	}
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// Close stops background plays, waits for in-flight requests briefly, and closes the listener. It is idempotent.
func (s *Server) Close() {
	s.closed.Do(func() {
		s.playMu.Lock()
		s.cancel()
		s.playMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			s.log.Warn("sandbox shutdown forced", "err", err)
			if err := s.httpSrv.Close(); err != nil {
				s.log.Warn("sandbox close", "err", err)
			}
		}
		s.plays.Wait()
	})
}

// Env is the environment a worker and a webhook bridge need to talk to this sandbox, as KEY=value lines.
func (s *Server) Env() []string {
	return []string{
		"CONNECT_API_URL=" + s.URL + apiPrefix,
		"CONNECT_CLIENT_ID=" + s.opts.ClientID,
		"CONNECT_CLIENT_SECRET=" + s.opts.ClientSecret,
		"CONNECT_ORGANIZATION_ID=" + s.opts.OrganizationID,
		"CONNECT_JWKS_URL=" + s.URL + apiPrefix + "/jwks",
		"ZEROHASH_API_URL=" + s.URL,
		"ZEROHASH_API_KEY=" + s.opts.APIKey,
		"ZEROHASH_API_SECRET=" + s.opts.APISecret,
		"ZEROHASH_PASSPHRASE=" + s.opts.Passphrase,
		"ZEROHASH_WEBHOOK_SECRET=" + s.opts.WebhookSecret,
	}
}

const apiPrefix = "/api/v1"

func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+apiPrefix+"/oauth/token", s.endpoint(EndpointToken, s.oauthError, s.handleToken))
	sessions := s.endpoint(EndpointSessions, s.sessionsError, s.handleSessions)
	mux.HandleFunc("POST "+apiPrefix+"/sessions", sessions)
	mux.HandleFunc("POST "+apiPrefix+"/v1/sessions", sessions)
	mux.HandleFunc("GET "+apiPrefix+"/jwks", s.endpoint(EndpointJWKS, s.connectError, s.handleJWKS))
	mux.HandleFunc("POST /participants/onboarding_token",
		s.endpoint(EndpointOnboarding, s.platformError, s.handleOnboarding))
	mux.HandleFunc("GET "+zerohash.PathMovements, s.endpoint(EndpointMovements, s.platformError, s.handleMovements))
	s.controlRoutes(mux)
	if err := addRoutes(mux, s.opts.ControlRoutes); err != nil {
		return nil, err
	}
	return mux, nil
}

// addRoutes registers extra control routes; a pattern the mux refuses (one that clashes with a built-in route)
// is an OptionError, not a panic.
func addRoutes(mux *http.ServeMux, routes map[string]http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = optionErr("ControlRoutes", "%v", r)
		}
	}()
	for _, pattern := range slices.Sorted(maps.Keys(routes)) { // sorted: the same error for the same options
		mux.Handle(pattern, routes[pattern])
	}
	return nil
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	body, err := s.keys.jwks()
	if err != nil {
		s.connectError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	s.write(w, body)
}

// fill sets the documented defaults.
func (o *Options) fill() {
	o.Addr = cmp.Or(o.Addr, "127.0.0.1:0")
	o.ClientID = cmp.Or(o.ClientID, DefaultClientID)
	o.ClientSecret = cmp.Or(o.ClientSecret, DefaultClientSecret)
	o.OrganizationID = cmp.Or(o.OrganizationID, DefaultOrganizationID)
	o.TokenTTL = cmp.Or(o.TokenTTL, DefaultTokenTTL)
	o.SessionTTL = cmp.Or(o.SessionTTL, DefaultSessionTTL)
	o.SignatureTolerance = cmp.Or(o.SignatureTolerance, DefaultSignatureTolerance)
	o.APIKey = cmp.Or(o.APIKey, DefaultAPIKey)
	o.APISecret = cmp.Or(o.APISecret, DefaultAPISecret)
	o.Passphrase = cmp.Or(o.Passphrase, DefaultPassphrase)
	o.WebhookSecret = cmp.Or(o.WebhookSecret, DefaultWebhookSecret)
	o.Asset = cmp.Or(o.Asset, DefaultAsset)
	o.Network = cmp.Or(o.Network, DefaultNetwork)
	o.Amount = cmp.Or(o.Amount, DefaultAmount)
	o.AutoPlayAfter = cmp.Or(o.AutoPlayAfter, DefaultAutoPlayAfter)
	if o.AllowedScopes == nil {
		o.AllowedScopes = []connect.Scope{connect.ScopeDepositSend, connect.ScopeWithdrawalRequest, connect.ScopeWithdrawalSend}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Redelivery.fill()
	if o.BalanceRedelivery == (Redelivery{}) {
		o.BalanceRedelivery = ZeroHashRedelivery
	}
	o.BalanceRedelivery.fill()
}

// OptionError is a rejected Options field; Field is its Go name, e.g. "TokenTTL".
type OptionError struct {
	Field string
	Err   error
}

func (e *OptionError) Error() string { return "connecttest: Options." + e.Field + ": " + e.Err.Error() }

func (e *OptionError) Unwrap() error { return e.Err }

func optionErr(field string, format string, args ...any) error {
	return &OptionError{Field: field, Err: fmt.Errorf(format, args...)}
}

// validate checks filled options; every error is an *OptionError naming the field.
func (o *Options) validate() error {
	switch {
	case o.TokenTTL < time.Second:
		return optionErr("TokenTTL", "%v is under one second", o.TokenTTL)
	case o.SessionTTL < time.Second:
		return optionErr("SessionTTL", "%v is under one second", o.SessionTTL)
	case o.SignatureTolerance < 0:
		return optionErr("SignatureTolerance", "%v is negative", o.SignatureTolerance)
	case o.AutoPlayAfter < 0:
		return optionErr("AutoPlayAfter", "%v is negative", o.AutoPlayAfter)
	case !validAmount(o.Amount):
		return optionErr("Amount", "%q is not a positive decimal", o.Amount)
	}
	for _, pattern := range slices.Sorted(maps.Keys(o.ControlRoutes)) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || method == "" || !strings.HasPrefix(path, "/sandbox/") || o.ControlRoutes[pattern] == nil {
			return optionErr("ControlRoutes", "%q must be \"METHOD /sandbox/...\" with a handler", pattern)
		}
	}
	if o.PublicURL != "" {
		if err := checkURL(o.PublicURL); err != nil {
			return &OptionError{Field: "PublicURL", Err: err}
		}
	}
	if kind, err := o.webhookURLs().check(); err != nil {
		return &OptionError{Field: kind + "WebhookURL", Err: err}
	}
	for _, sc := range o.AllowedScopes {
		switch {
		case sc == connect.ScopeRecoverySend:
			return optionErr("AllowedScopes", "the sandbox does not play %s sessions", sc)
		case !knownScope(sc):
			return optionErr("AllowedScopes", "unknown scope %q", sc)
		}
	}
	if err := o.Redelivery.validate(); err != nil {
		return &OptionError{Field: "Redelivery", Err: err}
	}
	if err := o.BalanceRedelivery.validate(); err != nil {
		return &OptionError{Field: "BalanceRedelivery", Err: err}
	}
	if o.AutoPlay != nil {
		if err := o.AutoPlay.validate(); err != nil {
			return &OptionError{Field: "AutoPlay", Err: err}
		}
		if o.AutoPlay.Outcome == OutcomeUnexpected {
			return optionErr("AutoPlay", "outcome unexpected applies to deposits only")
		}
	}
	return nil
}

func (o *Options) webhookURLs() webhookURLs {
	return webhookURLs{deposit: o.DepositWebhookURL, withdrawal: o.WithdrawalWebhookURL, balance: o.BalanceWebhookURL}
}

// checkURL accepts absolute http(s) URLs, the only kind a webhook or public base URL can be.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// listenerURL is the base URL for a listener, naming loopback when it listens on every interface.
func listenerURL(addr net.Addr) string {
	tcp := addr.(*net.TCPAddr) // New listens on "tcp" only
	if tcp.IP.IsUnspecified() {
		return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return "http://" + tcp.String()
}

func (s *Server) now() time.Time { return s.opts.Now() }

// write sends an answer body; a failed write means the client went away, which only the log can hear.
func (s *Server) write(w io.Writer, body []byte) {
	if _, err := w.Write(body); err != nil {
		s.log.Debug("write answer", "err", err)
	}
}

// readJSON reads the raw body (bounded) and decodes it into v; the raw bytes are what signatures cover.
func readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	return body, decodeObject(body, v)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		return nil, fmt.Errorf("request body could not be read: %w", err)
	}
	return body, nil
}

// decodeObject decodes body, which must be one JSON object, into v.
func decodeObject(body []byte, v any) error {
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("request body is not the expected JSON: %w", err)
	}
	return nil
}

// maxRequestBytes bounds every request body the sandbox reads.
const maxRequestBytes = 1 << 20

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "connecttest: encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	s.write(w, body)
}

// connectError writes the Connect API error shape {error, code, message}.
func (s *Server) connectError(w http.ResponseWriter, status int, code, message string) {
	s.writeJSON(w, status, map[string]string{"error": connectErrorName(status), "code": code, "message": message})
}

func connectErrorName(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	if status >= 500 {
		return "server_error"
	}
	return "error"
}

// sessionsError writes the sessions endpoint's published error shape {error, code, message}: error is the
// sandbox's short reason (e.g. scope_not_allowed), code the gRPC status code of the HTTP status.
func (s *Server) sessionsError(w http.ResponseWriter, status int, reason, message string) {
	s.writeJSON(w, status, struct {
		Error   string `json:"error"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{reason, GRPCCode(status), message})
}

// GRPCCode is the gRPC status code the sandbox's sessions errors carry for an HTTP status, the usual gRPC-gateway
// pairing: 400 INVALID_ARGUMENT (3), 401 UNAUTHENTICATED (16), 403 PERMISSION_DENIED (7), 404 NOT_FOUND (5),
// 409 ALREADY_EXISTS (6), 429 RESOURCE_EXHAUSTED (8), 503 UNAVAILABLE (14), 504 DEADLINE_EXCEEDED (4), other 5xx
// INTERNAL (13), anything else UNKNOWN (2).
func GRPCCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 3
	case http.StatusUnauthorized:
		return 16
	case http.StatusForbidden:
		return 7
	case http.StatusNotFound:
		return 5
	case http.StatusConflict:
		return 6
	case http.StatusTooManyRequests:
		return 8
	case http.StatusServiceUnavailable:
		return 14
	case http.StatusGatewayTimeout:
		return 4
	}
	if status >= 500 {
		return 13
	}
	return 2
}

// oauthError writes the token endpoint's RFC 6749 error shape {error, error_description}.
func (s *Server) oauthError(w http.ResponseWriter, status int, code, message string) {
	s.writeJSON(w, status, map[string]string{"error": code, "error_description": message})
}

// platformError writes Zero Hash platform error shapes: 400 {"errors":[...]}, 403 {"error":true,"message"},
// 503 with zh-allow-retry, and {"error","message"} otherwise.
func (s *Server) platformError(w http.ResponseWriter, status int, code, message string) {
	switch status {
	case http.StatusBadRequest:
		s.writeJSON(w, status, map[string][]string{"errors": {message}})
	case http.StatusForbidden:
		s.writeJSON(w, status, map[string]any{"error": true, "message": message})
	default:
		if status == http.StatusServiceUnavailable {
			w.Header().Set("zh-allow-retry", "true")
		}
		s.writeJSON(w, status, map[string]string{"error": code, "message": message})
	}
}

// sleep waits d or until ctx ends, reporting whether the whole d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
