package workflows

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
)

func TestPickTransfer(t *testing.T) {
	ex := func(id string, running bool) *workflowpb.WorkflowExecutionInfo {
		st := enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		if running {
			st = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		}
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}, Status: st}
	}
	review := ReviewWorkflowID("no_transfer:cx-1")
	for _, c := range []struct {
		name string
		list []*workflowpb.WorkflowExecutionInfo
		want string
	}{
		{"none", nil, ""},
		{"only a review", []*workflowpb.WorkflowExecutionInfo{ex(review, true)}, ""},
		{"the running transfer over a closed one listed first", []*workflowpb.WorkflowExecutionInfo{
			ex("deposit-old", false), ex(review, true), ex("deposit-new", true)}, "deposit-new"},
		{"else the first closed transfer", []*workflowpb.WorkflowExecutionInfo{
			ex(review, true), ex("withdrawal-a", false), ex("withdrawal-b", false)}, "withdrawal-a"},
	} {
		if got := PickTransfer(c.list); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
