package main

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

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// config is everything the command reads from flags and the environment.
type config struct {
	addr            string
	adminAddr       string
	orgID           string
	publicURL       string
	jwksURL         string
	auth            bridge.AuthMode
	tolerance       time.Duration
	clientID        string
	zeroHashSecret  string
	zeroHashKey     *rsa.PublicKey
	zeroHashStrict  bool
	zeroHashWindow  time.Duration
	maxBody         int64
	temporalTimeout time.Duration
	temporal        client.Options // envconfig, then TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the codec keys
	taskQueue       string
}

// loadConfig reads the settings; its error names every missing or malformed variable and never holds a value.
func loadConfig(args []string, env settings.Env, output io.Writer) (config, error) {
	var c config
	s := settings.New("webhookbridge", settings.Options{Env: env, Output: output})
	s.String(&c.addr, settings.Spec{Env: "BRIDGE_ADDR", Default: ":8080", Required: true,
		Usage: "listen address, host:port"})
	s.String(&c.adminAddr, settings.Spec{Env: "BRIDGE_ADMIN_ADDR", Default: "127.0.0.1:9091", Required: true,
		Usage: "admin listen address for /readyz and /metrics, host:port; keep it off the public network"})
	s.String(&c.orgID, settings.Spec{Env: "CONNECT_ORGANIZATION_ID",
		Usage: "our Connect organization id; when set, an SDK relay's session JWT must name it"})
	s.URL(&c.publicURL, settings.Spec{Env: "BRIDGE_PUBLIC_URL", Required: true,
		Usage: "public base URL Connect posts to; the signed URL is it plus the route path"})
	s.URL(&c.jwksURL, settings.Spec{Env: "CONNECT_JWKS_URL", Required: true,
		Usage: "Connect's JWKS, e.g. https://api.connect.xyz/api/v1/jwks"})
	s.Func(settings.Spec{Env: "CONNECT_WEBHOOK_AUTH", Default: string(bridge.AuthSignature),
		Usage: "Connect webhook credentials required: signature (a bearer JWT, if sent, is verified too) or " +
			"signature+jwt (a bearer JWT on every webhook)"}, "mode",
		func(raw string) (err error) { c.auth, err = bridge.ParseAuthMode(raw); return err })
	s.String(&c.clientID, settings.Spec{Env: "CONNECT_CLIENT_ID",
		Usage: "our Connect client id; when set, a webhook's client-id header, if present, must be \"Connect\" or it"})
	s.Func(settings.Spec{Env: "CONNECT_WEBHOOK_TOLERANCE", Default: "300s",
		Usage: "how far a webhook's signed timestamp may be from now, either way; at most 10m"}, "duration",
		func(raw string) (err error) {
			if c.tolerance, err = positiveDuration(raw); err == nil && c.tolerance > bridge.MaxTolerance {
				err = fmt.Errorf("must be at most %v: a longer window lets a captured webhook be replayed longer", bridge.MaxTolerance)
			}
			return err
		})
	s.Secret(&c.zeroHashSecret, settings.Spec{Env: "ZEROHASH_WEBHOOK_SECRET",
		Usage: "HMAC secret of Zero Hash balance webhooks, if Zero Hash signs them with one"})
	s.Func(settings.Spec{Env: "ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE",
		Usage: "PEM file of Zero Hash's webhook RSA public key, if Zero Hash signs balance webhooks with RSA"}, "path",
		func(path string) error {
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("cannot read the key file: %w", err)
			}
			c.zeroHashKey, err = zerohash.ParseWebhookPublicKey(data)
			return err
		})
	s.Bool(&c.zeroHashStrict, settings.Spec{Env: "ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP", Default: "false",
		Usage: "refuse balance webhooks signed only with the legacy (untimed) headers"})
	s.Func(settings.Spec{Env: "ZEROHASH_WEBHOOK_TOLERANCE", Default: zerohash.DefaultWebhookTolerance.String(),
		Usage: "how far a balance webhook's x-zh-hook-timestamp may be from now, either way"}, "duration",
		func(raw string) (err error) { c.zeroHashWindow, err = positiveDuration(raw); return err })
	s.Func(settings.Spec{Env: "BRIDGE_MAX_BODY", Default: "1MiB",
		Usage: "largest request body, in bytes or with a KiB/MiB suffix, at most 1MiB"}, "size",
		func(raw string) (err error) { c.maxBody, err = parseSize(raw); return err })
	s.Func(settings.Spec{Env: "BRIDGE_TEMPORAL_TIMEOUT", Default: bridge.DefaultTemporalTimeout.String(),
		Usage: "bound on each Temporal call a request makes; past it the answer is 503"}, "duration",
		func(raw string) (err error) { c.temporalTimeout, err = positiveDuration(raw); return err })
	temporal := settings.BindTemporal(s, workflows.DefaultTaskQueue)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if c.zeroHashStrict && c.zeroHashSecret == "" && c.zeroHashKey == nil {
		return c, &settings.Error{Env: "ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP", Flag: settings.FlagName("ZEROHASH_WEBHOOK_REQUIRE_TIMESTAMP"),
			Err: errors.New("true needs ZEROHASH_WEBHOOK_SECRET or ZEROHASH_WEBHOOK_PUBLIC_KEY_FILE")}
	}
	// A malformed TEMPORAL_* or codec-key variable is a bad setting too. The codec keys seal the signals, which
	// are payloads: the worker must hold the same keys to read them.
	var err error
	temporal.Logger = slog.New(slog.NewJSONHandler(output, nil)) // as run's logger
	c.temporal, err = temporal.ClientOptions()
	c.taskQueue = temporal.TaskQueue
	return c, err
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
