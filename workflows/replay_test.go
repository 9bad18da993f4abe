package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Histories recorded from a real server by the integration tests (UPDATE_HISTORIES=1 go test ./tests/) must
// replay on today's code: a change that breaks them needs workflow versioning.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want the recorded histories under testdata/histories, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// The replay check catches a change in the commands a workflow issues.
func TestReplayDetectsChangedWorkflow(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	changed := func(ctx workflow.Context, in TransferInput) (TransferResult, error) {
		return TransferResult{}, workflow.Sleep(ctx, 1) // a timer where the real code ran an activity
	}
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "TransferWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/histories/deposit_confirmed.json"); err == nil {
		t.Fatal("replaying a history on a changed workflow should fail")
	}
}
