package platformtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/platformhook"
)

func deliver(t *testing.T, r *Receiver, secrets []platformhook.Secret, id, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	if err := platformhook.SetHeaders(req.Header, secrets, id, time.Now(), []byte(body)); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec.Code
}

func msg(typ string, seq int) string {
	return fmt.Sprintf(`{"type":%q,"timestamp":"2026-11-30T12:00:00Z","data":{"workflow_id":"deposit-1","reference_id":"u1","amount":"0.013","asset":"BTC","sequence":%d}}`, typ, seq)
}

// The receiver a test relies on must refuse what a real platform refuses, or the tests using it prove nothing.
func TestReceiverVerifiesDedupesAndKeepsOrder(t *testing.T) {
	secrets, _ := platformhook.ParseSecrets(platformhook.NewSecret())
	other, _ := platformhook.ParseSecrets(platformhook.NewSecret())
	r := New(secrets)
	if code := deliver(t, r, other, "deposit-1:1", msg("deposit.awaiting_user", 1)); code != http.StatusBadRequest {
		t.Fatalf("wrong secret: %d", code)
	}
	if code := deliver(t, r, secrets, "deposit-1:2", msg("deposit.confirmed", 2)); code != http.StatusConflict {
		t.Fatalf("sequence 2 before 1: %d", code)
	}
	for range 2 {
		if code := deliver(t, r, secrets, "deposit-1:1", msg("deposit.awaiting_user", 1)); code != http.StatusNoContent {
			t.Fatalf("first: %d", code)
		}
	}
	r.FailNext(Fault{Status: http.StatusInternalServerError})
	if code := deliver(t, r, secrets, "deposit-1:2", msg("deposit.confirmed", 2)); code != http.StatusInternalServerError {
		t.Fatalf("scripted fault: %d", code)
	}
	if code := deliver(t, r, secrets, "deposit-1:2", msg("deposit.confirmed", 2)); code != http.StatusNoContent {
		t.Fatalf("second: %d", code)
	}
	l := r.Ledger()
	if len(l) != 2 || l[0].Duplicates != 1 || l[1].Action != "credit" || len(r.Credits()) != 1 || len(r.Rejected()) != 2 || r.Attempts() != 6 {
		t.Fatalf("ledger %+v, rejected %v, attempts %d", l, r.Rejected(), r.Attempts())
	}
}
