package connect

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSessionRequestValidate(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*SessionRequest)
		base     SessionRequest
		wantErrs []string // every field the error must name; none means valid
	}{
		{"deposit ok", nil, depositRequest("r"), nil},
		{"withdrawal ok", nil, withdrawalRequest("r"), nil},
		{"withdrawal integer amount", func(r *SessionRequest) { r.Amount = "10" }, withdrawalRequest("r"), nil},
		{"unknown kind", func(r *SessionRequest) { r.Kind = "transfer" }, depositRequest("r"), []string{`Kind "transfer"`}},
		{"empty kind", func(r *SessionRequest) { r.Kind = "" }, depositRequest("r"), []string{`Kind ""`}},
		{"no request id", func(r *SessionRequest) { r.RequestID = " " }, depositRequest("r"), []string{"RequestID is empty"}},
		{"no reference id", func(r *SessionRequest) { r.ReferenceID = "" }, depositRequest("r"), []string{"ReferenceID is empty"}},
		{"withdrawal without asset", func(r *SessionRequest) { r.Asset = "" }, withdrawalRequest("r"), []string{"Asset is empty"}},
		{"withdrawal without network", func(r *SessionRequest) { r.Network = "" }, withdrawalRequest("r"), []string{"Network is empty"}},
		{"withdrawal without amount", func(r *SessionRequest) { r.Amount = "" }, withdrawalRequest("r"), []string{"Amount is empty"}},
		{"zero amount", func(r *SessionRequest) { r.Amount = "0.000" }, withdrawalRequest("r"), []string{`Amount "0.000" is not a positive decimal`}},
		{"negative amount", func(r *SessionRequest) { r.Amount = "-1" }, withdrawalRequest("r"), []string{`Amount "-1"`}},
		{"exponent amount", func(r *SessionRequest) { r.Amount = "1e5" }, withdrawalRequest("r"), []string{`Amount "1e5"`}},
		{"bare fraction amount", func(r *SessionRequest) { r.Amount = ".5" }, withdrawalRequest("r"), []string{`Amount ".5"`}},
		{"trailing dot amount", func(r *SessionRequest) { r.Amount = "5." }, withdrawalRequest("r"), []string{`Amount "5."`}},
		{"comma amount", func(r *SessionRequest) { r.Amount = "1,5" }, withdrawalRequest("r"), []string{`Amount "1,5"`}},
		{"deposit with amount", func(r *SessionRequest) { r.Amount = "1" }, depositRequest("r"), []string{"Amount is set but only withdrawals"}},
		{
			"several problems at once", func(r *SessionRequest) { r.RequestID, r.ReferenceID, r.Asset = "", "", "" }, withdrawalRequest("r"),
			[]string{"RequestID is empty", "ReferenceID is empty", "Asset is empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.base
			if tt.edit != nil {
				tt.edit(&req)
			}
			err := req.Validate()
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSessionRequest) {
				t.Fatalf("err = %v, want ErrInvalidSessionRequest", err)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestEncodeSessionRequestDepositLabel(t *testing.T) {
	req := depositRequest("r")
	req.Metadata, req.AccountLabel = nil, "general"
	body, err := encodeSessionRequest(req, ScopeDepositSend)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"request_id":"` + SessionRequestID("r") + `","account":{"reference_id":"USER01"},"session":{"metadata":{},"deposit_details":{"account_label":"general"}},"scopes":["user:deposit:send"]}`
	if string(body) != want {
		t.Fatalf("body = %s\nwant   %s", body, want)
	}
}

func TestFlexTimeUnmarshal(t *testing.T) {
	guide := time.Date(2025, 7, 24, 15, 42, 7, 123456789, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{`"2025-07-24T15:42:07.123456789Z"`, guide, ""},
		{`"2025-07-24T17:42:07.123456789+02:00"`, guide, ""},
		{`"2025-07-24T15:42:07Z"`, guide.Truncate(time.Second), ""},
		{`1753371727`, guide.Truncate(time.Second), ""},
		{`1753371727.5`, guide.Truncate(time.Second).Add(500 * time.Millisecond), ""},
		{`1.753371727e9`, guide.Truncate(time.Second), ""},
		{`"24/07/2025"`, time.Time{}, `time "24/07/2025" is neither Unix seconds nor RFC 3339`},
		{`"1753371727"`, time.Time{}, "neither Unix seconds nor RFC 3339"},
		{`true`, time.Time{}, "neither Unix seconds nor RFC 3339"},
		{`{}`, time.Time{}, "neither Unix seconds nor RFC 3339"},
		{`1e300`, time.Time{}, "out of range"},
		{`1753371727000000`, time.Time{}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var ft FlexTime
			err := json.Unmarshal([]byte(tt.in), &ft)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !ft.Equal(tt.want) {
				t.Fatalf("got %v, want %v", ft.Time, tt.want)
			}
		})
	}
}

func TestFlexTimeRoundTrip(t *testing.T) {
	in := FlexTime{time.Date(2025, 7, 24, 15, 42, 7, 123456789, time.UTC)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `"2025-07-24T15:42:07.123456789Z"` {
		t.Fatalf("marshal = %s", b)
	}
	var out FlexTime
	if err := json.Unmarshal(b, &out); err != nil || !out.Equal(in.Time) {
		t.Fatalf("round trip = %v, %v", out, err)
	}
}

// guideClaims is the decoded JWT the guide prints, with string iat/exp.
const guideClaims = `{
  "iss": "connect",
  "sub": "3dfb9dc0-9c00-4673-bc2e-5024ae62166d",
  "iat": "2025-07-24T15:42:07.123456789Z",
  "exp": "2025-07-24T16:42:07.123456789Z",
  "jti": "9b2e0b75-00dc-4f5f-a11b-c48d46b16e15",
  "organization": {"id": "4789efea-e034-4e6f-b8a0-5289aacec427"},
  "account": {"id": "16b0e957-f3fd-41d0-b312-f2ec291de6e4", "reference_id": "USER01"},
  "session": {"id": "5c0e0b7a-1111-4b4b-9a9a-0123456789ab"}
}`

// unsignedJWT builds a compact JWS from raw claims JSON with a throwaway signature (ParseSessionJWT does not verify).
func unsignedJWT(claimsJSON string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claimsJSON)) + ".c2ln"
}

func TestParseSessionJWT(t *testing.T) {
	iat := time.Date(2025, 7, 24, 15, 42, 7, 0, time.UTC)
	numeric := strings.NewReplacer(`"2025-07-24T15:42:07.123456789Z"`, "1753371727", `"2025-07-24T16:42:07.123456789Z"`, "1753375327").Replace(guideClaims)
	tests := []struct {
		name      string
		token     string
		wantIAT   time.Time
		wantExp   time.Time
		wantError string
	}{
		{"guide strings", unsignedJWT(guideClaims), iat.Add(123456789), iat.Add(time.Hour + 123456789), ""},
		{"numbers", unsignedJWT(numeric), iat, iat.Add(time.Hour), ""},
		{"real RS256 signature", mintJWT(t, jwt.MapClaims{"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "session": map[string]string{"id": "5c0e0b7a-1111-4b4b-9a9a-0123456789ab"}}), iat, iat.Add(time.Hour), ""},
		{"empty", "", time.Time{}, time.Time{}, "want 3 dot-separated segments, got 1"},
		{"two segments", "abc.def", time.Time{}, time.Time{}, "got 2"},
		{"four segments", "a.b.c.d", time.Time{}, time.Time{}, "got 4"},
		{"header not base64", "%%%." + strings.Split(unsignedJWT(guideClaims), ".")[1] + ".sig", time.Time{}, time.Time{}, "header: not base64url"},
		{"claims not base64", "eyJhbGciOiJSUzI1NiJ9.!!!.sig", time.Time{}, time.Time{}, "claims: not base64url"},
		{"claims not JSON", unsignedJWT("not json"), time.Time{}, time.Time{}, "claims: not a JSON object"},
		{"claims truncated JSON", unsignedJWT(`{"iss":"connect"`), time.Time{}, time.Time{}, "claims: invalid JSON"},
		{"claims wrong type", unsignedJWT(`{"session":{"id":42}}`), time.Time{}, time.Time{}, "claims: json: cannot unmarshal number"},
		{"bad time", unsignedJWT(`{"exp":"tomorrow"}`), time.Time{}, time.Time{}, `time "tomorrow" is neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := ParseSessionJWT(tt.token)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !strings.HasPrefix(err.Error(), "connect: malformed session JWT: ") {
					t.Fatalf("err = %v, want a malformed-JWT error mentioning %q", err, tt.wantError)
				}
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Fatalf("error %q echoes the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSessionJWT: %v", err)
			}
			if claims.Session.ID != "5c0e0b7a-1111-4b4b-9a9a-0123456789ab" {
				t.Fatalf("session.id = %q", claims.Session.ID)
			}
			if !claims.IssuedAt.Equal(tt.wantIAT) || !claims.ExpiresAt.Equal(tt.wantExp) {
				t.Fatalf("iat %v exp %v, want %v %v", claims.IssuedAt, claims.ExpiresAt, tt.wantIAT, tt.wantExp)
			}
		})
	}
	claims, err := ParseSessionJWT(unsignedJWT(guideClaims))
	if err != nil {
		t.Fatal(err)
	}
	if claims.Issuer != "connect" || claims.Subject != "3dfb9dc0-9c00-4673-bc2e-5024ae62166d" || claims.ID != "9b2e0b75-00dc-4f5f-a11b-c48d46b16e15" ||
		claims.Organization.ID != testOrgID || claims.Account.ID != testAccount || claims.Account.ReferenceID != "USER01" {
		t.Fatalf("claims = %+v", claims)
	}
}

// The webhook bridge verifies session JWTs with jwt.ParseWithClaims and this type; expiry must be enforced
// whichever way Connect writes the times.
func TestSessionClaimsVerifyWithJWTLibrary(t *testing.T) {
	now := time.Now()
	keyfunc := func(*jwt.Token) (any, error) { return &connectKey().PublicKey, nil }
	for _, form := range []string{"rfc3339", "numeric"} {
		for _, tt := range []struct {
			name    string
			exp     time.Time
			wantErr error
		}{
			{"valid", now.Add(time.Hour), nil},
			{"expired", now.Add(-time.Minute), jwt.ErrTokenExpired},
		} {
			t.Run(form+"/"+tt.name, func(t *testing.T) {
				claims := jwt.MapClaims{"iss": "connect", "session": map[string]string{"id": "s1"}}
				if form == "numeric" {
					claims["iat"], claims["exp"] = now.Add(-time.Minute).Unix(), tt.exp.Unix()
				} else {
					claims["iat"], claims["exp"] = now.Add(-time.Minute).Format(time.RFC3339Nano), tt.exp.Format(time.RFC3339Nano)
				}
				var got SessionClaims
				_, err := jwt.ParseWithClaims(mintJWT(t, claims), &got, keyfunc, jwt.WithValidMethods([]string{"RS256"}))
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("ParseWithClaims err = %v, want %v", err, tt.wantErr)
				}
				if got.Session.ID != "s1" || got.Issuer != "connect" {
					t.Fatalf("claims = %+v", got)
				}
			})
		}
	}
	// A different key must not verify: the check above is a real signature check.
	otherKey := func(*jwt.Token) (any, error) { return &orgKey().PublicKey, nil }
	token := mintJWT(t, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()})
	if _, err := jwt.ParseWithClaims(token, &SessionClaims{}, otherKey); !errors.Is(err, rsa.ErrVerification) {
		t.Fatalf("wrong key err = %v, want rsa.ErrVerification", err)
	}
}

func TestSessionClaimsMarshalRoundTrip(t *testing.T) {
	in := SessionClaims{Issuer: "connect", Subject: "sub", ID: "jti", Audience: jwt.ClaimStrings{"org"},
		IssuedAt: &FlexTime{time.Date(2025, 7, 24, 15, 42, 7, 5, time.UTC)}}
	in.Session.ID, in.Account.ReferenceID = "s", "USER01"
	token := mintJWT(t, in)
	out, err := ParseSessionJWT(token)
	if err != nil {
		t.Fatal(err)
	}
	if out.Session.ID != "s" || out.Account.ReferenceID != "USER01" || !out.IssuedAt.Equal(in.IssuedAt.Time) ||
		out.ExpiresAt != nil || len(out.Audience) != 1 || out.Audience[0] != "org" {
		t.Fatalf("round trip = %+v", out)
	}
}

func TestDecodeSession(t *testing.T) {
	now := time.Date(2025, 7, 24, 15, 0, 0, 0, time.UTC)
	guideJWT := unsignedJWT(guideClaims)
	noExp := unsignedJWT(`{"sub":"sub-only","session":{"id":"s2"},"account":{"reference_id":"USER01"}}`)
	tests := []struct {
		name    string
		body    string
		check   func(t *testing.T, s *Session)
		wantErr string
	}{
		{"flat shape", `{"jwt":"` + guideJWT + `","expires_in":3600}`, func(t *testing.T, s *Session) {
			if s.JWT != guideJWT || s.ID != "5c0e0b7a-1111-4b4b-9a9a-0123456789ab" || s.AccountID != testAccount ||
				s.OrganizationID != testOrgID || s.ReferenceID != "USER01" || s.ExpiresIn != time.Hour ||
				!s.ExpiresAt.Equal(time.Date(2025, 7, 24, 16, 42, 7, 123456789, time.UTC)) {
				t.Fatalf("session = %+v", s)
			}
		}, ""},
		{"nested shape", `{"token":{"jwt":"` + guideJWT + `","expires_in":1800}}`, func(t *testing.T, s *Session) {
			if s.JWT != guideJWT || s.ExpiresIn != 30*time.Minute || s.IssuedAt.IsZero() {
				t.Fatalf("session = %+v", s)
			}
		}, ""},
		{"sub fallback and exp from expires_in", `{"jwt":"` + noExp + `","expires_in":3600}`, func(t *testing.T, s *Session) {
			if s.AccountID != "sub-only" || !s.ExpiresAt.Equal(now.Add(time.Hour)) || !s.IssuedAt.IsZero() {
				t.Fatalf("session = %+v", s)
			}
		}, ""},
		{"neither shape", `{"session":"x"}`, nil, `answer has no session JWT`},
		{"empty jwt", `{"jwt":"","expires_in":3600}`, nil, `answer has no session JWT`},
		{"empty nested jwt", `{"token":{"jwt":""}}`, nil, `answer has no session JWT`},
		{"not JSON", `<html>`, nil, "answer is not a JSON session object"},
		{"malformed jwt", `{"jwt":"not-a-jwt"}`, nil, "malformed session JWT: want 3 dot-separated segments"},
		{"no session id", `{"jwt":"` + unsignedJWT(`{"sub":"a"}`) + `"}`, nil, "no session.id claim"},
		{"another user's session", `{"jwt":"` + unsignedJWT(`{"session":{"id":"s"},"account":{"reference_id":"USER02"}}`) + `"}`, nil, "differs from the request's ReferenceID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := decodeSession(200, []byte(tt.body), depositRequest("r"), now)
			if tt.wantErr != "" {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Retryable || apiErr.Op != OpCreateSession || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a non-retryable APIError mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "eyJ") {
					t.Fatalf("error %q contains JWT text", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeSession: %v", err)
			}
			tt.check(t, s)
		})
	}
}

// A session that would make a transfer expire at once is refused with ErrSessionUnusable and a clear reason.
func TestDecodeSessionUnusable(t *testing.T) {
	now := time.Date(2025, 7, 24, 15, 0, 0, 0, time.UTC)
	jwtWith := func(times string) string {
		return unsignedJWT(`{"session":{"id":"s"},"account":{"reference_id":"USER01"}` + times + `}`)
	}
	tests := []struct {
		name    string
		body    string
		wantErr string // "" = usable
	}{
		// The guide's sample JWT has exp equal to iat.
		{"exp equals iat (the guide's sample)", `{"jwt":"` + jwtWith(`,"iat":"2025-07-24T15:42:07.123456789Z","exp":"2025-07-24T15:42:07.123456789Z"`) + `","expires_in":3600}`, "exp 2025-07-24T15:42:07.123456789Z is not after its iat 2025-07-24T15:42:07.123456789Z"},
		{"exp before iat", `{"jwt":"` + jwtWith(`,"iat":1753372800,"exp":1753369200`) + `"}`, "is not after its iat"},
		{"expired before it arrived", `{"jwt":"` + jwtWith(`,"iat":"2025-07-24T13:00:00Z","exp":"2025-07-24T14:00:00Z"`) + `","expires_in":3600}`, "expired at 2025-07-24T14:00:00Z, before it arrived (now 2025-07-24T15:00:00Z)"},
		{"expires exactly on arrival", `{"jwt":"` + jwtWith(`,"exp":"2025-07-24T15:00:00Z"`) + `"}`, "before it arrived"},
		{"no exp and no expires_in", `{"jwt":"` + jwtWith(``) + `"}`, "neither the session JWT (exp) nor the answer (expires_in)"},
		{"no exp and expires_in 0", `{"jwt":"` + jwtWith(``) + `","expires_in":0}`, "expires_in 0 is not positive"},
		{"usable", `{"jwt":"` + jwtWith(`,"iat":"2025-07-24T15:00:00Z","exp":"2025-07-24T16:00:00Z"`) + `"}`, ""},
		{"usable from expires_in alone", `{"jwt":"` + jwtWith(``) + `","expires_in":60}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := decodeSession(200, []byte(tt.body), depositRequest("r"), now)
			if tt.wantErr == "" {
				if err != nil || !s.ExpiresAt.After(now) {
					t.Fatalf("session %+v, %v: want a usable session", s, err)
				}
				return
			}
			if !errors.Is(err, ErrSessionUnusable) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want ErrSessionUnusable saying %q", err, tt.wantErr)
			}
			if retryable, _ := RetryInfo(err); retryable {
				t.Fatal("an unusable session is retryable")
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Fatalf("error %q contains JWT text", err)
			}
		})
	}
}
