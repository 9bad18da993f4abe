package connecttest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

// BenchmarkCreateSession measures a session round trip through the real client (token cached after the first).
func BenchmarkCreateSession(b *testing.B) {
	srv := newSandbox(b, connecttest.Options{})
	c := newClient(b, srv, nil, nil)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := c.CreateSession(context.Background(), connect.SessionRequest{RequestID: fmt.Sprint("bench-", i),
				Kind: connect.KindDeposit, ReferenceID: fmt.Sprint("B", i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if got := srv.Count(connecttest.EndpointToken); got != 1 {
		b.Fatalf("%d token requests, want 1", got)
	}
}

// BenchmarkPlay measures emitting a confirmed transfer life (3 signed webhooks) to a receiver that accepts all.
func BenchmarkPlay(b *testing.B) {
	srv := newSandbox(b, connecttest.Options{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	b.Cleanup(hook.Close)
	if err := srv.SetWebhookURLs(hook.URL, hook.URL, ""); err != nil {
		b.Fatal(err)
	}
	token := accessToken(b, srv)
	ids := make([]string, b.N)
	for i := range ids {
		a := doJSON(b, http.MethodPost, srv.URL+"/api/v1/sessions", depositBody(fmt.Sprint("p", i), fmt.Sprint("P", i)), bearer(token))
		if a.status != http.StatusOK {
			b.Fatalf("session: %d %s", a.status, a.body)
		}
	}
	for i, s := range srv.Sessions() {
		ids[i] = s.ID
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, id := range ids {
		if _, err := srv.Play(context.Background(), id, connecttest.Play{}); err != nil {
			b.Fatal(err)
		}
	}
}
