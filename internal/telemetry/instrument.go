package telemetry

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/connectflow/connectflow/internal/telemetry/signalspan"
)

// TemporalInterceptors are the client interceptors that trace a Temporal client and every worker built on it
// (a worker inherits its client's interceptors): the SDK's OpenTelemetry tracing interceptor (spans
// StartWorkflow, SignalWorkflow, UpdateWithStartWorkflow, ... on the client; RunWorkflow, HandleSignal,
// HandleUpdate, StartActivity, RunActivity on the worker; the W3C trace context in each Temporal header), then
// signalspan's, which lets a workflow run the activities a signal causes under that signal's span. nil when
// tracing is off.
func TemporalInterceptors() ([]interceptor.ClientInterceptor, error) {
	if !Enabled() {
		return nil, nil
	}
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		TextMapPropagator: Propagator,
		SpanContextKey:    signalspan.SpanContextKey,
		DisableBaggage:    true,
	})
	if err != nil {
		return nil, err
	}
	return []interceptor.ClientInterceptor{tracing, signalspan.Interceptor()}, nil
}

// untraced are the routes no span is opened for: probes and scrapes.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Gin is the middleware that opens a server span for each request to a Gin engine (service names the server),
// named "<METHOD> <route>" (the route pattern, never the raw path), continuing the caller's W3C trace context.
// Probes (/healthz, /readyz) and /metrics are not traced. nil when tracing is off: add it with Use only then.
func Gin(service string) gin.HandlerFunc {
	if !Enabled() {
		return nil
	}
	return otelgin.Middleware(service,
		otelgin.WithPropagators(Propagator),
		otelgin.WithGinFilter(func(c *gin.Context) bool { return !untraced[c.FullPath()] }),
		otelgin.WithSpanNameFormatter(func(c *gin.Context) string {
			route := c.FullPath()
			if route == "" {
				route = "unmatched route"
			}
			return c.Request.Method + " " + route
		}))
}

// UseGin adds Gin(service) to e when tracing is on: first, so every later middleware runs inside its span.
func UseGin(e *gin.Engine, service string) {
	if mw := Gin(service); mw != nil {
		e.Use(mw)
	}
}

// HTTPClient returns c (nil: a zero http.Client) with a transport that opens a client span for each request,
// named "<peer> <METHOD>" plus the path except for PeerPlatform, and sends the W3C trace context. It returns c
// itself when tracing is off. c is not modified: the result is a copy.
func HTTPClient(c *http.Client, peer string) *http.Client {
	if !Enabled() {
		return c
	}
	var copied http.Client
	if c != nil {
		copied = *c
	}
	base := copied.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	copied.Transport = otelhttp.NewTransport(base,
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String(AttrPeer, peer))),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if peer == PeerPlatform {
				return peer + " " + r.Method
			}
			return peer + " " + r.Method + " " + r.URL.Path
		}))
	return &copied
}

// AddTemporal appends TemporalInterceptors to opts.Interceptors (nothing when tracing is off), for a process that
// builds its client.Options itself rather than through settings.ClientOptions.
func AddTemporal(opts *client.Options) error {
	ints, err := TemporalInterceptors()
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	opts.Interceptors = append(opts.Interceptors, ints...)
	return nil
}
