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

// AuthMode says which of Connect's webhook credentials the bridge requires.
type AuthMode string

const (
	// AuthSignature requires the request signature over timestamp, method, URL and raw body, as Connect's webhook
	// page publishes it (client-id, timestamp, signature, x-zh-hook-payload-type; no bearer). A bearer JWT, when one
	// is sent anyway, is verified too and a bad one is refused. The default.
	AuthSignature AuthMode = "signature"
	// AuthSignatureJWT requires both the signature and a bearer JWT, for organizations whose Connect sends a JWT
	// on every webhook (the guide's "validate the jwt and the request signature").
	AuthSignatureJWT AuthMode = "signature+jwt"
)

// ParseAuthMode reads an AuthMode from its name. The former "jwt" mode is refused: a JWT alone binds nothing to
// the body, so anyone holding one webhook's bearer could post any body.
func ParseAuthMode(s string) (AuthMode, error) {
	switch m := AuthMode(s); m {
	case AuthSignature, AuthSignatureJWT:
		return m, nil
	case "jwt":
		return "", fmt.Errorf("%q was removed (a JWT alone binds nothing to the body): must be %q or %q", s, AuthSignature, AuthSignatureJWT)
	}
	return "", fmt.Errorf("must be %q or %q", AuthSignature, AuthSignatureJWT)
}

// requiresJWT reports whether a webhook without a bearer JWT is refused.
func (m AuthMode) requiresJWT() bool { return m == AuthSignatureJWT }

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
	reasonZHStale         = "zh_stale_timestamp"
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

// webhook checks a Connect webhook to url and returns "" or the failure's reason label: the signature always; the
// bearer JWT when the mode requires it or when one is sent (a bad JWT is refused even where none is required).
func (v *verifier) webhook(ctx context.Context, h http.Header, url string, body []byte) string {
	var kid string
	checkedJWT := v.mode.requiresJWT() || hasBearer(h)
	if checkedJWT {
		claims, tokenKID, reason := v.bearer(ctx, h)
		if reason != "" {
			return reason
		}
		if claims.Session.ID != "" {
			return reasonJWTSession
		}
		kid = tokenKID
	}
	opts := connect.VerifyOptions{Tolerance: v.tolerance, Now: v.now, KID: kid}
	err := connect.VerifyWebhook(v.keys.PublicKeys(ctx), url, h, body, opts)
	// Without a JWT no kid told the JWKS to refresh, so a rotated key shows up as a mismatch: refresh once.
	if !checkedJWT && (errors.Is(err, connect.ErrSignatureMismatch) || errors.Is(err, connect.ErrNoKeys)) &&
		v.keys.Refresh(ctx) {
		err = connect.VerifyWebhook(v.keys.PublicKeys(ctx), url, h, body, opts)
	}
	return connect.VerifyFailureReason(err)
}

// hasBearer reports whether h carries an Authorization header of the Bearer scheme (any other scheme, say a
// proxy's Basic credentials, is not Connect's and is left alone).
func hasBearer(h http.Header) bool {
	auth := strings.TrimSpace(h.Get("Authorization"))
	scheme := strings.TrimSpace(bearerPrefix)
	return len(auth) >= len(scheme) && strings.EqualFold(auth[:len(scheme)], scheme) &&
		(len(auth) == len(scheme) || auth[len(scheme)] == ' ')
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
