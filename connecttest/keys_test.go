package connecttest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

func TestKeyRotation(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	token := accessToken(t, srv)
	first := srv.CurrentKeyID()
	oldJWT := sessionJWT(t, doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody("k1", "KEY1"), bearer(token)))

	second, err := srv.RotateKey(testKey(t, 1))
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if second == first || srv.CurrentKeyID() != second {
		t.Fatalf("after rotation current kid %q (first %q, rotated %q)", srv.CurrentKeyID(), first, second)
	}
	keys := fetchJWKS(t, srv)
	if len(keys) != 2 || keys[0].KID != first || keys[1].KID != second {
		t.Fatalf("JWKS after rotation %v, want [%s %s]", kids(keys), first, second)
	}
	newJWT := sessionJWT(t, doJSON(t, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody("k2", "KEY2"), bearer(token)))
	if _, kid := verifySessionJWT(t, newJWT, keys); kid != second {
		t.Fatalf("a session after rotation is signed by %q, want %q", kid, second)
	}
	if _, kid := verifySessionJWT(t, oldJWT, keys); kid != first {
		t.Fatalf("the pre-rotation JWT names %q, want %q", kid, first)
	}

	if err := srv.RetireKey(second); err == nil || !strings.Contains(err.Error(), "current") {
		t.Fatalf("retiring the current key: err %v, want a refusal naming the current key", err)
	}
	if err := srv.RetireKey("no-such-kid"); err == nil {
		t.Fatal("retiring an unknown kid: no error")
	}
	if _, err := srv.RotateKey(testKey(t, 1)); err == nil {
		t.Fatal("publishing the same key twice: no error")
	}
	if err := srv.RetireKey(first); err != nil {
		t.Fatalf("RetireKey(first): %v", err)
	}
	if keys := fetchJWKS(t, srv); len(keys) != 1 || keys[0].KID != second {
		t.Fatalf("JWKS after retiring %s: %v", first, kids(keys))
	}
	if got := srv.Count(connecttest.EndpointJWKS); got != 2 {
		t.Errorf("Count(jwks) = %d, want 2", got)
	}
}

func TestRotateKeyRejectsSmallKey(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.RotateKey(small); err == nil || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("RotateKey(1024-bit): err %v, want one naming the size", err)
	}
	if _, err := connecttest.New(connecttest.Options{SigningKey: small}); err == nil {
		t.Fatal("New with a 1024-bit SigningKey: no error")
	}
}

func kids(keys []connect.PublicKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KID
	}
	return out
}
