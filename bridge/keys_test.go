package bridge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/connectflow/connectflow/bridge"
)

func newKeys(t *testing.T, url string, opts bridge.JWKSOptions) *bridge.JWKSKeys {
	t.Helper()
	keys, err := bridge.NewJWKSKeys(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("NewJWKSKeys: %v", err)
	}
	t.Cleanup(keys.Close)
	return keys
}

// TestJWKSKeysConvertOncePerChange: the converted list is reused until the JWKS changes, and a forced refresh
// is rate-limited.
func TestJWKSKeysConvertOncePerChange(t *testing.T) {
	ctx := context.Background()
	srv := newJWKSServer(t)
	srv.publish(kidA, &testKey(t, 0).PublicKey)
	keys := newKeys(t, srv.URL, bridge.JWKSOptions{RefreshInterval: time.Hour, UnknownKIDEvery: time.Minute})

	first := keys.PublicKeys(ctx)
	if len(first) != 1 || first[0].KID != kidA || !first[0].Key.Equal(&testKey(t, 0).PublicKey) {
		t.Fatalf("keys %+v, want key A", first)
	}
	if again := keys.PublicKeys(ctx); &again[0] != &first[0] {
		t.Fatal("PublicKeys converted the unchanged JWKS again")
	}
	srv.publish(kidB, &testKey(t, 1).PublicKey)
	if !keys.Refresh(ctx) {
		t.Fatal("first forced refresh did not refetch")
	}
	got := keys.PublicKeys(ctx)
	if len(got) != 2 || got[1].KID != kidB || !got[1].Key.Equal(&testKey(t, 1).PublicKey) {
		t.Fatalf("after rotation: keys %+v, want A and B", got)
	}
	hits := srv.hits.Load()
	if keys.Refresh(ctx) {
		t.Fatal("second forced refresh within the rate limit refetched")
	}
	if srv.hits.Load() != hits {
		t.Fatal("a rate-limited refresh reached the JWKS")
	}
}

// TestJWKSKeysOnlyRSASigningKeys: encryption keys and other key types are never webhook keys.
func TestJWKSKeysOnlyRSASigningKeys(t *testing.T) {
	srv := newJWKSServer(t)
	srv.publish(kidA, &testKey(t, 0).PublicKey)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := &testKey(t, 1).PublicKey
	srv.mu.Lock()
	srv.extra = []map[string]string{
		{"kty": "RSA", "kid": "enc-key", "use": "enc", "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())},
		{"kty": "EC", "kid": "ec-key", "use": "sig", "crv": "P-256",
			"x": base64.RawURLEncoding.EncodeToString(ec.X.FillBytes(make([]byte, 32))),
			"y": base64.RawURLEncoding.EncodeToString(ec.Y.FillBytes(make([]byte, 32)))},
	}
	srv.mu.Unlock()
	keys := newKeys(t, srv.URL, bridge.JWKSOptions{})
	got := keys.PublicKeys(context.Background())
	if len(got) != 1 || got[0].KID != kidA {
		t.Fatalf("keys %+v, want only the RSA signing key", got)
	}
}

// TestJWKSDownAtStart: no error and no keys; the keys arrive with the first refresh that reaches the JWKS.
func TestJWKSDownAtStart(t *testing.T) {
	srv := newJWKSServer(t)
	srv.publish(kidA, &testKey(t, 0).PublicKey)
	srv.down.Store(true)
	keys := newKeys(t, srv.URL, bridge.JWKSOptions{UnknownKIDEvery: time.Minute})
	if got := keys.PublicKeys(context.Background()); len(got) != 0 {
		t.Fatalf("keys %+v while the JWKS is down", got)
	}
	srv.down.Store(false)
	if !keys.Refresh(context.Background()) || len(keys.PublicKeys(context.Background())) != 1 {
		t.Fatal("the JWKS is back but its key did not arrive")
	}
}

// TestJWKSPeriodicRefreshStopsOnClose: the background refresh runs on its interval until Close.
func TestJWKSPeriodicRefreshStopsOnClose(t *testing.T) {
	srv := newJWKSServer(t)
	srv.publish(kidA, &testKey(t, 0).PublicKey)
	keys := newKeys(t, srv.URL, bridge.JWKSOptions{RefreshInterval: 20 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for srv.hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("JWKS fetched %d times, the periodic refresh is not running", srv.hits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	keys.Close()
	time.Sleep(200 * time.Millisecond) // a fetch already under way may finish
	stopped := srv.hits.Load()
	time.Sleep(200 * time.Millisecond)
	if n := srv.hits.Load(); n != stopped {
		t.Fatalf("JWKS fetched %d more times after Close", n-stopped)
	}
}

func TestNewJWKSKeysRejectsBadOptions(t *testing.T) {
	if _, err := bridge.NewJWKSKeys(context.Background(), "", bridge.JWKSOptions{}); err == nil {
		t.Error("empty URL accepted")
	}
	if _, err := bridge.NewJWKSKeys(context.Background(), "http://127.0.0.1:1/jwks", bridge.JWKSOptions{WaitMax: -time.Second}); err == nil {
		t.Error("negative WaitMax accepted")
	}
}
