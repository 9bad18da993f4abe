// Package transferapitest plays a platform's identity provider for tests of the transfer API: a JWKS served on
// loopback and JWTs signed with its real RSA and ECDSA keys.
package transferapitest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Key ids of the IdP's keys.
const (
	KIDRSA   = "idp-rsa-1"
	KIDECDSA = "idp-ec-1"
	// Issuer and Audience are what the IdP's tokens carry by default.
	Issuer   = "https://idp.platform.example"
	Audience = "connectflow-transfer-api"
)

// IdP is an identity provider: URL is its JWKS.
type IdP struct {
	URL   string
	RSA   *rsa.PrivateKey
	ECDSA *ecdsa.PrivateKey
}

// NewIdP generates a 2048-bit RSA key and a P-256 key and serves both public keys as a JWKS until t ends.
func NewIdP(t testing.TB) *IdP {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	store := jwkset.NewMemoryStorage()
	for _, k := range []struct {
		kid string
		key crypto.PublicKey
		alg jwkset.ALG
	}{{KIDRSA, &rsaKey.PublicKey, jwkset.AlgRS256}, {KIDECDSA, &ecKey.PublicKey, jwkset.AlgES256}} {
		jwk, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: k.kid, ALG: k.alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	body, err := store.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return &IdP{URL: srv.URL, RSA: rsaKey, ECDSA: ecKey}
}

// Claims are a token's claims: sub, roles, and the registered ones Token fills.
type Claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles,omitempty"`
}

// Token signs an RS256 JWT for sub with roles, issued now by Issuer for Audience, valid for an hour.
func (p *IdP) Token(t testing.TB, sub string, roles ...string) string {
	t.Helper()
	now := time.Now()
	return p.Sign(t, jwt.SigningMethodRS256, Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: sub, Issuer: Issuer, Audience: jwt.ClaimStrings{Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}, Roles: roles})
}

// Sign signs claims with method: an RS*/PS* method uses the RSA key, an ES256 one the ECDSA key.
func (p *IdP) Sign(t testing.TB, method jwt.SigningMethod, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	var key any = p.RSA
	tok.Header["kid"] = KIDRSA
	if _, ok := method.(*jwt.SigningMethodECDSA); ok {
		key, tok.Header["kid"] = p.ECDSA, KIDECDSA
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
