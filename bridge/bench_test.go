package bridge_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
)

// BenchmarkWebhook measures the handler path without Temporal: Gin, the body limit, the JWT and signature checks
// against keys from a real JWKS, parsing, routing by metadata, and a signaler that accepts at once.
func BenchmarkWebhook(b *testing.B) {
	for _, mode := range []bridge.AuthMode{bridge.AuthSignatureJWT, bridge.AuthSignature} {
		b.Run(string(mode), func(b *testing.B) {
			jwks := newJWKSServer(b)
			jwks.publish(kidA, &testKey(b, 0).PublicKey)
			keys, err := bridge.NewJWKSKeys(context.Background(), jwks.URL, bridge.JWKSOptions{RefreshInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(keys.Close)
			now := time.Now()
			br, err := bridge.New(bridge.Options{
				Temporal: acceptingTemporal{newFakeTemporal()}, PublicURL: publicURL, Auth: mode, ZeroHashWebhookSecret: zhSecret,
				Keys: keys, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
				Now: func() time.Time { return now },
			})
			if err != nil {
				b.Fatal(err)
			}
			h := br.Handler()
			body := eventBody(b, "connect.deposit.confirmed", "cx-1", "sess-1", routed(connect.KindDeposit, "T1"))
			w := signedWebhook(b, bridge.PathConnectDeposits, depositsURL, body, now)
			reader := bytes.NewReader(body)
			req := httptest.NewRequest(http.MethodPost, bridge.PathConnectDeposits, reader)
			req.Header = w.header
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				reader.Reset(body)
				req.Body = io.NopCloser(reader)
				rec.Body.Reset()
				h.ServeHTTP(rec, req)
			}
		})
	}
}

// acceptingTemporal takes every signal without recording it, so the benchmark measures the bridge alone.
type acceptingTemporal struct{ *fakeTemporal }

func (acceptingTemporal) SignalWorkflow(context.Context, string, string, string, any) error {
	return nil
}
