// Package verify measures what checking one Connect webhook costs in CPU, beside the floor crypto/rsa sets. The
// same functions back `go test -bench . ./bench/verify/` and scenario 5 of `go run ./bench`.
package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bench/webhook"
	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
)

const (
	// keyBits is the size of Connect's RSA keys.
	keyBits   = 2048
	publicURL = "https://hooks.example.com"
	kid       = "bench-key"
	// keysTimeout bounds the wait for the JWKS to load into the bridge's key source.
	keysTimeout = 10 * time.Second
	// jwtLeeway and the options in newParser are the bridge's (bridge/verify.go), so the JWT check costs the same.
	jwtLeeway = 30 * time.Second
)

// Fixture is one signed confirmed-deposit webhook, the keys to check it, and a bridge to hand it to.
type Fixture struct {
	url     string
	body    []byte
	header  http.Header
	keys    []connect.PublicKey
	pub     *rsa.PublicKey
	digest  [sha256.Size]byte
	sig     []byte
	bearer  string
	parser  *jwt.Parser
	jwks    *bridge.JWKSKeys
	handler http.Handler
	req     *http.Request // reused by serve, with reader as its body
	reader  bytes.Reader
	resp    response
	close   func()
}

// NewFixture generates a 2048-bit key, serves it as a JWKS on loopback, signs a webhook as Connect does and builds
// a bridge (signature+jwt: the guide's form with a bearer, the costlier of the two modes) whose Temporal answers
// in-process. Close releases it.
func NewFixture() (*Fixture, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("verify: generate key: %w", err)
	}
	jwksServer := httptest.NewServer(jwksHandler(&key.PublicKey))
	f := &Fixture{url: publicURL + bridge.PathConnectDeposits, pub: &key.PublicKey,
		keys: []connect.PublicKey{{KID: kid, Key: &key.PublicKey}}, parser: newParser()}
	f.close = jwksServer.Close
	if err := f.init(key, jwksServer.URL); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Fixture) init(key *rsa.PrivateKey, jwksURL string) error {
	signer, err := webhook.NewSigner(key, kid, nil)
	if err != nil {
		return err
	}
	t := webhook.Transfer{Kind: connect.KindDeposit, TransferID: "T1", ConnectID: "f2d4a13e-8a52-45e3-9825-b0b18c9a8233",
		SessionID: "16b0e957-f3fd-41d0-b312-f2ec291de6e4", ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin", Amount: "0.013"}
	if f.body, err = webhook.Body(t, connect.StatusConfirmed, time.Now()); err != nil {
		return err
	}
	if f.header, err = signer.Headers(t.Kind, f.url, f.body); err != nil {
		return err
	}
	f.bearer = strings.TrimPrefix(f.header.Get("Authorization"), "Bearer ")
	f.digest = sha256.Sum256(connect.SigningString(f.header.Get(connect.HeaderTimestamp), http.MethodPost, f.url, f.body))
	if f.sig, err = base64.StdEncoding.DecodeString(f.header.Get(connect.HeaderSignature)); err != nil {
		return fmt.Errorf("verify: decode signature: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	f.jwks, err = bridge.NewJWKSKeys(ctx, jwksURL, bridge.JWKSOptions{})
	if err != nil {
		cancel()
		return err
	}
	stop := f.close
	f.close = func() { f.jwks.Close(); cancel(); stop() }
	if err := waitForKeys(ctx, f.jwks); err != nil {
		return err
	}
	b, err := bridge.New(bridge.Options{
		Temporal:              instantTemporal{},
		PublicURL:             publicURL,
		Auth:                  bridge.AuthSignatureJWT,
		ZeroHashWebhookSecret: "bench-secret",
		Keys:                  f.jwks,
		// As deployed: one JSON line per request at info, formatted in full and then dropped.
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	f.handler = b.Handler()
	f.req = httptest.NewRequest(http.MethodPost, bridge.PathConnectDeposits, nil)
	f.resp.header = http.Header{}
	return nil
}

// Close stops the JWKS server and the key source's refreshes.
func (f *Fixture) Close() { f.close() }

// Floor is crypto/rsa alone on a precomputed digest: what no check of one signature can go below.
func (f *Fixture) Floor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, f.digest[:], f.sig); err != nil {
			b.Fatal(err)
		}
	}
}

// Signature is connect.VerifyWebhook, the bridge's signature check: headers, window, digest, one RSA verify.
func (f *Fixture) Signature(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := f.signature(); err != nil {
			b.Fatal(err)
		}
	}
}

// JWT is the bridge's bearer check: parse, the bridge's claim rules, the key by kid from the JWKS, one RSA verify.
func (f *Fixture) JWT(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := f.jwt(); err != nil {
			b.Fatal(err)
		}
	}
}

// Both is the signature and the JWT, what the bridge checks on every Connect webhook by default.
func (f *Fixture) Both(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := errors.Join(f.jwt(), f.signature()); err != nil {
			b.Fatal(err)
		}
	}
}

// Handler is one webhook through the bridge's whole HTTP handler (routing, body, both checks, parsing, the signal,
// metrics, the log line), with Temporal answering in-process so only the bridge's own CPU is measured.
func (f *Fixture) Handler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := f.serve(); err != nil {
			b.Fatal(err)
		}
	}
}

func (f *Fixture) signature() error {
	return connect.VerifyWebhook(f.keys, f.url, f.header, f.body, connect.VerifyOptions{})
}

func (f *Fixture) jwt() error {
	_, err := f.parser.ParseWithClaims(f.bearer, &connect.SessionClaims{}, f.jwks.Keyfunc(context.Background()))
	return err
}

// serve hands the webhook to the bridge's handler, reusing the request and a discarding response writer so the
// allocations counted are the bridge's own.
func (f *Fixture) serve() error {
	f.reader.Reset(f.body)
	f.req.Body = io.NopCloser(&f.reader)
	f.req.ContentLength = int64(len(f.body))
	f.req.Header = f.header
	f.resp.reset()
	f.handler.ServeHTTP(&f.resp, f.req)
	if f.resp.code != http.StatusOK {
		return fmt.Errorf("verify: bridge answered %d: %s", f.resp.code, f.resp.answer.Bytes())
	}
	return nil
}

// response is an http.ResponseWriter that keeps the status and the start of the body.
type response struct {
	header http.Header
	code   int
	answer bytes.Buffer
}

func (r *response) reset() {
	clear(r.header)
	r.code = 0
	r.answer.Reset()
}

func (r *response) Header() http.Header { return r.header }

func (r *response) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *response) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.answer.Write(p)
}

// newParser has the bridge's JWT rules: asymmetric algorithms only, issuer connect, exp required, iat checked.
func newParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
		jwt.WithIssuer("connect"),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(jwtLeeway),
	)
}

func waitForKeys(ctx context.Context, keys *bridge.JWKSKeys) error {
	ctx, cancel := context.WithTimeout(ctx, keysTimeout)
	defer cancel()
	for len(keys.PublicKeys(ctx)) == 0 {
		select {
		case <-ctx.Done():
			return errors.New("verify: the bridge's key source never loaded the JWKS")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// jwksHandler serves pub as a one-key JWKS.
func jwksHandler(pub *rsa.PublicKey) http.Handler {
	body, _ := json.Marshal(map[string]any{"keys": []map[string]string{{ // a map of strings always encodes
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body) // a failed write fails the key load, which NewFixture reports
	})
}

// instantTemporal accepts every signal at once, so the handler benchmark measures the bridge and not Temporal.
// The bridge routes a confirmed webhook carrying its metadata straight to SignalWorkflow; the rest is never called.
type instantTemporal struct{}

var errNotBenchmarked = errors.New("verify: not part of the benchmarked path")

func (instantTemporal) SignalWorkflow(context.Context, string, string, string, any) error { return nil }

func (instantTemporal) SignalWithStartWorkflow(context.Context, string, string, any, client.StartWorkflowOptions,
	any, ...any) (client.WorkflowRun, error) {
	return nil, errNotBenchmarked
}

func (instantTemporal) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, errNotBenchmarked
}

func (instantTemporal) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return nil, errNotBenchmarked
}

func (instantTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, nil
}
