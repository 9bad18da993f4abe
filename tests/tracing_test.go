package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/workflows"
)

// spans indexes recorded spans by span id, to walk parent links.
type spans struct {
	all  []sdktrace.ReadOnlySpan
	byID map[trace.SpanID]sdktrace.ReadOnlySpan
}

func indexSpans(all []sdktrace.ReadOnlySpan) spans {
	s := spans{all: all, byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}}
	for _, sp := range all {
		s.byID[sp.SpanContext().SpanID()] = sp
	}
	return s
}

// chain is span's name and its ancestors' names, nearest first, following parent links among the recorded spans
// (each in the same trace); it stops at a root or at a parent not recorded (named "<missing>").
func (s spans) chain(t *testing.T, span sdktrace.ReadOnlySpan) []string {
	t.Helper()
	names := []string{span.Name()}
	for span.Parent().IsValid() {
		parent, ok := s.byID[span.Parent().SpanID()]
		if !ok {
			return append(names, "<missing>")
		}
		if parent.SpanContext().TraceID() != span.SpanContext().TraceID() {
			t.Fatalf("span %q has parent %q in another trace", span.Name(), parent.Name())
		}
		span = parent
		names = append(names, span.Name())
	}
	return names
}

func (s spans) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.all {
		if sp.Name() == name {
			out = append(out, sp)
		}
	}
	return out
}

func attr(sp sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTracingOneTraceFromRequestToConnectCall drives a deposit with tracing on, every process part real and traced
// as the binaries trace it (Temporal clients from settings.ClientOptions, the worker from workerapp, the bridge,
// the API): the API's request, its update-with-start, the workflow, the OpenSession activity and its Connect call
// are one trace; each signed webhook the sandbox sends, its signal, the workflow's handling of it, the
// notification activity it causes and that activity's HTTP call to the platform are one trace. No span, event or
// status holds a credential, a token or personal data.
func TestTracingOneTraceFromRequestToConnectCall(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	tp := otelsetup.NewTracerProvider(sdktrace.WithSpanProcessor(otelsetup.Redact(recorder)))
	telemetry.Use(tp)
	t.Cleanup(telemetry.Reset)

	s := newStack(t, connecttest.Options{})
	key := make([]byte, codec.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	codecKeys := "trace-key:" + base64.StdEncoding.EncodeToString(key)
	// A Temporal client as every binary builds one: settings.ClientOptions adds the tracing interceptors.
	dial := func(propagators ...workflow.ContextPropagator) (client.Client, client.Options) {
		set := settings.New("tracing-test", settings.Options{Env: settings.MapEnv{
			settings.EnvTemporalAddress: s.server.GetFrontendHostPort(), settings.EnvTemporalNamespace: s.namespace,
			codec.EnvKeys: codecKeys}, Output: io.Discard})
		tc := settings.BindTemporal(set, taskQueue)
		if err := set.Parse(nil); err != nil {
			t.Fatal(err)
		}
		opts, err := tc.ClientOptions()
		if err != nil {
			t.Fatal(err)
		}
		if len(opts.Interceptors) == 0 {
			t.Fatal("settings.ClientOptions added no tracing interceptor with tracing on")
		}
		opts.ContextPropagators = append(opts.ContextPropagators, propagators...)
		c, err := client.Dial(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c, opts
	}
	traced, _ := dial()

	// The platform's webhook URL carries a token in its path, as some platforms' do: no span may show it.
	const pathToken = "path-token-5f0c2a9e71b34d"
	p := newPlatform(t)
	cfg := s.workerConfig()
	tokens := &tokenRecorder{}
	cfg.Connect.HTTPClient = &http.Client{Transport: tokens}
	platformHost := strings.TrimSuffix(p.url, "/webhooks/connectflow")
	cfg.Platform = workerapp.PlatformConfig{URL: platformHost + "/hooks/" + pathToken, Secrets: p.secrets}
	w, err := workerapp.New(traced, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	rig := s.startBridge(bridgeOptions{})
	rig.temporal.use(traced)

	apiClient, apiOpts := dial(transferapi.CallerPropagator())
	toks, err := transferapi.ParseTokens("backend:" + apiBackendToken)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := transferapi.NewAuthenticator(toks, nil)
	if err != nil {
		t.Fatal(err)
	}
	api, err := transferapi.New(transferapi.Options{Temporal: apiClient, TaskQueue: taskQueue,
		DataConverter: apiOpts.DataConverter, Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api.Handler())
	t.Cleanup(apiSrv.Close)

	post := func(path string, v any) (int, []byte) {
		body, _ := json.Marshal(v)
		req, _ := http.NewRequestWithContext(s.ctx(), http.MethodPost, apiSrv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+apiBackendToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, answer
	}
	// Start through the API, with an email in the metadata: personal data that must reach no span.
	const email = "trace.person@example.com"
	status, answer := post(transferapi.PathDeposits, map[string]any{"transfer_id": "trace-1", "reference_id": "USER77",
		"metadata": map[string]string{"contact": email}})
	var started transferapi.StartResponse
	if status != http.StatusCreated || json.Unmarshal(answer, &started) != nil || started.JWT == "" {
		t.Fatalf("start: %d %s", status, answer)
	}
	deliveries, err := s.sandbox.Play(s.ctx(), started.SessionID, connecttest.Play{Outcome: connecttest.OutcomeConfirmed})
	requireDelivered(t, deliveries, err)
	var result workflows.TransferResult
	if err := traced.GetWorkflow(s.ctx(), started.WorkflowID, "").Get(s.ctx(), &result); err != nil || result.Status != workflows.StatusConfirmed {
		t.Fatalf("deposit: %s, %v", result.Status, err)
	}
	// An onboarding token: the user's email and phone go to Zero Hash in the body, never into a span.
	const onboardEmail, onboardPhone = "onboard.person@example.com", "33512345678"
	status, answer = post(transferapi.PathOnboarding, map[string]string{"email": onboardEmail, "phone_number": onboardPhone})
	var onboarding transferapi.OnboardingResponse
	if status != http.StatusOK || json.Unmarshal(answer, &onboarding) != nil || onboarding.Token == "" {
		t.Fatalf("onboarding: %d %s", status, answer)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recorded := indexSpans(recorder.Ended())
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() { // every span's chain, to see what the trace looked like
			for _, sp := range recorded.all {
				t.Logf("%s  %s", sp.SpanContext().TraceID(), strings.Join(recorded.chain(t, sp), " <- "))
			}
		}
	})

	// The API's request -> update-with-start -> workflow -> OpenSession -> the Connect call, one trace.
	apiSpans := recorded.named("POST " + transferapi.PathDeposits)
	if len(apiSpans) != 1 {
		t.Fatalf("%d API request spans, want 1", len(apiSpans))
	}
	wantAPI := []string{"connect POST /api/v1/sessions", "RunActivity:OpenSession", "StartActivity:OpenSession",
		"RunWorkflow:TransferWorkflow", "UpdateWithStartWorkflow:" + workflows.UpdateSession, "POST " + transferapi.PathDeposits}
	found := false
	for _, sp := range recorded.named(wantAPI[0]) {
		if got := recorded.chain(t, sp); strings.Join(got, " <- ") == strings.Join(wantAPI, " <- ") {
			found = true
		} else {
			t.Errorf("Connect call's chain: %q\nwant %q", got, wantAPI)
		}
	}
	if !found {
		t.Fatalf("no Connect session call traced back to the API request")
	}

	// The API's onboarding request -> its workflow -> the activity -> the Zero Hash call.
	wantZH := []string{"zerohash POST /participants/onboarding_token", "RunActivity:IssueOnboardingToken",
		"StartActivity:IssueOnboardingToken", "RunWorkflow:OnboardingWorkflow", "StartWorkflow:OnboardingWorkflow",
		"POST " + transferapi.PathOnboarding}
	zh := recorded.named(wantZH[0])
	if len(zh) != 1 {
		t.Fatalf("%d Zero Hash onboarding calls traced, want 1", len(zh))
	}
	if got := recorded.chain(t, zh[0]); strings.Join(got, " <- ") != strings.Join(wantZH, " <- ") {
		t.Errorf("Zero Hash call's chain: %q\nwant %q", got, wantZH)
	}

	// Each webhook -> its signal -> the workflow's handling -> the notification it causes -> the platform call.
	// (Only the attempt each delivery ended with, answered 200, changed the transfer.)
	var webhooks []sdktrace.ReadOnlySpan
	for _, hook := range recorded.named("POST " + bridge.PathConnectDeposits) {
		if attr(hook, "http.response.status_code") == "200" {
			webhooks = append(webhooks, hook)
		}
	}
	if len(webhooks) != len(deliveries) || len(webhooks) < 3 {
		t.Fatalf("%d webhook spans answered 200 for %d deliveries", len(webhooks), len(deliveries))
	}
	wantHook := []string{"platform POST", "RunActivity:NotifyPlatform", "StartActivity:NotifyPlatform",
		"HandleSignal:" + workflows.SignalConnectEvent, "SignalWorkflow:" + workflows.SignalConnectEvent,
		"POST " + bridge.PathConnectDeposits}
	perWebhook := map[trace.TraceID]int{}
	for _, sp := range recorded.named(wantHook[0]) {
		got := recorded.chain(t, sp)
		if got[len(got)-1] != wantHook[len(wantHook)-1] {
			continue // the session's own notification (awaiting_user) belongs to the API's trace
		}
		if strings.Join(got, " <- ") != strings.Join(wantHook, " <- ") {
			t.Errorf("platform call's chain: %q\nwant %q", got, wantHook)
		}
		perWebhook[sp.SpanContext().TraceID()]++
		if u := attr(sp, "url.full"); u != platformHost {
			t.Errorf("platform call's url.full %q: want scheme and host only", u)
		}
	}
	for _, hook := range webhooks {
		if n := perWebhook[hook.SpanContext().TraceID()]; n != 1 {
			t.Errorf("webhook trace %s holds %d platform calls, want 1 (its status change's notification)",
				hook.SpanContext().TraceID(), n)
		}
		if attr(hook, "http.route") != bridge.PathConnectDeposits || attr(hook, "url.path") != bridge.PathConnectDeposits {
			t.Errorf("webhook span attributes: %v", hook.Attributes())
		}
	}

	// Nothing secret or personal in any span: names, attributes, events, statuses, links.
	secrets := map[string]string{
		"session JWT": started.JWT, "API bearer token": apiBackendToken, "email": email,
		"platform URL token": pathToken, "Connect client secret": connecttest.DefaultClientSecret,
		"Zero Hash API secret": connecttest.DefaultAPISecret, "Zero Hash passphrase": connecttest.DefaultPassphrase,
		"codec key": codecKeys[len("trace-key:"):], "webhook secret": connecttest.DefaultWebhookSecret,
		"onboarding email": onboardEmail, "onboarding phone": onboardPhone, "onboarding token": onboarding.Token,
	}
	if len(tokens.tokens) == 0 {
		t.Fatal("recorded no Connect access token: the scan below would miss it")
	}
	for i, tok := range tokens.tokens {
		secrets["access token "+string(rune('0'+i))] = tok
	}
	jwtLike := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.`)
	scanned := 0
	check := func(where, v string) {
		scanned++
		for what, secret := range secrets {
			if secret != "" && strings.Contains(v, secret) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
		if jwtLike.MatchString(v) || strings.Contains(strings.ToLower(v), "bearer ") {
			t.Errorf("%s holds a token: %q", where, v)
		}
	}
	checkAttrs := func(where string, attrs []attribute.KeyValue) {
		for _, kv := range attrs {
			switch string(kv.Key) {
			case "client.address", "network.peer.address", "user_agent.original":
				t.Errorf("%s records %s", where, kv.Key)
			}
			check(where+" attribute "+string(kv.Key), kv.Value.Emit())
		}
	}
	for _, sp := range recorded.all {
		where := "span " + sp.Name()
		check(where+" name", sp.Name())
		check(where+" status", sp.Status().Description)
		checkAttrs(where, sp.Attributes())
		checkAttrs(where+" resource", sp.Resource().Attributes())
		for _, e := range sp.Events() {
			check(where+" event", e.Name)
			checkAttrs(where+" event "+e.Name, e.Attributes)
		}
		for _, l := range sp.Links() {
			checkAttrs(where+" link", l.Attributes)
		}
	}
	if scanned < 100 {
		t.Fatalf("scanned only %d values in %d spans", scanned, len(recorded.all))
	}
	t.Logf("%d spans, %d values scanned", len(recorded.all), scanned)
}
