package workflows

import (
	"strings"
	"testing"
)

// TestConnectIDQueries: a session id, then a Connect transfer id, each narrowed to transfer workflows; only id
// characters reach a query, so no verified-but-hostile value rewrites it.
func TestConnectIDQueries(t *testing.T) {
	got := ConnectIDQueries("91f96ea1-2997-4f41-86cc-171079eee322", "cx_1.2:3")
	want := []string{
		"WorkflowType = 'TransferWorkflow' AND ConnectSessionID = '91f96ea1-2997-4f41-86cc-171079eee322'",
		"WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'cx_1.2:3'",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ConnectIDQueries = %q, want %q", got, want)
	}
	if got := ConnectIDQueries("", "A"); len(got) != 1 || got[0] != "WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'A'" {
		t.Fatalf("without a session id: %q", got)
	}
	for _, bad := range []string{"", "x' OR WorkflowType = 'y", `x" OR "1"="1`, "a b", "a\\b", "é", strings.Repeat("a", MaxConnectIDLen+1)} {
		if got := ConnectIDQueries(bad, bad); len(got) != 0 {
			t.Errorf("ConnectIDQueries(%q) = %q, want none", bad, got)
		}
	}
	if got := ConnectIDQueries(strings.Repeat("a", MaxConnectIDLen), ""); len(got) != 1 {
		t.Errorf("an id of %d bytes got %d queries, want 1", MaxConnectIDLen, len(got))
	}
}

// FuzzConnectIDQueries checks the rule that keeps a webhook's ids from changing a visibility query: a value gets a
// query exactly when every byte is an id character, and then it is quoted as is.
func FuzzConnectIDQueries(f *testing.F) {
	for _, seed := range []string{"cx-1", "9b730ca7-e46c-4aa2-821a-9d09b780512e", "", "a' OR '1'='1", "a b", "é",
		"x\\", "deposit:cx-1:confirmed", strings.Repeat("a", 257)} {
		f.Add(seed, "s-1")
	}
	f.Fuzz(func(t *testing.T, sessionID, connectID string) {
		safe := func(v string) bool {
			return v != "" && len(v) <= MaxConnectIDLen &&
				strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == ""
		}
		var want []string
		if safe(sessionID) {
			want = append(want, "WorkflowType = 'TransferWorkflow' AND ConnectSessionID = '"+sessionID+"'")
		}
		if safe(connectID) {
			want = append(want, "WorkflowType = 'TransferWorkflow' AND ConnectTransferID = '"+connectID+"'")
		}
		if got := ConnectIDQueries(sessionID, connectID); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("ConnectIDQueries(%q, %q) = %q, want %q", sessionID, connectID, got, want)
		}
	})
}
