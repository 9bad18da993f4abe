package transfer

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/platformhook"
	"github.com/connectflow/connectflow/workflows"
)

// TestStartRefusesTransferIDsOverTheAPIBound: Start takes a new transfer id of at most MaxTransferIDBytes (the
// transfer API's bound) and refuses a longer one before it reaches Temporal (the client here is nil); every
// webhook-id a transfer id within the bound gives, each byte percent-encoded at worst, can be signed.
func TestStartRefusesTransferIDsOverTheAPIBound(t *testing.T) {
	in := workflows.TransferInput{Kind: connect.KindWithdrawal, ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin", Amount: "0.01"}
	in.TransferID = strings.Repeat("x", MaxTransferIDBytes+1)
	_, err := NewClient(nil, Options{}).Start(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "transfer_id") || !strings.Contains(err.Error(), "at most 128 bytes") {
		t.Fatalf("Start with a transfer id of %d bytes: %v; want a refusal naming transfer_id and the limit", len(in.TransferID), err)
	}
	for _, id := range []string{strings.Repeat("x", MaxTransferIDBytes), strings.Repeat(".", MaxTransferIDBytes)} {
		in.TransferID = id
		if err := validateStart(in); err != nil {
			t.Fatalf("transfer id of %d bytes refused: %v", len(id), err)
		}
	}
	secrets, err := platformhook.ParseSecrets(platformhook.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	worst := workflows.WebhookID(workflows.WorkflowID(connect.KindWithdrawal, strings.Repeat(".", MaxTransferIDBytes)), math.MaxInt)
	if _, err := platformhook.Sign(secrets, worst, time.Now(), []byte("{}")); err != nil {
		t.Fatalf("webhook-id of %d bytes for a transfer id of %d: %v", len(worst), MaxTransferIDBytes, err)
	}
}
