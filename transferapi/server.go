// Package transferapi is connectflow's transfer API: an HTTP/JSON service (Gin) through which a platform backend
// in any language starts deposits and withdrawals, reads them, relays Auth SDK callbacks, issues onboarding tokens
// and resolves stalled transfers. It is built on package starter/transfer and serves, on one private listener:
//
//	POST /v1/deposits, /v1/withdrawals                      start (update-with-start): 201 new, 200 same body again
//	GET  /v1/{deposits|withdrawals}/{transfer_id}           the transfer's state and event record
//	GET  /v1/transfers                                      a page of transfers from visibility
//	POST /v1/{deposits|withdrawals}/{transfer_id}/sdk-events relay an Auth SDK callback
//	POST /v1/{deposits|withdrawals}/{transfer_id}/resolve   an operator's audited decision
//	POST /v1/onboarding-tokens                              a Zero Hash onboarding token
//	POST /v1/reconcile                                      one Zero Hash reconciliation run now (operator)
//	POST /v1/reviews/{review_id}/redeliver                  deliver a review's event to its transfer (operator)
//	GET  /openapi.json, /healthz, /readyz, /metrics
//
// Every /v1 call needs a bearer token or JWT (see Authenticator); errors are RFC 9457 problem documents.
//
//	srv, _ := transferapi.New(transferapi.Options{Temporal: c, Auth: auth})
//	http.ListenAndServe("127.0.0.1:8081", srv.Handler())
package transferapi

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// Paths served. Gin's ":transfer_id" is OpenAPI's "{transfer_id}".
const (
	PathDeposits        = "/v1/deposits"
	PathWithdrawals     = "/v1/withdrawals"
	PathTransfers       = "/v1/transfers"
	PathOnboarding      = "/v1/onboarding-tokens"
	PathReconcile       = "/v1/reconcile"
	PathOpenAPI         = "/openapi.json"
	PathHealthz         = "/healthz"
	PathReadyz          = "/readyz"
	PathMetrics         = "/metrics"
	suffixTransfer      = "/:transfer_id"
	suffixSDKEvents     = "/:transfer_id/sdk-events"
	suffixResolve       = "/:transfer_id/resolve"
	transferIDParameter = "transfer_id"
)

// Defaults of Options.
const (
	DefaultMaxBody         = 64 << 10
	DefaultRequestTimeout  = 60 * time.Second
	DefaultTemporalTimeout = 5 * time.Second
)

// OpenAPI is the OpenAPI 3.1 document of every route, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Options configure a Server.
type Options struct {
	// Temporal reaches the workflows. Required. Dial it with CallerPropagator among its ContextPropagators so
	// history records each caller; Run does.
	Temporal client.Client
	// TaskQueue is where transfers and onboarding workflows start; default workflows.DefaultTaskQueue.
	TaskQueue string
	// DataConverter decodes a transfer's recorded input (to compare a repeated start with it); it must be the
	// client's, codec included. Default converter.GetDefaultDataConverter().
	DataConverter converter.DataConverter
	// Auth checks every /v1 request's credentials. Required.
	Auth *Authenticator
	// ReadyChecks run behind /readyz beside Temporal's health, e.g. (*JWKS).Ready.
	ReadyChecks []func(context.Context) error
	// RequestTimeout bounds a call that waits on a workflow (a start waits for Connect's session); past it the
	// answer is 504. Default 60 s.
	RequestTimeout time.Duration
	// TemporalTimeout bounds a call that only asks Temporal (describe, signal, list); past it the answer is 503.
	// Default 5 s.
	TemporalTimeout time.Duration
	// MaxBody is the largest request body; default 64 KiB.
	MaxBody int64
	// Timeouts are given to every transfer this API starts; zero values keep the workflow's defaults. A repeated
	// start is compared with the recorded one without them.
	Timeouts workflows.Timeouts
	// Logger gets one line per request: route, status, caller, problem type; never a body or a credential.
	Logger *slog.Logger
	// Registry takes the API's metrics and is what /metrics serves; default a new registry with Go and process
	// collectors.
	Registry *prometheus.Registry
}

// Server is the transfer API's handler.
type Server struct {
	engine    *gin.Engine
	temporal  client.Client
	transfers *transfer.Client
	taskQueue string
	dc        converter.DataConverter
	auth      *Authenticator
	ready     []func(context.Context) error
	timeout   time.Duration
	quick     time.Duration
	maxBody   int64
	timeouts  workflows.Timeouts
	log       *slog.Logger
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

// New checks opts and builds the handler. It makes no network call.
func New(opts Options) (*Server, error) {
	if opts.Temporal == nil {
		return nil, errors.New("transferapi: Options.Temporal is required")
	}
	if opts.Auth == nil {
		return nil, errors.New("transferapi: Options.Auth is required")
	}
	if opts.RequestTimeout < 0 || opts.TemporalTimeout < 0 || opts.MaxBody < 0 {
		return nil, errors.New("transferapi: Options: timeouts and MaxBody must not be negative")
	}
	s := &Server{
		temporal:  opts.Temporal,
		taskQueue: cmp.Or(opts.TaskQueue, workflows.DefaultTaskQueue),
		dc:        opts.DataConverter,
		auth:      opts.Auth,
		ready:     opts.ReadyChecks,
		timeout:   cmp.Or(opts.RequestTimeout, DefaultRequestTimeout),
		quick:     cmp.Or(opts.TemporalTimeout, DefaultTemporalTimeout),
		maxBody:   cmp.Or(opts.MaxBody, DefaultMaxBody),
		timeouts:  opts.Timeouts,
		log:       opts.Logger,
	}
	if s.dc == nil {
		s.dc = converter.GetDefaultDataConverter()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.transfers = transfer.NewClient(opts.Temporal, transfer.Options{TaskQueue: s.taskQueue})
	registry := opts.Registry
	if registry == nil {
		registry = prometheus.NewRegistry()
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		registry.MustRegister(codec.Collectors()...)
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectflow_api_requests_total",
		Help: "Transfer API requests by route, method and status.",
	}, []string{"route", "method", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "connectflow_api_request_seconds",
		Help:    "Transfer API request duration by route.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
	for _, c := range []prometheus.Collector{s.requests, s.latency} {
		if err := registry.Register(c); err != nil {
			return nil, fmt.Errorf("transferapi: metrics: %w", err)
		}
	}

	gin.SetMode(gin.ReleaseMode) // process-wide in Gin: no route dump or debug warnings on stdout
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false // a redirect would drop a POST body; answer 404 instead
	e.RedirectFixedPath = false
	e.Use(s.observe)
	e.NoRoute(func(c *gin.Context) { s.problem(c, newProblem(TypeNotFound, "no route "+c.Request.URL.Path)) })
	e.NoMethod(func(c *gin.Context) {
		s.problem(c, newProblem(TypeMethodNotAllowed, c.Request.Method+" is not served on "+c.Request.URL.Path))
	})
	for _, kind := range []connect.Kind{connect.KindDeposit, connect.KindWithdrawal} {
		base := PathDeposits
		if kind == connect.KindWithdrawal {
			base = PathWithdrawals
		}
		e.POST(base, s.api(false, s.start(kind)))
		e.GET(base+suffixTransfer, s.api(false, s.status(kind)))
		e.POST(base+suffixSDKEvents, s.api(false, s.sdkEvent(kind)))
		e.POST(base+suffixResolve, s.api(true, s.resolve(kind)))
	}
	e.GET(PathTransfers, s.api(false, s.list))
	e.POST(PathOnboarding, s.api(false, s.onboarding))
	e.POST(PathReconcile, s.api(true, s.reconcileNow))
	e.POST(PathReviews+suffixRedeliver, s.api(true, s.redeliver))
	e.GET(PathOpenAPI, func(c *gin.Context) { c.Data(http.StatusOK, "application/json", OpenAPI) })
	e.GET(PathHealthz, func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET(PathReadyz, s.readyz)
	e.GET(PathMetrics, gin.WrapH(promhttp.HandlerFor(registry, promhttp.HandlerOpts{})))
	s.engine = e
	return s, nil
}

// Handler serves every route.
func (s *Server) Handler() http.Handler { return s.engine }

// Routes lists the served routes as "METHOD /path" with Gin's ":param" syntax.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.engine.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Ready reports why the API cannot serve now: Temporal not answering, or a ReadyCheck failing.
func (s *Server) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.quick)
	defer cancel()
	var problems []error
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		problems = append(problems, fmt.Errorf("temporal: %w", err))
	}
	for _, check := range s.ready {
		if err := check(ctx); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

func (s *Server) readyz(c *gin.Context) {
	if err := s.Ready(c.Request.Context()); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not_ready", "detail": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// Keys of what a request leaves in its gin.Context for observe.
const (
	keyCaller     = "connectflow.caller"
	keyProblem    = "connectflow.problem"
	keyWorkflowID = "connectflow.workflow_id"
	keyErr        = "connectflow.err"
)

// observe recovers a panic as a 500 problem, counts the request and logs one line: route, method, status, caller,
// problem type, workflow; never a body, a header value or a credential.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("transfer API handler panicked", "route", c.FullPath(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.problem(c, newProblem(TypeInternal, ""))
			c.Abort()
		}
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		s.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(status)).Inc()
		took := time.Since(start)
		s.latency.WithLabelValues(route).Observe(took.Seconds())
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			level = slog.LevelWarn
		}
		if !s.log.Enabled(c.Request.Context(), level) {
			return
		}
		attrs := []slog.Attr{slog.String("route", route), slog.String("method", c.Request.Method),
			slog.Int("status", status), slog.Duration("took", took)}
		if v, ok := c.Get(keyCaller); ok {
			attrs = append(attrs, slog.String("caller", v.(Caller).Name))
		}
		if v, ok := c.Get(keyWorkflowID); ok {
			attrs = append(attrs, slog.String("workflow_id", v.(string)))
		}
		if v, ok := c.Get(keyProblem); ok {
			attrs = append(attrs, slog.String("problem", v.(*Problem).Type))
		}
		if v, ok := c.Get(keyErr); ok {
			attrs = append(attrs, slog.String("err", v.(error).Error()))
		}
		s.log.LogAttrs(c.Request.Context(), level, "transfer API request", attrs...)
	}()
	c.Next()
}

// problem answers p and keeps it for the log line.
func (s *Server) problem(c *gin.Context, p *Problem) {
	c.Set(keyProblem, p)
	WriteProblem(c.Writer, p)
}

// handler does one /v1 call for an authenticated caller: it returns the status and body of a success, or a problem.
type handler func(c *gin.Context, caller Caller) (int, any, *Problem)

// api authenticates the request (and checks the operator role when operator is set), runs h and writes its answer.
func (s *Server) api(operator bool, h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		caller, err := s.auth.Authenticate(c.Request.Context(), c.GetHeader("Authorization"))
		if err != nil {
			s.problem(c, newProblem(TypeUnauthorized, err.Error()))
			return
		}
		c.Set(keyCaller, caller)
		if operator && !caller.Operator {
			s.problem(c, newProblem(TypeForbidden, fmt.Sprintf(
				"this call needs the operator role: a token entry name:token:%s, or a JWT whose roles claim holds %q",
				OperatorRole, RoleClaimOperator)))
			return
		}
		c.Request = c.Request.WithContext(withCaller(c.Request.Context(), caller))
		status, body, p := h(c, caller)
		if p != nil {
			s.problem(c, p)
			return
		}
		c.Header("Cache-Control", "no-store") // answers hold session JWTs and onboarding tokens
		c.JSON(status, body)
	}
}
