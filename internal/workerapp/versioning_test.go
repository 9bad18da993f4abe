package workerapp

import (
	"bytes"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
)

func TestLoadSettingsVersioningOffByDefault(t *testing.T) {
	st, err := LoadSettings(nil, goodEnv(t), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	d := st.Worker.Deployment
	if d.UseVersioning || d.BuildID != "" {
		t.Fatalf("deployment %+v, want versioning off and no build id computed", d)
	}
	if got := d.Options(); got != (worker.DeploymentOptions{}) {
		t.Fatalf("options %+v, want none with versioning off", got)
	}
}

func TestLoadSettingsVersioningDefaultsFromTheBuild(t *testing.T) {
	env := goodEnv(t)
	env[EnvWorkerVersioning] = "true"
	st, err := LoadSettings(nil, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := DefaultBuildID()
	if err != nil {
		t.Fatal(err)
	}
	d := st.Worker.Deployment
	if !d.UseVersioning || d.Name != DefaultDeploymentName || d.BuildID != want || want == "" {
		t.Fatalf("deployment %+v, want %s with build id %q", d, DefaultDeploymentName, want)
	}
	opts := d.Options()
	if !opts.UseVersioning || opts.Version != (worker.WorkerDeploymentVersion{DeploymentName: "connectflow", BuildID: want}) ||
		opts.DefaultVersioningBehavior != workflow.VersioningBehaviorPinned {
		t.Fatalf("options %+v, want versioned, pinned by default", opts)
	}
}

func TestLoadSettingsVersioningFlagsWin(t *testing.T) {
	env := goodEnv(t)
	env[EnvWorkerDeploymentName] = "from-env"
	env[EnvWorkerBuildID] = "env-build"
	st, err := LoadSettings([]string{"-worker-versioning", "-worker-deployment-name", "payments", "-worker-build-id", "v2.3.0"},
		env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Worker.Deployment; d != (Deployment{UseVersioning: true, Name: "payments", BuildID: "v2.3.0"}) {
		t.Fatalf("deployment %+v", d)
	}
}

func TestLoadSettingsRejectsBadVersion(t *testing.T) {
	for _, tc := range []struct {
		name, env, value, want string
	}{
		{"dot in name", EnvWorkerDeploymentName, "github.com/connectflow", `"."`},
		{"colon in name", EnvWorkerDeploymentName, "a:b", `":"`},
		{"reserved name", EnvWorkerDeploymentName, "__system", `"__"`},
		{"reserved build id", EnvWorkerBuildID, "__unversioned__", `"__"`},
		{"long build id", EnvWorkerBuildID, strings.Repeat("x", 256), "255 bytes"},
		{"newline in build id", EnvWorkerBuildID, "abc\n", "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := goodEnv(t)
			env[EnvWorkerVersioning] = "true"
			env[tc.env] = tc.value
			_, err := LoadSettings(nil, env, &bytes.Buffer{})
			var se *settings.Error
			if !errors.As(err, &se) || se.Env != tc.env || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a %s error saying %s", err, tc.env, tc.want)
			}
		})
	}
	// Versioning off: the same values are not used, so not checked.
	env := goodEnv(t)
	env[EnvWorkerDeploymentName] = "a.b"
	if _, err := LoadSettings(nil, env, &bytes.Buffer{}); err != nil {
		t.Fatalf("versioning off, a bad name is unused: %v", err)
	}
}

func TestConfigValidateVersioningNeedsBoth(t *testing.T) {
	cfg := goodConfig(t)
	cfg.Deployment = Deployment{UseVersioning: true}
	err := cfg.Validate()
	for _, env := range []string{EnvWorkerDeploymentName, EnvWorkerBuildID} {
		if err == nil || !strings.Contains(err.Error(), env+" (flag -"+settings.FlagName(env)+"): required when WORKER_VERSIONING is true") {
			t.Errorf("Validate = %v, want %s required", err, env)
		}
	}
}

func TestBuildIDFromBuildInfo(t *testing.T) {
	hash := func() (string, error) { return "0123456789abcdef", nil }
	broken := func() (string, error) { return "", errors.New("no executable") }
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		hash func() (string, error)
		want string
		err  bool
	}{
		{"clean checkout", vcs("19b3527aa0", "false"), broken, "19b3527aa0", false},
		{"dirty checkout", vcs("19b3527aa0", "true"), hash, "19b3527aa0-dirty-0123456789abcdef", false},
		{"dirty, unreadable executable", vcs("19b3527aa0", "true"), broken, "", true},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, broken, "v1.4.0", false},
		{"no vcs, devel", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, hash, "exe-0123456789abcdef", false},
		{"no build info", nil, hash, "exe-0123456789abcdef", false},
		{"nothing at all", nil, broken, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildID(tc.info, tc.hash)
			if got != tc.want || (err != nil) != tc.err {
				t.Fatalf("buildID = %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestExecutableHashIsStable(t *testing.T) {
	a, err := executableHash()
	if err != nil {
		t.Fatal(err)
	}
	b, err := executableHash()
	if err != nil || a != b || len(a) != 16 {
		t.Fatalf("hashes %q and %q (%v), want the same 16 hex digits", a, b, err)
	}
}

func TestVersioningBehaviorPerWorkflow(t *testing.T) {
	for _, tc := range []struct {
		name string
		wf   any
		want workflow.VersioningBehavior
	}{
		{"transfer", workflows.TransferWorkflow, workflow.VersioningBehaviorPinned},
		{"onboarding", workflows.OnboardingWorkflow, workflow.VersioningBehaviorPinned},
		{"review", workflows.ReviewWorkflow, workflow.VersioningBehaviorAutoUpgrade},
		// The cursor never ends (continue-as-new): pinned, it would keep its version from ever draining.
		{"reconcile cursor", workflows.ReconcileCursorWorkflow, workflow.VersioningBehaviorAutoUpgrade},
		{"reconcile run", workflows.ReconcileWorkflow, workflow.VersioningBehaviorPinned},
		{"not a function", "ReviewWorkflow", workflow.VersioningBehaviorPinned},
	} {
		if got := VersioningBehavior(tc.wf); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// recordingRegistry keeps what behaviorRegistry passes on.
type recordingRegistry struct {
	worker.WorkflowRegistry
	got map[string]workflow.VersioningBehavior
}

func (r *recordingRegistry) RegisterWorkflowWithOptions(wf any, opts workflow.RegisterOptions) {
	switch {
	case sameFunc(wf, workflows.TransferWorkflow):
		r.got["TransferWorkflow"] = opts.VersioningBehavior
	case sameFunc(wf, workflows.OnboardingWorkflow):
		r.got["OnboardingWorkflow"] = opts.VersioningBehavior
	case sameFunc(wf, workflows.ReviewWorkflow):
		r.got["ReviewWorkflow"] = opts.VersioningBehavior
	case sameFunc(wf, workflows.ReconcileWorkflow):
		r.got["ReconcileWorkflow"] = opts.VersioningBehavior
	case sameFunc(wf, workflows.ReconcileCursorWorkflow):
		r.got["ReconcileCursorWorkflow"] = opts.VersioningBehavior
	default:
		r.got["other"] = opts.VersioningBehavior
	}
	if opts.Name != "" {
		r.got["named "+opts.Name] = opts.VersioningBehavior
	}
}

func TestEveryRegisteredWorkflowGetsItsBehavior(t *testing.T) {
	r := &recordingRegistry{got: map[string]workflow.VersioningBehavior{}}
	workflows.Register(behaviorRegistry{r})
	want := map[string]workflow.VersioningBehavior{
		"TransferWorkflow":   workflow.VersioningBehaviorPinned,
		"OnboardingWorkflow": workflow.VersioningBehaviorPinned,
		"ReviewWorkflow":     workflow.VersioningBehaviorAutoUpgrade,
		"ReconcileWorkflow":  workflow.VersioningBehaviorPinned,
		// It never ends (continue-as-new): pinned, it would keep its version from ever draining.
		"ReconcileCursorWorkflow": workflow.VersioningBehaviorAutoUpgrade,
	}
	if len(r.got) != len(want) {
		t.Fatalf("registered %v, want exactly %v (a new workflow needs its behavior decided here)", r.got, want)
	}
	for name, b := range want {
		if r.got[name] != b {
			t.Errorf("%s registered with %v, want %v", name, r.got[name], b)
		}
	}
}

func TestNewVersionedWorkerRegistersEverything(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := goodConfig(t)
	cfg.Deployment = Deployment{UseVersioning: true, Name: "connectflow", BuildID: "test-1"}
	var logs bytes.Buffer
	w, err := New(c, cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !panics(func() { w.RegisterWorkflow(workflows.TransferWorkflow) }) {
		t.Error("TransferWorkflow was not registered by New")
	}
	if !strings.Contains(logs.String(), `"build_id":"test-1"`) || !strings.Contains(logs.String(), `"deployment_name":"connectflow"`) {
		t.Errorf("log does not name the version: %s", logs.String())
	}
}
