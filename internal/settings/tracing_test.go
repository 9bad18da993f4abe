package settings

import (
	"path/filepath"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/connectflow/connectflow/internal/telemetry"
)

// TestClientOptionsCarryTracing: with tracing on, every client built from ClientOptions (and every worker built
// on one) gets the tracing interceptors; with it off, none.
func TestClientOptionsCarryTracing(t *testing.T) {
	build := func() int {
		env := MapEnv{"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "absent.toml"), EnvCodecPlaintext: "true"}
		s, _ := newSet(env)
		tc := BindTemporal(s, "q")
		if err := s.Parse(nil); err != nil {
			t.Fatal(err)
		}
		opts, err := tc.ClientOptions()
		if err != nil {
			t.Fatal(err)
		}
		return len(opts.Interceptors)
	}
	if n := build(); n != 0 {
		t.Fatalf("%d interceptors with tracing off", n)
	}
	telemetry.Use(sdktrace.NewTracerProvider())
	t.Cleanup(telemetry.Reset)
	if n := build(); n != 2 {
		t.Fatalf("%d interceptors with tracing on, want the tracing and signalspan interceptors", n)
	}
}
