package workerapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"runtime/debug"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/internal/buildinfo"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
)

// Worker Versioning settings. With WORKER_VERSIONING on, the worker polls as the Worker Deployment version
// WORKER_DEPLOYMENT_NAME + WORKER_BUILD_ID, and Temporal sends it only the workflows of that version: a transfer
// stays on the version that started it (Pinned), a review moves to the deployment's current version (AutoUpgrade).
// docs/versioning.md, "Rolling out a new worker version", shows a rollout.
const (
	EnvWorkerVersioning     = "WORKER_VERSIONING"
	EnvWorkerDeploymentName = "WORKER_DEPLOYMENT_NAME"
	EnvWorkerBuildID        = "WORKER_BUILD_ID"
)

// DefaultDeploymentName is the Worker Deployment's name when WORKER_DEPLOYMENT_NAME is unset. It is the last
// element of the module path: Temporal refuses a deployment name holding "." or ":", so the path itself cannot be.
const DefaultDeploymentName = "connectflow"

// maxVersionFieldLen bounds the deployment name and the build id: the server's default limit.workerBuildIdSize.
const maxVersionFieldLen = 255

// Deployment says whether and as which Worker Deployment version the worker runs.
type Deployment struct {
	// UseVersioning makes the worker a Worker Deployment version. Off, it is an unversioned worker that runs
	// every workflow on its task queue, as before versioning: what tests and `go run ./dev` use.
	UseVersioning bool
	Name          string // the Worker Deployment, e.g. "connectflow"; required with UseVersioning
	BuildID       string // this build within it, e.g. a git revision; required with UseVersioning
}

// Version is the deployment version the worker polls as.
func (d Deployment) Version() worker.WorkerDeploymentVersion {
	return worker.WorkerDeploymentVersion{DeploymentName: d.Name, BuildID: d.BuildID}
}

// Options are the SDK's deployment options for d: none when versioning is off; otherwise d's version with Pinned
// as the default behavior, so a transfer (and anything registered without a behavior) ends on the code that
// started it.
func (d Deployment) Options() worker.DeploymentOptions {
	if !d.UseVersioning {
		return worker.DeploymentOptions{}
	}
	return worker.DeploymentOptions{UseVersioning: true, Version: d.Version(),
		DefaultVersioningBehavior: workflow.VersioningBehaviorPinned}
}

// check reports what is wrong with the deployment name (env EnvWorkerDeploymentName) or the build id; nothing when
// versioning is off.
func (d Deployment) check() (name, buildID error) {
	if !d.UseVersioning {
		return nil, nil
	}
	return versionField(d.Name, true), versionField(d.BuildID, false)
}

// versionField applies the server's rules for a deployment name or build id, so a bad one fails at start.
func versionField(v string, isName bool) error {
	if err := text(v); err != nil {
		if errors.Is(err, settings.ErrRequired) {
			return fmt.Errorf("required when %s is true", EnvWorkerVersioning)
		}
		return err
	}
	switch {
	case len(v) > maxVersionFieldLen:
		return fmt.Errorf("longer than %d bytes", maxVersionFieldLen)
	case strings.HasPrefix(v, "__"):
		return errors.New(`must not start with "__" (reserved by Temporal)`)
	case isName && strings.ContainsAny(v, ".:"):
		return errors.New(`must not contain "." or ":"`)
	}
	return nil
}

// VersioningBehavior is how each connectflow workflow moves between worker versions:
//   - TransferWorkflow: Pinned. A transfer lives hours or days; it finishes on the code that started it, and an
//     old version is retired once its transfers have drained.
//   - OnboardingWorkflow: Pinned. It lives minutes (one activity, 5 min at most), so it drains at once.
//   - ReviewWorkflow: AutoUpgrade. A review waits for an operator for as long as it takes; pinning it would keep
//     every old version alive until its last review is resolved. It moves to the current version at its next
//     workflow task, so a change to it must replay (a workflow.GetVersion patch).
//   - ReconcileCursorWorkflow: AutoUpgrade. It never ends (it continues as new), so pinned it would hold its
//     version forever; the same replay rule applies.
//   - ReconcileWorkflow: Pinned. One scheduled run lives minutes.
//
// Anything else gets the worker's default, Pinned.
func VersioningBehavior(wf any) workflow.VersioningBehavior {
	if sameFunc(wf, workflows.ReviewWorkflow) || sameFunc(wf, workflows.ReconcileCursorWorkflow) {
		return workflow.VersioningBehaviorAutoUpgrade
	}
	return workflow.VersioningBehaviorPinned
}

func sameFunc(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == reflect.Func && vb.Kind() == reflect.Func && va.Pointer() == vb.Pointer()
}

// behaviorRegistry registers each workflow workflows.Register lists with its VersioningBehavior, so the
// behaviors are declared here, beside the deployment, and workflows.Register stays the one list of workflows.
type behaviorRegistry struct{ w worker.WorkflowRegistry }

func (r behaviorRegistry) RegisterWorkflow(wf any) {
	r.w.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{VersioningBehavior: VersioningBehavior(wf)})
}

// DefaultBuildID is the build id of this binary when WORKER_BUILD_ID is unset, from what the Go toolchain stamped
// into it (runtime/debug.ReadBuildInfo):
//  1. the VCS revision (vcs.revision; `go build` in a git checkout stamps it; an image build passes it at link
//     time, internal/buildinfo), with "-dirty-" and a hash of the executable appended when the tree had
//     uncommitted changes, since two such builds differ;
//  2. else the main module's version (a `go install module@v1.2.3` build);
//  3. else "exe-" and the first 16 hex digits of the executable's SHA-256 (e.g. a -buildvcs=false image build):
//     the same build always gets the same id, a different one another id.
func DefaultBuildID() (string, error) {
	info, _ := debug.ReadBuildInfo()
	return buildID(info, executableHash)
}

func buildID(info *debug.BuildInfo, exeHash func() (string, error)) (string, error) {
	bi := buildinfo.FromDebug(info)
	revision, modified := bi.Revision, bi.Modified
	if revision == buildinfo.Unknown {
		revision = ""
	}
	switch {
	case revision != "" && !modified:
		return revision, nil
	case revision != "":
		h, err := exeHash()
		if err != nil {
			return "", err
		}
		return revision + "-dirty-" + h, nil
	case info != nil && info.Main.Version != "" && info.Main.Version != "(devel)":
		return info.Main.Version, nil
	}
	h, err := exeHash()
	if err != nil {
		return "", err
	}
	return "exe-" + h, nil
}

// executableHash is the first 16 hex digits of the running executable's SHA-256.
func executableHash() (string, error) {
	path, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("build id: find the executable: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("build id: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("build id: read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Routing is where the deployment sends new workflows, seen from one version.
type Routing struct {
	Current        bool   // this version is the deployment's current version
	Ramping        bool   // this version gets a share of new workflows
	CurrentBuildID string // the current version's build id; empty when none is current (or the deployment is new)
}

// Routing asks Temporal whether d's version gets new workflows. A deployment Temporal does not know yet (no
// worker of it has polled) has no current version.
func (d Deployment) Routing(ctx context.Context, c client.Client) (Routing, error) {
	desc, err := c.WorkerDeploymentClient().GetHandle(d.Name).Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return Routing{}, nil
	case err != nil:
		return Routing{}, fmt.Errorf("describe worker deployment %s: %w", d.Name, err)
	}
	var r Routing
	rc := desc.Info.RoutingConfig
	if v := rc.CurrentVersion; v != nil {
		r.CurrentBuildID = v.BuildID
		r.Current = *v == d.Version()
	}
	r.Ramping = rc.RampingVersion != nil && *rc.RampingVersion == d.Version()
	return r, nil
}

// LogRouting tells the operator, once the worker runs, whether its version gets new workflows and, when it does
// not, the command that makes it current. Errors are logged, not returned: the worker runs either way.
func LogRouting(ctx context.Context, c client.Client, d Deployment, logger *slog.Logger) {
	if !d.UseVersioning {
		return
	}
	r, err := d.Routing(ctx, c)
	switch {
	case err != nil:
		logger.Warn("cannot tell whether this worker version is current", "error", err)
	case r.Current:
		logger.Info("this worker version is current: it gets new transfers", "deployment_name", d.Name, "build_id", d.BuildID)
	case r.Ramping:
		logger.Info("this worker version is ramping: it gets a share of new transfers", "deployment_name", d.Name, "build_id", d.BuildID)
	default:
		logger.Warn("this worker version is not current: it runs only the workflows already pinned to it until made current",
			"deployment_name", d.Name, "build_id", d.BuildID, "current_build_id", r.CurrentBuildID,
			"make_current", fmt.Sprintf("temporal worker deployment set-current-version --deployment-name %s --build-id %s", d.Name, d.BuildID))
	}
}
