package transferapi_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/transferapi"
)

// TestAppServesUntilItsContextEnds: the App `starter serve` and `go run ./dev` both assemble answers on its
// listener (its lazy Temporal client needs no server for /healthz) and stops cleanly when the context ends.
func TestAppServesUntilItsContextEnds(t *testing.T) {
	st, err := transferapi.LoadSettings(nil, settings.MapEnv{transferapi.EnvAPITokens: "backend:" + tokenA}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := transferapi.NewApp(t.Context(), st, client.Options{HostPort: "127.0.0.1:1"},
		transferapi.AppOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + transferapi.PathHealthz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after its context ended: %v", err)
		}
	case <-time.After(transferapi.ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	app.Close() // again: harmless
}

// TestAppListenNamesTheSetting: an address already taken is an error naming STARTER_ADDR.
func TestAppListenNamesTheSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	st, err := transferapi.LoadSettings([]string{"-starter-addr", taken.Addr().String()},
		settings.MapEnv{transferapi.EnvAPITokens: "backend:" + tokenA}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := transferapi.NewApp(t.Context(), st, client.Options{HostPort: "127.0.0.1:1"}, transferapi.AppOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Listen(); err == nil || !strings.Contains(err.Error(), transferapi.EnvAddr) {
		t.Fatalf("Listen on a taken address: %v, want an error naming %s", err, transferapi.EnvAddr)
	}
}
