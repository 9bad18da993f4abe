package zerohash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// GET /movements, as Zero Hash publishes it (docs.zerohash.com/reference/movements and the account movements
// reference, read 2026-11-30): itemized ledger movements across every account of the platform, the last two
// months only, paged with page (from 1) and page_size, filtered by movement_type, account_id and
// movement_timestamp[gt|gte|lt|lte] (milliseconds or nanoseconds). The answer is
// {"message":[movement...],"page":1,"total_pages":40}, newest movement first.
const (
	// PathMovements lists ledger movements across all of the platform's accounts.
	PathMovements = "/movements"
	// MaxMovementsPageSize is the largest page_size GET /movements serves.
	MaxMovementsPageSize = 100
	// MaxMovementsAnswerBytes caps one page's answer (100 movements are some 40 KB).
	MaxMovementsAnswerBytes = 1 << 20
	// nanosecondsFrom: a movement_timestamp this large is nanoseconds (as milliseconds it would be past year 30000).
	nanosecondsFrom = 1_000_000_000_000_000
)

// Query parameter names of GET /movements.
const (
	ParamPage         = "page"
	ParamPageSize     = "page_size"
	ParamMovementType = "movement_type"
	ParamAccountID    = "account_id"
	ParamTimestampGT  = "movement_timestamp[gt]"
	ParamTimestampGTE = "movement_timestamp[gte]"
	ParamTimestampLT  = "movement_timestamp[lt]"
	ParamTimestampLTE = "movement_timestamp[lte]"
)

// Movement types a Connect transfer's ledger movement has.
const (
	MovementTypeDeposit    = "deposit"
	MovementTypeWithdrawal = "withdrawal"
)

// MovementsQuery selects one page of GET /movements. Zero fields are left out of the request.
type MovementsQuery struct {
	Page         int    // 1-based; 0 asks for the first page
	PageSize     int    // 1..MaxMovementsPageSize; 0 takes the server's default
	MovementType string // e.g. "deposit", "withdrawal"
	AccountID    string
	// SinceMillis keeps movements with movement_timestamp >= it (movement_timestamp[gte]), Unix milliseconds.
	SinceMillis int64
	// BeforeMillis keeps movements with movement_timestamp < it (movement_timestamp[lt]), Unix milliseconds.
	BeforeMillis int64
}

// Validate reports the first field out of the published range.
func (q MovementsQuery) Validate() error {
	switch {
	case q.Page < 0:
		return fmt.Errorf("zerohash: movements query: page %d is negative", q.Page)
	case q.PageSize < 0 || q.PageSize > MaxMovementsPageSize:
		return fmt.Errorf("zerohash: movements query: page_size %d is outside 1..%d", q.PageSize, MaxMovementsPageSize)
	case q.SinceMillis < 0 || q.BeforeMillis < 0:
		return errors.New("zerohash: movements query: timestamps must not be negative")
	case q.BeforeMillis != 0 && q.BeforeMillis <= q.SinceMillis:
		return errors.New("zerohash: movements query: BeforeMillis must be after SinceMillis")
	}
	return nil
}

// Encode is the query string in a fixed order, with the filter brackets unescaped as Zero Hash writes them
// (movement_timestamp[gte]=...). The signature covers exactly this text.
func (q MovementsQuery) Encode() string {
	var parts []string
	add := func(name, value string) { parts = append(parts, name+"="+url.QueryEscape(value)) }
	if q.Page > 0 {
		add(ParamPage, strconv.Itoa(q.Page))
	}
	if q.PageSize > 0 {
		add(ParamPageSize, strconv.Itoa(q.PageSize))
	}
	if q.MovementType != "" {
		add(ParamMovementType, q.MovementType)
	}
	if q.AccountID != "" {
		add(ParamAccountID, q.AccountID)
	}
	if q.SinceMillis > 0 {
		add(ParamTimestampGTE, strconv.FormatInt(q.SinceMillis, 10))
	}
	if q.BeforeMillis > 0 {
		add(ParamTimestampLT, strconv.FormatInt(q.BeforeMillis, 10))
	}
	return strings.Join(parts, "&")
}

// MovementsPage is one page of GET /movements.
type MovementsPage struct {
	Movements []Movement `json:"message"`
	Page      int        `json:"page"`
	// TotalPages is the server's page count at page_size; 0 when the answer did not say.
	TotalPages int `json:"total_pages"`
}

// More reports whether a page after this one may hold movements: total_pages says so, or (when the server did
// not say) this page was full.
func (p MovementsPage) More(pageSize int) bool {
	if p.TotalPages > 0 {
		return p.Page < p.TotalPages
	}
	return pageSize > 0 && len(p.Movements) >= pageSize
}

// Movements reads one page of GET /movements, signed like every platform request (a GET signs "{}" as its body)
// with a fresh X-REQUEST-ID. Failures are *APIError: RetryInfo says whether to retry and after how long (429: the
// server's Retry-After, else RateLimitBackoff). Reading is idempotent, so every 5xx and every lost answer is
// retryable, unlike for a POST.
func (c *Client) Movements(ctx context.Context, q MovementsQuery) (MovementsPage, error) {
	if err := q.Validate(); err != nil {
		return MovementsPage{}, err
	}
	requestID := uuid.NewString()
	body, err := c.send(ctx, http.MethodGet, PathMovements, q.Encode(), requestID, nil, MaxMovementsAnswerBytes, redactor(""))
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.StatusCode >= 500:
			apiErr.Retryable = true // a GET changes nothing: retrying a 503 without zh-allow-retry is safe too
		case apiErr.StatusCode == http.StatusBadRequest:
			apiErr.Message = strings.Replace(apiErr.Message, msgBadRequest, "GET /movements query rejected", 1)
		case apiErr.StatusCode == http.StatusForbidden:
			apiErr.Message = strings.Replace(apiErr.Message, msgForbidden, "API key, passphrase or signature rejected", 1)
		}
	}
	if err != nil {
		return MovementsPage{}, err
	}
	page, err := ParseMovementsPage(body)
	if err != nil {
		return MovementsPage{}, &APIError{StatusCode: http.StatusOK, Message: "GET /movements answer is not the documented JSON",
			RequestID: requestID, Err: err}
	}
	return page, nil
}

// ParseMovementsPage decodes a GET /movements answer: {"message":[...],"page":N,"total_pages":M}. Each movement
// needs movement_id and change (decimal text, never through float64); movement_timestamp is milliseconds (a
// nanosecond value is converted); ids may be strings or integers; null means absent; unknown keys are ignored.
// page and total_pages may be numbers or digit strings and may be absent. Errors wrap ErrInvalidPayload and name
// the field, e.g. message[3].change.
func ParseMovementsPage(body []byte) (MovementsPage, error) {
	if len(body) > MaxMovementsAnswerBytes {
		return MovementsPage{}, movementsErr("body", fmt.Sprintf("is %d bytes, over the %d-byte limit", len(body), MaxMovementsAnswerBytes))
	}
	obj, err := decodeObject(body)
	if err != nil {
		return MovementsPage{}, movementsErr("body", err.Error())
	}
	var page MovementsPage
	for _, f := range []struct {
		name string
		dst  *int
	}{{"page", &page.Page}, {"total_pages", &page.TotalPages}} {
		if *f.dst, err = readCount(obj[f.name]); err != nil {
			return MovementsPage{}, movementsErr(f.name, err.Error())
		}
	}
	raw := obj["message"]
	if isAbsent(raw) {
		return MovementsPage{}, movementsErr("message", "is required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return MovementsPage{}, movementsErr("message", "must be an array")
	}
	page.Movements = make([]Movement, 0, len(items))
	for i, item := range items {
		m, err := readListedMovement(item)
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return MovementsPage{}, movementsErr(fmt.Sprintf("message[%d]%s", i, fe.field), fe.problem)
			}
			return MovementsPage{}, err
		}
		page.Movements = append(page.Movements, m)
	}
	return page, nil
}

// readListedMovement reads one movement of a GET /movements answer; a fieldError's field is ".name" (or "" for
// the item itself) so the caller can prefix it with the index.
func readListedMovement(item json.RawMessage) (Movement, error) {
	obj, err := decodeObject(item)
	if err != nil {
		return Movement{}, payloadErr("", err.Error())
	}
	var m Movement
	fields := []textField{
		{"movement_id", &m.MovementID, readStringOrInteger, true},
		{"change", &m.Change, readDecimal, true},
		{"movement_type", &m.MovementType, readString, false},
		{"account_id", &m.AccountID, readStringOrInteger, false},
		{"asset", &m.Asset, readString, false},
		{"deposit_reference_id", &m.DepositReferenceID, readStringOrInteger, false},
		{"withdrawal_request_id", &m.WithdrawalRequestID, readStringOrInteger, false},
		{"run_id", &m.RunID, readStringOrInteger, false},
		{"trade_id", &m.TradeID, readStringOrInteger, false},
		{"parent_link_id", &m.ParentLinkID, readStringOrInteger, false},
	}
	for _, f := range fields {
		if *f.dst, err = readField(obj, f.name, f.read, f.required); err != nil {
			return Movement{}, prefixed(".", err)
		}
	}
	if m.MovementTimestamp, err = readTimestamp(obj, "movement_timestamp", ".movement_timestamp", false); err != nil {
		return Movement{}, err
	}
	if m.MovementTimestamp >= nanosecondsFrom {
		m.MovementTimestamp /= 1_000_000
	}
	return m, nil
}

// readCount takes a non-negative integer as a JSON number or a digit string; absent or null is 0.
func readCount(raw json.RawMessage) (int, error) {
	if isAbsent(raw) {
		return 0, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		var err error
		if text, err = readString(raw); err != nil {
			return 0, err
		}
	}
	n, err := parseUnixDigits(text)
	if err != nil || text == "" || n > 1<<31-1 {
		return 0, errors.New("must be a non-negative integer")
	}
	return int(n), nil
}

// movementsErr is a GET /movements answer problem; it wraps ErrInvalidPayload.
func movementsErr(field, problem string) error {
	return fmt.Errorf("zerohash: GET /movements answer: %w: field %q %s", ErrInvalidPayload, field, problem)
}
