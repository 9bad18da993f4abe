// Command webhookbridge serves connectflow's webhook bridge: verified Connect and Zero Hash webhooks, and relayed
// Auth SDK callbacks, become signals on the transfer workflows. Settings come from flags or the environment
// (webhookbridge -h lists them); a missing or malformed one stops it with exit status 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	temporallog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
)

// drainTimeout bounds how long shutdown waits for requests in flight (each is bounded by the Temporal timeout).
const drainTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], settings.OSEnv, os.Stderr))
}

// run serves until SIGINT or SIGTERM and returns the exit status: 0, 1 on a failure, 2 on bad settings.
func run(args []string, env settings.Env, stderr io.Writer) int {
	defer otelsetup.Main("connectflow-bridge", stderr)() // tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/tracing.md)
	cfg, err := loadConfig(args, env, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, settings.ErrUsage):
		return 2 // the flag package printed it with the usage
	case err != nil:
		fmt.Fprintf(stderr, "webhookbridge: bad settings:\n%v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := serve(cfg, log); err != nil {
		log.Error("webhookbridge stopped", "err", err)
		return 1
	}
	return 0
}

func serve(cfg config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	topts := cfg.temporal
	topts.Logger = temporallog.NewStructuredLogger(log)
	// Lazy: a Temporal that is down at start fails /readyz and answers 503, it does not stop the process.
	tc, err := client.NewLazyClient(topts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()
	keys, err := bridge.NewJWKSKeys(ctx, cfg.jwksURL, bridge.JWKSOptions{Logger: log})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(codec.Collectors()...) // payloads whose encryption does not match this process's
	b, err := bridge.New(bridge.Options{
		Temporal: tc, TaskQueue: cfg.taskQueue, PublicURL: cfg.publicURL, Auth: cfg.auth, ConnectClientID: cfg.clientID,
		Tolerance: cfg.tolerance, MaxBody: cfg.maxBody, Keys: keys, OrganizationID: cfg.orgID,
		ZeroHashWebhookSecret: cfg.zeroHashSecret, ZeroHashWebhookPublicKey: cfg.zeroHashKey,
		ZeroHashRequireTimestamp: cfg.zeroHashStrict, ZeroHashTolerance: cfg.zeroHashWindow,
		TemporalTimeout: cfg.temporalTimeout, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	defer b.Close()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	srv := &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30*time.Second + 4*cfg.temporalTimeout, // a request makes a few bounded Temporal calls
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	adminLn, err := net.Listen("tcp", cfg.adminAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on %s (BRIDGE_ADMIN_ADDR): %w", cfg.adminAddr, err)
	}
	admin := &http.Server{
		Handler:           b.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- admin.Serve(adminLn) }()
	log.Info("webhookbridge listening", "addr", ln.Addr().String(), "admin_addr", adminLn.Addr().String(), "public_url", cfg.publicURL,
		"auth", string(cfg.auth), "task_queue", cfg.taskQueue, "zerohash_webhooks", zeroHashSchemes(cfg))
	if cfg.zeroHashSecret == "" && cfg.zeroHashKey == nil {
		log.Warn("Zero Hash balance webhooks are not configured: " + bridge.PathZeroHashBalances +
			" answers 404 not_configured; set ZEROHASH_WEBHOOK_SECRET or ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE to take them")
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("webhookbridge draining requests in flight")
	b.Close()
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := admin.Shutdown(drainCtx); err != nil {
		return fmt.Errorf("drain admin: %w", err)
	}
	log.Info("webhookbridge stopped")
	return nil
}

// zeroHashSchemes names the balance-webhook schemes configured, for the start log (never a secret).
func zeroHashSchemes(cfg config) string {
	var schemes []string
	if cfg.zeroHashSecret != "" {
		schemes = append(schemes, "hmac")
	}
	if cfg.zeroHashKey != nil {
		schemes = append(schemes, "rsa")
	}
	if len(schemes) == 0 {
		return "none"
	}
	if cfg.zeroHashStrict {
		schemes = append(schemes, "timestamp-required")
	}
	return strings.Join(schemes, "+")
}
