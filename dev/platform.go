package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/platformhook"
	"github.com/connectflow/connectflow/platformhook/platformtest"
)

// Paths of the demo platform.
const (
	platformWebhookPath = "/webhooks/connectflow" // the worker posts notifications here
	platformLedgerPath  = "/platform/ledger"      // GET: what the platform applied, in order
	platformFaultsPath  = "/platform/faults"      // POST: make the next deliveries fail, to watch redelivery
	// sandboxPlatformFaultsPath is the same switch on the sandbox's control API.
	sandboxPlatformFaultsPath = "/sandbox/platform/faults"
)

// startPlatform runs the demo platform: it verifies the worker's notifications with a secret made for this run,
// applies each webhook-id once and keeps a ledger. The worker is pointed at it through the printed environment.
// newPlatform makes the demo platform's receiver and secret; it runs before the sandbox, whose control API drives
// the receiver's faults, so s.platform is set before any request can read it.
func (s *stack) newPlatform() error {
	s.platformSecret = platformhook.NewSecret()
	secrets, err := platformhook.ParseSecrets(s.platformSecret)
	if err != nil {
		return fmt.Errorf("demo platform: %w", err)
	}
	s.platform = platformtest.New(secrets)
	return nil
}

func (s *stack) startPlatform() error {
	secret := s.platformSecret
	ln, err := net.Listen("tcp", hostPort(s.cfg.ip, s.cfg.platformPort))
	if err != nil {
		return fmt.Errorf("demo platform: %w", err)
	}
	s.platformURL = "http://" + dialAddr(ln.Addr())
	mux := http.NewServeMux()
	mux.Handle("POST "+platformWebhookPath, s.platform)
	mux.HandleFunc("GET "+platformLedgerPath, s.serveLedger)
	mux.HandleFunc("POST "+platformFaultsPath, s.serveFaults)
	log := s.log.With("part", "platform")
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo platform stopped serving", "err", err)
		}
	}()
	s.add("demo platform", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	// A dev secret guarding only this run's demo platform: printed like the sandbox's credentials.
	s.appendEnv(workerGroup, envVar{workerapp.EnvPlatformWebhookURL, s.platformURL + platformWebhookPath})
	s.appendEnv(workerGroup, envVar{workerapp.EnvPlatformWebhookSecret, secret})
	// Short enough to watch a notification go to review in the dev stack, long enough for a restart.
	s.appendEnv(workerGroup, envVar{workerapp.EnvPlatformWebhookRetryFor, "10m"})
	return nil
}

func (s *stack) serveLedger(w http.ResponseWriter, _ *http.Request) {
	type row struct {
		WebhookID  string `json:"webhook_id"`
		Type       string `json:"type"`
		Reference  string `json:"reference_id"`
		Amount     string `json:"amount"`
		Asset      string `json:"asset"`
		Action     string `json:"action,omitempty"`
		Duplicates int    `json:"duplicates,omitempty"`
	}
	rows := []row{}
	for _, e := range s.platform.Ledger() {
		d := e.Message.Data
		rows = append(rows, row{e.WebhookID, e.Message.Type, d.ReferenceID, d.Amount, d.Asset, e.Action, e.Duplicates})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ledger": rows, "attempts": s.platform.Attempts(), "rejected": s.platform.Rejected()})
}

// serveFaults takes {"status": 500, "count": 3, "retry_after": "5", "hang": "15s"}: the next count deliveries
// answer status (after hang, if set), or, with hang and no status, are applied and answered only after hang
// (longer than PLATFORM_WEBHOOK_TIMEOUT, so the worker redelivers and the platform dedupes).
func (s *stack) serveFaults(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status     int    `json:"status"`
		Count      int    `json:"count"`
		RetryAfter string `json:"retry_after"`
		Hang       string `json:"hang"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var hang time.Duration
	if req.Hang != "" {
		d, err := time.ParseDuration(req.Hang)
		if err != nil || d < 0 || d > 10*time.Minute {
			http.Error(w, "hang: a duration up to 10m, e.g. 15s", http.StatusUnprocessableEntity)
			return
		}
		hang = d
	}
	if req.Count < 1 || req.Count > 100 || (req.Status != 0 && (req.Status < 100 || req.Status > 599)) || (req.Status == 0 && hang == 0) {
		http.Error(w, "count: 1 to 100; status: an HTTP status, or hang alone", http.StatusUnprocessableEntity)
		return
	}
	faults := make([]platformtest.Fault, req.Count)
	for i := range faults {
		faults[i] = platformtest.Fault{Status: req.Status, RetryAfter: req.RetryAfter, Hang: hang}
	}
	s.platform.FailNext(faults...)
	w.WriteHeader(http.StatusNoContent)
}

// platformLine says what the demo platform did with a notification, e.g.
// "platform: credited demo-user-1 0.013 BTC (once)".
func platformLine(e platformtest.Entry) string {
	d := e.Message.Data
	what := map[string]string{"credit": "credited", "hold": "held", "release": "released", "debit": "debited"}[e.Action]
	if what == "" {
		return fmt.Sprintf("platform: %s %s (%s)", e.Message.Type, d.WorkflowID, e.WebhookID)
	}
	return fmt.Sprintf("platform: %s %s %s %s (once)", what, d.ReferenceID, d.Amount, d.Asset)
}

// ledgerLine sums up the demo platform's ledger for the demo's last line.
func ledgerLine(p *platformtest.Receiver) string {
	ledger := p.Ledger()
	var actions []string
	redelivered := 0
	for _, e := range ledger {
		redelivered += e.Duplicates
		if e.Action != "" {
			actions = append(actions, strings.TrimPrefix(platformLine(e), "platform: "))
		}
	}
	line := fmt.Sprintf("platform: ledger: %d notifications applied once each (%d redeliveries ignored, %d attempts)",
		len(ledger), redelivered, p.Attempts())
	if len(actions) > 0 {
		line += "; " + strings.Join(actions, "; ")
	}
	return line
}
