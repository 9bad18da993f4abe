package bridgeapp

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// Environment variables of the webhook bridge; each is also a flag named by settings.FlagName, e.g. -bridge-addr.
// Temporal's own (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, ...) are in package settings.
const (
	EnvAddr                     = "BRIDGE_ADDR"
	EnvAdminAddr                = "BRIDGE_ADMIN_ADDR"
	EnvPublicURL                = "BRIDGE_PUBLIC_URL"
	EnvMaxBody                  = "BRIDGE_MAX_BODY"
	EnvTemporalTimeout          = "BRIDGE_TEMPORAL_TIMEOUT"
	EnvConnectOrganizationID    = "CONNECT_ORGANIZATION_ID"
	EnvConnectJWKSURL           = "CONNECT_JWKS_URL"
	EnvConnectWebhookAuth       = "CONNECT_WEBHOOK_AUTH"
	EnvConnectClientID          = "CONNECT_CLIENT_ID"
	EnvConnectWebhookTolerance  = "CONNECT_WEBHOOK_TOLERANCE"
	EnvZeroHashWebhookSecret    = "ZEROHASH_WEBHOOK_SECRET"
	EnvZeroHashWebhookPublicKey = "ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE"
	EnvZeroHashRequireTimestamp = "ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP"
	EnvZeroHashWebhookTolerance = "ZEROHASH_WEBHOOK_TOLERANCE"
	EnvLogLevel                 = "LOG_LEVEL"
	// DefaultAddr and DefaultAdminAddr: the webhook port on every interface, the admin port on loopback only.
	DefaultAddr      = ":8080"
	DefaultAdminAddr = "127.0.0.1:9091"
)

// Settings is the whole configuration of the webhook bridge process.
type Settings struct {
	// Addr is the public listener (webhooks, SDK relays, /healthz); AdminAddr the operators' (/readyz, /metrics).
	Addr, AdminAddr string
	// PublicURL is the base URL Connect posts to (bridge.Options.PublicURL); JWKSURL is Connect's JWKS.
	PublicURL, JWKSURL string
	// OrganizationID and ConnectClientID are ours at Connect; either may be empty (bridge.Options).
	OrganizationID, ConnectClientID string
	Auth                            bridge.AuthMode
	Tolerance                       time.Duration
	// ZeroHashWebhookSecret and ZeroHashWebhookPublicKey verify balance webhooks; with neither they answer 404.
	ZeroHashWebhookSecret    string
	ZeroHashWebhookPublicKey *rsa.PublicKey
	ZeroHashRequireTimestamp bool
	ZeroHashTolerance        time.Duration
	MaxBody                  int64
	// TemporalTimeout bounds each Temporal call a request makes; the public server's write timeout grows with it.
	TemporalTimeout time.Duration
	Temporal        *settings.Temporal // envconfig, then TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the codec keys
	LogLevel        slog.Level
}

// TemporalSettings and Level are what the shared start-up needs (cmdmain.Settings).
func (st *Settings) TemporalSettings() *settings.Temporal { return st.Temporal }

// Level is LOG_LEVEL.
func (st *Settings) Level() slog.Level { return st.LogLevel }

// LoadSettings reads the bridge's settings from args and env, a flag beating its variable. For -h it prints the
// usage to output and returns flag.ErrHelp; for bad syntax, settings.ErrUsage (also printed); otherwise every
// missing or malformed setting, each a *settings.Error naming its variable and never quoting a value.
func LoadSettings(args []string, env settings.Env, output io.Writer) (*Settings, error) {
	c := &Settings{}
	s := settings.New("webhookbridge", settings.Options{Env: env, Output: output})
	s.String(&c.Addr, settings.Spec{Env: EnvAddr, Default: DefaultAddr, Required: true,
		Usage: "listen address, host:port"})
	s.String(&c.AdminAddr, settings.Spec{Env: EnvAdminAddr, Default: DefaultAdminAddr, Required: true,
		Usage: "admin listen address for /readyz and /metrics, host:port; keep it off the public network"})
	s.String(&c.OrganizationID, settings.Spec{Env: EnvConnectOrganizationID,
		Usage: "our Connect organization id; when set, an SDK relay's session JWT must name it"})
	s.URL(&c.PublicURL, settings.Spec{Env: EnvPublicURL, Required: true,
		Usage: "public base URL Connect posts to; the signed URL is it plus the route path"})
	s.URL(&c.JWKSURL, settings.Spec{Env: EnvConnectJWKSURL, Required: true,
		Usage: "Connect's JWKS, e.g. https://api.connect.xyz/api/v1/jwks"})
	s.Func(settings.Spec{Env: EnvConnectWebhookAuth, Default: string(bridge.AuthSignature),
		Usage: "Connect webhook credentials required: signature (a bearer JWT, if sent, is verified too) or " +
			"signature+jwt (a bearer JWT on every webhook)"}, "mode",
		func(raw string) (err error) { c.Auth, err = bridge.ParseAuthMode(raw); return err })
	s.String(&c.ConnectClientID, settings.Spec{Env: EnvConnectClientID,
		Usage: "our Connect client id; when set, a webhook's client-id header, if present, must be \"Connect\" or it"})
	s.Func(settings.Spec{Env: EnvConnectWebhookTolerance, Default: "300s",
		Usage: "how far a webhook's signed timestamp may be from now, either way; at most 10m"}, "duration",
		func(raw string) (err error) { c.Tolerance, err = replayWindow(raw); return err })
	s.Secret(&c.ZeroHashWebhookSecret, settings.Spec{Env: EnvZeroHashWebhookSecret,
		Usage: "HMAC secret of Zero Hash balance webhooks, if Zero Hash signs them with one"})
	s.Func(settings.Spec{Env: EnvZeroHashWebhookPublicKey,
		Usage: "PEM file of Zero Hash's webhook RSA public key, if Zero Hash signs balance webhooks with RSA"}, "path",
		func(path string) error {
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("cannot read the key file: %w", err)
			}
			c.ZeroHashWebhookPublicKey, err = zerohash.ParseWebhookPublicKey(data)
			return err
		})
	s.Bool(&c.ZeroHashRequireTimestamp, settings.Spec{Env: EnvZeroHashRequireTimestamp, Default: "false",
		Usage: "refuse balance webhooks signed only with the legacy (untimed) headers"})
	s.Func(settings.Spec{Env: EnvZeroHashWebhookTolerance, Default: zerohash.DefaultWebhookTolerance.String(),
		Usage: "how far a balance webhook's x-zh-hook-timestamp may be from now, either way; at most 10m"}, "duration",
		func(raw string) (err error) { c.ZeroHashTolerance, err = replayWindow(raw); return err })
	s.Func(settings.Spec{Env: EnvMaxBody, Default: "1MiB",
		Usage: "largest request body, in bytes or with a KiB/MiB suffix, at most 1MiB"}, "size",
		func(raw string) (err error) { c.MaxBody, err = parseSize(raw); return err })
	s.Func(settings.Spec{Env: EnvTemporalTimeout, Default: bridge.DefaultTemporalTimeout.String(),
		Usage: "bound on each Temporal call a request makes; past it the answer is 503"}, "duration",
		func(raw string) (err error) { c.TemporalTimeout, err = positiveDuration(raw); return err })
	s.Level(&c.LogLevel, settings.Spec{Env: EnvLogLevel, Default: "info", Usage: "debug, info, warn or error"})
	c.Temporal = settings.BindTemporal(s, workflows.DefaultTaskQueue)
	if err := s.Parse(args); err != nil {
		return nil, err
	}
	if c.ZeroHashRequireTimestamp && c.ZeroHashWebhookSecret == "" && c.ZeroHashWebhookPublicKey == nil {
		return nil, &settings.Error{Env: EnvZeroHashRequireTimestamp, Flag: settings.FlagName(EnvZeroHashRequireTimestamp),
			Err: errors.New("true needs " + EnvZeroHashWebhookSecret + " or " + EnvZeroHashWebhookPublicKey)}
	}
	return c, nil
}

// zeroHashSchemes names the balance-webhook schemes configured, for the start log (never a secret).
func (c *Settings) zeroHashSchemes() string {
	var schemes []string
	if c.ZeroHashWebhookSecret != "" {
		schemes = append(schemes, "hmac")
	}
	if c.ZeroHashWebhookPublicKey != nil {
		schemes = append(schemes, "rsa")
	}
	if len(schemes) == 0 {
		return "none"
	}
	if c.ZeroHashRequireTimestamp {
		schemes = append(schemes, "timestamp-required")
	}
	return strings.Join(schemes, "+")
}

// replayWindow reads a webhook tolerance (CONNECT_WEBHOOK_TOLERANCE, ZEROHASH_WEBHOOK_TOLERANCE): from 1s to
// bridge.MaxTolerance, since a captured webhook can be replayed for as long as its window.
func replayWindow(raw string) (time.Duration, error) {
	d, err := positiveDuration(raw)
	if err == nil && d > bridge.MaxTolerance {
		err = fmt.Errorf("must be at most %v: a longer window lets a captured webhook be replayed longer", bridge.MaxTolerance)
	}
	return d, err
}

func positiveDuration(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		return 0, errors.New("must be a duration such as 300s or 5m")
	case d < time.Second:
		return 0, errors.New("must be at least 1s")
	}
	return d, nil
}

// parseSize reads "1048576", "512KiB" or "1MiB", between 1 byte and connect.MaxEventSize.
func parseSize(raw string) (int64, error) {
	digits, unit := raw, int64(1)
	for _, s := range [...]struct {
		suffix string
		unit   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}} {
		if d, ok := strings.CutSuffix(raw, s.suffix); ok {
			digits, unit = d, s.unit
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > connect.MaxEventSize/unit {
		return 0, errors.New("must be a size from 1 to 1MiB, such as 1048576, 512KiB or 1MiB")
	}
	return n * unit, nil
}
