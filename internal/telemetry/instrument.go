package telemetry

import (
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/connectflow/connectflow/internal/telemetry/signalspan"
)

// AttrPeer names the remote service an outgoing HTTP span calls: PeerConnect, PeerZeroHash or PeerPlatform.
const AttrPeer = "peer.service"

// The peers HTTPClient is given.
const (
	PeerConnect  = "connect"
	PeerZeroHash = "zerohash"
	// PeerPlatform is the platform's notification webhook: its URL may carry a token in its path, so its spans
	// keep the scheme and host only (otelsetup.Redact).
	PeerPlatform = "platform"
)

// SignalSpanWorkflows are the workflow types that take their signals through signalspan.Received (the transfer
// workflow); only they get signalspan's per-signal span queue. tests/tracing_test.go fails if the name is wrong (the
// activities a webhook causes would lose its signal span as their parent).
var SignalSpanWorkflows = []string{"TransferWorkflow"}

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
	return []interceptor.ClientInterceptor{tracing, signalspan.Interceptor(SignalSpanWorkflows...)}, nil
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
