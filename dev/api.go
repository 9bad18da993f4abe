package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/telemetry"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/workflows"
)

// devTokenName is the caller the dev token records in history; it carries the operator role.
const devTokenName = "dev"

// startAPI serves the transfer API (`starter serve`) with one bearer token made for this run, with the operator
// role, so a backend in any language can try the stack with curl.
func (s *stack) startAPI() error {
	s.apiToken = rand.Text() + rand.Text() // 52 characters, fresh every run
	tokens, err := transferapi.ParseTokens(devTokenName + ":" + s.apiToken + ":operator")
	if err != nil {
		return fmt.Errorf("transfer API: %w", err)
	}
	auth, err := transferapi.NewAuthenticator(tokens, nil)
	if err != nil {
		return fmt.Errorf("transfer API: %w", err)
	}
	log := s.log.With("part", "api")
	// The API records its caller in history through a context propagator: a client of its own on the stack's
	// connection, with the same payload keys.
	opts := client.Options{Namespace: s.server.Namespace(), Logger: sdklog.NewStructuredLogger(log),
		ContextPropagators: []workflow.ContextPropagator{transferapi.CallerPropagator()}}
	if err := codec.Apply(&opts, s.cfg.codecKeys); err != nil {
		return fmt.Errorf("transfer API: payload encryption: %w", err)
	}
	if err := telemetry.AddTemporal(&opts); err != nil { // traced when OTEL_* says so (docs/tracing.md)
		return err
	}
	c, err := client.NewClientFromExisting(s.client, opts)
	if err != nil {
		return fmt.Errorf("transfer API: temporal client: %w", err)
	}
	s.add("transfer API client", func() error { c.Close(); return nil })
	api, err := transferapi.New(transferapi.Options{Temporal: c, TaskQueue: workflows.DefaultTaskQueue,
		DataConverter: opts.DataConverter, Auth: auth, Logger: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		return fmt.Errorf("transfer API: %w", err)
	}
	ln, err := net.Listen("tcp", hostPort(s.cfg.ip, s.cfg.apiPort))
	if err != nil {
		return fmt.Errorf("transfer API: %w", err)
	}
	s.apiURL = "http://" + dialAddr(ln.Addr())
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("transfer API stopped serving", "err", err)
		}
	}()
	s.add("transfer API", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	return nil
}
