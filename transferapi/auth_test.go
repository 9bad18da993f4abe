package transferapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/transferapi/transferapitest"
)

const (
	tokenA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // 36 characters
	tokenB = "0123456789abcdef0123456789abcdef"     // 32 characters
)

func TestParseTokens(t *testing.T) {
	toks, err := transferapi.ParseTokens("# platform backends\nbackend-eu:" + tokenA + "\n\n  ops@example.com:" + tokenB + ":operator , ")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 || toks[0].Name != "backend-eu" || toks[0].Operator || toks[1].Name != "ops@example.com" || !toks[1].Operator {
		t.Fatalf("tokens: %+v", toks)
	}
	for _, tc := range []struct{ list, want string }{
		{"", "no token"},
		{"# only a comment", "no token"},
		{"nocolon", "must be name:token"},
		{"a:b:c:d", "must be name:token"},
		{"a:short", "at least 32 characters"},
		{"-bad:" + tokenA, "name must be"},
		{"a:" + tokenA + ":admin", `"operator"`},
		{"a:" + tokenA + ",a:" + tokenB, `name "a" given twice`},
		{"a:" + tokenA + ",b:" + tokenA, "the same token as a"},
		{"a:" + tokenA[:20] + "\t" + tokenA[:20], "white space"},
	} {
		_, err := transferapi.ParseTokens(tc.list)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTokens(%q) = %v, want an error containing %q", tc.list, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), tokenA) || strings.Contains(err.Error(), tokenA[:20]) || strings.Contains(err.Error(), "short") {
			t.Errorf("the error quotes a token: %v", err)
		}
	}
	// Every bad entry is named, not only the first.
	_, err = transferapi.ParseTokens("a:x,b:y")
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("want both entries named, got %v", err)
	}
}

func mustAuth(t *testing.T, list string, jwtCfg *transferapi.JWTConfig) *transferapi.Authenticator {
	t.Helper()
	var toks []transferapi.Token
	if list != "" {
		var err error
		if toks, err = transferapi.ParseTokens(list); err != nil {
			t.Fatal(err)
		}
	}
	a, err := transferapi.NewAuthenticator(toks, jwtCfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthenticateTokens(t *testing.T) {
	a := mustAuth(t, "backend:"+tokenA+",ops:"+tokenB+":operator", nil)
	ctx := context.Background()
	for _, tc := range []struct {
		header   string
		name     string
		operator bool
		err      error
	}{
		{"Bearer " + tokenA, "backend", false, nil},
		{"bearer " + tokenB, "ops", true, nil},
		{"Bearer " + tokenA + "x", "", false, transferapi.ErrInvalidCredentials},
		{"Bearer " + tokenA[1:], "", false, transferapi.ErrInvalidCredentials},
		{"Bearer a.b.c", "", false, transferapi.ErrInvalidCredentials}, // no JWKS: a JWT is just a wrong token
		{"Basic " + tokenA, "", false, transferapi.ErrNoCredentials},
		{"Bearer ", "", false, transferapi.ErrNoCredentials},
		{"", "", false, transferapi.ErrNoCredentials},
	} {
		c, err := a.Authenticate(ctx, tc.header)
		if !errors.Is(err, tc.err) || c.Name != tc.name || c.Operator != tc.operator {
			t.Errorf("%.20q: caller %+v, err %v; want %q operator=%v err %v", tc.header, c, err, tc.name, tc.operator, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), tokenA[:10]) {
			t.Errorf("the error quotes the credential: %v", err)
		}
	}
	if _, err := transferapi.NewAuthenticator(nil, nil); err == nil {
		t.Fatal("an authenticator without tokens or JWKS must be refused")
	}
}

func newJWKS(t *testing.T, url string) *transferapi.JWKS {
	t.Helper()
	j, err := transferapi.NewJWKS(context.Background(), url, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j
}

func TestAuthenticateJWT(t *testing.T) {
	idp := transferapitest.NewIdP(t)
	jwks := newJWKS(t, idp.URL)
	if err := jwks.Ready(context.Background()); err != nil {
		t.Fatalf("JWKS not ready: %v", err)
	}
	a := mustAuth(t, "backend:"+tokenA, &transferapi.JWTConfig{Keyfunc: jwks.Keyfunc,
		Issuer: transferapitest.Issuer, Audience: transferapitest.Audience})
	ctx := context.Background()
	now := time.Now()
	claims := func(mod func(*transferapitest.Claims)) transferapitest.Claims {
		c := transferapitest.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "svc-payments",
			Issuer: transferapitest.Issuer, Audience: jwt.ClaimStrings{transferapitest.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
		if mod != nil {
			mod(&c)
		}
		return c
	}

	c, err := a.Authenticate(ctx, "Bearer "+idp.Token(t, "svc-payments"))
	if err != nil || c.Name != "svc-payments" || c.Operator || c.Via != "jwt" {
		t.Fatalf("RS256 token: %+v, %v", c, err)
	}
	c, err = a.Authenticate(ctx, "Bearer "+idp.Token(t, "ana", "reader", transferapi.RoleClaimOperator))
	if err != nil || c.Name != "ana" || !c.Operator {
		t.Fatalf("operator token: %+v, %v", c, err)
	}
	c, err = a.Authenticate(ctx, "Bearer "+idp.Sign(t, jwt.SigningMethodES256, claims(nil)))
	if err != nil || c.Name != "svc-payments" {
		t.Fatalf("ES256 token: %+v, %v", c, err)
	}

	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
	hs.Header["kid"] = transferapitest.KIDRSA
	hsToken, err := hs.SignedString([]byte("public knowledge"))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"HS256", hsToken, "algorithm"},
		{"none", none, "algorithm"},
		{"no exp", idp.Sign(t, jwt.SigningMethodRS256, claims(func(c *transferapitest.Claims) { c.ExpiresAt = nil })), "exp"},
		{"expired", idp.Sign(t, jwt.SigningMethodRS256, claims(func(c *transferapitest.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
		})), "expired"},
		{"wrong issuer", idp.Sign(t, jwt.SigningMethodRS256, claims(func(c *transferapitest.Claims) { c.Issuer = "https://evil.example" })), "issuer"},
		{"wrong audience", idp.Sign(t, jwt.SigningMethodRS256, claims(func(c *transferapitest.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), "audience"},
		{"no sub", idp.Sign(t, jwt.SigningMethodRS256, claims(func(c *transferapitest.Claims) { c.Subject = "" })), "sub"},
		{"tampered", idp.Token(t, "svc-payments")[:40] + "x" + idp.Token(t, "svc-payments")[41:], ""},
	} {
		c, err := a.Authenticate(ctx, "Bearer "+tc.token)
		if !errors.Is(err, transferapi.ErrInvalidCredentials) || c.Name != "" || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: caller %+v, err %v; want ErrInvalidCredentials naming %q", tc.name, c, err, tc.reason)
		}
	}
}

func TestJWKSRedirectRefused(t *testing.T) {
	idp := transferapitest.NewIdP(t)
	var hits int
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, idp.URL, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	jwks := newJWKS(t, redirect.URL)
	if err := jwks.Ready(context.Background()); err == nil {
		t.Fatal("a JWKS URL that redirects must leave the key set empty")
	}
	if hits == 0 {
		t.Fatal("the JWKS URL was never fetched")
	}
	a := mustAuth(t, "", &transferapi.JWTConfig{Keyfunc: jwks.Keyfunc})
	if c, err := a.Authenticate(context.Background(), "Bearer "+idp.Token(t, "svc")); !errors.Is(err, transferapi.ErrInvalidCredentials) {
		t.Fatalf("a JWT signed by the redirect's target must be refused: %+v, %v", c, err)
	}
}
