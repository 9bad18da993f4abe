package connect

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzJWT builds a compact JWS with the given claims; the session decoder reads claims without verifying.
func fuzzJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature-bytes-000"))
}

// FuzzDecodeSession checks the /sessions answer decoder with any body: it never panics, an accepted answer names
// a session of the reference asked for (never another end user's), and an error never repeats the session JWT.
// Seeds: the cases below and testdata/fuzz/FuzzDecodeSession.
func FuzzDecodeSession(f *testing.F) {
	good := `{"sub":"acc-1","iat":"2025-07-24T15:42:07.000000000Z","exp":"2025-07-24T16:42:07.000000000Z",` +
		`"account":{"id":"acc-1","reference_id":"USER01"},"session":{"id":"sess-1"},"organization":{"id":"org-1"}}`
	for _, seed := range []string{
		`{"jwt":"` + fuzzJWT(good) + `","expires_in":3600}`,
		`{"token":{"jwt":"` + fuzzJWT(good) + `","expires_in":3600.5}}`,
		`{"jwt":"` + fuzzJWT(`{"exp":1753371727,"iat":1.5e9,"session":{"id":"s"}}`) + `"}`,
		`{"jwt":"` + fuzzJWT(`{"session":{"id":"s"},"account":{"reference_id":"SOMEONE-ELSE"}}`) + `"}`,
		`{"jwt":"` + fuzzJWT(`{"session":{}}`) + `"}`,
		`{"jwt":"` + fuzzJWT(`{"session":{"id":"s"},"exp":"yesterday"}`) + `"}`,
		`{"jwt":"a.b"}`, `{"jwt":""}`, `{"token":null}`, `[]`, `{"expires_in":-1e308}`,
	} {
		f.Add([]byte(seed))
	}
	req := SessionRequest{RequestID: "r-1", Kind: KindDeposit, ReferenceID: "USER01"}
	now := time.Unix(1753371727, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeSession(200, body, req, now)
		if err != nil {
			var apiErr *APIError
			if !errors.As(err, &apiErr) && !errors.Is(err, ErrSessionUnusable) {
				t.Fatalf("error %v is neither an *APIError nor ErrSessionUnusable", err)
			}
			var probe sessionAnswer
			if json.Unmarshal(body, &probe) == nil {
				for _, token := range []string{probe.JWT, tokenJWT(probe)} {
					if len(token) >= 16 && strings.Contains(err.Error(), token) {
						t.Fatalf("error repeats the session JWT: %v", err)
					}
				}
			}
			return
		}
		if s.ID == "" || s.JWT == "" || s.ReferenceID != req.ReferenceID || s.ExpiresIn < 0 {
			t.Fatalf("accepted session %+v", s)
		}
		// An accepted session is usable: it expires after now and after it was issued.
		if !s.ExpiresAt.After(now) || (!s.IssuedAt.IsZero() && !s.ExpiresAt.After(s.IssuedAt)) {
			t.Fatalf("accepted a session that expires at once: %+v", s)
		}
		claims, err := ParseSessionJWT(s.JWT)
		if err != nil || claims.Session.ID != s.ID {
			t.Fatalf("the kept JWT does not decode to the session: %v", err)
		}
		if claims.Account.ReferenceID != "" && claims.Account.ReferenceID != req.ReferenceID {
			t.Fatalf("accepted a session for reference %q", claims.Account.ReferenceID)
		}
	})
}

func tokenJWT(a sessionAnswer) string {
	if a.Token == nil {
		return ""
	}
	return a.Token.JWT
}

// FuzzParseSessionJWT checks the unverified claims reader with any token: no panic, and no error repeats the token.
func FuzzParseSessionJWT(f *testing.F) {
	for _, seed := range []string{
		fuzzJWT(`{"session":{"id":"s"},"exp":"2025-07-24T16:42:07Z"}`),
		fuzzJWT(`{"exp":1e400}`), fuzzJWT(`{"iat":"not a time"}`), fuzzJWT(`[1]`),
		"a.b.c", "...", "eyJ.eyJ.x", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		_, err := ParseSessionJWT(token)
		if err != nil && len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("error repeats the token: %v", err)
		}
	})
}
