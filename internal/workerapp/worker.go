package workerapp

import (
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// New returns a worker on cfg.TaskQueue running every connectflow workflow (workflows.Register) and the
// activities with their long-lived Connect and Zero Hash clients. It makes no network call; the caller starts
// and stops it.
func New(c client.Client, cfg Config, logger *slog.Logger) (worker.Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	connectClient, err := connect.New(cfg.Connect)
	if err != nil {
		return nil, fmt.Errorf("connect client: %w", err)
	}
	zeroHashClient, err := zerohash.New(cfg.ZeroHash)
	if err != nil {
		return nil, fmt.Errorf("zero hash client: %w", err)
	}
	w := worker.New(c, cfg.TaskQueue, worker.Options{MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		DeploymentOptions: cfg.Deployment.Options()})
	workflows.Register(behaviorRegistry{w}) // the same list the replay tests use, each with its VersioningBehavior
	w.RegisterActivity(&activities.Activities{Connect: connectClient, ZeroHash: zeroHashClient, Temporal: c,
		Platform: cfg.Platform.platform()})
	registerReconcile(w, c, cfg, zeroHashClient)
	logger.Info("worker configured",
		"task_queue", cfg.TaskQueue,
		"connect_api_url", cfg.Connect.BaseURL,
		"connect_request_signing", cfg.Connect.OrgKey != nil,
		"zerohash_api_url", cfg.ZeroHash.BaseURL,
		"worker_versioning", cfg.Deployment.UseVersioning, "platform_notifications", cfg.Platform.URL != "")
	if cfg.Deployment.UseVersioning {
		logger.Info("worker deployment version",
			"deployment_name", cfg.Deployment.Name, "build_id", cfg.Deployment.BuildID)
	}
	return w, nil
}
