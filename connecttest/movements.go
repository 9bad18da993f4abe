package connecttest

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

// The sandbox's Zero Hash ledger: every movement it announced in a balance webhook (delivered or not) and every
// movement whose webhook it was told to drop, served by GET /movements as Zero Hash publishes it.
const (
	// DefaultMovementsPageSize is the page_size GET /movements uses when the request names none.
	DefaultMovementsPageSize = 50
	// MovementsRetention is how far back GET /movements reaches, as Zero Hash's two months.
	MovementsRetention = 60 * 24 * time.Hour
)

// ledger holds the movements in the order they were announced, and the balance-webhook drop switch.
type ledger struct {
	mu        sync.Mutex
	movements []zerohash.Movement
	// dropUntil: balance webhooks emitted before it are recorded but not sent; dropAlways drops until resumed.
	dropUntil  time.Time
	dropAlways bool
}

func (l *ledger) add(ms []zerohash.Movement) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.movements = append(l.movements, ms...)
}

func (l *ledger) dropping(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropAlways || now.Before(l.dropUntil)
}

// DropBalanceWebhooks makes the sandbox drop every balance webhook for d (until ResumeBalanceWebhooks when d <= 0),
// as Zero Hash drops one it gave up on: EmitBalance records the movements in the ledger GET /movements serves, and
// sends nothing.
func (s *Server) DropBalanceWebhooks(d time.Duration) {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	if d <= 0 {
		s.ledger.dropAlways, s.ledger.dropUntil = true, time.Time{}
		return
	}
	s.ledger.dropAlways, s.ledger.dropUntil = false, s.now().Add(d)
}

// ResumeBalanceWebhooks ends DropBalanceWebhooks.
func (s *Server) ResumeBalanceWebhooks() {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	s.ledger.dropAlways, s.ledger.dropUntil = false, time.Time{}
}

// Movements returns the sandbox's ledger, oldest first.
func (s *Server) Movements() []zerohash.Movement {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	return slices.Clone(s.ledger.movements)
}

// wireMovement is one movement of a GET /movements answer, null where the published example has null.
type wireMovement struct {
	MovementID          string  `json:"movement_id"`
	MovementType        string  `json:"movement_type"`
	MovementTimestamp   int64   `json:"movement_timestamp"`
	Change              string  `json:"change"`
	AccountID           *string `json:"account_id"`
	Asset               *string `json:"asset"`
	RunID               *string `json:"run_id"`
	TradeID             *string `json:"trade_id"`
	DepositReferenceID  *string `json:"deposit_reference_id"`
	WithdrawalRequestID *string `json:"withdrawal_request_id"`
	ParentLinkID        *string `json:"parent_link_id"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// movementsFilter is a parsed GET /movements query.
type movementsFilter struct {
	page, pageSize          int
	movementType, accountID string
	gt, gte, lt, lte        int64 // milliseconds; 0 means unset
}

// parseMovementsQuery reads the published parameters; an error text names the parameter.
func parseMovementsQuery(q url.Values) (movementsFilter, error) {
	f := movementsFilter{page: 1, pageSize: DefaultMovementsPageSize,
		movementType: q.Get(zerohash.ParamMovementType), accountID: q.Get(zerohash.ParamAccountID)}
	for _, p := range []struct {
		name     string
		dst      *int
		min, max int
	}{{zerohash.ParamPage, &f.page, 1, 1 << 30}, {zerohash.ParamPageSize, &f.pageSize, 1, zerohash.MaxMovementsPageSize}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < p.min || n > p.max {
			return f, fmt.Errorf("%s must be an integer from %d to %d", p.name, p.min, p.max)
		}
		*p.dst = n
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{zerohash.ParamTimestampGT, &f.gt}, {zerohash.ParamTimestampGTE, &f.gte},
		{zerohash.ParamTimestampLT, &f.lt}, {zerohash.ParamTimestampLTE, &f.lte}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return f, fmt.Errorf("%s must be a positive Unix time in milliseconds or nanoseconds", p.name)
		}
		if n >= 1_000_000_000_000_000 { // nanoseconds
			n /= 1_000_000
		}
		*p.dst = n
	}
	return f, nil
}

func (f movementsFilter) keep(m zerohash.Movement, oldest int64) bool {
	ts := m.MovementTimestamp
	switch {
	case ts < oldest,
		f.movementType != "" && m.MovementType != f.movementType,
		f.accountID != "" && m.AccountID != f.accountID,
		f.gt != 0 && ts <= f.gt, f.gte != 0 && ts < f.gte,
		f.lt != 0 && ts >= f.lt, f.lte != 0 && ts > f.lte:
		return false
	}
	return true
}

// handleMovements serves GET /movements: X-SCX verified, filtered, newest first, paged.
func (s *Server) handleMovements(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.platformError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	if err := zerohash.VerifyRequest(r, body, s.creds, s.now()); err != nil {
		s.platformError(w, zerohash.VerifyStatus(err), "invalid_signature", err.Error())
		return
	}
	f, err := parseMovementsQuery(r.URL.Query())
	if err != nil {
		s.platformError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	oldest := s.now().Add(-MovementsRetention).UnixMilli()
	all := s.Movements()
	var matched []zerohash.Movement
	for i := len(all) - 1; i >= 0; i-- { // newest announced first among equal timestamps
		if f.keep(all[i], oldest) {
			matched = append(matched, all[i])
		}
	}
	slices.SortStableFunc(matched, func(a, b zerohash.Movement) int { return cmp.Compare(b.MovementTimestamp, a.MovementTimestamp) })
	totalPages := (len(matched) + f.pageSize - 1) / f.pageSize
	from := min((f.page-1)*f.pageSize, len(matched))
	to := min(from+f.pageSize, len(matched))
	out := make([]wireMovement, 0, to-from)
	for _, m := range matched[from:to] {
		out = append(out, wireMovement{MovementID: m.MovementID, MovementType: m.MovementType,
			MovementTimestamp: m.MovementTimestamp, Change: m.Change, AccountID: nullable(m.AccountID),
			Asset: nullable(m.Asset), RunID: nullable(m.RunID), TradeID: nullable(m.TradeID),
			DepositReferenceID: nullable(m.DepositReferenceID), WithdrawalRequestID: nullable(m.WithdrawalRequestID),
			ParentLinkID: nullable(m.ParentLinkID)})
	}
	if id := r.Header.Get(zerohash.HeaderRequestID); id != "" {
		w.Header().Set(zerohash.HeaderRequestID, id)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"message": out, "page": f.page, "total_pages": totalPages})
}

// dropRequest is the body of POST /sandbox/balance-webhooks/drop.
type dropRequest struct {
	Drop  *bool `json:"drop"`
	ForMS int64 `json:"for_ms"`
}

// handleDrop switches dropping balance webhooks: {"drop":true,"for_ms":60000} for a while, {"drop":true} until
// {"drop":false}.
func (s *Server) handleDrop(w http.ResponseWriter, r *http.Request) {
	var req dropRequest
	if _, err := readJSON(w, r, &req); err != nil {
		s.connectError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	switch {
	case req.Drop == nil:
		s.connectError(w, http.StatusBadRequest, "invalid_field", `"drop" (true or false) is required`)
		return
	case req.ForMS < 0:
		s.connectError(w, http.StatusBadRequest, "invalid_field", `"for_ms" must not be negative`)
		return
	case *req.Drop:
		s.DropBalanceWebhooks(time.Duration(req.ForMS) * time.Millisecond)
	default:
		s.ResumeBalanceWebhooks()
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleEmitBalance is POST /sandbox/balances: the body is an account_balance.changed payload (defaults as in
// EmitBalance; "notification_id" sets the header). It answers with the Delivery once delivered, dropped, or out
// of attempts (502 then).
func (s *Server) handleEmitBalance(w http.ResponseWriter, r *http.Request) {
	var ev zerohash.BalanceEvent
	if _, err := readJSON(w, r, &ev); err != nil {
		s.connectError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	d, err := s.EmitBalance(r.Context(), ev)
	var invalid *invalidBalanceError
	switch {
	case errors.As(err, &invalid):
		s.connectError(w, http.StatusBadRequest, "invalid_field", err.Error())
	case err != nil && d.ID == "":
		s.connectError(w, http.StatusConflict, "no_target", err.Error())
	case err != nil:
		s.writeJSON(w, http.StatusBadGateway, d)
	default:
		s.writeJSON(w, http.StatusOK, d)
	}
}

// invalidBalanceError is an EmitBalance payload that is not a valid balance event.
type invalidBalanceError struct{ err error }

func (e *invalidBalanceError) Error() string { return "connecttest: emit balance: " + e.err.Error() }
func (e *invalidBalanceError) Unwrap() error { return e.err }

// fillAccountIDs gives every movement without an account id its account's (participant, asset, account type).
func fillAccountIDs(ev *zerohash.BalanceEvent) {
	for i := range ev.Movements {
		m := &ev.Movements[i]
		if m.AccountID == "" {
			m.AccountID = "sandbox-" + cmp.Or(ev.ParticipantCode, "participant") + "-" + ev.Asset + "-" + ev.AccountType
		}
	}
}

// announce records ev's movements in the ledger, with the event's asset and run id.
func (s *Server) announce(ev zerohash.BalanceEvent) {
	recorded := slices.Clone(ev.Movements)
	for i := range recorded {
		recorded[i].Asset = cmp.Or(recorded[i].Asset, ev.Asset)
		recorded[i].RunID = cmp.Or(recorded[i].RunID, ev.RunID)
	}
	s.ledger.add(recorded)
}

// dropDelivery records a dropped balance webhook in the delivery log: no attempt, not delivered.
func (s *Server) dropDelivery(d *Delivery) Delivery {
	d.Dropped = true
	s.hooks.start(d)
	s.log.Info("balance webhook dropped", "notification_id", d.ID)
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return d.snapshot()
}
