package transferapi

import (
	"testing"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// TestConflictComparesIfBusy: if_busy is a field of the start body, so a repeat that differs in it is a 409 naming
// it; absent ("") and "supersede" are the same value (supersede is the default).
func TestConflictComparesIfBusy(t *testing.T) {
	for _, tc := range []struct {
		was, now workflows.IfBusy
		conflict bool
	}{
		{"", "", false},
		{"", workflows.IfBusySupersede, false},
		{workflows.IfBusySupersede, "", false},
		{workflows.IfBusyRefuse, workflows.IfBusyRefuse, false},
		{workflows.IfBusyRefuse, workflows.IfBusySupersede, true},
		{workflows.IfBusySupersede, workflows.IfBusyRefuse, true},
		{"", workflows.IfBusyRefuse, true},
		{workflows.IfBusyRefuse, "", true},
	} {
		was := workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "t1", ReferenceID: "U", IfBusy: tc.was}
		now := was
		now.IfBusy = tc.now
		p := conflict(was, now)
		switch {
		case !tc.conflict && p != nil:
			t.Errorf("if_busy %q then %q: %v; want no conflict", tc.was, tc.now, p)
		case tc.conflict && p == nil:
			t.Errorf("if_busy %q then %q: no conflict; want 409 naming if_busy", tc.was, tc.now)
		case tc.conflict && (p.Type != TypeTransferConflict || p.Detail != "transfer t1 was started with another if_busy; use a new transfer_id"):
			t.Errorf("if_busy %q then %q: %+v", tc.was, tc.now, p)
		}
	}
}
