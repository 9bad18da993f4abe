package workflows

import "time"

// Visibility queries an operator runs in the Temporal UI (or `temporal workflow list --query`) to find what needs a
// person. README.md lists the same text; a test runs each one against a real server.
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
