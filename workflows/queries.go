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
	// QueryUnsettled: closed and final, so not among QueryNeedsPerson's open work, which a resolve empties: Connect
	// confirmed, no Zero Hash movement came in time, and a person settles it against Zero Hash's ledger by hand.
	QueryUnsettled = "TransferStatus = 'unsettled'"
	QueryFailed    = "TransferStatus IN ('failed', 'session_failed')"
	QueryUnmatched = "WorkflowType = 'ReviewWorkflow' AND TransferStatus = 'needs_review'"
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

// MaxConnectIDLen bounds an id ConnectIDQueries looks up: far above any id Connect issues (UUIDs), and keeps a
// query short.
const MaxConnectIDLen = 256

// ConnectIDQueries are the visibility queries that find the transfer a Connect event is about, in the order to
// try: by its session id (ConnectSessionID), then by its Connect transfer id (ConnectTransferID). Each lists
// transfer workflows only; choose among the results with PickTransfer. A value that is not an id as Connect
// issues them (empty, over MaxConnectIDLen bytes, or with characters other than letters, digits and -_.:) gets
// no query: no transfer carries it, and nothing in it reaches a query. The bridge's router,
// transfer.Client.Redeliver and the reconciliation's ledger router all look up with it.
func ConnectIDQueries(sessionID, connectID string) []string {
	var out []string
	for _, q := range [...]struct{ attr, value string }{
		{SearchConnectSessionID.GetName(), sessionID},
		{SearchConnectTransferID.GetName(), connectID},
	} {
		if connectIDLike(q.value) {
			out = append(out, "WorkflowType = 'TransferWorkflow' AND "+q.attr+" = '"+q.value+"'")
		}
	}
	return out
}

// connectIDLike reports whether value has only the characters of ids (UUIDs, hex, dashes), so it can be put
// between quotes in a query as is.
func connectIDLike(value string) bool {
	if value == "" || len(value) > MaxConnectIDLen {
		return false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
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
