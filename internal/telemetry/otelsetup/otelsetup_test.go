package otelsetup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/connectflow/connectflow/internal/telemetry"
	"github.com/connectflow/connectflow/internal/telemetry/gintrace"
)

// otlpReceiver is an OTLP/HTTP trace endpoint on loopback that keeps the span names it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	names []string
	seen  []string // authorization headers, to check OTEL_EXPORTER_OTLP_HEADERS reached it
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.URL.Path != "/v1/traces" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var msg collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, req.Header.Get("Authorization"))
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.names = append(r.names, service+"/"+sp.GetName())
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// clearEnv unsets every variable Setup reads, for the test's duration.
func clearEnv(t *testing.T) {
	for _, name := range []string{EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol, EnvTracesExporter,
		EnvSDKDisabled, EnvServiceName, "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(name, "")
	}
	t.Cleanup(telemetry.Reset)
}

func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	clearEnv(t)
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	t.Setenv(EnvEndpoint, srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer collector-token")
	t.Setenv(EnvServiceName, "renamed-worker")

	shutdown, err := Setup(t.Context(), "connectflow-worker")
	if err != nil {
		t.Fatal(err)
	}
	if !telemetry.Enabled() {
		t.Fatal("Setup with an endpoint did not turn tracing on")
	}
	_, span := otel.Tracer("test").Start(context.Background(), "work")
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if telemetry.Enabled() {
		t.Fatal("tracing still on after shutdown")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.names) != 1 || rcv.names[0] != "renamed-worker/work" {
		t.Fatalf("received %v, want the span under OTEL_SERVICE_NAME", rcv.names)
	}
	if rcv.seen[0] != "Bearer collector-token" {
		t.Fatalf("the exporter did not send OTEL_EXPORTER_OTLP_HEADERS: %q", rcv.seen[0])
	}
}

func TestSetupOffUnlessAnEndpointIsSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"nothing set", nil},
		{"only a service name", map[string]string{EnvServiceName: "x"}},
		{"SDK disabled", map[string]string{EnvEndpoint: "http://127.0.0.1:4318", EnvSDKDisabled: "true"}},
		{"exporter none", map[string]string{EnvTracesEndpoint: "http://127.0.0.1:4318", EnvTracesExporter: "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			shutdown, err := Setup(t.Context(), "svc")
			if err != nil {
				t.Fatal(err)
			}
			if telemetry.Enabled() {
				t.Fatal("tracing on")
			}
			if err := shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			ints, err := telemetry.TemporalInterceptors()
			if err != nil || ints != nil {
				t.Fatalf("interceptors with tracing off: %v, %v", ints, err)
			}
			if gintrace.Gin("svc") != nil {
				t.Fatal("Gin middleware with tracing off")
			}
			c := &http.Client{}
			if telemetry.HTTPClient(c, telemetry.PeerConnect) != c {
				t.Fatal("HTTPClient changed the client with tracing off")
			}
		})
	}
}

func TestSetupRefusesUnknownSettings(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{EnvTracesExporter, "zipkin", EnvTracesExporter},
		{EnvProtocol, "http/json", EnvProtocol},
		{EnvTracesProtocol, "thrift", EnvTracesProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(EnvEndpoint, "http://127.0.0.1:4318")
			t.Setenv(tc.name, tc.value)
			if _, err := Setup(t.Context(), "svc"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Setup: %v, want an error naming %s", err, tc.want)
			}
			if telemetry.Enabled() {
				t.Fatal("tracing on after a refused setting")
			}
		})
	}
}

func TestSetupGRPCProtocol(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvTracesEndpoint, "http://127.0.0.1:4317")
	t.Setenv(EnvTracesProtocol, ProtocolGRPC)
	shutdown, err := Setup(t.Context(), "svc")
	if err != nil || !telemetry.Enabled() {
		t.Fatalf("Setup: %v, enabled %v", err, telemetry.Enabled())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // nothing listens there: do not wait for the flush
	_ = shutdown(ctx)
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct {
		in       string
		hostOnly bool
		want     string
	}{
		{"https://user:pw@api.example.com/api/v1/sessions?token=abc#frag", false, "https://api.example.com/api/v1/sessions"},
		{"https://hooks.example.com/services/T0K3N?x=1", true, "https://hooks.example.com"},
		{"/v1/deposits?access_token=abc", false, "/v1/deposits"},
		{"http://[::1", false, Redacted},
	} {
		if got := RedactURL(tc.in, tc.hostOnly); got != tc.want {
			t.Errorf("RedactURL(%q, %v) = %q, want %q", tc.in, tc.hostOnly, got, tc.want)
		}
	}
}

func TestRedactText(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLWJ5dGVz"
	for _, in := range []string{
		"session " + jwt + " expired",
		"Authorization: Bearer opaque-token-0123456789",
		"secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"signature v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"mail pii.person@example.com failed",
	} {
		got := RedactText(in)
		if !strings.Contains(got, Redacted) || strings.Contains(got, "eyJ") || strings.Contains(got, "example.com") ||
			strings.Contains(got, "opaque-token") || strings.Contains(got, "whsec_M") || strings.Contains(got, "g0hM9") {
			t.Errorf("RedactText(%q) = %q", in, got)
		}
	}
	for _, keep := range []string{"RunActivity:OpenSession", "POST /v1/deposits", "deposit-trace-1", "connect POST /api/v1/sessions"} {
		if got := RedactText(keep); got != keep {
			t.Errorf("RedactText(%q) = %q: changed what holds no secret", keep, got)
		}
	}
}

// TestRedactOnEveryPath: a span's attributes, events and status go through Redact before an exporter sees them.
func TestRedactOnEveryPath(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := NewTracerProvider(sdktrace.WithSpanProcessor(Redact(rec)))
	_, span := tp.Tracer("t").Start(context.Background(), "call for a@b.example")
	span.SetAttributes(
		attribute.String("url.full", "https://h.example/p?sig=s3cret"),
		attribute.String("client.address", "203.0.113.9"),
		attribute.String("user_agent.original", "Mozilla/5.0"),
		attribute.String("http.request.header.authorization", "Bearer x"),
		attribute.StringSlice("notes", []string{"ok", "Bearer abcdefghijkl"}),
		attribute.Int("http.response.status_code", 200),
	)
	span.RecordError(errors.New("token eyJabcdefgh.eyJabcdefgh.sig"))
	span.End()
	got := rec.Ended()[0]
	if got.Name() != "call for "+Redacted {
		t.Errorf("name %q", got.Name())
	}
	want := map[string]string{"url.full": "https://h.example/p", "notes": `["ok","` + Redacted + `"]`, "http.response.status_code": "200"}
	attrs := got.Attributes()
	if len(attrs) != len(want) {
		t.Errorf("attributes %v, want only %v", attrs, want)
	}
	for _, kv := range attrs {
		if want[string(kv.Key)] != kv.Value.Emit() {
			t.Errorf("%s = %s, want %s", kv.Key, kv.Value.Emit(), want[string(kv.Key)])
		}
	}
	for _, e := range got.Events() {
		for _, kv := range e.Attributes {
			if strings.Contains(kv.Value.Emit(), "eyJ") {
				t.Errorf("event attribute %s = %s", kv.Key, kv.Value.Emit())
			}
		}
	}
}

func TestHTTPClientSpanAndPropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	telemetry.Use(NewTracerProvider(sdktrace.WithSpanProcessor(Redact(rec))))
	t.Cleanup(telemetry.Reset)
	var traceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent = r.Header.Get("traceparent")
	}))
	defer srv.Close()
	base := &http.Client{}
	for _, peer := range []string{telemetry.PeerZeroHash, telemetry.PeerPlatform} {
		c := telemetry.HTTPClient(base, peer)
		if c == base || base.Transport != nil {
			t.Fatal("HTTPClient must return a copy and leave the original alone")
		}
		ctx, parent := otel.Tracer("t").Start(context.Background(), "activity")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/secret-path/x?k=v", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		parent.End()
		if !strings.Contains(traceparent, parent.SpanContext().TraceID().String()) {
			t.Fatalf("traceparent %q does not carry the caller's trace", traceparent)
		}
	}
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
		for _, kv := range sp.Attributes() {
			if kv.Key == "url.full" && strings.Contains(kv.Value.AsString(), "?") {
				t.Errorf("%s: url.full %s keeps the query", sp.Name(), kv.Value.AsString())
			}
			if kv.Key == "url.full" && sp.Name() == "platform GET" && strings.Contains(kv.Value.AsString(), "secret-path") {
				t.Errorf("platform url.full %s keeps the path", kv.Value.AsString())
			}
		}
	}
	if strings.Join(names, ",") != "zerohash GET /secret-path/x,activity,platform GET,activity" {
		t.Fatalf("spans %v", names)
	}
}

func TestGinSpanSkipsProbes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	telemetry.Use(NewTracerProvider(sdktrace.WithSpanProcessor(Redact(rec))))
	t.Cleanup(telemetry.Reset)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	gintrace.UseGin(e, "svc")
	e.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusOK) })
	e.POST("/v1/:id/resolve", func(c *gin.Context) { c.Status(http.StatusAccepted) })
	for _, r := range []*http.Request{httptest.NewRequest(http.MethodGet, "/healthz", nil),
		httptest.NewRequest(http.MethodPost, "/v1/t-1/resolve?x=1", nil)} {
		r.Header.Set("Authorization", "Bearer api-token-0123456789")
		e.ServeHTTP(httptest.NewRecorder(), r)
	}
	ended := rec.Ended()
	if len(ended) != 1 || ended[0].Name() != "POST /v1/:id/resolve" {
		t.Fatalf("spans %v, want one named by its route", ended)
	}
	for _, kv := range ended[0].Attributes() {
		if strings.Contains(kv.Value.Emit(), "api-token") || strings.Contains(kv.Value.Emit(), "x=1") {
			t.Errorf("%s = %s", kv.Key, kv.Value.Emit())
		}
	}
}
