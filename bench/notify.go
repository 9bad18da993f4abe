package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/connectflow/connectflow/bench/report"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/platformhook"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/starter/transfer"
)

// notifications is scenario 2b: the same full transfers as scenario 2, on the worker with notifications off and
// on a second worker process (its own task queue) that posts every status change to a platform on loopback,
// which verifies each and answers 204. A transfer with notifications on completes only after its final
// notification is acknowledged, so its start-to-complete includes the deliveries. It also counts the commands one
// transfer's history holds each way.
func (s *stack) notifications(ctx context.Context) (*report.Comparison, *report.NotificationCost, error) {
	secret := platformhook.NewSecret()
	secrets, err := platformhook.ParseSecrets(secret)
	if err != nil {
		return nil, nil, err
	}
	platform := platformtest.New(secrets)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("platform listener: %w", err)
	}
	srv := &http.Server{Handler: platform, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	queue := s.taskQueue + "-notify"
	env := make([]string, 0, len(s.temporalEnv)+3)
	for _, kv := range s.workerEnv(s.temporalEnv) {
		if strings.HasPrefix(kv, settings.EnvTemporalTaskQueue+"=") {
			kv = settings.EnvTemporalTaskQueue + "=" + queue
		}
		env = append(env, kv)
	}
	env = append(env, workerapp.EnvPlatformWebhookURL+"=http://"+ln.Addr().String()+"/webhooks/connectflow",
		workerapp.EnvPlatformWebhookSecret+"="+secret)
	s.log.Info("notifications: starting a second worker process, notifications on", "task_queue", queue)
	w, err := startWorkerProcess(ctx, env, s.stderr)
	if err != nil {
		return nil, nil, err
	}
	s.extraWorkers++
	defer func() {
		if err := w.Stop(); err != nil {
			s.log.Warn("notifications worker stop", "err", err)
		}
	}()
	on := transfer.NewClient(s.client, transfer.Options{TaskQueue: queue})

	var signing atomic.Int64
	full := func(starter *transfer.Client, name string) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			t, err := s.startTransferWith(ctx, starter, fmt.Sprintf("%s-%s-%d", s.runID, name, i))
			if err != nil {
				return err
			}
			t0 := time.Now()
			life, err := s.signLife(t)
			signing.Add(int64(time.Since(t0)))
			if err != nil {
				return err
			}
			return s.deliverLife(ctx, t, life)
		}
	}
	off := side{what: "TransferWorkflow as in 2, PLATFORM_WEBHOOK_URL unset", op: full(s.starter, "notify-off"), signing: &signing}
	ours := side{what: "TransferWorkflow as in 2, each status change posted to a platform on loopback (verified, 204), closing after the final one is acknowledged",
		op: full(on, "notify-on"), signing: &signing}
	n := s.cfg.Transfers
	s.log.Info("notifications: measuring", "per_side", n, "concurrency", s.cfg.Concurrency, "rounds", s.cfg.Rounds)
	p := plan{unit: "transfer", warm: min(s.cfg.Concurrency, n), n: n, concurrency: s.cfg.Concurrency, rounds: s.cfg.Rounds}
	c, err := s.compare(ctx, p, off, ours)
	if err != nil {
		return nil, nil, err
	}
	if rej := platform.Rejected(); len(rej) > 0 {
		return nil, nil, fmt.Errorf("the platform refused %d notifications, first: %s", len(rej), rej[0])
	}
	cost := &report.NotificationCost{}
	if cost.Off, err = s.commands(ctx, fmt.Sprintf("deposit-%s-notify-off-0", s.runID)); err != nil {
		return nil, nil, err
	}
	if cost.On, err = s.commands(ctx, fmt.Sprintf("deposit-%s-notify-on-0", s.runID)); err != nil {
		return nil, nil, err
	}
	return c, cost, nil
}

// commands counts the commands of one closed workflow's history by kind.
func (s *stack) commands(ctx context.Context, workflowID string) (map[string]int, error) {
	kinds := map[enumspb.EventType]string{
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:           "activities",
		enumspb.EVENT_TYPE_TIMER_STARTED:                     "timers",
		enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "upserts",
		enumspb.EVENT_TYPE_MARKER_RECORDED:                   "markers",
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:           "workflow tasks",
	}
	out := map[string]int{}
	it := s.client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		if k, ok := kinds[ev.GetEventType()]; ok {
			out[k]++
		}
	}
	if len(out) == 0 {
		return nil, errors.New("history of " + workflowID + " is empty")
	}
	return out, nil
}
