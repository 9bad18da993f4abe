// Package telemetry is connectflow's tracing instrumentation, light enough for the library packages: whether
// tracing is on in this process (Enabled), the W3C trace context propagator, the Temporal interceptors
// (TemporalInterceptors, AddTemporal) and the traced HTTP client (HTTPClient). It imports the OpenTelemetry API
// only: package otelsetup installs the SDK and the OTLP exporter (Setup, Main) and telemetry/gintrace traces Gin
// servers. Instrumentation is added only to what is built after tracing was turned on. docs/tracing.md.
package telemetry

import (
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// enabled is true once Use installed a provider: the instrumentation is only added to what is built after it.
var enabled atomic.Bool

// Enabled reports whether tracing is on in this process (otelsetup.Setup found an endpoint, or a test called
// Use).
func Enabled() bool { return enabled.Load() }

// Propagator is the W3C trace context (traceparent, tracestate), and nothing else: no baggage is taken from a
// caller or passed on to Connect, Zero Hash or the platform.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Use makes tp the process's tracer provider, Propagator its propagator, and turns the instrumentation on for
// what is built from now on. otelsetup.Setup calls it; a test calls it with an in-memory recorder (wrapped in
// otelsetup.Redact).
func Use(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	enabled.Store(true)
}

// Reset turns the instrumentation off for what is built from now on and restores the no-op provider; for tests.
func Reset() {
	enabled.Store(false)
	otel.SetTracerProvider(noop.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
}
