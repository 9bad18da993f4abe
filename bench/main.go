// Command bench measures connectflow against its ceilings on one Temporal server in one run, and prints the
// results as markdown tables and JSON (`go run ./bench -h`):
//
//  1. signal ingest: signed webhooks through the bridge over HTTP vs raw SignalWorkflow, into waiting transfers;
//  2. transfers: full transfers (sandbox session, three webhooks through the bridge) vs a minimal workflow of the
//     same shape, and the Temporal Cloud Actions per transfer counted in their histories;
//  3. the worker's access-token requests per 1,000 transfers and per token lifetime;
//  4. transfers waiting for webhooks in one worker: start rate, worker memory per transfer, responsiveness;
//  5. the CPU cost of verifying a webhook, beside the crypto/rsa verify floor.
//
// Temporal is TEMPORAL_ADDRESS when set, else an embedded server; the sandbox, the bridge and the load run in this
// process, the worker in a child process of this binary. docs/performance.md has a run and what it led to.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/connectflow/connectflow/bench/config"
	"github.com/connectflow/connectflow/bench/report"
)

const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	if os.Getenv(envRole) == roleWorker {
		os.Exit(runWorker(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the chosen scenarios, and prints the report; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Parse(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, config.ErrPrinted):
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nbench: "))
		return exitUsage
	}
	logOut := stderr
	if cfg.Quiet {
		logOut = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if cfg.CPUProfile != "" {
		stopProfile, err := startCPUProfile(filepath.Join(cfg.CPUProfile, "bench.pprof"))
		if err != nil {
			fmt.Fprintf(stderr, "bench: -cpuprofile: %v\n", err)
			return exitFailure
		}
		defer stopProfile()
	}
	var jsonFile *os.File // created now, so a bad -json path fails before minutes of measuring
	if cfg.JSONFile != "" {
		if jsonFile, err = os.Create(cfg.JSONFile); err != nil {
			fmt.Fprintf(stderr, "bench: -json: %v\n", err)
			return exitUsage
		}
		defer jsonFile.Close() // closed and checked in write; this only covers the early returns
	}
	r := &report.Report{Machine: machine(), Command: strings.TrimSpace("go run ./bench " + strings.Join(args, " ")),
		Started: time.Now().UTC()}
	r.LoadAverage[0] = loadAverage()
	if err := measure(ctx, cfg, r, log, stderr); err != nil {
		log.Error("bench failed", "err", err)
		return exitFailure
	}
	r.Seconds = time.Since(r.Started).Seconds()
	r.LoadAverage[1] = loadAverage()
	if err := write(r, stdout, jsonFile); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFailure
	}
	// Speed goals never fail the command; an operation that failed does, since its numbers cannot be trusted.
	if n := r.Failed(); n > 0 {
		fmt.Fprintf(stderr, "bench: %d operations failed (see the tables and the log above)\n", n)
		return exitFailure
	}
	return 0
}

// measure runs the scenarios cfg names into r: verification first, on a machine nothing else is loading yet.
func measure(ctx context.Context, cfg config.Config, r *report.Report, log *slog.Logger, stderr io.Writer) (err error) {
	r.Temporal = "not used"
	if cfg.Has(config.ScenarioVerify) {
		log.Info("verify: benchmarking", "benchtime", cfg.BenchTime)
		if r.Verify, err = verification(cfg.BenchTime); err != nil {
			return err
		}
	}
	if !cfg.NeedsWorker() {
		return nil
	}
	s, err := startStack(ctx, cfg, log, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := s.stop(); stopErr != nil {
			log.Warn("stopping the stack", "err", stopErr)
		}
	}()
	r.Temporal, r.CPUScope = s.temporal, s.cpuScope
	if cfg.Has(config.ScenarioIngest) {
		if r.Ingest, r.IngestSerial, err = s.ingest(ctx); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if cfg.Has(config.ScenarioTransfers) {
		if r.Transfers, err = s.transfers(ctx); err != nil {
			return fmt.Errorf("transfers: %w", err)
		}
		if r.Actions, err = s.actions(ctx); err != nil {
			return fmt.Errorf("actions per transfer: %w", err)
		}
	}
	if cfg.Has(config.ScenarioNotifications) {
		if r.Notifications, r.NotificationCost, err = s.notifications(ctx); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	if cfg.Has(config.ScenarioWaiting) {
		if r.Waiting, err = s.waiting(ctx); err != nil {
			return fmt.Errorf("waiting: %w", err)
		}
	}
	r.Tokens = s.tokens()
	return nil
}

// write prints the tables to stdout, and the JSON after them or into jsonFile when there is one.
func write(r *report.Report, stdout io.Writer, jsonFile *os.File) error {
	if err := r.WriteMarkdown(stdout); err != nil {
		return err
	}
	if jsonFile != nil {
		if err := r.WriteJSON(jsonFile); err != nil {
			return err
		}
		if err := jsonFile.Close(); err != nil {
			return fmt.Errorf("-json: %w", err)
		}
		return nil
	}
	if _, err := io.WriteString(stdout, "```json\n"); err != nil {
		return err
	}
	if err := r.WriteJSON(stdout); err != nil {
		return err
	}
	_, err := io.WriteString(stdout, "```\n")
	return err
}

// startCPUProfile profiles this process into path until the returned func runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close() // nothing was written
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: CPU profile %s: %v\n", path, err)
		}
	}, nil
}
