package transferapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
)

// Environment variables of `starter serve`; each is also a flag named by settings.FlagName, e.g. -starter-addr.
// Temporal's own (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, ...) are in package settings.
const (
	EnvAddr            = "STARTER_ADDR"
	EnvAPITokens       = "STARTER_API_TOKENS"
	EnvAPITokensFile   = "STARTER_API_TOKENS_FILE"
	EnvJWKSURL         = "STARTER_JWKS_URL"
	EnvJWTIssuer       = "STARTER_JWT_ISSUER"
	EnvJWTAudience     = "STARTER_JWT_AUDIENCE"
	EnvRequestTimeout  = "STARTER_REQUEST_TIMEOUT"
	EnvTemporalTimeout = "STARTER_TEMPORAL_TIMEOUT"
	EnvLogLevel        = "LOG_LEVEL"
	// DefaultAddr keeps the API on loopback unless told otherwise: it belongs on the platform's private network.
	DefaultAddr = "127.0.0.1:8081"
)

// Settings is the whole configuration of `starter serve`.
type Settings struct {
	Addr string
	// Tokens are the bearer tokens of STARTER_API_TOKENS and STARTER_API_TOKENS_FILE together.
	Tokens                          []Token
	JWKSURL, JWTIssuer, JWTAudience string
	RequestTimeout, TemporalTimeout time.Duration
	Temporal                        *settings.Temporal
	LogLevel                        slog.Level
}

// TemporalSettings and Level are what the shared start-up needs (cmdmain.Settings).
func (st *Settings) TemporalSettings() *settings.Temporal { return st.Temporal }

// Level is LOG_LEVEL.
func (st *Settings) Level() slog.Level { return st.LogLevel }

// LoadSettings reads the settings from args and env, a flag beating its variable. For -h it prints the usage to
// output and returns flag.ErrHelp; for bad syntax, settings.ErrUsage (also printed); otherwise every missing or
// malformed setting, each a *settings.Error naming its variable and never quoting a token.
func LoadSettings(args []string, env settings.Env, output io.Writer) (*Settings, error) {
	s := settings.New("starter serve", settings.Options{Env: env, Output: output})
	st := &Settings{Temporal: settings.BindTemporal(s, workflows.DefaultTaskQueue)}
	var tokens, tokensFile string
	s.Addr(&st.Addr, settings.Spec{Env: EnvAddr, Default: DefaultAddr,
		Usage: "listen address of the transfer API, host:port; keep it on the platform's private network"})
	s.Secret(&tokens, settings.Spec{Env: EnvAPITokens, OwnFile: true,
		Usage: "bearer tokens, comma-separated name:token or name:token:operator entries (token at least 32 characters)"})
	s.String(&tokensFile, settings.Spec{Env: EnvAPITokensFile,
		Usage: "file of name:token[:operator] entries, one a line, # comments; adds to " + EnvAPITokens})
	s.URL(&st.JWKSURL, settings.Spec{Env: EnvJWKSURL,
		Usage: "JWKS of the platform's identity provider: accept its JWTs (asymmetric, exp required; sub is the caller)"})
	s.String(&st.JWTIssuer, settings.Spec{Env: EnvJWTIssuer, Usage: "the iss a JWT must carry; unset accepts any"})
	s.String(&st.JWTAudience, settings.Spec{Env: EnvJWTAudience, Usage: "an aud a JWT must carry; unset accepts any"})
	s.Duration(&st.RequestTimeout, settings.Spec{Env: EnvRequestTimeout, Default: DefaultRequestTimeout.String(),
		Usage: "bound on a call that waits on a workflow (a start waits for Connect's session); past it, 504"})
	s.Duration(&st.TemporalTimeout, settings.Spec{Env: EnvTemporalTimeout, Default: DefaultTemporalTimeout.String(),
		Usage: "bound on a call that only asks Temporal; past it, 503 with Retry-After"})
	s.Level(&st.LogLevel, settings.Spec{Env: EnvLogLevel, Default: "info", Usage: "debug, info, warn or error"})
	if err := s.Parse(args); err != nil {
		return nil, err
	}
	var problems []error
	bad := func(env string, err error) {
		problems = append(problems, &settings.Error{Env: env, Flag: settings.FlagName(env), Err: err})
	}
	list := tokens
	if tokensFile != "" {
		data, err := os.ReadFile(tokensFile)
		if err != nil {
			bad(EnvAPITokensFile, fmt.Errorf("cannot read the file: %w", errors.Unwrap(err)))
		} else {
			list += "\n" + string(data)
		}
	}
	if tokens != "" || tokensFile != "" {
		t, err := ParseTokens(list)
		if err != nil {
			env := EnvAPITokens
			if tokens == "" {
				env = EnvAPITokensFile
			}
			bad(env, err)
		}
		st.Tokens = t
	} else if st.JWKSURL == "" {
		bad(EnvAPITokens, fmt.Errorf("%w: give %s, %s or %s", settings.ErrRequired, EnvAPITokens, EnvAPITokensFile, EnvJWKSURL))
	}
	if st.JWKSURL == "" && (st.JWTIssuer != "" || st.JWTAudience != "") {
		bad(EnvJWKSURL, errors.New("required when "+EnvJWTIssuer+" or "+EnvJWTAudience+" is set"))
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{{EnvRequestTimeout, st.RequestTimeout}, {EnvTemporalTimeout, st.TemporalTimeout}} {
		if d.v < time.Second {
			bad(d.env, errors.New("must be at least 1s"))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return st, nil
}
