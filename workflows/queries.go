package workflows

import (
	"strings"
	"time"
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
	return "WorkflowType = 'TransferWorkflow' AND ExecutionStatus = 'Running' AND ConnectReferenceID = " +
		QueryString(ref) + " AND TransferStatus = '" + string(StatusAwaitingUser) + "'"
}

// QueryString quotes s as a visibility query string literal: backslashes and single quotes are escaped, so no
// value can change the query. (Some visibility stores, SQLite's among them, match no value that holds a backslash
// or a double quote even so: such a reference is not found, so it is never superseded or refused.)
func QueryString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
