package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/connect"
)

// AuthMode says which of Connect's two webhook credentials the bridge checks.
type AuthMode string

const (
	// AuthSignature checks the request signature over timestamp, method, URL and raw body.
	AuthSignature AuthMode = "signature"
	// AuthJWT checks only the bearer JWT; it does not cover the body, so prefer AuthSignatureJWT.
	AuthJWT AuthMode = "jwt"
	// AuthSignatureJWT checks both, as the guide asks; the default.
	AuthSignatureJWT AuthMode = "signature+jwt"
)

// ParseAuthMode reads an AuthMode from its name.
func ParseAuthMode(s string) (AuthMode, error) {
	switch m := AuthMode(s); m {
	case AuthSignature, AuthJWT, AuthSignatureJWT:
		return m, nil
	}
	return "", fmt.Errorf("must be %q, %q or %q", AuthSignature, AuthJWT, AuthSignatureJWT)
}

func (m AuthMode) checksSignature() bool { return m == AuthSignature || m == AuthSignatureJWT }
func (m AuthMode) checksJWT() bool       { return m == AuthJWT || m == AuthSignatureJWT }

const (
	// ConnectIssuer is the iss of every Connect JWT: webhook bearers and session JWTs.
	ConnectIssuer = "connect"
	// jwtLeeway absorbs clock skew between Connect and the bridge on exp, iat and nbf.
	jwtLeeway = 30 * time.Second
	// bearerPrefix is the Authorization scheme, matched case-insensitively.
	bearerPrefix = "Bearer "
	headerKID    = "kid"
)

// asymmetricAlgs are the only JWT algorithms accepted: an HMAC or "none" token could be forged from public data.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Verification failure reasons that are not connect.VerifyFailureReason labels.
const (
	reasonJWTMissing      = "jwt_missing"
	reasonJWTMalformed    = "jwt_malformed"
	reasonJWTAlgorithm    = "jwt_algorithm"
	reasonJWTUnknownKey   = "jwt_unknown_key"
	reasonJWTSignature    = "jwt_signature"
	reasonJWTExpired      = "jwt_expired"
	reasonJWTIssuedAt     = "jwt_issued_at"
	reasonJWTNotYetValid  = "jwt_not_yet_valid"
	reasonJWTIssuer       = "jwt_issuer"
	reasonJWTClaimMissing = "jwt_claim_missing"
	reasonJWTInvalid      = "jwt_invalid"
	reasonJWTSession      = "jwt_session_token" // a browser-held session JWT offered as a webhook bearer
	reasonJWTNoSession    = "jwt_no_session"    // an SDK event whose JWT names no session
	reasonZHMissing       = "zh_missing_signature"
	reasonZHMalformed     = "zh_malformed_signature"
	reasonZHMismatch      = "zh_signature_mismatch"
)

// verifier checks Connect's credentials on a request.
type verifier struct {
	mode      AuthMode
	keys      KeySource
	parser    *jwt.Parser
	tolerance time.Duration
	now       func() time.Time
}

func newVerifier(mode AuthMode, keys KeySource, tolerance time.Duration, now func() time.Time) *verifier {
	return &verifier{
		mode: mode, keys: keys, tolerance: tolerance, now: now,
		parser: jwt.NewParser(
			jwt.WithValidMethods(asymmetricAlgs),
			jwt.WithIssuer(ConnectIssuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(jwtLeeway),
			jwt.WithTimeFunc(now),
		),
	}
}

// webhook checks a Connect webhook to url as the mode says and returns "" or the failure's reason label.
func (v *verifier) webhook(ctx context.Context, h http.Header, url string, body []byte) string {
	var kid string
	if v.mode.checksJWT() {
		claims, tokenKID, reason := v.bearer(ctx, h)
		if reason != "" {
			return reason
		}
		if claims.Session.ID != "" {
			return reasonJWTSession
		}
		kid = tokenKID
	}
	if !v.mode.checksSignature() {
		return ""
	}
	opts := connect.VerifyOptions{Tolerance: v.tolerance, Now: v.now, KID: kid}
	err := connect.VerifyWebhook(v.keys.PublicKeys(ctx), url, h, body, opts)
	// Without a JWT no kid told the JWKS to refresh, so a rotated key shows up as a mismatch: refresh once.
	if !v.mode.checksJWT() && (errors.Is(err, connect.ErrSignatureMismatch) || errors.Is(err, connect.ErrNoKeys)) &&
		v.keys.Refresh(ctx) {
		err = connect.VerifyWebhook(v.keys.PublicKeys(ctx), url, h, body, opts)
	}
	return connect.VerifyFailureReason(err)
}

// session checks an SDK relay's bearer session JWT and returns the session id it names.
func (v *verifier) session(ctx context.Context, h http.Header) (string, string) {
	claims, _, reason := v.bearer(ctx, h)
	if reason != "" {
		return "", reason
	}
	if claims.Session.ID == "" {
		return "", reasonJWTNoSession
	}
	return claims.Session.ID, ""
}

// bearer verifies the Authorization bearer JWT and returns its claims, its kid, and "" or a failure reason.
func (v *verifier) bearer(ctx context.Context, h http.Header) (*connect.SessionClaims, string, string) {
	auth := h.Get("Authorization")
	if len(auth) <= len(bearerPrefix) || !strings.EqualFold(auth[:len(bearerPrefix)], bearerPrefix) {
		return nil, "", reasonJWTMissing
	}
	claims := &connect.SessionClaims{}
	tok, err := v.parser.ParseWithClaims(auth[len(bearerPrefix):], claims, v.keys.Keyfunc(ctx))
	if err != nil {
		return nil, "", jwtFailureReason(tok, err)
	}
	kid, _ := tok.Header[headerKID].(string)
	return claims, kid, ""
}

// jwtFailureReason labels a jwt.Parser error for the verification-failures metric.
func jwtFailureReason(tok *jwt.Token, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reasonJWTMalformed
	case tok != nil && (tok.Method == nil || !slices.Contains(asymmetricAlgs, tok.Method.Alg())):
		return reasonJWTAlgorithm
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return reasonJWTUnknownKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return reasonJWTSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return reasonJWTExpired
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return reasonJWTIssuedAt
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return reasonJWTNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return reasonJWTIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return reasonJWTClaimMissing
	}
	return reasonJWTInvalid
}
