package connect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// ErrInvalidSessionRequest wraps every SessionRequest validation failure; the message names the fields.
var ErrInvalidSessionRequest = errors.New("connect: invalid session request")

// positiveDecimal is a plain decimal (digits, optional fraction); zero is rejected separately.
var positiveDecimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// Validate reports every problem with r, naming each field, wrapped in ErrInvalidSessionRequest.
func (r SessionRequest) Validate() error {
	var problems []string
	if !r.Kind.Valid() {
		problems = append(problems, fmt.Sprintf("Kind %q is not %q or %q", safeText(string(r.Kind), 32, nil), KindDeposit, KindWithdrawal))
	}
	if strings.TrimSpace(r.RequestID) == "" {
		problems = append(problems, "RequestID is empty")
	}
	if strings.TrimSpace(r.ReferenceID) == "" {
		problems = append(problems, "ReferenceID is empty")
	}
	for _, f := range []struct{ name, value string }{{"Asset", r.Asset}, {"Network", r.Network}, {"Amount", r.Amount}} {
		value := strings.TrimSpace(f.value)
		switch {
		case r.Kind == KindWithdrawal && value == "":
			problems = append(problems, f.name+" is empty (withdrawals need it)")
		case r.Kind == KindDeposit && value != "":
			problems = append(problems, f.name+" is set but only withdrawals take it")
		}
	}
	if r.Kind == KindWithdrawal && strings.TrimSpace(r.Amount) != "" && !isPositiveDecimal(r.Amount) {
		problems = append(problems, fmt.Sprintf("Amount %q is not a positive decimal string", safeText(r.Amount, 40, nil)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidSessionRequest, strings.Join(problems, "; "))
	}
	return nil
}

func isPositiveDecimal(s string) bool {
	return positiveDecimal.MatchString(s) && strings.Trim(s, "0.") != ""
}

// sessionBody is the POST /sessions request.
type sessionBody struct {
	RequestID string `json:"request_id"`
	Account   struct {
		ReferenceID string `json:"reference_id"`
	} `json:"account"`
	Session struct {
		Metadata          map[string]string  `json:"metadata"`
		DepositDetails    *depositDetails    `json:"deposit_details,omitempty"`
		WithdrawalDetails *withdrawalDetails `json:"withdrawal_details,omitempty"`
	} `json:"session"`
	Scopes []Scope `json:"scopes"`
}

type depositDetails struct {
	AccountLabel string `json:"account_label,omitempty"`
}

type withdrawalDetails struct {
	Asset        string `json:"asset"`
	Network      string `json:"network"`
	Amount       string `json:"amount"`
	AccountLabel string `json:"account_label,omitempty"`
}

// requestIDNamespace is connectflow's fixed UUIDv5 namespace for session request ids. Changing it would give every
// transfer in flight a new request_id, so a retry after the change would open a second session: never change it.
var requestIDNamespace = uuid.MustParse("6f1c2a4e-0b7d-5c3e-9a8f-2d4b6e8c0a17")

// SessionRequestID is the request_id sent to Connect for a SessionRequest.RequestID: the key itself when it is
// already a UUID (canonical, lower case), else the UUIDv5 of the key under connectflow's fixed namespace. Connect's
// OpenAPI gives request_id as a UUID; deriving it keeps every retry of one transfer (whose key is its workflow id)
// the same request at Connect.
func SessionRequestID(key string) string {
	if id, err := uuid.Parse(key); err == nil && len(key) == 36 {
		return id.String()
	}
	return uuid.NewSHA1(requestIDNamespace, []byte(key)).String()
}

// encodeSessionRequest builds the JSON body for a validated request asking for scope; these exact bytes are
// signed and sent.
func encodeSessionRequest(r SessionRequest, scope Scope) ([]byte, error) {
	var b sessionBody
	b.RequestID = SessionRequestID(r.RequestID)
	b.Account.ReferenceID = r.ReferenceID
	b.Session.Metadata = r.Metadata
	if b.Session.Metadata == nil {
		b.Session.Metadata = map[string]string{} // the guide always sends an object
	}
	switch r.Kind {
	case KindWithdrawal:
		b.Session.WithdrawalDetails = &withdrawalDetails{Asset: r.Asset, Network: r.Network, Amount: r.Amount, AccountLabel: r.AccountLabel}
	case KindDeposit:
		if r.AccountLabel != "" {
			b.Session.DepositDetails = &depositDetails{AccountLabel: r.AccountLabel}
		}
	}
	b.Scopes = []Scope{scope}
	return json.Marshal(b)
}

// sessionAnswer accepts both shapes Connect prints: {"jwt","expires_in"} and {"token":{"jwt","expires_in"}}.
type sessionAnswer struct {
	JWT       string   `json:"jwt"`
	ExpiresIn *float64 `json:"expires_in"`
	Token     *struct {
		JWT       string   `json:"jwt"`
		ExpiresIn *float64 `json:"expires_in"`
	} `json:"token"`
}

// decodeSession turns a 2xx /sessions answer into a Session, checking it is for the reference we asked about.
func decodeSession(status int, body []byte, req SessionRequest, now time.Time) (*Session, error) {
	var ans sessionAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, badAnswer(OpCreateSession, status, "answer is not a JSON session object", err)
	}
	token, expiresIn := ans.JWT, ans.ExpiresIn
	if token == "" && ans.Token != nil {
		token, expiresIn = ans.Token.JWT, ans.Token.ExpiresIn
	}
	if token == "" {
		return nil, badAnswer(OpCreateSession, status, `answer has no session JWT (neither "jwt" nor "token.jwt")`, nil)
	}
	claims, err := decodeSessionJWT(token)
	if err != nil {
		return nil, badAnswer(OpCreateSession, status, "malformed session JWT", err)
	}
	if claims.Session.ID == "" {
		return nil, badAnswer(OpCreateSession, status, "session JWT has no session.id claim", nil)
	}
	if claims.Account.ReferenceID != "" && claims.Account.ReferenceID != req.ReferenceID {
		// A session for another end user must never reach a frontend.
		return nil, badAnswer(OpCreateSession, status, "session JWT account.reference_id differs from the request's ReferenceID", nil)
	}
	s := &Session{
		JWT:            token,
		ID:             claims.Session.ID,
		AccountID:      firstNonEmpty(claims.Account.ID, claims.Subject),
		ReferenceID:    req.ReferenceID,
		OrganizationID: claims.Organization.ID,
	}
	if expiresIn != nil && *expiresIn > 0 {
		s.ExpiresIn = secondsToDuration(*expiresIn)
	}
	if claims.IssuedAt != nil {
		s.IssuedAt = claims.IssuedAt.Time
	}
	switch {
	case claims.ExpiresAt != nil:
		s.ExpiresAt = claims.ExpiresAt.Time
	case s.ExpiresIn > 0:
		s.ExpiresAt = now.Add(s.ExpiresIn)
	}
	if err := checkSessionLifetime(s, expiresIn, now); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrSessionUnusable wraps the reason a session Connect did open cannot be handed to a frontend: its JWT expires
// no later than it was issued, it had expired before it arrived, or nothing says when it expires. Asking again
// with the same request_id replays the same session, so it is not retryable.
var ErrSessionUnusable = errors.New("connect: session is unusable")

// checkSessionLifetime refuses a session that would make a transfer expire at once.
func checkSessionLifetime(s *Session, expiresIn *float64, now time.Time) error {
	switch {
	case s.ExpiresAt.IsZero() && expiresIn != nil:
		return fmt.Errorf("%w: session JWT has no exp and expires_in %v is not positive", ErrSessionUnusable, *expiresIn)
	case s.ExpiresAt.IsZero():
		return fmt.Errorf("%w: neither the session JWT (exp) nor the answer (expires_in) says when it expires", ErrSessionUnusable)
	case !s.IssuedAt.IsZero() && !s.ExpiresAt.After(s.IssuedAt):
		return fmt.Errorf("%w: session JWT exp %s is not after its iat %s", ErrSessionUnusable,
			s.ExpiresAt.UTC().Format(time.RFC3339Nano), s.IssuedAt.UTC().Format(time.RFC3339Nano))
	case !s.ExpiresAt.After(now):
		return fmt.Errorf("%w: session JWT expired at %s, before it arrived (now %s): check the clocks", ErrSessionUnusable,
			s.ExpiresAt.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// SessionClaims are the decoded claims of a Connect session JWT. They implement jwt.Claims, so a verifier can use
// jwt.ParseWithClaims(token, &SessionClaims{}, keyfunc) with the same type.
type SessionClaims struct {
	Issuer       string           `json:"iss,omitempty"`
	Subject      string           `json:"sub,omitempty"` // Connect's account id
	ID           string           `json:"jti,omitempty"`
	IssuedAt     *FlexTime        `json:"iat,omitempty"`
	ExpiresAt    *FlexTime        `json:"exp,omitempty"`
	NotBefore    *FlexTime        `json:"nbf,omitempty"`
	Audience     jwt.ClaimStrings `json:"aud,omitempty"`
	Organization struct {
		ID string `json:"id"`
	} `json:"organization"`
	Account struct {
		ID          string `json:"id"`
		ReferenceID string `json:"reference_id"`
	} `json:"account"`
	Session struct {
		ID string `json:"id"`
	} `json:"session"`
}

var _ jwt.Claims = SessionClaims{}

// GetExpirationTime returns exp for jwt validation.
func (c SessionClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return c.ExpiresAt.numericDate(), nil
}

// GetIssuedAt returns iat for jwt validation.
func (c SessionClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt.numericDate(), nil }

// GetNotBefore returns nbf for jwt validation.
func (c SessionClaims) GetNotBefore() (*jwt.NumericDate, error) {
	return c.NotBefore.numericDate(), nil
}

// GetIssuer returns iss for jwt validation.
func (c SessionClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject returns sub for jwt validation.
func (c SessionClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience returns aud for jwt validation.
func (c SessionClaims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }

// ParseSessionJWT reads the claims of a session JWT WITHOUT verifying its signature: use it only on a token that
// came from Connect over TLS. Errors never include the token.
func ParseSessionJWT(token string) (SessionClaims, error) {
	claims, err := decodeSessionJWT(token)
	if err != nil {
		return SessionClaims{}, fmt.Errorf("connect: malformed session JWT: %w", err)
	}
	return claims, nil
}

// decodeSessionJWT splits a compact JWS and decodes its header and claims; errors describe the shape only.
func decodeSessionJWT(token string) (SessionClaims, error) {
	var claims SessionClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims, fmt.Errorf("want 3 dot-separated segments, got %d", len(parts))
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return claims, fmt.Errorf("header: %w", err)
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return claims, fmt.Errorf("claims: %w", err)
	}
	return claims, nil
}

// decodeSegment base64url-decodes one JWT segment (padding tolerated) and unmarshals the JSON object in it.
func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return errors.New("not base64url")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return fmt.Errorf("invalid JSON at offset %d", syntaxErr.Offset)
		}
		return err
	}
	return nil
}

// FlexTime is a time that unmarshals from a JSON number (Unix seconds, fraction allowed) or an RFC 3339 string:
// Connect's guide prints session JWT times as strings, while JWT convention is numbers.
type FlexTime struct{ time.Time }

// UnmarshalJSON accepts a number of Unix seconds or an RFC 3339 string.
func (t *FlexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		parsed, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time %q is neither Unix seconds nor RFC 3339", safeText(s, 40, nil))
		}
		t.Time = parsed
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("time %s is neither Unix seconds nor RFC 3339", safeText(string(b), 40, nil))
	}
	if secs, err := n.Int64(); err == nil && secs >= -maxUnixSeconds && secs <= maxUnixSeconds {
		t.Time = time.Unix(secs, 0).UTC()
		return nil
	}
	f, err := n.Float64()
	if err != nil || math.Abs(f) > maxUnixSeconds {
		return fmt.Errorf("time %s is out of range", safeText(n.String(), 40, nil))
	}
	whole, frac := math.Modf(f)
	t.Time = time.Unix(int64(whole), int64(math.Round(frac*1e9))).UTC()
	return nil
}

// MarshalJSON writes RFC 3339 with nanoseconds, the form Connect prints.
func (t FlexTime) MarshalJSON() ([]byte, error) { return t.Time.MarshalJSON() }

func (t *FlexTime) numericDate() *jwt.NumericDate {
	if t == nil {
		return nil
	}
	return &jwt.NumericDate{Time: t.Time}
}
