package tests

import (
	"bytes"
	"os"
	"path/filepath"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/connectflow/connectflow/workflows"
)

// historiesDir is where recorded histories live for the workflows package's replay test.
const historiesDir = "../workflows/testdata/histories"

// historySuffix names what the histories recorded now ran on: "_v1" is the transfer workflow on its state
// machine (workflows.ChangeStateMachine version 1); "_v2" adds the platform notifications
// (workflows.ChangePlatformNotifications version 1) without the edge rules; "_v3" runs
// workflows.ChangeEdgeRules, workflows.ChangePlatformNotifications and workflows.ChangeSupersedeAfterSession
// (histories recorded with the edge rules
// alone are named "_edge1", through checkReplayFile); "_v4" runs workflows.MachineV2 (ChangeStateMachine version
// 2: one marker, kept timers, superseding only when OpenSession saw another transfer of the reference); "_v5" adds
// workflows.ChangeEveryConflictReviewed and workflows.ChangeCloseKeptByOwnEvents (each asked only in its case);
// "_v6" adds workflows.ChangeCarryPendingWork (asked only when a full run has background work). Histories
// without a suffix ran on the code before. A change under a new patch version bumps it, so the new code's
// histories are added next to the old ones.
const historySuffix = "_v6"

// checkReplay replays a finished workflow's real history against today's code, and with UPDATE_HISTORIES=1
// records it for the workflows package's replay test, so later changes are checked against it. A history already
// recorded under that name is never overwritten: histories are only added (docs/versioning.md).
func (s *stack) checkReplay(workflowID, name string) {
	s.t.Helper()
	s.checkReplayFile(workflowID, name+historySuffix)
}

// checkReplayFile is checkReplay recording under file (without .json) as given: for histories of a later change
// id, named after it (e.g. "_edge1" for workflows.ChangeEdgeRules version 1).
func (s *stack) checkReplayFile(workflowID, file string) {
	s.t.Helper()
	s.checkReplayRun(workflowID, "", file)
}

// checkReplayRun is checkReplayFile for run runID of the workflow ("" is its latest run).
func (s *stack) checkReplayRun(workflowID, runID, file string) {
	s.t.Helper()
	hist := &historypb.History{}
	it := s.client.GetWorkflowHistory(s.ctx(), workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			s.t.Fatalf("history of %s: %v", workflowID, err)
		}
		hist.Events = append(hist.Events, ev)
	}
	// Encode first: replaying updates the started event's search attributes in place (the SDK's workflow info
	// shares them), and the recorded history must be the one the server holds. Then replay what was encoded, as
	// the workflows package's replay test will.
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		s.t.Fatal(err)
	}
	decoded, err := client.HistoryFromJSON(bytes.NewReader(data), client.HistoryJSONOptions{})
	if err != nil {
		s.t.Fatalf("history of %s does not decode: %v", workflowID, err)
	}
	r := worker.NewWorkflowReplayer()
	workflows.Register(r)
	if err := r.ReplayWorkflowHistory(nil, decoded); err != nil {
		s.t.Fatalf("replay %s: %v", workflowID, err)
	}
	if os.Getenv("UPDATE_HISTORIES") != "1" {
		return
	}
	if err := os.MkdirAll(historiesDir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(historiesDir, file+".json")
	if _, err := os.Stat(path); err == nil {
		s.t.Logf("%s is recorded already: kept as it is", path)
		return
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		s.t.Fatal(err)
	}
}
