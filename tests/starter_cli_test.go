package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/workflows"
)

// plaintextEnv runs a binary without payload keys, as the harness's in-process worker does (its client has no
// codec); each such binary must warn, once, that it does.
const plaintextEnv = "CONNECTFLOW_CODEC_PLAINTEXT=true"

// plaintextWarning is the start of the warning a binary run with plaintextEnv logs.
const plaintextWarning = "payload encryption is off"

// starter runs the starter binary against the stack's Temporal server, without payload keys like the harness's
// worker. stderr comes back without the plaintext warning (logged once, unless the command line was refused first).
func (s *stack) starter(bin string, args ...string) (code int, stdout, stderr string) {
	s.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+s.server.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE="+s.namespace, "TEMPORAL_TASK_QUEUE="+taskQueue, plaintextEnv)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), s.withoutPlaintextWarning(errOut.String())
	}
	if err != nil {
		s.t.Fatalf("run starter: %v", err)
	}
	return 0, out.String(), s.withoutPlaintextWarning(errOut.String())
}

// withoutPlaintextWarning drops the plaintext warning line from stderr, failing the test when there are several.
func (s *stack) withoutPlaintextWarning(stderr string) string {
	s.t.Helper()
	var kept []string
	warned := 0
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if strings.Contains(line, plaintextWarning) {
			warned++
			continue
		}
		kept = append(kept, line)
	}
	if warned > 1 {
		s.t.Errorf("the starter run with %s logged the plaintext warning %d times, want at most once; stderr:\n%s", plaintextEnv, warned, stderr)
	}
	return strings.Join(kept, "")
}

func TestStarterCommandAgainstRealServer(t *testing.T) {
	bin := buildBinary(t, "starter")
	s := newStack(t, connecttest.Options{})
	s.startWorker()

	code, out, errOut := s.starter(bin, "deposit", "-transfer-id", "cli-1", "-reference-id", "USER09", "-metadata", "order=7")
	if code != 0 {
		t.Fatalf("deposit: exit %d: %s", code, errOut)
	}
	var started map[string]any
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatalf("deposit output is not one JSON object: %q", out)
	}
	for _, k := range []string{"workflow_id", "run_id", "session_id", "jwt", "expires_at"} {
		if v, _ := started[k].(string); v == "" {
			t.Fatalf("deposit output lacks %s: %s", k, out)
		}
	}

	code, out, errOut = s.starter(bin, "resolve", "-kind", "deposit", "-transfer-id", "cli-1",
		"-outcome", "failed", "-reason", "test", "-operator", "ana")
	if code != 1 || !strings.Contains(errOut, "only a stalled or timed-out transfer") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("resolve on a live transfer: exit %d, stderr %q", code, errOut)
	}

	s.playLife(connect.KindDeposit, "cli-1", started["session_id"].(string), connect.StatusConfirmed)
	if _, err := s.result(connect.KindDeposit, "cli-1"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = s.starter(bin, "status", "-kind", "deposit", "-transfer-id", "cli-1")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st workflows.TransferState
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Status != workflows.StatusConfirmed || len(st.Events) != 4 {
		t.Fatalf("status output %q (%v)", out, err)
	}
	if strings.Contains(out, started["jwt"].(string)) {
		t.Fatal("status must not print the session JWT")
	}

	code, out, errOut = s.starter(bin, "onboarding", "-email", "kyc@example.com")
	var tok struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.Token == "" {
		t.Fatalf("onboarding: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
