package workflows

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/connectflow/connectflow/connect"
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

// commandCounts counts the commands a recorded history's workflow issued, by kind.
func commandCounts(t *testing.T, name string) map[enumspb.EventType]int {
	h := loadHistory(t, filepath.Join(historiesDir, name))
	n := map[enumspb.EventType]int{}
	for _, e := range h.GetEvents() {
		n[e.GetEventType()]++
	}
	return n
}

// TestNotificationCost pins what notifications cost a transfer in Temporal commands, from real histories of the
// same confirmed deposit (docs/versioning.md): off, two markers (the patch, the worker's setting) and the patch's
// TemporalChangeVersion upsert more than before; on, also one activity per status change and one upsert.
func TestNotificationCost(t *testing.T) {
	before := commandCounts(t, "deposit_confirmed_v1.json")
	off := commandCounts(t, "deposit_confirmed_v2.json")
	on := commandCounts(t, "deposit_confirmed_notified_v2.json")
	const (
		activity = enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
		marker   = enumspb.EVENT_TYPE_MARKER_RECORDED
		upsert   = enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
		timer    = enumspb.EVENT_TYPE_TIMER_STARTED
	)
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"markers off", off[marker] - before[marker], 2},
		{"upserts off", off[upsert] - before[upsert], 1},
		{"activities off", off[activity] - before[activity], 0},
		{"timers off", off[timer] - before[timer], 0},
		{"activities on (4 status changes)", on[activity] - off[activity], 4},
		{"upserts on", on[upsert] - off[upsert], 1},
		{"markers on", on[marker] - off[marker], 0},
		{"timers on", on[timer] - off[timer], 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d more commands, want %d", c.what, c.got, c.want)
		}
	}
}

// Review finding (issue 12, MachineV2): webhooks taken in one workflow task share one sync, but each status
// change is notified with the data of its own event: initiated does not carry the later failure's reason.
func TestSignalsTakenTogetherNotifyEachWithItsOwnData(t *testing.T) {
	e := newEnv(t)
	e.openSession(true, time.Second)
	sent := e.recordNotifications(time.Hour)
	in := deposit()
	e.signalAt(time.Millisecond, SignalConnectEvent, ev(connect.KindDeposit, connect.StatusInitiated), ev(connect.KindDeposit, connect.StatusFailed))
	e.ExecuteWorkflow(TransferWorkflow, in)
	require.Equal(t, StatusFailed, e.result().Status)
	got := statusesAndReasons(sent())
	require.Equal(t, []string{"awaiting_user:", "initiated:", "failed:insufficient funds"}, got)
}
