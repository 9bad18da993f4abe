package platformhook_test

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/connectflow/connectflow/platformhook"
)

// A Go platform's receiver: verify, dedupe on the webhook-id, apply, then answer 2xx. Anything else makes
// connectflow redeliver the same id later.
func Example() {
	secrets, err := platformhook.ParseSecrets(os.Getenv("PLATFORM_WEBHOOK_SECRET"))
	if err != nil {
		fmt.Println("no usable secret:", err)
		return
	}
	http.HandleFunc("POST /connectflow", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		id, err := platformhook.Verify(secrets, r.Header, body, platformhook.VerifyOptions{})
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		_ = id // apply the outcome in the same database transaction that records id as seen; skip a seen id
		w.WriteHeader(http.StatusNoContent)
	})
	// Output: no usable secret: platformhook: no secrets
}
