// Package platformtest is a platform that receives connectflow's notifications as a real one should: it verifies
// each with platformhook, applies each webhook-id once (a redelivery is acknowledged and counted, not applied
// again), checks that each transfer's notifications arrive in sequence, and keeps a ledger of what it applied.
// Tests, the dev stack's demo platform and the chaos run use it. Faults can be scripted: answer an error status,
// or hang, for the next deliveries.
package platformtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/connectflow/connectflow/platformhook"
)

// Message is a notification's body as the platform reads it.
type Message struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		WorkflowID        string `json:"workflow_id"`
		Kind              string `json:"kind"`
		TransferID        string `json:"transfer_id"`
		ReferenceID       string `json:"reference_id"`
		Status            string `json:"status"`
		PreviousStatus    string `json:"previous_status"`
		Sequence          int    `json:"sequence"`
		Asset             string `json:"asset"`
		Network           string `json:"network"`
		Amount            string `json:"amount"`
		TxHash            string `json:"tx_hash"`
		ConnectTransferID string `json:"connect_transfer_id"`
		FailureReason     string `json:"failure_reason"`
		ResolvedBy        string `json:"resolved_by"`
	} `json:"data"`
}

// Entry is one applied notification in the ledger.
type Entry struct {
	WebhookID string
	Message   Message
	// Action is what the platform did: "credit", "hold", "release", "debit" or "" (informational).
	Action string
	// Duplicates counts redeliveries of this id after it was applied.
	Duplicates int
}

// Fault is what the receiver does to one delivery instead of applying it.
type Fault struct {
	Status     int    // answer this status (e.g. 500); 0 with Hang only hangs
	RetryAfter string // a Retry-After header to send with Status
	// Hang, without Status, applies the delivery and then answers only after this long, so the sender times out
	// and redelivers what the platform already applied: the case webhook-id dedupe exists for.
	Hang time.Duration
}

// Receiver is an http.Handler for the platform's webhook endpoint.
type Receiver struct {
	secrets []platformhook.Secret

	mu       sync.Mutex
	ledger   []Entry
	byID     map[string]int // webhook-id -> index in ledger
	last     map[string]int // workflow id -> last sequence applied
	faults   []Fault
	attempts int
	rejected []string // why deliveries were refused (bad signature, out of order, ...)
	down     bool
	failRate float64
	rnd      func() float64
	onApply  func(Entry)
}

// OnApply sets a function called (outside the lock) for each newly applied entry, e.g. to print it.
func (r *Receiver) OnApply(f func(Entry)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onApply = f
}

// New returns a receiver that verifies with secrets.
func New(secrets []platformhook.Secret) *Receiver {
	return &Receiver{secrets: secrets, byID: map[string]int{}, last: map[string]int{}}
}

// FailNext makes the next deliveries meet these faults, in order, before the receiver answers normally again.
func (r *Receiver) FailNext(faults ...Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, faults...)
}

// FailRandomly answers 500 to a share (0..1) of deliveries, drawing from rnd (e.g. rand.Float64).
func (r *Receiver) FailRandomly(share float64, rnd func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failRate, r.rnd = share, rnd
}

// ServeHTTP verifies a delivery and applies it once.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.attempts++
	down := r.down
	var fault *Fault
	if len(r.faults) > 0 {
		f := r.faults[0]
		r.faults = r.faults[1:]
		fault = &f
	} else if r.rnd != nil && r.rnd() < r.failRate {
		fault = &Fault{Status: http.StatusInternalServerError}
	}
	r.mu.Unlock()
	if down {
		fault = &Fault{Status: http.StatusServiceUnavailable}
	}
	if fault != nil && fault.Status != 0 {
		if fault.Hang > 0 {
			wait(req, fault.Hang)
		}
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		http.Error(w, "scripted failure", fault.Status)
		return
	}
	id, err := platformhook.Verify(r.secrets, req.Header, body, platformhook.VerifyOptions{})
	if err != nil {
		r.reject(fmt.Sprintf("verify: %v", err))
		http.Error(w, "signature", http.StatusBadRequest)
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		r.reject(fmt.Sprintf("%s: body: %v", id, err))
		http.Error(w, "body", http.StatusBadRequest)
		return
	}
	entry, applied, problem := r.apply(id, m)
	if problem != "" {
		r.reject(problem)
		http.Error(w, problem, http.StatusConflict)
		return
	}
	r.mu.Lock()
	onApply := r.onApply
	r.mu.Unlock()
	if applied && onApply != nil {
		onApply(entry)
	}
	if fault != nil && fault.Hang > 0 {
		wait(req, fault.Hang)
	}
	w.WriteHeader(http.StatusNoContent)
}

// wait sleeps for d or until the sender gives up.
func wait(req *http.Request, d time.Duration) {
	select {
	case <-time.After(d):
	case <-req.Context().Done():
	}
}

// SetDown makes every delivery meet 503 (true) until SetDown(false).
func (r *Receiver) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *Receiver) reject(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(r.rejected, why)
}

// apply records m under id once; a known id is a redelivery. A sequence that skips one is refused (a platform
// that needs order can rely on it: the sender delivers one at a time).
func (r *Receiver) apply(id string, m Message) (Entry, bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.byID[id]; ok {
		r.ledger[i].Duplicates++
		return r.ledger[i], false, ""
	}
	if want := r.last[m.Data.WorkflowID] + 1; m.Data.Sequence != want {
		return Entry{}, false, fmt.Sprintf("%s: sequence %d, want %d", id, m.Data.Sequence, want)
	}
	e := Entry{WebhookID: id, Message: m, Action: Action(m)}
	r.byID[id] = len(r.ledger)
	r.last[m.Data.WorkflowID] = m.Data.Sequence
	r.ledger = append(r.ledger, e)
	return e, true, ""
}

// Action is what a platform does on a notification (docs/notifications.md's table): credit a confirmed deposit, hold funds
// when a withdrawal awaits its user, release them when it ends without moving money, debit them when it is
// confirmed. A deposit settled straight from before confirmed (the ledger movement came first) is credited then;
// a platform that starts transfers with await_ledger would credit at settled instead of confirmed.
func Action(m Message) string {
	switch m.Type {
	case "deposit.confirmed":
		return "credit"
	case "deposit.settled":
		if m.Data.PreviousStatus == "confirmed" {
			return "" // credited at confirmed already
		}
		return "credit"
	case "withdrawal.awaiting_user":
		return "hold"
	case "withdrawal.failed", "withdrawal.expired", "withdrawal.abandoned", "withdrawal.superseded", "withdrawal.session_failed":
		return "release"
	case "withdrawal.confirmed":
		return "debit"
	}
	return ""
}

// Ledger returns the applied notifications in the order they were applied.
func (r *Receiver) Ledger() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Entry(nil), r.ledger...)
}

// Of returns the applied notifications of one workflow, in order.
func (r *Receiver) Of(workflowID string) []Entry {
	var out []Entry
	for _, e := range r.Ledger() {
		if e.Message.Data.WorkflowID == workflowID {
			out = append(out, e)
		}
	}
	return out
}

// Attempts is how many deliveries reached the receiver, faults and redeliveries included.
func (r *Receiver) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// Rejected lists the deliveries refused for a bad signature, body or order; a correct sender causes none.
func (r *Receiver) Rejected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.rejected...)
}

// Credits returns the entries that credited a user, sorted by reference.
func (r *Receiver) Credits() []Entry {
	var out []Entry
	for _, e := range r.Ledger() {
		if e.Action == "credit" {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Message.Data.ReferenceID < out[j].Message.Data.ReferenceID })
	return out
}
