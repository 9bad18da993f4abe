package bridge_test

import (
	"testing"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// TestLedgerRouterRecordsVia: every LedgerMovement a LedgerRouter signals or sends to review says how it arrived;
// a router without Via (the bridge's balance webhook route) says webhook.
func TestLedgerRouterRecordsVia(t *testing.T) {
	f := newFakeTemporal()
	f.running("WorkflowType = 'TransferWorkflow' AND ConnectTransferID = 'cx-1'", "deposit-D1")
	for _, c := range []struct{ via, want string }{
		{"", workflows.LedgerViaWebhook},
		{workflows.LedgerViaReconciliation, workflows.LedgerViaReconciliation},
	} {
		lr := bridge.LedgerRouter{Temporal: f, Via: c.via}
		route, err := lr.RouteMovement(t.Context(), "BTC", zerohash.Movement{MovementID: "m-" + c.want, Change: "1", DepositReferenceID: "cx-1"})
		if err != nil || route.Outcome != bridge.LedgerSignaled || route.Movement.Via != c.want {
			t.Fatalf("Via %q: route %+v, %v; want signalled via %s", c.via, route, err, c.want)
		}
		got := f.signals[len(f.signals)-1].arg.(workflows.LedgerMovement)
		if got.Via != c.want {
			t.Fatalf("Via %q: signalled %+v, want via %s", c.via, got, c.want)
		}
	}
	// Unmatched: the review gets the same mark.
	lr := bridge.LedgerRouter{Temporal: f, Via: workflows.LedgerViaReconciliation}
	route, err := lr.RouteMovement(t.Context(), "BTC", zerohash.Movement{MovementID: "m-u", Change: "1", DepositReferenceID: "cx-none"})
	if err != nil || route.Outcome != bridge.LedgerReview {
		t.Fatalf("unmatched: %+v, %v", route, err)
	}
	if got := f.starts[len(f.starts)-1].arg.(workflows.LedgerMovement); got.Via != workflows.LedgerViaReconciliation {
		t.Fatalf("review got %+v", got)
	}
}
