package connecttest

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connectflow/connectflow/zerohash"
)

// onboardingTokenTTL is how long an onboarding token the sandbox issues stays valid.
const onboardingTokenTTL = 15 * time.Minute

// onboardingAnswer is the first answer to one X-REQUEST-ID, replayed to its retries.
type onboardingAnswer struct {
	fingerprint []byte
	token       string
}

type onboardingRequest struct {
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number"`
}

func (s *Server) handleOnboarding(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.platformError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	if err := zerohash.VerifyRequest(r, body, s.creds, s.now()); err != nil {
		s.platformError(w, zerohash.VerifyStatus(err), "invalid_signature", err.Error())
		return
	}
	var req onboardingRequest
	if err := decodeObject(body, &req); err != nil {
		s.platformError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	if email := strings.TrimSpace(req.Email); email == "" || !strings.Contains(email, "@") {
		s.platformError(w, http.StatusBadRequest, "invalid_field", "email is required and must be an email address")
		return
	}
	requestID := r.Header.Get(zerohash.HeaderRequestID)
	if requestID != "" {
		w.Header().Set(zerohash.HeaderRequestID, requestID)
	}
	fingerprint, err := canonicalJSON(body)
	if err != nil {
		s.platformError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	token, conflict, err := s.onboardingToken(requestID, fingerprint)
	switch {
	case err != nil:
		s.platformError(w, http.StatusInternalServerError, "internal", err.Error())
	case conflict:
		s.platformError(w, http.StatusConflict, "request_id_reused", zerohash.HeaderRequestID+" was already used with a different body")
	default:
		s.writeJSON(w, http.StatusOK, map[string]map[string]string{"message": {"email": req.Email, "token": token}})
	}
}

// onboardingToken issues a token, or replays the one issued to an earlier request with the same X-REQUEST-ID.
func (s *Server) onboardingToken(requestID string, fingerprint []byte) (token string, conflict bool, err error) {
	st := &s.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if prev, ok := st.onboarding[requestID]; ok && requestID != "" {
		if !bytes.Equal(prev.fingerprint, fingerprint) {
			return "", true, nil
		}
		return prev.token, false, nil
	}
	now := st.now()
	token, err = signJWT(s.keys.current(), jwt.MapClaims{
		"iss": "zerohash",
		"aud": "onboarding",
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(now.Add(onboardingTokenTTL)),
		"jti": uuid.NewString(),
	})
	if err != nil {
		return "", false, err
	}
	if requestID != "" {
		st.onboarding[requestID] = onboardingAnswer{fingerprint: fingerprint, token: token}
	}
	return token, false, nil
}
