package connecttest

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/connectflow/connectflow/connect"
)

// tokenRequest is the token endpoint's body: the Connect OpenAPI's five required fields.
type tokenRequest struct {
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
	Audience       string `json:"audience"`
	GrantType      string `json:"grant_type"`
	OrganizationID string `json:"organization_id"`
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// handleToken plays POST /oauth/token: 400 invalid_request for a missing field, 400 unsupported_grant_type for a
// grant_type other than client_credentials, 400 invalid_request for another API's audience, 401 invalid_client
// for unknown credentials or another organization's id; all in the OAuth shape {error, error_description}.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if _, err := readJSON(w, r, &req); err != nil {
		s.oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if status, code, msg := s.checkTokenRequest(req); status != 0 {
		s.oauthError(w, status, code, msg)
		return
	}
	token := rand.Text()
	s.state.issueToken(token, s.now().Add(s.opts.TokenTTL), s.opts.TokenTTL)
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, tokenAnswer{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(s.opts.TokenTTL / time.Second)})
}

// checkTokenRequest returns the status, OAuth error code and description of a refused token request, or 0.
func (s *Server) checkTokenRequest(req tokenRequest) (int, string, string) {
	guide := s.opts.GuideTokenRequest && req.Audience == "" && req.GrantType == "" && req.OrganizationID == ""
	var missing []string
	for _, f := range []struct{ name, value string }{{"client_id", req.ClientID}, {"client_secret", req.ClientSecret},
		{"audience", req.Audience}, {"grant_type", req.GrantType}, {"organization_id", req.OrganizationID}} {
		if f.value == "" && !(guide && f.name != "client_id" && f.name != "client_secret") {
			missing = append(missing, f.name)
		}
	}
	switch {
	case len(missing) > 0:
		return http.StatusBadRequest, "invalid_request", strings.Join(missing, ", ") + " required"
	case guide:
	case req.GrantType != connect.GrantTypeClientCredentials:
		return http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials"
	case req.Audience != s.audience():
		return http.StatusBadRequest, "invalid_request", "audience is not this API's (" + s.audience() + ")"
	}
	if !secretsEqual(req.ClientID, s.opts.ClientID) || !secretsEqual(req.ClientSecret, s.opts.ClientSecret) ||
		(!guide && req.OrganizationID != s.opts.OrganizationID) {
		return http.StatusUnauthorized, "invalid_client", "client authentication failed: unknown client_id, wrong client_secret or another organization_id"
	}
	return 0, "", ""
}

// audience is the token audience the sandbox accepts.
func (s *Server) audience() string { return cmp.Or(s.opts.Audience, s.URL) }

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
