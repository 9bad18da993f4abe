package connecttest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// tokenRequest is the token endpoint's body; other OAuth fields (grant_type, audience, ...) are accepted and ignored.
type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if _, err := readJSON(w, r, &req); err != nil {
		s.oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	switch {
	case req.ClientID == "":
		s.oauthError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
		return
	case req.ClientSecret == "":
		s.oauthError(w, http.StatusBadRequest, "invalid_request", "client_secret is required")
		return
	case !secretsEqual(req.ClientID, s.opts.ClientID) || !secretsEqual(req.ClientSecret, s.opts.ClientSecret):
		s.oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed: unknown client_id or wrong client_secret")
		return
	}
	token := rand.Text()
	s.state.issueToken(token, s.now().Add(s.opts.TokenTTL), s.opts.TokenTTL)
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, tokenAnswer{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(s.opts.TokenTTL / time.Second)})
}

// secretsEqual compares in constant time; hashing first hides the lengths too.
func secretsEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// tokenKey is how an access token is stored: its hash, so lookups never compare the token itself.
func tokenKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// issueToken stores a token and forgets tokens expired over keep ago, so a long-running sandbox does not grow
// while a recently expired token is still answered as expired rather than unknown.
func (st *state) issueToken(token string, expiry time.Time, keep time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	forgetBefore := st.now().Add(-keep)
	for k, exp := range st.tokens {
		if exp.Before(forgetBefore) {
			delete(st.tokens, k)
		}
	}
	st.tokens[tokenKey(token)] = expiry
	st.tokensIssued++
}

// checkBearer reports why the request's access token is not good, or "" when it is.
func (s *Server) checkBearer(r *http.Request) (code, message string) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "missing_token", "Authorization: Bearer <access token> is required"
	}
	s.state.mu.Lock()
	exp, known := s.state.tokens[tokenKey(token)]
	s.state.mu.Unlock()
	switch {
	case !known:
		return "invalid_token", "access token is unknown"
	case !exp.After(s.now()):
		return "token_expired", "access token has expired"
	}
	return "", ""
}
