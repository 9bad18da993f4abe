package cmdmain

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/internal/settings"
)

// testSettings is a process with one required setting and Temporal's.
type testSettings struct {
	name     string
	temporal *settings.Temporal
	level    slog.Level
}

func (st *testSettings) TemporalSettings() *settings.Temporal { return st.temporal }
func (st *testSettings) Level() slog.Level                    { return st.level }

func testCommand(run func(ctx context.Context, st *testSettings, opts client.Options, logger *slog.Logger) error) Command[*testSettings] {
	return Command[*testSettings]{
		Name: "testproc",
		Load: func(args []string, env settings.Env, output io.Writer) (*testSettings, error) {
			st := &testSettings{}
			s := settings.New("testproc", settings.Options{Env: env, Output: output})
			s.String(&st.name, settings.Spec{Env: "TESTPROC_NAME", Required: true, Usage: "a name"})
			s.Level(&st.level, settings.Spec{Env: "LOG_LEVEL", Default: "info", Usage: "level"})
			st.temporal = settings.BindTemporal(s, "q")
			return st, s.Parse(args)
		},
		Run: run,
	}
}

func TestMainExitStatuses(t *testing.T) {
	plaintext := settings.MapEnv{"TESTPROC_NAME": "x", settings.EnvCodecPlaintext: "true"}
	stopAtOnce := func(ctx context.Context, st *testSettings, opts client.Options, logger *slog.Logger) error {
		if opts.Logger == nil || opts.Namespace != "default" {
			return errors.New("client options without the process's logger or a namespace")
		}
		logger.Info("running", "name", st.name)
		return nil
	}
	cases := []struct {
		name   string
		args   []string
		env    settings.Env
		run    func(context.Context, *testSettings, client.Options, *slog.Logger) error
		status int
		stderr []string
	}{
		{"help, with the tracing settings", []string{"-h"}, settings.MapEnv{}, stopAtOnce, ExitOK,
			[]string{"TESTPROC_NAME", "env OTEL_EXPORTER_OTLP_ENDPOINT:", "env OTEL_SERVICE_NAME: service.name, default"}},
		{"version, no setting read", []string{"-version"}, settings.MapEnv{}, stopAtOnce, ExitOK, nil},
		{"unknown flag", []string{"-nope"}, plaintext, stopAtOnce, ExitUsage, []string{"-nope"}},
		{"missing setting", nil, settings.MapEnv{settings.EnvCodecPlaintext: "true"}, stopAtOnce, ExitUsage,
			[]string{"testproc: TESTPROC_NAME (flag -testproc-name): required"}},
		{"no payload keys", nil, settings.MapEnv{"TESTPROC_NAME": "x"}, stopAtOnce, ExitUsage,
			[]string{"testproc: no payload encryption keys"}},
		{"clean stop", nil, plaintext, stopAtOnce, ExitOK, []string{`"msg":"running"`, `"name":"x"`}},
		{"failure", nil, plaintext, func(context.Context, *testSettings, client.Options, *slog.Logger) error {
			return errors.New("cannot listen")
		}, ExitFailure, []string{`"msg":"testproc stopped"`, `"error":"cannot listen"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := Main(t.Context(), testCommand(c.run), c.args, c.env, &stderr); got != c.status {
				t.Fatalf("status %d, want %d; stderr:\n%s", got, c.status, stderr.String())
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if c.args == nil || c.args[0] != "-h" {
				if strings.Contains(stderr.String(), "OTEL_") {
					t.Errorf("the tracing settings are printed only with -h:\n%s", stderr.String())
				}
			}
		})
	}
}

// TestMainStopsWhenItsContextEnds: Run's context ends with the caller's (as with SIGINT or SIGTERM).
func TestMainStopsWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	waited := false
	status := Main(ctx, testCommand(func(ctx context.Context, _ *testSettings, _ client.Options, _ *slog.Logger) error {
		<-ctx.Done()
		waited = true
		return nil
	}), nil, settings.MapEnv{"TESTPROC_NAME": "x", settings.EnvCodecPlaintext: "true"}, io.Discard)
	if status != ExitOK || !waited {
		t.Fatalf("status %d, waited %v", status, waited)
	}
}

// TestBackground: stop ends serve's context and returns its error; a serve that ends by itself is reported.
func TestBackground(t *testing.T) {
	stop := Background(func(ctx context.Context) error { <-ctx.Done(); return nil }, func(err error) {
		t.Errorf("a serve stopped by stop reported as failed: %v", err)
	})
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	failed := make(chan error, 1)
	stop = Background(func(context.Context) error { return errors.New("listener closed") }, func(err error) { failed <- err })
	if err := <-failed; err == nil || err.Error() != "listener closed" {
		t.Fatalf("failed heard %v", err)
	}
	if err := stop(); err == nil {
		t.Fatal("stop after a failed serve: nil, want its error")
	}
}

// A bad OTEL_* setting is a bad setting: exit 2 with a line naming it, and Run never starts.
func TestMainRefusesABadTracingSetting(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")
	ran := false
	run := func(context.Context, *testSettings, client.Options, *slog.Logger) error { ran = true; return nil }
	var stderr bytes.Buffer
	env := settings.MapEnv{"TESTPROC_NAME": "x", settings.EnvCodecPlaintext: "true"}
	if got := Main(t.Context(), testCommand(run), nil, env, &stderr); got != ExitUsage || ran {
		t.Fatalf("status %d (ran %v), want %d without running; stderr:\n%s", got, ran, ExitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "testproc: tracing:") || !strings.Contains(stderr.String(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("stderr does not name the tracing setting:\n%s", stderr.String())
	}
}
