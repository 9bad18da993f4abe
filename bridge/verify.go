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
	reasonJWTOrganization = "jwt_organization"  // the JWT names another organization, or none where ours is required
	reasonJWTAudience     = "jwt_audience"      // the JWT's aud names none of this bridge's audiences
	reasonJWTLifetime     = "jwt_lifetime"      // exp - iat is longer than Connect issues
	// reasonJWKSUnavailable is not a verification failure: no Connect key is loaded (the JWKS never answered, or
	// holds no RSA signing key), so nothing can verify. Our outage: answered 503 jwks_unavailable, never counted
	// as a failure.
	reasonJWKSUnavailable = "jwks_unavailable"
	reasonZHMissing       = "zh_missing_signature"
	reasonZHMalformed     = "zh_malformed_signature"
	reasonZHMismatch      = "zh_signature_mismatch"
	reasonZHStale         = "zh_stale_timestamp"
)

// Bounds on a verified JWT's lifetime (exp - iat): a token minted to live longer than Connect issues them is
// refused, so a leaked one cannot be replayed for long. Connect's webhook bearers live minutes and its session
// JWTs about an hour (connecttest.DefaultSessionTTL); the bounds leave room for both.
const (
	MaxWebhookJWTLifetime = 15 * time.Minute
	MaxSessionJWTLifetime = 24 * time.Hour
)

// verifier checks Connect's credentials on a request.
type verifier struct {
	mode      AuthMode
	keys      KeySource
	parser    *jwt.Parser
	tolerance time.Duration
	now       func() time.Time
	// org is our Connect organization id: a JWT that names an organization must name it, and a session JWT must
	// name it. "" skips the check.
	org string
	// audiences are the aud values this bridge answers to (organization id, client id, public URL); a JWT with an
	// aud must name one of them.
	audiences []string
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
	if v.keysUnavailable(ctx) {
		return reasonJWKSUnavailable
	}
	var kid string
	checkedJWT := v.mode.requiresJWT() || hasBearer(h)
	if checkedJWT {
		claims, tokenKID, reason := v.bearer(ctx, h, MaxSessionJWTLifetime)
		if reason != "" {
			return reason
		}
		if claims.Session.ID != "" {
			return reasonJWTSession
		}
		if !lifetimeWithin(claims, MaxWebhookJWTLifetime) {
			return reasonJWTLifetime
		}
		if claims.Organization.ID != "" && v.org != "" && claims.Organization.ID != v.org {
			return reasonJWTOrganization
		}
		kid = tokenKID
	}
	opts := connect.VerifyOptions{Tolerance: v.tolerance, Now: v.now, KID: kid}
	err := connect.VerifyWebhook(v.keys.PublicKeys(ctx), url, h, body, opts)
	// The signature names no kid, so a key rotated in since the last fetch shows up as a mismatch, whether or not
	// a bearer was verified (its key may be an older one, or the bearer's refresh was this one): ask one
	// rate-limited refresh and verify again once.
	if (errors.Is(err, connect.ErrSignatureMismatch) || errors.Is(err, connect.ErrNoKeys)) && v.keys.Refresh(ctx) {
		err = connect.VerifyWebhook(v.keys.PublicKeys(ctx), url, h, body, opts)
	}
	if errors.Is(err, connect.ErrNoKeys) {
		return reasonJWKSUnavailable // the JWKS was emptied since keysUnavailable looked
	}
	return connect.VerifyFailureReason(err)
}

// keysUnavailable reports that no Connect key is loaded even after one rate-limited refresh: the JWKS has not been
// fetched since start, or holds no RSA signing key. Keys once fetched stay while later fetches fail.
func (v *verifier) keysUnavailable(ctx context.Context) bool {
	return len(v.keys.PublicKeys(ctx)) == 0 && !(v.keys.Refresh(ctx) && len(v.keys.PublicKeys(ctx)) > 0)
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
	if v.keysUnavailable(ctx) {
		return "", reasonJWKSUnavailable
	}
	claims, _, reason := v.bearer(ctx, h, MaxSessionJWTLifetime)
	if reason != "" {
		return "", reason
	}
	if claims.Session.ID == "" {
		return "", reasonJWTNoSession
	}
	if v.org != "" && claims.Organization.ID != v.org {
		// Another organization's user (or a token naming none): not ours, and not worth a visibility query.
		return "", reasonJWTOrganization
	}
	return claims.Session.ID, ""
}

// bearer verifies the Authorization bearer JWT and returns its claims, its kid, and "" or a failure reason. Beyond
// the signature, issuer and times, an aud (where Connect sets one) must name this bridge, and exp - iat must not
// exceed maxLifetime.
func (v *verifier) bearer(ctx context.Context, h http.Header, maxLifetime time.Duration) (*connect.SessionClaims, string, string) {
	auth := h.Get("Authorization")
	if len(auth) <= len(bearerPrefix) || !strings.EqualFold(auth[:len(bearerPrefix)], bearerPrefix) {
		return nil, "", reasonJWTMissing
	}
	raw := auth[len(bearerPrefix):]
	claims := &connect.SessionClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, v.keys.Keyfunc(ctx))
	// A JWT no current key verifies may be signed by a key rotated in since the last fetch. A token naming an
	// unknown kid had its refresh inside Keyfunc; one without kid is checked against the whole set, and one naming
	// a known kid against that key, outside it: ask one rate-limited refresh and verify again once.
	if err != nil && wantsNewerKey(tok, err) && v.keys.Refresh(ctx) {
		claims = &connect.SessionClaims{}
		tok, err = v.parser.ParseWithClaims(raw, claims, v.keys.Keyfunc(ctx))
	}
	if err != nil {
		return nil, "", jwtFailureReason(tok, err)
	}
	if len(claims.Audience) > 0 && !slices.ContainsFunc(claims.Audience, func(a string) bool {
		return slices.Contains(v.audiences, a)
	}) {
		return nil, "", reasonJWTAudience
	}
	if !lifetimeWithin(claims, maxLifetime) {
		return nil, "", reasonJWTLifetime
	}
	kid, _ := tok.Header[headerKID].(string)
	return claims, kid, ""
}

// wantsNewerKey reports whether a JWT failed for want of a key a refresh could bring: its signature verifies with
// no key of the set, or it names no kid and the set had no key for it. An unknown kid is not: Keyfunc refreshed.
func wantsNewerKey(tok *jwt.Token, err error) bool {
	switch jwtFailureReason(tok, err) {
	case reasonJWTSignature:
		return true
	case reasonJWTUnknownKey:
		if tok == nil {
			return false
		}
		_, named := tok.Header[headerKID]
		return !named
	}
	return false
}

// lifetimeWithin reports whether a JWT's exp - iat is at most max; a JWT without iat has no bounded lifetime.
func lifetimeWithin(c *connect.SessionClaims, max time.Duration) bool {
	return c.IssuedAt != nil && c.ExpiresAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) <= max
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
