package workflows

import (
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
)

// Visibility queries an operator runs in the Temporal UI (or `temporal workflow list --query`) to find what needs a
// person. docs/operations.md lists the same text; a test runs each one against a real server.
const (
	QueryNeedsPerson = "TransferStatus IN ('stalled', 'timed_out', 'needs_review')"
	QueryStalled     = "TransferStatus = 'stalled'"
	QueryTimedOut    = "TransferStatus = 'timed_out'"
	QueryFailed      = "TransferStatus IN ('failed', 'session_failed')"
	QueryUnmatched   = "WorkflowType = 'ReviewWorkflow' AND TransferStatus = 'needs_review'"
)

// QuerySettledSince finds transfers that reached their money-moved state since t (e.g. midnight: settled today).
func QuerySettledSince(t time.Time) string {
	return "TransferStatus IN ('confirmed', 'settled') AND CloseTime >= '" + t.UTC().Format(time.RFC3339) + "'"
}

// QueryAwaitingUser finds the running transfers of reference ref still awaiting their user: the ones a new
// session for ref supersedes, or that make a start with if_busy=refuse fail.
func QueryAwaitingUser(ref string) string {
	return runningOfReference(ref, "TransferStatus = '"+string(StatusAwaitingUser)+"'")
}

// QueryBeforeUser finds the running transfers of reference ref that have not reached their user's action yet
// (creating_session or awaiting_user). Listed once a new session for ref is open, none of them means there is
// no transfer for that session to supersede; one of them means there may be (SignalMatching decides).
func QueryBeforeUser(ref string) string {
	return runningOfReference(ref, "TransferStatus IN ('"+string(StatusCreatingSession)+"', '"+string(StatusAwaitingUser)+"')")
}

// runningOfReference finds the running transfers of reference ref that also match cond.
func runningOfReference(ref, cond string) string {
	return "WorkflowType = 'TransferWorkflow' AND ExecutionStatus = 'Running' AND ConnectReferenceID = " +
		QueryString(ref) + " AND " + cond
}

// QueryString quotes s as a visibility query string literal: backslashes and single quotes are escaped, so no
// value can change the query. (Some visibility stores, SQLite's among them, match no value that holds a backslash
// or a double quote even so: such a reference is not found, so it is never superseded or refused.)
func QueryString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// PickTransfer is the transfer a visibility list by a Connect id (ConnectSessionID, ConnectTransferID) routes to:
// the first running transfer listed, else the first listed; "" when none is a transfer (reviews carry the same
// attributes). The bridge's router and transfer.Client.Redeliver both choose with it.
func PickTransfer(executions []*workflowpb.WorkflowExecutionInfo) string {
	found := ""
	for _, ex := range executions {
		id := ex.GetExecution().GetWorkflowId()
		if _, ok := TransferKindOf(id); !ok {
			continue
		}
		if ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return id
		}
		if found == "" {
			found = id
		}
	}
	return found
}
