package bridge

import (
	"cmp"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/decimal"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// LedgerOutcome is what RouteMovement did with one balance movement.
type LedgerOutcome string

const (
	// LedgerSignaled: the open transfer the movement names took it (workflows.SignalLedger).
	LedgerSignaled LedgerOutcome = "signaled"
	// LedgerAcknowledged: the transfer it names has closed and its final state covers the movement.
	LedgerAcknowledged LedgerOutcome = "acknowledged"
	// LedgerReview: no open transfer took it; a review workflow (keyed "ledger:<movement id>") holds it now.
	LedgerReview LedgerOutcome = "review"
	// LedgerReviewClosed: its review was resolved already: it was handled before.
	LedgerReviewClosed LedgerOutcome = "review_closed"
	// LedgerNotOurs: the movement names no Connect transfer (no deposit_reference_id or withdrawal_request_id):
	// a trade, a fee; nothing to settle.
	LedgerNotOurs LedgerOutcome = "not_ours"
)

// LedgerRoute is where one movement went.
type LedgerRoute struct {
	Outcome LedgerOutcome
	// WorkflowID is the transfer or review workflow that took the movement; "" for LedgerNotOurs.
	WorkflowID string
	// Movement is what was signalled, asset and change normalised (see LedgerMovementOf).
	Movement workflows.LedgerMovement
}

// LedgerRouter is the one place that decides, for a Zero Hash balance movement, which transfer it settles and
// whether that transfer takes it as a signal or a person must review it. The bridge's balance webhook route uses
// it for every movement of a verified webhook; a reconciliation activity reading the same movements another way
// (GET /movements) calls RouteMovement too, so both paths agree and dedupe on the movement id.
//
// Routing: deposit_reference_id names a deposit, else withdrawal_request_id a withdrawal; the transfer is the
// workflow whose ConnectTransferID search attribute equals it (a running one preferred). It is signalled
// workflows.SignalLedger with workflows.LedgerMovement; a transfer that has closed covers the movement only when it
// is settled or confirmed (else review, reason closed_conflict); no transfer at all opens a review with reason
// unmatched_ledger. Whether the movement's asset and amount match the transfer's is the transfer workflow's
// decision: it receives both normalised.
type LedgerRouter struct {
	// Temporal signals and starts workflows. Required.
	Temporal Temporal
	// TaskQueue is where review workflows start; default workflows.DefaultTaskQueue.
	TaskQueue string
	// Timeout bounds each Temporal call; default DefaultTemporalTimeout.
	Timeout time.Duration
	// Via is recorded on every LedgerMovement it routes: how the movement reached connectflow
	// (workflows.LedgerViaWebhook, the default, or workflows.LedgerViaReconciliation).
	Via string
}

// RouteMovement routes one movement of a balance event whose asset is asset. A non-nil error means Temporal did
// not answer or refused: nothing is known to have happened, and the caller retries the same movement later (the
// transfer and the review dedupe on its movement id, so a retry never counts twice).
func (lr LedgerRouter) RouteMovement(ctx context.Context, asset string, mv zerohash.Movement) (LedgerRoute, error) {
	m, ok := ledgerMessage(asset, mv)
	lm, _ := m.arg.(workflows.LedgerMovement)
	if ok {
		lm.Via = cmp.Or(lr.Via, workflows.LedgerViaWebhook)
		m.arg, m.review.arg = lm, lm
	}
	if !ok {
		return LedgerRoute{Outcome: LedgerNotOurs, Movement: LedgerMovementOf(asset, mv)}, nil
	}
	r := router{temporal: lr.Temporal, taskQueue: cmp.Or(lr.TaskQueue, workflows.DefaultTaskQueue),
		timeout: cmp.Or(lr.Timeout, DefaultTemporalTimeout)}
	o, workflowID, err := r.deliver(ctx, &m)
	route := LedgerRoute{WorkflowID: workflowID, Movement: lm}
	switch o {
	case outcomeSignaled:
		route.Outcome = LedgerSignaled
	case outcomeAcknowledged:
		route.Outcome = LedgerAcknowledged
	case outcomeReview:
		route.Outcome = LedgerReview
	case outcomeReviewClosed:
		route.Outcome = LedgerReviewClosed
	default:
		return route, cmp.Or(err, errUnavailable)
	}
	return route, nil
}

// ledgerMessage routes a balance movement to the transfer whose ConnectTransferID it names.
func ledgerMessage(asset string, mv zerohash.Movement) (message, bool) {
	kind, ref := connect.KindDeposit, mv.DepositReferenceID
	if ref == "" {
		kind, ref = connect.KindWithdrawal, mv.WithdrawalRequestID
	}
	if ref == "" {
		return message{}, false
	}
	var lm any = LedgerMovementOf(asset, mv)
	return message{
		connectID: ref,
		signal:    workflows.SignalLedger,
		arg:       lm,
		status:    connect.StatusConfirmed, // the ledger moved; covered() decides which closed transfers cover it
		review: &review{
			key:    "ledger:" + mv.MovementID,
			signal: workflows.SignalLedger,
			arg:    lm,
			input:  workflows.ReviewInput{Reason: workflows.ReviewUnmatchedLedger, Kind: kind, ConnectTransferID: ref},
		},
	}, true
}

// LedgerMovementOf is the workflows.LedgerMovement of one movement: Asset is the event's asset trimmed and upper
// case ("btc " -> "BTC"), Change the movement's change in decimal.Normalize's canonical spelling, sign kept
// ("10.00" -> "10", "-0.50" -> "-0.5"), so the transfer can compare them with its own asset and amount as strings.
// A change that is not a decimal (ParseBalanceEvent refuses those) is passed on as it came.
func LedgerMovementOf(asset string, mv zerohash.Movement) workflows.LedgerMovement {
	return workflows.LedgerMovement{MovementID: mv.MovementID, MovementType: mv.MovementType,
		Asset: strings.ToUpper(strings.TrimSpace(asset)), Change: normalizeChange(mv.Change), At: mv.Time()}
}

// normalizeChange canonicalises decimal text, tolerating the leading zeros a JSON number may not have ("007.50").
func normalizeChange(s string) string {
	sign, digits := "", strings.TrimSpace(s)
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	if len(digits) > 1 && digits[0] == '0' && digits[1] != '.' {
		digits = strings.TrimLeft(digits, "0")
		if digits == "" || digits[0] == '.' {
			digits = "0" + digits
		}
	}
	n, err := decimal.Normalize(sign + digits)
	if err != nil {
		return s
	}
	return n
}

// recentEventIDs is how many Connect event ids the bridge remembers: hours of traffic at realistic rates.
const recentEventIDs = 1 << 14

// recentSet is a bounded set of strings that forgets the oldest first; safe for concurrent use.
type recentSet struct {
	mu    sync.Mutex
	items map[string]struct{}
	ring  []string
	next  int
}

func newRecentSet(size int) *recentSet {
	return &recentSet{items: make(map[string]struct{}, size), ring: make([]string, size)}
}

func (s *recentSet) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.items[k]
	return ok
}

func (s *recentSet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[k]; ok {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.items, old)
	}
	s.ring[s.next] = k
	s.items[k] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}
