package connect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/connectflow/connectflow/internal/decimal"
)

// MaxEventSize is the largest webhook body ParseEvent accepts; the bridge limits first, the parser does not trust it.
const MaxEventSize = 1 << 20

const (
	// eventNamespace is the first segment of every Connect transfer event name.
	eventNamespace = "connect"
	// maxAliasLen is the longest segment in eventAliases, so lookups lower-case into a stack buffer.
	maxAliasLen = 16
)

// eventAlias is what one segment of an event name means: a noun row sets kind, a status row sets status.
type eventAlias struct {
	kind          Kind
	status        Status
	depositOnly   bool   // the status exists only for deposits
	impliedReason string // FailureReason when the payload gives none
}

// eventAliases is the one alias table: every accepted spelling of a name's noun and status segment,
// as in "connect.<noun>.<status>", matched case-insensitively (keys are lower case).
var eventAliases = map[string]eventAlias{
	"deposit":     {kind: KindDeposit},
	"deposits":    {kind: KindDeposit},
	"withdrawal":  {kind: KindWithdrawal},
	"withdrawals": {kind: KindWithdrawal},

	"initiated":   {status: StatusInitiated},
	"pending":     {status: StatusInitiated},
	"submitted":   {status: StatusInitiated},
	"broadcasted": {status: StatusBroadcasted},
	"detected":    {status: StatusBroadcasted},
	"confirmed":   {status: StatusConfirmed},
	"failed":      {status: StatusFailed},
	"abandoned":   {status: StatusFailed, impliedReason: "abandoned"},
	"unexpected":  {status: StatusUnexpected, depositOnly: true},
}

// wireReasons are the places a failure reason has been seen, in the order ParseEvent prefers them.
type wireReasons struct {
	FailureReason json.RawMessage `json:"failure_reason"`
	StatusReason  json.RawMessage `json:"status_reason"`
	Reason        json.RawMessage `json:"reason"`
	Error         json.RawMessage `json:"error"`
}

// wireEvent is the top level of both guide shapes; fields with several accepted types stay raw.
type wireEvent struct {
	Event      json.RawMessage `json:"event"`
	Deposit    *wireTransfer   `json:"deposit"`
	Withdrawal *wireTransfer   `json:"withdrawal"`
	Account    *wireAccount    `json:"account"`
	Session    *wireSession    `json:"session"`
	Fees       *wireFees       `json:"fees"`
	CreatedAt  json.RawMessage `json:"created_at"`
	UpdatedAt  json.RawMessage `json:"updated_at"`
	EventID    json.RawMessage `json:"event_id"`
	ID         json.RawMessage `json:"id"`
	wireReasons
}

// wireTransfer is the deposit or withdrawal object.
type wireTransfer struct {
	ID          string           `json:"id"`
	Asset       string           `json:"asset"`
	Network     string           `json:"network"`
	Amount      json.RawMessage  `json:"amount"`
	Source      string           `json:"source"`
	CreatedAt   json.RawMessage  `json:"created_at"`
	UpdatedAt   json.RawMessage  `json:"updated_at"`
	Transaction *wireTransaction `json:"transaction"`
	Fees        *wireFees        `json:"fees"`
	wireReasons
}

// wireTransaction keeps only the hash: block_number, gas and the rest vary in type and are not mapped.
type wireTransaction struct {
	Hash string `json:"hash"`
}

type wireAccount struct {
	ReferenceID string `json:"reference_id"`
}

type wireSession struct {
	ID       string                     `json:"id"`
	Metadata map[string]json.RawMessage `json:"metadata"`
}

type wireFees struct {
	Amount json.RawMessage `json:"amount"`
	Asset  string          `json:"asset"`
	Type   string          `json:"type"`
}

// ParseEvent parses one Connect deposit/withdrawal webhook body (both guide shapes) into a normalized Event.
//
// The transfer is read from "withdrawal" for withdrawal events when present, else from "deposit" (where the guide
// puts withdrawals too), else from the other key. Fees may sit in the transfer or at the top level; the transfer's
// win. FailureReason is the first non-empty of failure_reason, status_reason, reason, error, looked up in the
// transfer before the top level (a non-string value is kept as compact JSON). Timestamps that are absent or not
// RFC 3339 are left zero. Unrecognized event names parse with StatusUnknown rather than failing.
func ParseEvent(body []byte) (Event, error) {
	if len(body) > MaxEventSize {
		return Event{}, fmt.Errorf("connect: event body is %d bytes, over the %d-byte limit", len(body), MaxEventSize)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return Event{}, errors.New("connect: event body is empty")
	}
	var w wireEvent
	err := json.Unmarshal(body, &w)
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return Event{}, fmt.Errorf("connect: event body is not valid JSON (at byte %d): %w", syntaxErr.Offset, err)
	}
	if top := jsonKind(trimmed); top != "object" {
		return Event{}, fmt.Errorf("connect: event body is a JSON %s, want an object", top)
	}
	if err != nil {
		return Event{}, describeDecodeError(err)
	}

	name, err := eventName(w.Event)
	if err != nil {
		return Event{}, err
	}
	kind, alias := lookupEventName(name)
	e := Event{Name: name, Kind: kind, Status: alias.status}

	transfer, transferField := pickTransfer(w, kind)
	var createdAt, updatedAt json.RawMessage
	if transfer != nil {
		e.TransferID = transfer.ID
		e.Asset = transfer.Asset
		e.Network = transfer.Network
		e.Source = transfer.Source
		if e.Amount, err = decimalText(transfer.Amount, transferField+".amount"); err != nil {
			return Event{}, err
		}
		if transfer.Transaction != nil {
			e.TxHash = transfer.Transaction.Hash
		}
		e.FailureReason = transfer.firstReason()
		createdAt, updatedAt = transfer.CreatedAt, transfer.UpdatedAt
	}
	if e.FailureReason == "" {
		e.FailureReason = w.firstReason()
	}
	if e.FailureReason == "" {
		e.FailureReason = alias.impliedReason
	}
	if transfer != nil && transfer.Fees != nil {
		e.Fees, err = parseFees(transfer.Fees, transferField+".fees")
	} else if w.Fees != nil {
		e.Fees, err = parseFees(w.Fees, "fees")
	}
	if err != nil {
		return Event{}, err
	}
	if w.Account != nil {
		e.ReferenceID = w.Account.ReferenceID
	}
	if w.Session != nil {
		e.SessionID = w.Session.ID
		if e.Metadata, err = metadataText(w.Session.Metadata); err != nil {
			return Event{}, err
		}
	}
	e.CreatedAt = firstTime(createdAt, w.CreatedAt)
	e.UpdatedAt = firstTime(updatedAt, w.UpdatedAt)
	e.EventID, e.eventIDFromID = eventID(w)
	var bodyID string
	switch {
	case e.TransferID != "" || e.SessionID != "":
	case e.EventID != "":
		bodyID = eventKeyID(e.EventID) // the event id identifies an event that names no transfer or session
	default:
		bodyID = hashHex(body) // only the exact bytes identify an event that carries no id
	}
	e.DedupeKey = keyFor(e, bodyID)
	return e, nil
}

// maxEventIDLen bounds an event id kept as it is; a longer one is kept as its hash.
const maxEventIDLen = 128

// eventID reads the payload's event id: top-level "event_id", else top-level "id", and reports whether it came from
// "id" (the guide puts the transfer's id inside "deposit"/"withdrawal", but the published page does not say which
// top-level field holds the event id, so an "id" may be the transfer's: Event.IdempotencyKey qualifies it). A number
// is kept as its JSON text; anything else is ignored.
func eventID(w wireEvent) (string, bool) {
	for i, raw := range [...]json.RawMessage{w.EventID, w.ID} {
		if len(raw) == 0 || (raw[0] != '"' && (raw[0] < '0' || raw[0] > '9')) {
			continue
		}
		id := strings.TrimSpace(looseText(raw))
		if len(id) > maxEventIDLen {
			id = "sha256:" + hashHex([]byte(id))
		}
		if id != "" {
			return id, i == 1
		}
	}
	return "", false
}

// eventKeyID is an event id as it goes into a dedupe key: as it is when it holds only id characters, else hashed.
func eventKeyID(id string) string {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "event-" + hashHex([]byte(id))[:32]
		}
	}
	return "event-" + id
}

// NormalizeEventName maps a raw event name through the alias table to kind and status.
// Kind is empty when the noun is not recognizable; Status is StatusUnknown for any unrecognized name.
func NormalizeEventName(name string) (Kind, Status) {
	kind, alias := lookupEventName(name)
	return kind, alias.status
}

// DedupeKey returns the key every redelivery of e shares: "<kind>:<transfer id>:<status>", with the session id
// standing in for a missing transfer id. An unknown status is spelled "unknown:<lower-case name>" so two different
// unrecognized events for one transfer never collapse. With neither id the event id (EventID) stands in, and
// without one only the body identifies the event: it returns the key ParseEvent stored in e.DedupeKey, or for a
// hand-built Event one from its event id, else a hash of its content.
func DedupeKey(e Event) string {
	if e.TransferID != "" || e.SessionID != "" {
		return keyFor(e, "")
	}
	if e.DedupeKey != "" {
		return e.DedupeKey
	}
	if e.EventID != "" {
		return keyFor(e, eventKeyID(e.EventID))
	}
	encoded, err := json.Marshal(e)
	if err != nil {
		// Only a time past year 9999 fails to marshal; %#v is still the same text for the same value.
		encoded = fmt.Appendf(nil, "%#v", e)
	}
	return keyFor(e, hashHex(encoded))
}

// keyFor builds the dedupe key from the transfer id, else the session id, else fallbackID.
func keyFor(e Event, fallbackID string) string {
	id := e.TransferID
	if id == "" {
		id = e.SessionID
	}
	if id == "" {
		id = fallbackID
	}
	status := string(e.Status)
	if e.Status == StatusUnknown {
		status += ":" + strings.ToLower(e.Name)
	}
	return string(e.Kind) + ":" + id + ":" + status
}

// lookupEventName splits "connect.<noun>.<status>" and looks both segments up in eventAliases.
// The returned alias always has a status: StatusUnknown when the name does not map.
func lookupEventName(name string) (Kind, eventAlias) {
	unknown := eventAlias{status: StatusUnknown}
	namespace, rest, ok := strings.Cut(name, ".")
	if !ok || !strings.EqualFold(namespace, eventNamespace) {
		return "", unknown
	}
	noun, status, hasStatus := strings.Cut(rest, ".")
	nounAlias, ok := lookupAlias(noun)
	if !ok || nounAlias.kind == "" {
		return "", unknown
	}
	kind := nounAlias.kind
	if !hasStatus {
		return kind, unknown
	}
	statusAlias, ok := lookupAlias(status)
	if !ok || statusAlias.status == "" || (statusAlias.depositOnly && kind != KindDeposit) {
		return kind, unknown
	}
	return kind, statusAlias
}

// lookupAlias finds segment in eventAliases case-insensitively without allocating.
func lookupAlias(segment string) (eventAlias, bool) {
	var buf [maxAliasLen]byte
	if len(segment) > len(buf) {
		return eventAlias{}, false
	}
	for i := 0; i < len(segment); i++ {
		c := segment[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	a, ok := eventAliases[string(buf[:len(segment)])]
	return a, ok
}

// eventName reads the "event" member, which must be a non-empty string.
func eventName(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New(`connect: event body has no "event" name`)
	}
	if raw[0] != '"' {
		return "", fmt.Errorf(`connect: event field "event": want string, got %s`, jsonKind(raw))
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", fmt.Errorf(`connect: event field "event": %w`, err)
	}
	if name == "" {
		return "", errors.New(`connect: event field "event" is empty`)
	}
	return name, nil
}

// pickTransfer chooses the transfer object and names its key: "withdrawal" first for withdrawal events,
// otherwise "deposit" first.
func pickTransfer(w wireEvent, kind Kind) (*wireTransfer, string) {
	if kind == KindWithdrawal && w.Withdrawal != nil {
		return w.Withdrawal, "withdrawal"
	}
	if w.Deposit != nil {
		return w.Deposit, "deposit"
	}
	if w.Withdrawal != nil {
		return w.Withdrawal, "withdrawal"
	}
	return nil, ""
}

// firstReason returns the first non-empty failure reason in preference order.
func (r wireReasons) firstReason() string {
	for _, raw := range [...]json.RawMessage{r.FailureReason, r.StatusReason, r.Reason, r.Error} {
		if s := looseText(raw); s != "" {
			return s
		}
	}
	return ""
}

// parseFees converts a fees object found at field.
func parseFees(wf *wireFees, field string) (*Fees, error) {
	amount, err := decimalText(wf.Amount, field+".amount")
	if err != nil {
		return nil, err
	}
	return &Fees{Amount: amount, Asset: wf.Asset, Type: wf.Type}, nil
}

// metadataText keeps string values as they are and every other value as its compact JSON text.
func metadataText(raw map[string]json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if len(v) > 0 && v[0] == '"' {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("connect: event field %q: %w", "session.metadata."+k, err)
			}
			out[k] = s
			continue
		}
		out[k] = compactJSON(v)
	}
	return out, nil
}

// firstTime returns the first of the raw values that is an RFC 3339 string; none gives the zero time.
func firstTime(raws ...json.RawMessage) time.Time {
	for _, raw := range raws {
		if t, ok := rfc3339(raw); ok {
			return t
		}
	}
	return time.Time{}
}

// rfc3339 parses a JSON string holding an RFC 3339 time with optional fractional seconds.
func rfc3339(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return time.Time{}, false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// decimalText returns a JSON number or numeric string as plain decimal text, exactly (never through float64).
func decimalText(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	text := string(raw)
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", fmt.Errorf("connect: event field %q: %w", field, err)
		}
		if text == "" {
			return "", nil
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return "", fmt.Errorf("connect: event field %q: want number or decimal string, got %s", field, jsonKind(raw))
	}
	plain, err := decimal.Plain(text)
	if err != nil {
		return "", fmt.Errorf("connect: event field %q: %q %w", field, shorten(text), err)
	}
	return plain, nil
}

// looseText returns a JSON string's value, "" for absent or null, and compact JSON text for anything else.
func looseText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return compactJSON(raw)
}

// compactJSON strips insignificant whitespace from raw, which the decoder has already validated.
func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// describeDecodeError names the field whose JSON type is wrong.
func describeDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		got, _, _ := strings.Cut(typeErr.Value, " ") // "number 12" -> "number"; the value itself is not echoed
		if got == "bool" {
			got = "boolean" // the same word jsonKind uses
		}
		return fmt.Errorf("connect: event field %q: want %s, got %s", typeErr.Field, goKindName(typeErr.Type), got)
	}
	return fmt.Errorf("connect: decode event: %w", err)
}

// goKindName names a decode target type in JSON terms.
func goKindName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	default:
		return "number"
	}
}

// jsonKind names the JSON type of a valid value by its first byte.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// hashHex is the hex SHA-256 of b.
func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
