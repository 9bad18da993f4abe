package connecttest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

// Keys are generated once per test binary: 2048-bit generation is the slow part of these tests.
var (
	keysOnce sync.Once
	keyPool  [3]*rsa.PrivateKey
	keysErr  error
)

// testKey returns the i-th shared test key: 0 signs for the sandbox, 1 is a rotation key, 2 is the organization's.
func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for j := range keyPool {
			if keyPool[j], keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		t.Fatalf("generate test keys: %v", keysErr)
	}
	return keyPool[i]
}

// newSandbox starts a sandbox with the shared signing key unless opts names another.
func newSandbox(t testing.TB, opts connecttest.Options) *connecttest.Server {
	t.Helper()
	if opts.SigningKey == nil {
		opts.SigningKey = testKey(t, 0)
	}
	return connecttest.NewServer(t, opts)
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type answer struct {
	status int
	header http.Header
	body   []byte
}

// doJSON sends a request and reads the whole answer, failing the test when there is none.
func doJSON(t testing.TB, method, url string, body []byte, header http.Header) answer {
	t.Helper()
	a, err := send(method, url, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// send is doJSON for goroutines other than the test's, which must not call t.Fatal.
func send(method, url string, body []byte, header http.Header) (answer, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("read answer of %s %s: %w", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: got}, nil
}

// decode unmarshals an answer body, failing the test with the body when it is not the expected JSON.
func decode[T any](t testing.TB, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d %s is not the expected JSON: %v", a.status, a.body, err)
	}
	return v
}

// accessToken fetches a token with the sandbox's default credentials.
func accessToken(t testing.TB, srv *connecttest.Server) string {
	t.Helper()
	a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/oauth/token",
		tokenBody(srv, connecttest.DefaultClientID, connecttest.DefaultClientSecret), nil)
	if a.status != http.StatusOK {
		t.Fatalf("token: %d %s", a.status, a.body)
	}
	return decode[struct {
		AccessToken string `json:"access_token"`
	}](t, a).AccessToken
}

// tokenBody is the published token request: the OpenAPI's five required fields, for the sandbox's organization.
func tokenBody(srv *connecttest.Server, clientID, secret string) []byte {
	return fmt.Appendf(nil, `{"client_id":%q,"client_secret":%q,"audience":%q,"grant_type":"client_credentials","organization_id":%q}`,
		clientID, secret, srv.URL, envValue(srv, "CONNECT_ORGANIZATION_ID"))
}

// envValue is one variable of the sandbox's Env.
func envValue(srv *connecttest.Server, name string) string {
	for _, kv := range srv.Env() {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// bearer is the headers of a session request: the access token and x-connect-client-id, the organization id.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}, "X-Connect-Client-Id": {connecttest.DefaultOrganizationID}}
}

// depositBody is a session request body for a deposit; request_id is the UUID connect derives from requestID.
func depositBody(requestID, ref string) []byte {
	return fmt.Appendf(nil, `{"request_id":%q,"account":{"reference_id":%q},"session":{"metadata":{"order":"o-1","n":7}},"scopes":["user:deposit:send"]}`, connect.SessionRequestID(requestID), ref)
}

// withdrawalBody is a session request body for a withdrawal with the guide's scope (answered in its nested shape).
func withdrawalBody(requestID, ref string) []byte {
	return fmt.Appendf(nil, `{"request_id":%q,"account":{"reference_id":%q},"session":{"metadata":{"order":"w-1"},"withdrawal_details":{"asset":"ETH","network":"ethereum","amount":"1.25","account_label":"general"}},"scopes":["user:withdrawal:send"]}`, connect.SessionRequestID(requestID), ref)
}

// withdrawalRequestBody is withdrawalBody with the OpenAPI's user:withdrawal:request (answered flat).
func withdrawalRequestBody(requestID, ref string) []byte {
	return fmt.Appendf(nil, `{"request_id":%q,"account":{"reference_id":%q},"session":{"metadata":{"order":"w-2"},"withdrawal_details":{"asset":"ETH","network":"ethereum","amount":"1.25"}},"scopes":["user:withdrawal:request"]}`, connect.SessionRequestID(requestID), ref)
}

// sessionJWT pulls the JWT out of either session answer shape.
func sessionJWT(t testing.TB, a answer) string {
	t.Helper()
	v := decode[struct {
		JWT   string `json:"jwt"`
		Token *struct {
			JWT string `json:"jwt"`
		} `json:"token"`
	}](t, a)
	if v.Token != nil {
		return v.Token.JWT
	}
	return v.JWT
}

// fetchJWKS reads the served JWKS and rebuilds the RSA keys from n and e, checking every published member.
func fetchJWKS(t testing.TB, srv *connecttest.Server) []connect.PublicKey {
	t.Helper()
	keys, err := loadJWKS(srv.URL + "/api/v1/jwks")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// loadJWKS is fetchJWKS for goroutines other than the test's.
func loadJWKS(url string) ([]connect.PublicKey, error) {
	a, err := send(http.MethodGet, url, nil, nil)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("jwks: %d %s", a.status, a.body)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, Alg, Use, N, E string
		} `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &set); err != nil {
		return nil, fmt.Errorf("jwks %s: %w", a.body, err)
	}
	var keys []connect.PublicKey
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.Kid == "" {
			return nil, fmt.Errorf("JWKS key %+v: want kty RSA, alg RS256, use sig and a kid", k)
		}
		n, errN := base64.RawURLEncoding.DecodeString(k.N)
		e, errE := base64.RawURLEncoding.DecodeString(k.E)
		if errN != nil || errE != nil {
			return nil, fmt.Errorf("JWKS key %s: n or e is not unpadded base64url: %v %v", k.Kid, errN, errE)
		}
		keys = append(keys, connect.PublicKey{KID: k.Kid, Key: &rsa.PublicKey{
			N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}})
	}
	return keys, nil
}

// keyfuncFor resolves a JWT's kid against keys, as a verifier holding the JWKS would.
func keyfuncFor(keys []connect.PublicKey) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range keys {
			if k.KID == kid {
				return k.Key, nil
			}
		}
		return nil, fmt.Errorf("no JWKS key with kid %q", kid)
	}
}

// verifySessionJWT checks a session JWT's RS256 signature against keys and returns its claims and kid.
func verifySessionJWT(t testing.TB, token string, keys []connect.PublicKey) (connect.SessionClaims, string) {
	t.Helper()
	var claims connect.SessionClaims
	tok, err := jwt.ParseWithClaims(token, &claims, keyfuncFor(keys), jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer("connect"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("session JWT does not verify against the JWKS: %v", err)
	}
	kid, _ := tok.Header["kid"].(string)
	return claims, kid
}

// errorBody is the sessions endpoint's error shape: code is a gRPC status code.
type errorBody struct {
	Error   string `json:"error"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// controlError is the control API's error shape (the sandbox's own, not Connect's).
type controlError struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Message string `json:"message"`
}
