package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry"
	"github.com/connectflow/connectflow/transferapi"
)

// devTokenName is the caller the dev token records in history; it carries the operator role.
const devTokenName = "dev"

// startAPI serves the transfer API (`starter serve`) with one bearer token made for this run, with the operator
// role, so a backend in any language can try the stack with curl. It is assembled by transferapi.NewApp as
// `starter serve` assembles it, from the settings that command would read, on the stack's Temporal connection.
func (s *stack) startAPI() error {
	s.apiToken = rand.Text() + rand.Text() // 52 characters, fresh every run
	st, err := transferapi.LoadSettings(nil, settings.MapEnv{
		transferapi.EnvAPITokens: devTokenName + ":" + s.apiToken + ":operator",
	}, io.Discard)
	if err != nil {
		return fmt.Errorf("transfer API: %w", err)
	}
	log := s.log.With("part", "api")
	// The API's own client shares the stack's connection, with the same payload keys.
	opts := client.Options{Namespace: s.server.Namespace(), Logger: sdklog.NewStructuredLogger(log)}
	if err := codec.Apply(&opts, s.cfg.codecKeys); err != nil {
		return fmt.Errorf("transfer API: payload encryption: %w", err)
	}
	if err := telemetry.AddTemporal(&opts); err != nil { // traced when OTEL_* says so (docs/tracing.md)
		return err
	}
	api, err := transferapi.NewApp(context.Background(), st, opts, transferapi.AppOptions{Existing: s.client,
		Logger: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		return fmt.Errorf("transfer API: %w", err)
	}
	ln, err := net.Listen("tcp", hostPort(s.cfg.ip, s.cfg.apiPort))
	if err != nil {
		api.Close()
		return fmt.Errorf("transfer API: %w", err)
	}
	s.apiURL = "http://" + dialAddr(ln.Addr())
	s.serve("transfer API", func(ctx context.Context) error { return api.Serve(ctx, ln) })
	return nil
}
