package transferapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OperatorRole is the role that may resolve transfers: the third field of a token entry ("name:token:operator"),
// or an entry of a JWT's "roles" claim (RoleClaimOperator).
const (
	OperatorRole      = "operator"
	RoleClaimOperator = "connectflow:operator"
	// MinTokenLength is the shortest bearer token accepted: 32 characters, e.g. `openssl rand -hex 16`.
	MinTokenLength = 32
	// jwtLeeway absorbs clock skew with the identity provider on exp, iat and nbf.
	jwtLeeway = 30 * time.Second
	// maxCallerName bounds a caller name, which goes into history and logs.
	maxCallerName = 64
)

// Authentication failures. Their text is safe to answer and log: none holds a credential.
var (
	ErrNoCredentials      = errors.New("no bearer credentials: send Authorization: Bearer <token>")
	ErrInvalidCredentials = errors.New("the bearer credentials are not valid")
)

// Caller is who made a request: a token's name or a JWT's subject. Its name is recorded in the workflow history
// (the connectflow-caller header, and the operator of a resolve) and in the request log.
type Caller struct {
	Name     string
	Operator bool
	// Via is "token" or "jwt".
	Via string
}

// Token is one accepted bearer token, kept only as its SHA-256.
type Token struct {
	Name     string
	Operator bool
	hash     [sha256.Size]byte
}

// callerName is what a token's name or a JWT's sub may be: printable, no spaces, no ':' (it separates fields).
var callerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@/+-]{0,63}$`)

// ParseTokens reads a token list: entries "name:token" or "name:token:operator", separated by commas or new lines;
// blank lines and lines starting with # are skipped (so a file may comment its entries). Names and tokens must be
// unique; a token has at least MinTokenLength characters and no ':' or white space. Errors name the entry by its
// position and name, never its token.
func ParseTokens(list string) ([]Token, error) {
	var out []Token
	var problems []error
	n := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for entry := range strings.SplitSeq(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			t, err := parseToken(entry)
			if err != nil {
				problems = append(problems, fmt.Errorf("entry %d: %w", n, err))
				continue
			}
			for _, o := range out {
				switch {
				case o.Name == t.Name:
					err = fmt.Errorf("entry %d: name %q given twice", n, t.Name)
				case o.hash == t.hash:
					err = fmt.Errorf("entry %d (%s): the same token as %s", n, t.Name, o.Name)
				}
			}
			if err != nil {
				problems = append(problems, err)
				continue
			}
			out = append(out, t)
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, err)
	}
	if len(out) == 0 && len(problems) == 0 {
		problems = append(problems, errors.New("no token: give name:token[:operator] entries"))
	}
	return out, errors.Join(problems...)
}

func parseToken(entry string) (Token, error) {
	fields := strings.Split(entry, ":")
	if len(fields) < 2 || len(fields) > 3 {
		return Token{}, errors.New("must be name:token or name:token:operator")
	}
	name, secret := fields[0], fields[1]
	if !callerName.MatchString(name) {
		return Token{}, fmt.Errorf("name must be 1 to %d letters, digits or ._@/+- (starting with a letter or digit)", maxCallerName)
	}
	t := Token{Name: name}
	if len(fields) == 3 {
		if fields[2] != OperatorRole {
			return Token{}, fmt.Errorf("(%s): the third field must be %q", name, OperatorRole)
		}
		t.Operator = true
	}
	switch {
	case len(secret) < MinTokenLength:
		return Token{}, fmt.Errorf("(%s): the token must have at least %d characters", name, MinTokenLength)
	case strings.IndexFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return Token{}, fmt.Errorf("(%s): the token must not contain white space or control characters", name)
	}
	t.hash = sha256.Sum256([]byte(secret))
	return t, nil
}

// JWTConfig accepts JWTs from the platform's identity provider.
type JWTConfig struct {
	// Keyfunc finds a token's verification key, e.g. (*JWKS).Keyfunc. Required.
	Keyfunc func(ctx context.Context) jwt.Keyfunc
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer, Audience string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// asymmetricAlgs are the only JWT algorithms accepted: an HMAC or "none" token could be forged from public data.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Authenticator checks a request's bearer credentials: a static token, else (when configured) a JWT.
type Authenticator struct {
	tokens  []Token
	keyfunc func(ctx context.Context) jwt.Keyfunc
	parser  *jwt.Parser
}

// NewAuthenticator accepts tokens, and JWTs when jwtCfg is not nil. It needs at least one of the two.
func NewAuthenticator(tokens []Token, jwtCfg *JWTConfig) (*Authenticator, error) {
	a := &Authenticator{tokens: slices.Clone(tokens)}
	if jwtCfg != nil {
		if jwtCfg.Keyfunc == nil {
			return nil, errors.New("transferapi: JWTConfig.Keyfunc is required")
		}
		opts := []jwt.ParserOption{
			jwt.WithValidMethods(asymmetricAlgs),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(jwtLeeway),
		}
		if jwtCfg.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(jwtCfg.Issuer))
		}
		if jwtCfg.Audience != "" {
			opts = append(opts, jwt.WithAudience(jwtCfg.Audience))
		}
		if jwtCfg.Now != nil {
			opts = append(opts, jwt.WithTimeFunc(jwtCfg.Now))
		}
		a.keyfunc, a.parser = jwtCfg.Keyfunc, jwt.NewParser(opts...)
	}
	if len(a.tokens) == 0 && a.parser == nil {
		return nil, errors.New("transferapi: no credentials configured: give tokens, a JWKS, or both")
	}
	return a, nil
}

// Authenticate returns the caller of an Authorization header value. Every static token is compared, in constant
// time on SHA-256 digests, before a JWT is tried, so timing tells nothing about which token came close. The
// error is ErrNoCredentials or wraps ErrInvalidCredentials with a reason that never quotes the credential.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Caller, error) {
	const prefix = "Bearer "
	if len(authorization) <= len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return Caller{}, ErrNoCredentials
	}
	presented := strings.TrimSpace(authorization[len(prefix):])
	digest := sha256.Sum256([]byte(presented))
	match := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(digest[:], a.tokens[i].hash[:]) == 1 {
			match = i
		}
	}
	if match >= 0 {
		t := a.tokens[match]
		return Caller{Name: t.Name, Operator: t.Operator, Via: "token"}, nil
	}
	if a.parser == nil || strings.Count(presented, ".") != 2 {
		return Caller{}, fmt.Errorf("%w: unknown token", ErrInvalidCredentials)
	}
	return a.verifyJWT(ctx, presented)
}

// idpClaims are the claims read from the identity provider's JWT.
type idpClaims struct {
	jwt.RegisteredClaims
	Roles roles `json:"roles"`
}

// roles reads a "roles" claim given as a JSON array of strings or as one space-separated string.
type roles []string

func (r *roles) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*r = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("roles: must be an array of strings or a space-separated string")
	}
	*r = strings.Fields(s)
	return nil
}

func (a *Authenticator) verifyJWT(ctx context.Context, raw string) (Caller, error) {
	var claims idpClaims
	if _, err := a.parser.ParseWithClaims(raw, &claims, a.keyfunc(ctx)); err != nil {
		return Caller{}, fmt.Errorf("%w: jwt: %s", ErrInvalidCredentials, jwtReason(err))
	}
	if !callerName.MatchString(claims.Subject) {
		return Caller{}, fmt.Errorf("%w: jwt: sub must be 1 to %d letters, digits or ._@/+-", ErrInvalidCredentials, maxCallerName)
	}
	return Caller{Name: claims.Subject, Operator: slices.Contains(claims.Roles, RoleClaimOperator), Via: "jwt"}, nil
}

// jwtReason says which rule a JWT broke, without quoting it.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature, or an algorithm other than " + strings.Join(asymmetricAlgs, ", ")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no key in the JWKS for it"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim (exp) is missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	}
	return "invalid"
}
