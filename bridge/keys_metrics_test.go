package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connectflow/connectflow/bridge"
)

// The bridge's /metrics shows the JWKS keys it verifies with, the failed fetches and the last good one.
func TestJWKSMetricsOnTheBridge(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	if got := metric(t, h.reg, bridge.MetricJWKSKeys, nil); got != 1 {
		t.Errorf("%s = %v, want 1", bridge.MetricJWKSKeys, got)
	}
	if got := metric(t, h.reg, bridge.MetricJWKSRefreshFailures, nil); got != 0 {
		t.Errorf("%s = %v, want 0", bridge.MetricJWKSRefreshFailures, got)
	}
	if got := metric(t, h.reg, bridge.MetricJWKSLastSuccess, nil); time.Since(time.Unix(int64(got), 0)) > time.Minute {
		t.Errorf("%s = %v, want about now", bridge.MetricJWKSLastSuccess, got)
	}

	down := newHarness(t, harnessOptions{jwksDown: true})
	if got := metric(t, down.reg, bridge.MetricJWKSKeys, nil); got != 0 {
		t.Errorf("JWKS down: %s = %v, want 0", bridge.MetricJWKSKeys, got)
	}
	if got := metric(t, down.reg, bridge.MetricJWKSRefreshFailures, nil); got != 1 {
		t.Errorf("JWKS down: %s = %v, want 1 (the first fetch)", bridge.MetricJWKSRefreshFailures, got)
	}
	if got := metric(t, down.reg, bridge.MetricJWKSLastSuccess, nil); got != 0 {
		t.Errorf("JWKS down: %s = %v, want 0 (never)", bridge.MetricJWKSLastSuccess, got)
	}
}

// A forced refresh that fails counts; one that works loads the keys and leaves the failures as they were.
func TestJWKSMetricsFollowRefreshes(t *testing.T) {
	srv := newJWKSServer(t)
	srv.publish(kidA, &testKey(t, 0).PublicKey)
	srv.down.Store(true)
	keys := newKeys(t, srv.URL, bridge.JWKSOptions{RefreshInterval: time.Hour, UnknownKIDEvery: time.Millisecond})
	reg := prometheus.NewRegistry()
	reg.MustRegister(keys)
	ctx := context.Background()
	keys.Refresh(ctx)
	// The first fetch and the forced refresh fail; the background rotation refresh Refresh also asks for may
	// have failed too by now.
	before := metric(t, reg, bridge.MetricJWKSRefreshFailures, nil)
	if before < 2 || before > 3 {
		t.Fatalf("failures = %v, want 2 or 3 (first fetch, forced refresh, maybe the rotation refresh)", before)
	}
	srv.down.Store(false)
	time.Sleep(5 * time.Millisecond) // past UnknownKIDEvery
	if !keys.Refresh(ctx) {
		t.Fatal("the refresh after the JWKS came back did not refetch")
	}
	if got := metric(t, reg, bridge.MetricJWKSKeys, nil); got != 1 {
		t.Errorf("keys = %v, want 1", got)
	}
	if got := metric(t, reg, bridge.MetricJWKSRefreshFailures, nil); got > 3 {
		t.Errorf("failures = %v after a good refresh, want at most 3", got)
	}
}
