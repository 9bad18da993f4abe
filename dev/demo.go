package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// demoPoll is how often the demo reads a transfer's state to print its steps.
const demoPoll = 200 * time.Millisecond

// demoDoneLine starts the line the demo prints once both transfers have finished.
const demoDoneLine = "demo: finished:"

// demo starts one deposit and one withdrawal through the starter library and prints each step as the workflow
// records it, with a link to the workflow in the UI. The sandbox plays each session; the demo only watches.
type demo struct {
	transfers *transfer.Client
	temporal  client.Client
	out       *lineWriter
	uiURL     string
	namespace string
	now       func() time.Time
	platform  *platformtest.Receiver // the demo platform; its ledger is the demo's last line
}

// demoInputs are the two demo transfers; stamp keeps the ids of each run apart. Their reference ids differ
// because Connect allows one open session per reference id.
func demoInputs(stamp string) []workflows.TransferInput {
	id := "demo-" + stamp
	return []workflows.TransferInput{
		{Kind: connect.KindDeposit, TransferID: id, ReferenceID: "demo-user-1",
			Metadata: map[string]string{"source": "connectflow dev demo"}},
		{Kind: connect.KindWithdrawal, TransferID: id, ReferenceID: "demo-user-2",
			Asset: "BTC", Network: "bitcoin", Amount: "0.005", Metadata: map[string]string{"source": "connectflow dev demo"}},
	}
}

// run follows both transfers to their end, or until ctx ends, and prints a summary line.
func (d *demo) run(ctx context.Context) {
	inputs := demoInputs(d.now().UTC().Format("20060102-150405"))
	d.out.printf("demo: starting a deposit and a withdrawal; the sandbox plays each session's webhooks")
	results := make([]string, len(inputs))
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Go(func() { results[i] = d.follow(ctx, in) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	d.out.printf("%s %s", demoDoneLine, strings.Join(results, ", "))
	if d.platform != nil {
		d.out.printf("%s", ledgerLine(d.platform))
	}
}

// follow starts one transfer and prints its steps until it is final; it returns "<kind> <outcome>".
func (d *demo) follow(ctx context.Context, in workflows.TransferInput) string {
	id := workflows.WorkflowID(in.Kind, in.TransferID)
	step := func(format string, args ...any) {
		d.out.printf("demo: %-10s %s  %s", in.Kind, id, fmt.Sprintf(format, args...))
	}
	started, err := d.transfers.Start(ctx, in)
	if err != nil {
		if ctx.Err() == nil {
			step("could not start: %v", err)
		}
		return fmt.Sprintf("%s not started", in.Kind)
	}
	step("session opened (session %s)  %s", started.SessionID, d.workflowURL(id))
	printed := 0 // events of the state already printed
	var lastErr string
	for {
		st, err := d.transfers.Status(ctx, in.Kind, in.TransferID)
		switch {
		case ctx.Err() != nil:
			return ""
		case err != nil:
			if msg := err.Error(); msg != lastErr { // a query can fail while the worker restarts; say so once
				step("state not readable yet: %v", err)
				lastErr = msg
			}
		default:
			// The workflow records every event it takes, so a step between two polls is printed all the same.
			for ; printed < len(st.Events); printed++ {
				if rec := st.Events[printed]; rec.Name != sessionCreated {
					step("%s", describe(rec, st))
				}
			}
			if st.Final() {
				return d.finish(ctx, id, in.Kind, st.Status)
			}
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(demoPoll):
		}
	}
}

// finish waits for the workflow to close after its final status.
func (d *demo) finish(ctx context.Context, id string, kind connect.Kind, status workflows.Status) string {
	var result workflows.TransferResult
	if err := d.temporal.GetWorkflow(ctx, id, "").Get(ctx, &result); err != nil {
		if ctx.Err() == nil {
			d.out.printf("demo: %-10s %s  workflow did not complete: %v", kind, id, err)
		}
		return fmt.Sprintf("%s %s (workflow failed)", kind, status)
	}
	return fmt.Sprintf("%s %s", kind, result.Status)
}

// sessionCreated is the event the workflow records for its Connect session, printed as "session opened".
const sessionCreated = "session.created"

// describe names an event the workflow took and what came with it; never the session JWT.
func describe(rec workflows.EventRecord, st workflows.TransferState) string {
	what := cmp.Or(rec.Status, rec.Name)
	if rec.Source != "connect" {
		what = rec.Source + " " + what
	}
	if rec.Effect != workflows.EffectApplied {
		return fmt.Sprintf("%s (%s)", what, rec.Effect)
	}
	switch {
	case rec.Status == string(connect.StatusBroadcasted) && st.TxHash != "":
		return fmt.Sprintf("%s (tx %s)", what, st.TxHash)
	case rec.Status == string(connect.StatusConfirmed):
		return fmt.Sprintf("%s (%s %s on %s)", what, st.Amount, st.Asset, st.Network)
	case rec.Status == string(connect.StatusFailed) && st.FailureReason != "":
		return fmt.Sprintf("%s (%s)", what, st.FailureReason)
	}
	return what
}

func (d *demo) workflowURL(id string) string {
	return d.uiURL + "/namespaces/" + url.PathEscape(d.namespace) + "/workflows/" + url.PathEscape(id)
}

// lineWriter prints whole lines from concurrent goroutines without interleaving them.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// printf writes one line. A terminal that cannot be written to has no better place to be told about it.
func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
