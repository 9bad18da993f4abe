package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/workflows"
)

// A start is safe to retry: an identical repeat of a transfer started with if_busy=refuse answers 200 with that
// transfer's session and status, even while another transfer of its reference awaits its user (the busy check is
// for a new transfer only), through the API and the Go library. if_busy is part of the body a repeat must match:
// absent and "supersede" are the same, "refuse" against "supersede" is a 409 naming it.
func TestTransferAPIRefuseRetryIsIdempotent(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	first := map[string]any{"transfer_id": "idem-1", "reference_id": "USER-IDEM", "if_busy": "refuse"}
	var started transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, first).want(t, "first", 201, "").decode(t, &started)
	// A newer transfer of the reference supersedes it and awaits its user in its place.
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "idem-2", "reference_id": "USER-IDEM"}).want(t, "newer", 201, "")
	if r, err := a.result(connect.KindDeposit, "idem-1"); err != nil || r.Status != workflows.StatusSuperseded {
		t.Fatalf("idem-1: %+v, %v; want superseded", r, err)
	}
	eventually(t, "only idem-2 listed as awaiting_user", func() bool {
		var page transferapi.TransferPage
		ans := a.call("GET", "/v1/transfers?reference_id=USER-IDEM&status=awaiting_user", docTransfers, apiBackendToken, nil)
		if ans.status != 200 {
			return false
		}
		ans.decode(t, &page)
		return len(page.Transfers) == 1 && page.Transfers[0].WorkflowID == "deposit-idem-2"
	})

	var again transferapi.StartResponse
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, first).want(t, "identical retry", 200, "").decode(t, &again)
	if again.WorkflowID != started.WorkflowID || again.SessionID != started.SessionID || again.Status != workflows.StatusSuperseded {
		t.Fatalf("the retry must answer idem-1's own session and status: %+v, first %+v", again, started)
	}
	lib, err := a.transfers.Start(a.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "idem-1",
		ReferenceID: "USER-IDEM", IfBusy: workflows.IfBusyRefuse})
	if err != nil || lib.SessionID != started.SessionID || lib.Status != workflows.StatusSuperseded {
		t.Fatalf("the library's retry: %+v, %v", lib, err)
	}
	// A new transfer with refuse is still refused while idem-2 awaits its user.
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "idem-3", "reference_id": "USER-IDEM", "if_busy": "refuse"}).
		want(t, "new transfer, busy reference", 409, transferapi.TypeTransferBusy)

	// if_busy in a repeat: idem-2 was started without it, which is supersede.
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "idem-2", "reference_id": "USER-IDEM", "if_busy": "supersede"}).
		want(t, "absent then supersede", 200, "")
	c := a.call("POST", "/v1/deposits", docDeposits, apiBackendToken,
		map[string]any{"transfer_id": "idem-2", "reference_id": "USER-IDEM", "if_busy": "refuse"}).
		want(t, "supersede then refuse", 409, transferapi.TypeTransferConflict)
	if !strings.Contains(c.problem.Detail, "if_busy") {
		t.Fatalf("the conflict must name if_busy: %q", c.problem.Detail)
	}
	a.call("POST", "/v1/deposits", docDeposits, apiBackendToken, map[string]any{"transfer_id": "idem-1",
		"reference_id": "USER-IDEM", "if_busy": "supersede"}).want(t, "refuse then supersede", 409, transferapi.TypeTransferConflict)
}

// Concurrent first starts of one transfer open one session: one answers 201 (its start created the workflow),
// the others joined it and answer 200 with the same session.
func TestTransferAPIConcurrentFirstStarts(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{}, transferapi.Options{})
	a.startWorker()
	const n = 4
	body := []byte(`{"transfer_id":"race-1","reference_id":"USER-RACE"}`)
	type answer struct {
		status int
		start  transferapi.StartResponse
		raw    string
		err    error
	}
	answers := make([]answer, n)
	var ready, done sync.WaitGroup
	ready.Add(n)
	gate := make(chan struct{})
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			req, err := http.NewRequestWithContext(a.ctx(), "POST", a.url+"/v1/deposits", bytes.NewReader(body))
			if err != nil {
				answers[i].err = err
				ready.Done()
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+apiBackendToken)
			ready.Done()
			<-gate
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			answers[i].status, answers[i].raw = resp.StatusCode, string(raw)
			answers[i].err = json.Unmarshal(raw, &answers[i].start)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
	created := 0
	var statuses []int
	for i, ans := range answers {
		statuses = append(statuses, ans.status)
		if ans.err != nil || (ans.status != 201 && ans.status != 200) {
			t.Fatalf("start %d: %d %s %v", i, ans.status, ans.raw, ans.err)
		}
		if ans.status == 201 {
			created++
		}
		if ans.start.SessionID != answers[0].start.SessionID {
			t.Fatalf("one transfer, one session: %+v and %+v", answers[0].start, ans.start)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent first starts answered 201 Created; want exactly 1: %v", created, n, statuses)
	}
	if got := a.sandbox.SessionsCreatedFor("USER-RACE"); got != 1 {
		t.Fatalf("%d sessions opened, want 1", got)
	}
}
