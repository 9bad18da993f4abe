package connecttest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connectflow/connectflow/connect"
)

// guideTime is the guide's timestamp form: RFC 3339 with all nine fractional digits.
const guideTime = "2006-01-02T15:04:05.000000000Z07:00"

// headerConnectClientID is required on a session request and must be the organization id (the OpenAPI: it "must
// match the organization ID in the JWT").
const headerConnectClientID = "x-connect-client-id"

// ErrSessionInvalidated is returned by Play for a session a newer session of the same reference_id invalidated:
// Connect keeps one active session per account, and the SDK holding the older JWT shows an error, so nothing of
// the older session's transfer happens.
var ErrSessionInvalidated = errors.New("connecttest: session was invalidated by a newer session for the same reference_id")

// SessionInfo is what the sandbox knows about one session it opened.
type SessionInfo struct {
	ID          string          `json:"id"`
	Kind        connect.Kind    `json:"kind"`
	Scope       connect.Scope   `json:"scope"`
	RequestID   string          `json:"request_id,omitempty"`
	ReferenceID string          `json:"reference_id"`
	AccountID   string          `json:"account_id"`
	TransferID  string          `json:"transfer_id"` // the deposit or withdrawal id its webhooks carry
	Metadata    json.RawMessage `json:"metadata"`    // exactly as the organization sent it; {} when absent
	Asset       string          `json:"asset"`
	Network     string          `json:"network"`
	Amount      string          `json:"amount"`
	CreatedAt   time.Time       `json:"created_at"`
	ExpiresAt   time.Time       `json:"expires_at"`
	// Finished is set once a final webhook (confirmed, failed, unexpected) was emitted.
	Finished bool `json:"finished"`
	// InvalidatedAt is when a newer session for the same reference_id (ReplacedBy) invalidated this one while it
	// was active; such a session is never played.
	InvalidatedAt time.Time `json:"invalidated_at,omitzero"`
	ReplacedBy    string    `json:"replaced_by,omitempty"`
}

// Invalidated reports whether a newer session for the same reference_id invalidated this one.
func (i SessionInfo) Invalidated() bool { return i.ReplacedBy != "" }

// session is a SessionInfo plus what idempotent retries replay.
type session struct {
	SessionInfo
	fingerprint []byte // canonical request body
	answer      []byte // the 200 body served
	replaced    string // the session this one invalidated, if any
}

func (ss *session) active(now time.Time) bool {
	return !ss.Finished && !ss.Invalidated() && now.Before(ss.ExpiresAt)
}

// state is everything the API endpoints remember, behind one lock.
type state struct {
	mu  sync.Mutex
	now func() time.Time

	tokens       map[[32]byte]time.Time // access token hash -> expiry
	tokensIssued int64
	sessions     []*session          // in creation order
	byID         map[string]*session // session id -> session
	byRequestID  map[string]*session
	byReference  map[string]*session // reference id -> its latest session
	accounts     map[string]string   // reference id -> Connect account id, stable across sessions
	createdByRef map[string]int64
	invalidated  int64
	onboarding   map[string]onboardingAnswer // X-REQUEST-ID -> first answer
	hookURLs     webhookURLs
}

func (st *state) init(o Options) {
	st.now = o.Now
	st.tokens = make(map[[32]byte]time.Time)
	st.byID = make(map[string]*session)
	st.byRequestID = make(map[string]*session)
	st.byReference = make(map[string]*session)
	st.accounts = make(map[string]string)
	st.createdByRef = make(map[string]int64)
	st.onboarding = make(map[string]onboardingAnswer)
	st.hookURLs = o.webhookURLs()
}

// sessionRequest is the POST /sessions body.
type sessionRequest struct {
	RequestID string `json:"request_id"`
	Account   *struct {
		ReferenceID string `json:"reference_id"`
	} `json:"account"`
	Session *struct {
		Metadata          json.RawMessage    `json:"metadata"`
		WithdrawalDetails *withdrawalDetails `json:"withdrawal_details"`
	} `json:"session"`
	Scopes []connect.Scope `json:"scopes"`
}

// withdrawalDetails is session.withdrawal_details.
type withdrawalDetails struct {
	Asset        string          `json:"asset"`
	Network      string          `json:"network"`
	Amount       json.RawMessage `json:"amount"` // a JSON string in the OpenAPI; a number is refused by name
	AccountLabel string          `json:"account_label"`
}

// sessionError is a rejected session request: its status, code and message.
type sessionError struct {
	status  int
	code    string
	message string
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	answer, err := s.openSession(w, r)
	if err != nil {
		s.sessionsError(w, err.status, err.code, err.message)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	s.write(w, answer)
}

func (s *Server) openSession(w http.ResponseWriter, r *http.Request) ([]byte, *sessionError) {
	if code, msg := s.checkBearer(r); code != "" {
		return nil, &sessionError{http.StatusUnauthorized, code, msg}
	}
	switch id := r.Header.Get(headerConnectClientID); {
	case id == "":
		return nil, &sessionError{http.StatusBadRequest, "missing_client_id", headerConnectClientID + " header is required: the organization id"}
	case id != s.opts.OrganizationID:
		return nil, &sessionError{http.StatusUnauthorized, "client_mismatch", headerConnectClientID + " does not match the organization of the access token"}
	}
	var req sessionRequest
	body, err := readJSON(w, r, &req)
	if err != nil {
		return nil, &sessionError{http.StatusBadRequest, "invalid_body", err.Error()}
	}
	if err := s.checkOrgSignature(r, body); err != nil {
		return nil, err
	}
	kind, serr := s.checkSessionRequest(&req)
	if serr != nil {
		return nil, serr
	}
	fingerprint, err := canonicalJSON(body)
	if err != nil {
		return nil, &sessionError{http.StatusBadRequest, "invalid_body", err.Error()}
	}
	ss, created, serr := s.createSession(req, kind, fingerprint)
	if serr != nil {
		return nil, serr
	}
	if created {
		s.log.Info("session opened", "session_id", ss.ID, "kind", ss.Kind)
		if old := ss.replaced; old != "" {
			s.log.Info("older session invalidated", "session_id", old, "replaced_by", ss.ID)
		}
		if s.opts.AutoPlay != nil {
			s.startPlay(ss.ID, *s.opts.AutoPlay, s.opts.AutoPlayAfter)
		}
	}
	return ss.answer, nil
}

// checkOrgSignature verifies the organization's signature over ts + POST + the URL it addressed + body, when an
// organization key is configured.
func (s *Server) checkOrgSignature(r *http.Request, body []byte) *sessionError {
	if s.opts.OrgPublicKey == nil {
		return nil
	}
	ts, sig := r.Header.Get(connect.HeaderTimestamp), r.Header.Get(connect.HeaderSignature)
	if ts == "" || sig == "" {
		return &sessionError{http.StatusForbidden, "missing_signature", "the timestamp and signature headers are required"}
	}
	keys := []connect.PublicKey{{KID: "organization", Key: s.opts.OrgPublicKey}}
	opts := connect.VerifyOptions{Tolerance: s.opts.SignatureTolerance, Now: s.opts.Now}
	if err := connect.Verify(keys, http.MethodPost, s.URL+r.URL.RequestURI(), ts, sig, body, opts); err != nil {
		return &sessionError{http.StatusForbidden, "invalid_signature", "request signature rejected: " + err.Error()}
	}
	return nil
}

var decimalAmount = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// validAmount accepts a positive plain decimal such as "0.013".
func validAmount(a string) bool {
	return decimalAmount.MatchString(a) && bytes.ContainsAny([]byte(a), "123456789")
}

// knownScope reports whether a scope is in the published enum or is the guide's user:withdrawal:send.
func knownScope(sc connect.Scope) bool {
	switch sc {
	case connect.ScopeDepositSend, connect.ScopeWithdrawalRequest, connect.ScopeWithdrawalSend, connect.ScopeRecoverySend:
		return true
	}
	return false
}

// checkSessionRequest checks the body field by field, then the scope against the organization's, and returns the
// transfer kind the scope opens.
func (s *Server) checkSessionRequest(req *sessionRequest) (connect.Kind, *sessionError) {
	if len(req.Scopes) == 1 && !knownScope(req.Scopes[0]) {
		return "", &sessionError{http.StatusForbidden, "invalid_scope", fmt.Sprintf("scope %q is not one of %s, %s, %s",
			req.Scopes[0], connect.ScopeDepositSend, connect.ScopeRecoverySend, connect.ScopeWithdrawalRequest)}
	}
	kind, err := req.validate()
	if err != nil {
		return "", &sessionError{http.StatusBadRequest, "invalid_field", err.Error()}
	}
	if scope := req.Scopes[0]; !slices.Contains(s.opts.AllowedScopes, scope) {
		return "", &sessionError{http.StatusForbidden, "scope_not_allowed", fmt.Sprintf("scope %s is not enabled for this organization", scope)}
	}
	return kind, nil
}

// validate checks the body field by field and returns the transfer kind its scope asks for.
func (req *sessionRequest) validate() (connect.Kind, error) {
	if req.RequestID != "" {
		if _, err := uuid.Parse(req.RequestID); err != nil || len(req.RequestID) != 36 {
			return "", errors.New("request_id must be a UUID (e.g. 3f1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b) when sent")
		}
	}
	if req.Account == nil || req.Account.ReferenceID == "" {
		return "", errors.New("account.reference_id is required")
	}
	if len(req.Scopes) != 1 {
		return "", fmt.Errorf("scopes must hold exactly one scope, got %d", len(req.Scopes))
	}
	kind, ok := connect.KindOfScope(req.Scopes[0])
	if !ok {
		return "", fmt.Errorf("scopes[0] %q opens no deposit or withdrawal: the sandbox plays %s, %s and %s",
			req.Scopes[0], connect.ScopeDepositSend, connect.ScopeWithdrawalRequest, connect.ScopeWithdrawalSend)
	}
	if req.Scopes[0] == connect.ScopeWithdrawalRequest && (req.Session == nil || req.Session.WithdrawalDetails == nil) {
		return "", fmt.Errorf("session.withdrawal_details is required with scope %s", connect.ScopeWithdrawalRequest)
	}
	if req.Session == nil {
		return kind, nil
	}
	if m := bytes.TrimSpace(req.Session.Metadata); len(m) > 0 && m[0] != '{' && !bytes.Equal(m, []byte("null")) {
		return "", errors.New("session.metadata must be a JSON object")
	}
	if wd := req.Session.WithdrawalDetails; kind == connect.KindWithdrawal && wd != nil {
		if err := wd.check(req.Scopes[0] == connect.ScopeWithdrawalRequest); err != nil {
			return "", err
		}
	}
	return kind, nil
}

// check validates withdrawal_details; with user:withdrawal:request, asset, network and amount are required.
func (wd *withdrawalDetails) check(required bool) error {
	var missing []string
	for _, f := range []struct {
		name  string
		empty bool
	}{{"asset", wd.Asset == ""}, {"network", wd.Network == ""}, {"amount", len(wd.Amount) == 0 || string(wd.Amount) == "null"}} {
		if f.empty && required {
			missing = append(missing, "session.withdrawal_details."+f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s required with scope %s", strings.Join(missing, ", "), connect.ScopeWithdrawalRequest)
	}
	if len(wd.Amount) == 0 || string(wd.Amount) == "null" {
		return nil
	}
	amount, err := wd.amount()
	if err != nil {
		return err
	}
	if !validAmount(amount) {
		return fmt.Errorf("session.withdrawal_details.amount %q is not a positive decimal", amount)
	}
	return nil
}

// amount is withdrawal_details.amount as text; the OpenAPI types it as a string, so a JSON number is refused.
func (wd *withdrawalDetails) amount() (string, error) {
	if len(wd.Amount) == 0 || string(wd.Amount) == "null" {
		return "", nil
	}
	var a string
	if err := json.Unmarshal(wd.Amount, &a); err != nil {
		return "", fmt.Errorf("session.withdrawal_details.amount must be a JSON string such as \"0.013\", not %s", shortJSON(wd.Amount))
	}
	return a, nil
}

// shortJSON caps a JSON value quoted in an error message.
func shortJSON(raw json.RawMessage) string {
	if len(raw) > 24 {
		return string(raw[:24]) + "..."
	}
	return string(raw)
}

// createSession opens a session, or replays the one an earlier request with the same request_id opened. The JWT
// is signed outside the lock, so the admission checks run again before the session is stored.
func (s *Server) createSession(req sessionRequest, kind connect.Kind, fingerprint []byte) (*session, bool, *sessionError) {
	st := &s.state
	now := st.now()
	ref := req.Account.ReferenceID
	st.mu.Lock()
	prev, serr := st.admit(req.RequestID, fingerprint)
	accountID, ok := st.accounts[ref]
	if !ok {
		accountID = uuid.NewString()
		st.accounts[ref] = accountID
	}
	st.mu.Unlock()
	if prev != nil || serr != nil {
		return prev, false, serr
	}

	ss := &session{SessionInfo: SessionInfo{
		ID:          uuid.NewString(),
		Kind:        kind,
		Scope:       req.Scopes[0],
		RequestID:   req.RequestID,
		ReferenceID: ref,
		AccountID:   accountID,
		TransferID:  uuid.NewString(),
		Metadata:    json.RawMessage(`{}`),
		Asset:       s.opts.Asset,
		Network:     s.opts.Network,
		Amount:      s.opts.Amount,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.opts.SessionTTL),
	}, fingerprint: fingerprint}
	if req.Session != nil {
		if m := bytes.TrimSpace(req.Session.Metadata); len(m) > 0 && !bytes.Equal(m, []byte("null")) {
			ss.Metadata = slices.Clone(m)
		}
		if wd := req.Session.WithdrawalDetails; kind == connect.KindWithdrawal && wd != nil {
			ss.Asset = cmp.Or(wd.Asset, ss.Asset)
			ss.Network = cmp.Or(wd.Network, ss.Network)
			amount, _ := wd.amount() // validate checked it
			ss.Amount = cmp.Or(amount, ss.Amount)
		}
	}
	answer, err := s.sessionAnswer(ss, now)
	if err != nil {
		return nil, false, &sessionError{http.StatusInternalServerError, "internal", err.Error()}
	}
	ss.answer = answer

	st.mu.Lock()
	defer st.mu.Unlock()
	if prev, serr := st.admit(req.RequestID, fingerprint); prev != nil || serr != nil {
		return prev, false, serr // a concurrent request won the race
	}
	if prev := st.byReference[ref]; prev != nil && prev.active(now) {
		// Connect keeps one active session per account: the newer one invalidates the older one.
		prev.InvalidatedAt, prev.ReplacedBy = now, ss.ID
		ss.replaced = prev.ID
		st.invalidated++
	}
	st.sessions = append(st.sessions, ss)
	st.byID[ss.ID] = ss
	st.byReference[ref] = ss
	st.createdByRef[ref]++
	if req.RequestID != "" {
		st.byRequestID[req.RequestID] = ss
	}
	return ss, true, nil
}

// admit decides whether a request may open a new session: it returns the session to replay for a repeated
// request_id, an error for a request_id reused with another body, or neither. An active session of the same
// reference_id does not refuse the request: createSession invalidates it. The caller holds st.mu.
func (st *state) admit(requestID string, fingerprint []byte) (*session, *sessionError) {
	if prev, ok := st.byRequestID[requestID]; ok && requestID != "" {
		if !bytes.Equal(prev.fingerprint, fingerprint) {
			return nil, &sessionError{http.StatusConflict, "request_id_reused", "request_id was already used with a different body"}
		}
		return prev, nil
	}
	return nil, nil
}

// sessionAnswer signs the session JWT and wraps it in the answer shape: {jwt, expires_in} (the OpenAPI), or
// {token: {jwt, expires_in}} for the guide's user:withdrawal:send.
func (s *Server) sessionAnswer(ss *session, now time.Time) ([]byte, error) {
	claims := jwt.MapClaims{
		"iss":          "connect",
		"sub":          ss.AccountID,
		"iat":          s.jwtTime(now),
		"exp":          s.jwtTime(ss.ExpiresAt),
		"jti":          uuid.NewString(),
		"organization": map[string]string{"id": s.opts.OrganizationID},
		"account":      map[string]string{"id": ss.AccountID, "reference_id": ss.ReferenceID},
		"session":      map[string]string{"id": ss.ID},
	}
	signed, err := signJWT(s.keys.current(), claims)
	if err != nil {
		return nil, err
	}
	type jwtAnswer struct {
		JWT       string `json:"jwt"`
		ExpiresIn int64  `json:"expires_in"`
	}
	inner := jwtAnswer{JWT: signed, ExpiresIn: int64(s.opts.SessionTTL / time.Second)}
	if ss.Scope == connect.ScopeWithdrawalSend {
		return json.Marshal(struct {
			Token jwtAnswer `json:"token"`
		}{inner}) // the guide's withdrawal quirk; the OpenAPI's user:withdrawal:request answers flat
	}
	return json.Marshal(inner)
}

// jwtTime is a session JWT time claim: the guide's RFC 3339 string, or a NumericDate when configured.
func (s *Server) jwtTime(t time.Time) any {
	if s.opts.NumericJWTTimes {
		return jwt.NewNumericDate(t)
	}
	return t.UTC().Format(guideTime)
}

// canonicalJSON re-encodes a JSON document with sorted keys and no spaces, so equal bodies compare equal.
func canonicalJSON(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("request body is not valid JSON: %w", err)
	}
	return json.Marshal(v)
}

// Sessions lists the sessions opened so far, oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	out := make([]SessionInfo, len(s.state.sessions))
	for i, ss := range s.state.sessions {
		out[i] = ss.SessionInfo
	}
	return out
}

// Session returns one session by id.
func (s *Server) Session(id string) (SessionInfo, bool) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	ss, ok := s.state.byID[id]
	if !ok {
		return SessionInfo{}, false
	}
	return ss.SessionInfo, true
}

// SessionsCreated counts sessions opened; idempotent replays do not count.
func (s *Server) SessionsCreated() int64 {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return int64(len(s.state.sessions))
}

// SessionsCreatedFor counts sessions opened for one reference id.
func (s *Server) SessionsCreatedFor(referenceID string) int64 {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.createdByRef[referenceID]
}

// FinishSession marks a session done without playing webhooks: it is no longer active, so a newer session for its
// reference_id does not invalidate it.
func (s *Server) FinishSession(id string) error {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	ss, ok := s.state.byID[id]
	if !ok {
		return fmt.Errorf("connecttest: no session %q", id)
	}
	ss.Finished = true
	return nil
}
