package tests

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// versioningDeployment is the Worker Deployment of TestWorkerVersionsSideBySide.
const versioningDeployment = "connectflow"

// newVersioningStack is newStack on a server whose versioning housekeeping runs in seconds, not minutes: drainage
// is checked every second, and a stopped worker stops counting as a poller after 2 s. Worker Deployment versioning
// itself needs no setting on server v1.32 (system.enableDeploymentVersions and frontend.workerVersioningWorkflowAPIs
// default to true).
func newVersioningStack(t *testing.T) *stack {
	t.Helper()
	dc := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():    []dynamicconfig.ConstrainedValue{{Value: true}},
		dynamicconfig.VersionDrainageStatusVisibilityGracePeriod.Key(): []dynamicconfig.ConstrainedValue{{Value: time.Second}},
		dynamicconfig.VersionDrainageStatusRefreshInterval.Key():       []dynamicconfig.ConstrainedValue{{Value: time.Second}},
		dynamicconfig.PollerHistoryTTL.Key():                           []dynamicconfig.ConstrainedValue{{Value: 2 * time.Second}},
		dynamicconfig.ReachabilityBuildIdVisibilityGracePeriod.Key():   []dynamicconfig.ConstrainedValue{{Value: time.Second}},
	}
	srv := temporaltest.NewServer(temporaltest.WithT(t),
		temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(dc)))
	s := &stack{t: t, server: srv, client: srv.GetDefaultClient(), namespace: srv.GetDefaultNamespace()}
	s.registerSearchAttributes()
	s.sandbox = connecttest.NewServer(t, connecttest.Options{})
	s.transfers = transfer.NewClient(s.client, transfer.Options{TaskQueue: taskQueue})
	return s
}

// startVersionedWorker runs the worker binary's wiring as version buildID of the deployment, and waits until the
// deployment knows the version (it does once the worker has polled).
func (s *stack) startVersionedWorker(buildID string) worker.Worker {
	s.t.Helper()
	cfg := s.workerConfig()
	cfg.Deployment = workerapp.Deployment{UseVersioning: true, Name: versioningDeployment, BuildID: buildID}
	w, err := workerapp.New(s.client, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatalf("worker %s: %v", buildID, err)
	}
	if err := w.Start(); err != nil {
		s.t.Fatalf("start worker %s: %v", buildID, err)
	}
	s.t.Cleanup(w.Stop)
	h := s.client.WorkerDeploymentClient().GetHandle(versioningDeployment)
	eventually(s.t, "version "+buildID+" to be registered with both task queue types", func() bool {
		d, err := h.DescribeVersion(s.ctx(), client.WorkerDeploymentDescribeVersionOptions{BuildID: buildID})
		return err == nil && len(d.Info.TaskQueuesInfos) >= 2 // workflow and activity
	})
	return w
}

// makeCurrent routes new workflows (and auto-upgrading ones) of the deployment to buildID.
func (s *stack) makeCurrent(buildID string) {
	s.t.Helper()
	h := s.client.WorkerDeploymentClient().GetHandle(versioningDeployment)
	if _, err := h.SetCurrentVersion(s.ctx(), client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID}); err != nil {
		s.t.Fatalf("set current version %s: %v", buildID, err)
	}
}

// taskBuildIDs lists, in order, the build id of the worker that completed each workflow task of workflowID.
func (s *stack) taskBuildIDs(workflowID string) []string {
	s.t.Helper()
	var out []string
	it := s.client.GetWorkflowHistory(s.ctx(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			s.t.Fatalf("history of %s: %v", workflowID, err)
		}
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			v := a.GetDeploymentVersion()
			out = append(out, v.GetDeploymentName()+":"+v.GetBuildId())
		}
	}
	return out
}

// versioningBehavior is what Temporal recorded as workflowID's versioning behavior.
func (s *stack) versioningBehavior(workflowID string) enumspb.VersioningBehavior {
	s.t.Helper()
	d, err := s.client.DescribeWorkflowExecution(s.ctx(), workflowID, "")
	if err != nil {
		s.t.Fatalf("describe %s: %v", workflowID, err)
	}
	return d.GetWorkflowExecutionInfo().GetVersioningInfo().GetBehavior()
}

func allOn(ids []string, buildID string) bool {
	for _, id := range ids {
		if id != versioningDeployment+":"+buildID {
			return false
		}
	}
	return len(ids) > 0
}

// TestWorkerVersionsSideBySide is a rollout: v1 runs transfers; v2 starts beside it and becomes current; the
// transfer that v1 started finishes on v1 (Pinned) while a new one starts and finishes on v2, and a review moves to
// v2 at its next task (AutoUpgrade); then v1 drains, is stopped, and its version is deleted.
func TestWorkerVersionsSideBySide(t *testing.T) {
	s := newVersioningStack(t)
	v1 := s.startVersionedWorker("v1")
	s.makeCurrent("v1")

	old, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "vers-old", ReferenceID: "USER01"})
	if err != nil {
		t.Fatalf("start the transfer on v1: %v", err)
	}
	s.signal(connect.KindDeposit, "vers-old", event(connect.KindDeposit, connect.StatusInitiated, "cx-vers-old", old.SessionID))
	if got := s.versioningBehavior(old.WorkflowID); got != enumspb.VERSIONING_BEHAVIOR_PINNED {
		t.Fatalf("transfer's versioning behavior %v, want pinned", got)
	}
	review := workflows.ReviewWorkflowID("vers-review")
	reviewEvent := event(connect.KindDeposit, "unexpected", "cx-vers-review", "")
	if _, err := s.client.SignalWithStartWorkflow(s.ctx(), review, workflows.SignalReviewEvent,
		workflows.EventSignal{Event: reviewEvent, ReceivedAt: time.Now()},
		client.StartWorkflowOptions{ID: review, TaskQueue: taskQueue}, workflows.ReviewWorkflow,
		workflows.ReviewInput{Reason: workflows.ReviewUnexpected, Kind: connect.KindDeposit}); err != nil {
		t.Fatalf("start a review on v1: %v", err)
	}
	eventually(t, "the review's first task on v1", func() bool { return len(s.taskBuildIDs(review)) > 0 })
	if got := s.versioningBehavior(review); got != enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE {
		t.Fatalf("review's versioning behavior %v, want auto-upgrade", got)
	}

	s.startVersionedWorker("v2")
	s.makeCurrent("v2")
	v1Deployment := workerapp.Deployment{UseVersioning: true, Name: versioningDeployment, BuildID: "v1"}
	if r, err := v1Deployment.Routing(s.ctx(), s.client); err != nil || r.Current || r.CurrentBuildID != "v2" {
		t.Fatalf("v1's routing once v2 is current: %+v, %v", r, err)
	}

	// What keeps v1 from draining, as docs/versioning.md lists it: its open pinned workflows.
	openOnV1 := `TemporalWorkerDeploymentVersion="connectflow:v1" AND TemporalWorkflowVersioningBehavior="Pinned" AND ExecutionStatus="Running"`
	if page, err := os.ReadFile("../docs/versioning.md"); err != nil || !strings.Contains(string(page), openOnV1) {
		t.Errorf("docs/versioning.md does not list the query %q (%v)", openOnV1, err)
	}
	eventually(t, "the open transfer to be listed on v1", func() bool {
		resp, err := s.client.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{Query: openOnV1})
		return err == nil && len(resp.Executions) == 1 && resp.Executions[0].GetExecution().GetWorkflowId() == old.WorkflowID
	})

	fresh, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "vers-new", ReferenceID: "USER02"})
	if err != nil {
		t.Fatalf("start a transfer on v2: %v", err)
	}
	// Both transfers take the rest of their life now, with v1 and v2 both polling.
	for _, st := range []connect.Status{connect.StatusBroadcasted, connect.StatusConfirmed} {
		s.signal(connect.KindDeposit, "vers-old", event(connect.KindDeposit, st, "cx-vers-old", old.SessionID))
	}
	s.playLife(connect.KindDeposit, "vers-new", fresh.SessionID, connect.StatusConfirmed)
	for _, id := range []string{"vers-old", "vers-new"} {
		if r, err := s.result(connect.KindDeposit, id); err != nil || r.Status != workflows.StatusConfirmed {
			t.Fatalf("%s: %+v, %v", id, r.Status, err)
		}
	}
	oldTasks, newTasks := s.taskBuildIDs(old.WorkflowID), s.taskBuildIDs(fresh.WorkflowID)
	if !allOn(oldTasks, "v1") || len(oldTasks) < 3 {
		t.Errorf("the transfer started on v1 ran its workflow tasks on %v, want every one on v1", oldTasks)
	}
	if !allOn(newTasks, "v2") {
		t.Errorf("the transfer started after v2 became current ran on %v, want v2 only", newTasks)
	}

	// The review takes a second event: its next task runs on the current version.
	if err := s.client.SignalWorkflow(s.ctx(), review, "", workflows.SignalReviewEvent,
		workflows.EventSignal{Event: event(connect.KindDeposit, "unexpected", "cx-vers-review-2", ""), ReceivedAt: time.Now()}); err != nil {
		t.Fatalf("signal the review: %v", err)
	}
	eventually(t, "the review to move to v2", func() bool {
		ids := s.taskBuildIDs(review)
		return ids[len(ids)-1] == versioningDeployment+":v2"
	})
	if got := s.taskBuildIDs(review); got[0] != versioningDeployment+":v1" {
		t.Errorf("review tasks %v, want its first on v1", got)
	}
	if _, err := s.transfers.ResolveReview(s.ctx(), review, workflows.Resolution{Operator: "ops@example.com",
		Outcome: workflows.StatusConfirmed, Reason: "credited by hand"}); err != nil {
		t.Fatalf("resolve the review on v2: %v", err)
	}

	// Retire v1: its pinned transfer is closed, so it drains; stop its worker, then delete the version.
	h := s.client.WorkerDeploymentClient().GetHandle(versioningDeployment)
	eventually(t, "v1 to be drained", func() bool {
		d, err := h.DescribeVersion(s.ctx(), client.WorkerDeploymentDescribeVersionOptions{BuildID: "v1"})
		return err == nil && d.Info.DrainageInfo != nil &&
			d.Info.DrainageInfo.DrainageStatus == client.WorkerDeploymentVersionDrainageStatusDrained
	})
	if _, err := h.DeleteVersion(s.ctx(), client.WorkerDeploymentDeleteVersionOptions{BuildID: "v2"}); err == nil {
		t.Fatal("deleting the current version succeeded; Temporal must refuse it")
	}
	v1.Stop()
	var lastErr error
	eventually(t, "v1 to be deleted once its worker is gone", func() bool {
		_, lastErr = h.DeleteVersion(s.ctx(), client.WorkerDeploymentDeleteVersionOptions{BuildID: "v1"})
		return lastErr == nil
	})
	d, err := h.Describe(s.ctx(), client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		t.Fatalf("describe the deployment: %v", err)
	}
	var versions []string
	for _, v := range d.Info.VersionSummaries {
		versions = append(versions, v.Version.BuildID)
	}
	if strings.Join(versions, ",") != "v2" || d.Info.RoutingConfig.CurrentVersion == nil ||
		d.Info.RoutingConfig.CurrentVersion.BuildID != "v2" {
		t.Fatalf("after retiring v1 the deployment has versions %v, current %+v; want v2 only, current",
			versions, d.Info.RoutingConfig.CurrentVersion)
	}
}

// TestVersionedWorkerWaitsForCurrent shows why WORKER_VERSIONING is off by default: a versioned worker gets no
// work until its version is made current, so a transfer started before that waits.
func TestVersionedWorkerWaitsForCurrent(t *testing.T) {
	s := newVersioningStack(t)
	s.startVersionedWorker("only")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := s.transfers.Start(ctx, workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "vers-wait", ReferenceID: "USER03"})
	if err == nil {
		t.Fatal("a transfer got its session before any version was current")
	}
	only := workerapp.Deployment{UseVersioning: true, Name: versioningDeployment, BuildID: "only"}
	var logs bytes.Buffer
	workerapp.LogRouting(s.ctx(), s.client, only, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "not current") ||
		!strings.Contains(logs.String(), "temporal worker deployment set-current-version --deployment-name connectflow --build-id only") {
		t.Fatalf("the worker does not say how to make its version current: %s", logs.String())
	}
	ghost := workerapp.Deployment{UseVersioning: true, Name: "never-polled", BuildID: "x"}
	if r, err := ghost.Routing(s.ctx(), s.client); err != nil || r != (workerapp.Routing{}) {
		t.Fatalf("routing of a deployment Temporal does not know: %+v, %v; want none current, no error", r, err)
	}
	s.makeCurrent("only")
	if r, err := only.Routing(s.ctx(), s.client); err != nil || !r.Current || r.CurrentBuildID != "only" {
		t.Fatalf("routing after set-current-version: %+v, %v", r, err)
	}
	started, err := s.transfers.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "vers-wait", ReferenceID: "USER03"})
	if err != nil {
		t.Fatalf("once current, the waiting transfer should get its session: %v", err)
	}
	if ids := s.taskBuildIDs(started.WorkflowID); !allOn(ids, "only") {
		t.Fatalf("tasks on %v, want the current version", ids)
	}
}
