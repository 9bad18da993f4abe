// Package otelsetup turns connectflow's tracing on for a process: Setup (or Main, for a command's run function)
// reads the standard OTEL_* environment and installs a TracerProvider exporting over OTLP, every span passing
// through Redact first. The instrumentation itself is in package telemetry and telemetry/gintrace, so a library
// (starter/transfer, connect) does not link the SDK or the exporters. docs/tracing.md.
package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/connectflow/connectflow/internal/telemetry"
)

// The standard OpenTelemetry environment variables Setup reads itself. The exporter, the sampler and the batch
// processor read the rest (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, _COMPRESSION, OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*), and the resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvServiceName    = "OTEL_SERVICE_NAME"
	ProtocolHTTP      = "http/protobuf"
	ProtocolGRPC      = "grpc"
)

// Setup turns tracing on when the environment names an OTLP endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT), unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. serviceName is the
// service.name unless OTEL_SERVICE_NAME overrides it. The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf; grpc is the other one supported. Call it before building the
// Temporal client, the servers and the HTTP clients. shutdown flushes the spans not yet exported; with tracing off
// Setup installs nothing and shutdown does nothing. An error names the variable that was wrong.
func Setup(ctx context.Context, serviceName string) (shutdown func(context.Context) error, err error) {
	return setup(ctx, serviceName, os.LookupEnv)
}

func setup(ctx context.Context, serviceName string, env func(string) (string, bool)) (func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	get := func(name string) string { v, _ := env(name); return strings.TrimSpace(v) }
	if v := get(EnvSDKDisabled); strings.EqualFold(v, "true") {
		return noop, nil
	}
	switch exp := strings.ToLower(get(EnvTracesExporter)); exp {
	case "", "otlp":
	case "none":
		return noop, nil
	default:
		return nil, fmt.Errorf("%s=%q: connectflow exports traces with otlp (or none)", EnvTracesExporter, exp)
	}
	if get(EnvTracesEndpoint) == "" && get(EnvEndpoint) == "" {
		return noop, nil
	}
	protocol, from := get(EnvTracesProtocol), EnvTracesProtocol
	if protocol == "" {
		protocol, from = get(EnvProtocol), EnvProtocol
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", ProtocolHTTP:
		exporter, err = otlptracehttp.New(ctx)
	case ProtocolGRPC:
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s=%q: use %s or %s", from, protocol, ProtocolHTTP, ProtocolGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name
		resource.WithTelemetrySDK(),
		resource.WithProcessRuntimeName(), resource.WithProcessRuntimeVersion())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("%s: %w", "OTEL_RESOURCE_ATTRIBUTES", err)
	}
	tp := NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(Redact(sdktrace.NewBatchSpanProcessor(exporter))))
	telemetry.Use(tp)
	return func(ctx context.Context) error {
		telemetry.Reset()
		return tp.Shutdown(ctx)
	}, nil
}

// NewTracerProvider is sdktrace.NewTracerProvider; its sampler is the environment's (OTEL_TRACES_SAMPLER, default
// parentbased_always_on). Wrap each span processor in Redact.
func NewTracerProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(opts...)
}

// shutdownTimeout bounds the flush of the spans not yet exported when a command stops.
const shutdownTimeout = 5 * time.Second

// Start is Setup for a command: it returns a bad OTEL_* setting as an error for the command to print and exit 2
// on, as with its other bad settings, and else a stop function that flushes the spans not yet exported (for at
// most 5 s, a failure printed to stderr under serviceName) and stops tracing. With tracing off stop does nothing.
func Start(ctx context.Context, serviceName string, stderr io.Writer) (stop func(), err error) {
	shutdown, err := Setup(ctx, serviceName)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			fmt.Fprintf(stderr, "%s: tracing: spans not flushed: %v\n", serviceName, err)
		}
	}, nil
}

// Usage prints the tracing settings Setup reads, for a process's -h, in the settings' "env NAME" form;
// serviceName is the process's default service.name.
func Usage(w io.Writer, serviceName string) {
	fmt.Fprintf(w, `
Tracing (OpenTelemetry over OTLP; off unless an endpoint is set; docs/tracing.md):
  env %s: the collector's base URL, e.g. http://otel-collector:4318 (grpc: http://otel-collector:4317)
  env %s: the traces URL as it is; wins over %s
  env %s: %s (default) or %s; %s for traces alone
  env %s: service.name, default %s
  env %s: true turns tracing off
  env %s: otlp (default) or none
`, EnvEndpoint, EnvTracesEndpoint, EnvEndpoint, EnvProtocol, ProtocolHTTP, ProtocolGRPC, EnvTracesProtocol,
		EnvServiceName, serviceName, EnvSDKDisabled, EnvTracesExporter)
}
