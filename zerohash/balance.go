package zerohash

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/connectflow/connectflow/internal/decimal"
)

const (
	// MaxBalanceWebhookBytes is the largest balance webhook body ParseBalanceEvent accepts.
	MaxBalanceWebhookBytes = 1 << 20
	// millisecondsFrom: a Unix timestamp this large is milliseconds (as seconds it would be past the year 5000).
	millisecondsFrom = 100_000_000_000
)

// ErrInvalidPayload (400): a webhook body is not a valid balance event; the error text names the field.
var ErrInvalidPayload = errors.New("invalid payload")

// Movement is one ledger movement inside a balance event.
type Movement struct {
	AccountID           string `json:"account_id,omitempty"`
	Change              string `json:"change"` // decimal text, e.g. "10.00" or "-0.5"
	MovementID          string `json:"movement_id"`
	MovementType        string `json:"movement_type,omitempty"`
	DepositReferenceID  string `json:"deposit_reference_id,omitempty"`
	WithdrawalRequestID string `json:"withdrawal_request_id,omitempty"`
	MovementTimestamp   int64  `json:"movement_timestamp,omitempty"` // Unix milliseconds
	// Fields GET /movements answers with besides the ones above (empty in a balance webhook's movements).
	Asset        string `json:"asset,omitempty"`
	RunID        string `json:"run_id,omitempty"`
	TradeID      string `json:"trade_id,omitempty"`
	ParentLinkID string `json:"parent_link_id,omitempty"`
}

// Time is MovementTimestamp as a time; zero when absent.
func (m Movement) Time() time.Time { return unixAuto(m.MovementTimestamp) }

// BalanceEvent is an account_balance.changed webhook. Its JSON form is the wire form, so it round-trips.
type BalanceEvent struct {
	AccountGroup    string     `json:"account_group,omitempty"`
	AccountLabel    string     `json:"account_label,omitempty"`
	AccountType     string     `json:"account_type"`
	Asset           string     `json:"asset"`
	Balance         string     `json:"balance"` // decimal text
	ParticipantCode string     `json:"participant_code"`
	RunID           string     `json:"run_id,omitempty"`
	RunType         string     `json:"run_type,omitempty"`
	Timestamp       int64      `json:"timestamp"` // raw: Unix seconds or milliseconds; see Time
	Movements       []Movement `json:"movements"`
	// NotificationID is the x-zh-hook-notification-id header (Zero Hash's idempotency key), set by
	// ConstructBalanceEvent. No signature covers it; the bridge logs it and dedupes movements on movement_id.
	NotificationID string `json:"notification_id,omitempty"`
}

// Time is Timestamp as a time, read as milliseconds or seconds by its magnitude (Zero Hash sends both).
// Order events by it, not by arrival.
func (e BalanceEvent) Time() time.Time { return unixAuto(e.Timestamp) }

func unixAuto(ts int64) time.Time {
	switch {
	case ts == 0:
		return time.Time{}
	case ts >= millisecondsFrom:
		return time.UnixMilli(ts).UTC()
	default:
		return time.Unix(ts, 0).UTC()
	}
}

// SignBalanceWebhook returns hex(HMAC-SHA256(secret, body)), the x-zh-hook-signature-256 value.
func SignBalanceWebhook(secret string, body []byte) string {
	return hex.EncodeToString(balanceMAC(secret, body))
}

func balanceMAC(secret string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return h.Sum(nil)
}

// VerifyBalanceWebhook checks a webhook signed with the HMAC secret only: WebhookVerifier{Secret: secret}.Verify.
// The legacy x-zh-hook-signature-256 alone passes (its signature covers neither x-zh-hook-timestamp nor
// x-zh-hook-notification-id, so a legacy webhook can be redelivered or replayed at any age); a timed
// x-zh-hook-signature, when present, must be valid and fresh. What makes a redelivery or replay harmless is not the
// notification id (the bridge only logs it): each movement is deduplicated on its movement_id, by the transfer
// workflow and by a review ("ledger:" + movement_id).
// Errors wrap ErrMissingHeader, ErrMalformedHeader, ErrStaleTimestamp or ErrSignatureMismatch; VerifyStatus maps them.
func VerifyBalanceWebhook(secret string, h http.Header, body []byte) error {
	if secret == "" {
		return errors.New("zerohash: VerifyBalanceWebhook: webhook secret is empty")
	}
	return WebhookVerifier{Secret: secret}.Verify(h, body)
}

// ConstructBalanceEvent is WebhookVerifier{Secret: secret}.Construct: verify, check the payload type, parse.
func ConstructBalanceEvent(secret string, h http.Header, body []byte) (BalanceEvent, error) {
	if secret == "" {
		return BalanceEvent{}, errors.New("zerohash: ConstructBalanceEvent: webhook secret is empty")
	}
	return WebhookVerifier{Secret: secret}.Construct(h, body)
}

// ParseBalanceEvent decodes an account_balance.changed body. Amounts stay decimal text (a JSON number is taken by
// its literal, never through float64); run_id and the timestamps may be strings or numbers. Required: account_type,
// asset, balance, participant_code, timestamp, and each movement's movement_id and change. Unknown keys are ignored.
// Errors wrap ErrInvalidPayload and name the field.
func ParseBalanceEvent(body []byte) (BalanceEvent, error) {
	if len(body) > MaxBalanceWebhookBytes {
		return BalanceEvent{}, payloadErr("body", fmt.Sprintf("is %d bytes, over the %d-byte limit", len(body), MaxBalanceWebhookBytes))
	}
	obj, err := decodeObject(body)
	if err != nil {
		return BalanceEvent{}, payloadErr("body", err.Error())
	}
	var ev BalanceEvent
	fields := []textField{
		{"account_group", &ev.AccountGroup, readString, false},
		{"account_label", &ev.AccountLabel, readString, false},
		{"account_type", &ev.AccountType, readString, true},
		{"asset", &ev.Asset, readString, true},
		{"balance", &ev.Balance, readDecimal, true},
		{"participant_code", &ev.ParticipantCode, readString, true},
		{"run_id", &ev.RunID, readStringOrInteger, false},
		{"run_type", &ev.RunType, readString, false},
	}
	for _, f := range fields {
		if *f.dst, err = readField(obj, f.name, f.read, f.required); err != nil {
			return BalanceEvent{}, err
		}
	}
	if ev.Timestamp, err = readTimestamp(obj, "timestamp", "timestamp", true); err != nil {
		return BalanceEvent{}, err
	}
	if ev.Movements, err = readMovements(obj["movements"]); err != nil {
		return BalanceEvent{}, err
	}
	return ev, nil
}

func readMovements(raw json.RawMessage) ([]Movement, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, payloadErr("movements", "must be an array")
	}
	movements := make([]Movement, 0, len(items))
	for i, item := range items {
		prefix := fmt.Sprintf("movements[%d].", i)
		obj, err := decodeObject(item)
		if err != nil {
			return nil, payloadErr(prefix[:len(prefix)-1], err.Error())
		}
		var m Movement
		fields := []textField{
			{"account_id", &m.AccountID, readString, false},
			{"change", &m.Change, readDecimal, true},
			{"movement_id", &m.MovementID, readString, true},
			{"movement_type", &m.MovementType, readString, false},
			{"deposit_reference_id", &m.DepositReferenceID, readString, false},
			{"withdrawal_request_id", &m.WithdrawalRequestID, readString, false},
		}
		for _, f := range fields {
			if *f.dst, err = readField(obj, f.name, f.read, f.required); err != nil {
				return nil, prefixed(prefix, err)
			}
		}
		if m.MovementTimestamp, err = readTimestamp(obj, "movement_timestamp", prefix+"movement_timestamp", false); err != nil {
			return nil, err
		}
		movements = append(movements, m)
	}
	return movements, nil
}

// textField is one string-valued key of a payload object and how to read it.
type textField struct {
	name     string
	dst      *string
	read     func(json.RawMessage) (string, error)
	required bool
}

// fieldError lets a movement's field error be re-labelled with its index.
type fieldError struct{ field, problem string }

func (e *fieldError) Error() string {
	return fmt.Sprintf("zerohash: balance webhook: %s: field %q %s", ErrInvalidPayload, e.field, e.problem)
}
func (e *fieldError) Unwrap() error { return ErrInvalidPayload }

func payloadErr(field, problem string) error { return &fieldError{field: field, problem: problem} }

func prefixed(prefix string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return payloadErr(prefix+fe.field, fe.problem)
	}
	return err
}

func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("is not a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %v", err)
	}
	return obj, nil
}

func isAbsent(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

func readField(obj map[string]json.RawMessage, name string, read func(json.RawMessage) (string, error), required bool) (string, error) {
	raw := obj[name]
	if isAbsent(raw) {
		if required {
			return "", payloadErr(name, "is required")
		}
		return "", nil
	}
	v, err := read(raw)
	if err != nil {
		return "", payloadErr(name, err.Error())
	}
	if required && v == "" {
		return "", payloadErr(name, "is required and must not be empty")
	}
	return v, nil
}

func readString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New("must be a string")
	}
	return s, nil
}

// readStringOrInteger takes run_id as documented (a string) or as an integer a producer might send.
func readStringOrInteger(raw json.RawMessage) (string, error) {
	if raw[0] == '"' {
		return readString(raw)
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		return "", errors.New("must be a string or an integer")
	}
	return string(raw), nil
}

// readTimestamp takes a non-negative integer, as a JSON number or a string of digits.
func readTimestamp(obj map[string]json.RawMessage, key, label string, required bool) (int64, error) {
	raw := obj[key]
	if isAbsent(raw) {
		if required {
			return 0, payloadErr(label, "is required")
		}
		return 0, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		var err error
		if text, err = readString(raw); err != nil {
			return 0, payloadErr(label, err.Error())
		}
	}
	ts, err := parseUnixDigits(text)
	if err != nil || text == "" {
		return 0, payloadErr(label, "must be a non-negative integer Unix time")
	}
	if required && ts == 0 {
		return 0, payloadErr(label, "must not be zero")
	}
	return ts, nil
}

var (
	decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

// readDecimal takes a decimal string ("10.00") or a JSON number, returned as plain decimal text.
func readDecimal(raw json.RawMessage) (string, error) {
	if raw[0] == '"' {
		s, err := readString(raw)
		if err != nil {
			return "", err
		}
		if !decimalText.MatchString(s) {
			return "", errors.New("must be a decimal such as \"10.00\"")
		}
		return s, nil
	}
	return expandNumber(string(raw))
}

// expandNumber rewrites a JSON number literal without its exponent, digit for digit, so 1.5e-3 becomes 0.0015.
func expandNumber(lit string) (string, error) {
	plain, err := decimal.Plain(lit)
	if errors.Is(err, decimal.ErrNotDecimal) {
		return "", errors.New("must be a decimal string or a JSON number")
	}
	return plain, err
}
