package workflows

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/platformhook"
)

func TestWebhookID(t *testing.T) {
	for wf, want := range map[string]string{
		"deposit-d-1":         "deposit-d-1:3",
		"deposit-order.42":    "deposit-order%2E42:3",
		"withdrawal-a%2Eb":    "withdrawal-a%252Eb:3", // '%' is encoded too, so two ids never share an encoding
		"deposit-x y":         "deposit-x%20y:3",
		"deposit-tab\tnl\n":   "deposit-tab%09nl%0A:3",
		"deposit-ünïcode-ok:": "deposit-ünïcode-ok::3",
	} {
		got := WebhookID(wf, 3)
		if got != want {
			t.Errorf("WebhookID(%q) = %q, want %q", wf, got, want)
		}
		// Whatever the transfer id, the id can be signed and verified.
		secrets, _ := platformhook.ParseSecrets(platformhook.NewSecret())
		h := http.Header{}
		if err := platformhook.SetHeaders(h, secrets, got, time.Now(), []byte("{}")); err != nil {
			t.Errorf("sign %q: %v", got, err)
		} else if id, err := platformhook.Verify(secrets, h, []byte("{}"), platformhook.VerifyOptions{}); err != nil || id != got {
			t.Errorf("verify %q: %q, %v", got, id, err)
		}
	}
	if WebhookID("deposit-a.b", 1) == WebhookID("deposit-a%2Eb", 1) {
		t.Error("two workflow ids share a webhook-id")
	}
}

func FuzzWebhookID(f *testing.F) {
	f.Add("deposit-d-1", 1)
	f.Add("deposit-a.b. c", 7)
	f.Fuzz(func(t *testing.T, wf string, seq int) {
		id := WebhookID(wf, seq)
		if strings.ContainsAny(id, ". \t\r\n") {
			t.Fatalf("WebhookID(%q) = %q holds a byte Standard Webhooks ids cannot", wf, id)
		}
	})
}
