// Package workerapp builds connectflow's Temporal worker: its settings, the worker with its workflows and
// activities, the search attributes it needs, and its Prometheus metrics. `go run ./worker` and any process that
// embeds a worker (tests, a one-process dev setup) share it.
package workerapp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/platformhook"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry"
	"github.com/connectflow/connectflow/workflows"
	"github.com/connectflow/connectflow/zerohash"
)

// Environment variables of the worker; each is also a flag named by settings.FlagName, e.g. -connect-client-id.
// Temporal's own (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, ...) are in package settings.
const (
	EnvConnectAPIURL            = "CONNECT_API_URL"
	EnvConnectClientID          = "CONNECT_CLIENT_ID"
	EnvConnectClientSecret      = "CONNECT_CLIENT_SECRET"
	EnvConnectOrgKeyFile        = "CONNECT_ORG_KEY_FILE"
	EnvConnectOrganizationID    = "CONNECT_ORGANIZATION_ID"
	EnvConnectAudience          = "CONNECT_AUDIENCE"
	EnvConnectWithdrawalScope   = connect.WithdrawalScopeSetting // "CONNECT_WITHDRAWAL_SCOPE"
	EnvConnectSignRequests      = "CONNECT_SIGN_REQUESTS"
	EnvZeroHashAPIURL           = "ZEROHASH_API_URL"
	EnvZeroHashAPIKey           = "ZEROHASH_API_KEY"
	EnvZeroHashAPISecret        = "ZEROHASH_API_SECRET"
	EnvZeroHashPassphrase       = "ZEROHASH_PASSPHRASE"
	EnvMetricsAddr              = "WORKER_METRICS_ADDR"
	EnvMaxConcurrentActivities  = "WORKER_MAX_CONCURRENT_ACTIVITIES"
	EnvRegisterSearchAttributes = "WORKER_REGISTER_SEARCH_ATTRIBUTES"
	EnvLogLevel                 = "LOG_LEVEL"
	EnvReconcileEvery           = "WORKER_RECONCILE_EVERY"
	EnvGaugeInterval            = "WORKER_GAUGE_INTERVAL"
	// Notifications to the platform (activities.NotifyPlatform); without a URL they are off.
	EnvPlatformWebhookURL        = "PLATFORM_WEBHOOK_URL"
	EnvPlatformWebhookSecret     = "PLATFORM_WEBHOOK_SECRET"
	EnvPlatformWebhookSecretFile = "PLATFORM_WEBHOOK_SECRET_FILE"
	EnvPlatformWebhookRetryFor   = "PLATFORM_WEBHOOK_RETRY_FOR"
	EnvPlatformWebhookTimeout    = "PLATFORM_WEBHOOK_TIMEOUT"
)

// Aliases maps each deprecated name of a worker setting to its WORKER_* name (docs/configuration-naming.md):
// still read, each read logged as one warning naming the new setting.
var Aliases = map[string]string{
	"METRICS_ADDR":               EnvMetricsAddr,
	"MAX_CONCURRENT_ACTIVITIES":  EnvMaxConcurrentActivities,
	"REGISTER_SEARCH_ATTRIBUTES": EnvRegisterSearchAttributes,
	"ZEROHASH_RECONCILE_EVERY":   EnvReconcileEvery,
}

// aliasesOf lists the deprecated names of the setting named env.
func aliasesOf(env string) []string {
	var names []string
	for old, name := range Aliases {
		if name == env {
			names = append(names, old)
		}
	}
	slices.Sort(names)
	return names
}

// Config is what New needs to build a worker.
type Config struct {
	TaskQueue string
	// Connect: BaseURL, ClientID, ClientSecret and OrganizationID required; OrgKey signs requests when set and is
	// required with RequireSignature; WithdrawalScope "" or one of connect.WithdrawalScopes.
	Connect  connect.Options
	ZeroHash zerohash.Options // every field but HTTPClient and Now required
	// MaxConcurrentActivities caps activities running at once on this worker; 0 keeps the SDK's default.
	MaxConcurrentActivities int
	// ReconcileEvery is the interval of the Zero Hash reconciliation schedule EnsureReconcileSchedule keeps;
	// 0 turns it off (pauses an existing schedule).
	ReconcileEvery time.Duration
	// Deployment makes the worker a Worker Deployment version; its zero value is an unversioned worker.
	Deployment Deployment
	// Platform receives every transfer's status changes, signed; an empty URL turns notifications off.
	Platform PlatformConfig
}

// PlatformConfig is where and how the worker notifies the platform.
type PlatformConfig struct {
	URL      string
	Secrets  []platformhook.Secret // newest first; each message carries one signature per secret
	RetryFor time.Duration         // 0: activities.DefaultPlatformRetryFor
	Timeout  time.Duration         // one attempt; 0: activities.DefaultPlatformTimeout
}

// platform is the activities' view of c; nil when notifications are off. Its client is
// activities.NewPlatformHTTPClient's (redirects are not followed), traced when tracing is on.
func (c PlatformConfig) platform() *activities.Platform {
	if c.URL == "" {
		return nil
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = activities.DefaultPlatformTimeout
	}
	return &activities.Platform{URL: c.URL, Secrets: c.Secrets, RetryFor: c.RetryFor,
		HTTPClient: telemetry.HTTPClient(activities.NewPlatformHTTPClient(timeout), telemetry.PeerPlatform)}
}

func platformURL(c PlatformConfig) error {
	if c.URL == "" {
		return nil
	}
	return settings.CheckURL(c.URL)
}

func platformSecrets(c PlatformConfig) error {
	switch {
	case c.URL != "" && len(c.Secrets) == 0:
		return fmt.Errorf("required with %s: notifications are signed (whsec_ + base64 of 24 to 64 random bytes)", EnvPlatformWebhookURL)
	case c.URL == "" && len(c.Secrets) > 0:
		return fmt.Errorf("is set but %s is not: notifications stay off without a URL", EnvPlatformWebhookURL)
	}
	return nil
}

// Validate reports every missing or malformed field, each as a *settings.Error naming the variable that sets it.
func (c Config) Validate() error {
	checks := []struct {
		env string
		err error
	}{
		{settings.EnvTemporalTaskQueue, text(c.TaskQueue)},
		{EnvConnectAPIURL, baseURL(c.Connect.BaseURL)},
		{EnvConnectClientID, text(c.Connect.ClientID)},
		{EnvConnectClientSecret, text(c.Connect.ClientSecret)},
		{EnvConnectOrganizationID, text(c.Connect.OrganizationID)},
		{EnvConnectAudience, optionalText(c.Connect.Audience)},
		{EnvConnectWithdrawalScope, connect.CheckWithdrawalScope(c.Connect.WithdrawalScope)},
		{EnvConnectOrgKeyFile, orgKey(c.Connect)},
		{EnvConnectSignRequests, signRequests(c.Connect)},
		{EnvZeroHashAPIURL, baseURL(c.ZeroHash.BaseURL)},
		{EnvZeroHashAPIKey, text(c.ZeroHash.APIKey)},
		{EnvZeroHashAPISecret, apiSecret(c.ZeroHash.APISecret)},
		{EnvZeroHashPassphrase, text(c.ZeroHash.Passphrase)},
		{EnvMaxConcurrentActivities, nonNegative(c.MaxConcurrentActivities)},
		{EnvPlatformWebhookURL, platformURL(c.Platform)},
		{EnvPlatformWebhookSecret, platformSecrets(c.Platform)},
		{EnvPlatformWebhookRetryFor, nonNegativeDuration(c.Platform.RetryFor)},
		{EnvPlatformWebhookTimeout, platformTimeout(c.Platform.Timeout)},
	}
	nameErr, buildErr := c.Deployment.check()
	checks = append(checks, []struct {
		env string
		err error
	}{{EnvWorkerDeploymentName, nameErr}, {EnvWorkerBuildID, buildErr}}...)
	var problems []error
	for _, check := range checks {
		if check.err != nil {
			problems = append(problems, &settings.Error{Env: check.env, Flag: settings.FlagName(check.env), Err: check.err})
		}
	}
	return errors.Join(problems...)
}

func text(v string) error {
	if v == "" {
		return settings.ErrRequired
	}
	return settings.CheckText(v)
}

func baseURL(v string) error {
	if v == "" {
		return settings.ErrRequired
	}
	return settings.CheckURL(v)
}

func optionalText(v string) error {
	if v == "" {
		return nil
	}
	return settings.CheckText(v)
}

// signRequests fails when signed requests are required but no organization key is configured.
func signRequests(o connect.Options) error {
	if o.RequireSignature && o.OrgKey == nil {
		return fmt.Errorf("is true but %s is not set: signed requests need the organization's private key", EnvConnectOrgKeyFile)
	}
	return nil
}

func orgKey(o connect.Options) error {
	if o.OrgKey == nil {
		return nil // requests go unsigned
	}
	return settings.CheckRSAKey(o.OrgKey)
}

// apiSecret checks the Zero Hash secret the way the client will decode it; the message never quotes it.
func apiSecret(v string) error {
	if err := text(v); err != nil {
		return err
	}
	if _, err := zerohash.ParseSecret(v); err != nil {
		return errors.New("must be the base64 text Zero Hash issued")
	}
	return nil
}

// platformTimeout keeps one attempt inside the activity's own bound (workflows.NotifyActivityOptions, 30 s).
func platformTimeout(d time.Duration) error {
	if d > 25*time.Second {
		return errors.New("must be at most 25s: a notification attempt is cut off after 30s")
	}
	return nonNegativeDuration(d)
}

func nonNegativeDuration(d time.Duration) error {
	if d < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func nonNegative(n int) error {
	if n < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

// Settings is the worker process's whole configuration: the worker, how to reach Temporal, and what to serve.
type Settings struct {
	Worker   Config
	Temporal *settings.Temporal
	// MetricsAddr is where /metrics is served (e.g. ":9090"); empty serves nothing.
	MetricsAddr string
	// AdminAddr is where /readyz (a started, polling worker) and /metrics are served; empty serves nothing.
	AdminAddr string
	// RegisterSearchAttributes adds missing search attributes at start; turn it off where the worker's
	// credentials may not (e.g. they were created with tcld on Temporal Cloud).
	RegisterSearchAttributes bool
	// GaugeInterval is how often the visibility gauges (stalled, timed out, reviews, pending notifications) are
	// counted, with MetricsAddr or AdminAddr; 0 turns the counting off on this worker.
	GaugeInterval time.Duration
	LogLevel      slog.Level
}

// TemporalSettings and Level are what the shared start-up needs (cmdmain.Settings).
func (st *Settings) TemporalSettings() *settings.Temporal { return st.Temporal }

// Level is LOG_LEVEL.
func (st *Settings) Level() slog.Level { return st.LogLevel }

// LoadSettings reads the worker's settings from args and env, a flag beating its variable. For -h it prints the
// usage to output and returns flag.ErrHelp; for bad syntax, settings.ErrUsage (also printed); otherwise every
// missing or malformed setting, each a *settings.Error naming its variable.
func LoadSettings(args []string, env settings.Env, output io.Writer) (*Settings, error) {
	s := settings.New("worker", settings.Options{Env: env, Output: output})
	st := &Settings{Temporal: settings.BindTemporal(s, workflows.DefaultTaskQueue)}
	w := &st.Worker
	s.URL(&w.Connect.BaseURL, settings.Spec{Env: EnvConnectAPIURL, Required: true,
		Usage: "Connect API base URL, e.g. https://api.sandbox.connect.xyz/api/v1"})
	s.String(&w.Connect.ClientID, settings.Spec{Env: EnvConnectClientID, Required: true,
		Usage: "Connect API client_id"})
	s.Secret(&w.Connect.ClientSecret, settings.Spec{Env: EnvConnectClientSecret, Required: true,
		Usage: "Connect API client_secret"})
	s.String(&w.Connect.OrganizationID, settings.Spec{Env: EnvConnectOrganizationID, Required: true,
		Usage: "Connect organization_id (from Zero Hash): sent in the token request and as x-connect-client-id"})
	s.String(&w.Connect.Audience, settings.Spec{Env: EnvConnectAudience,
		Usage: "token request audience; unset uses the scheme and host of CONNECT_API_URL"})
	s.Func(settings.Spec{Env: EnvConnectWithdrawalScope, Default: string(connect.DefaultWithdrawalScope),
		Usage: "withdrawal session scope: user:withdrawal:request (the OpenAPI's) or user:withdrawal:send (the guide's)"},
		"scope", func(raw string) error {
			if err := connect.CheckWithdrawalScope(connect.Scope(raw)); err != nil {
				return err
			}
			w.Connect.WithdrawalScope = connect.Scope(raw)
			return nil
		})
	s.RSAPrivateKeyFile(&w.Connect.OrgKey, settings.Spec{Env: EnvConnectOrgKeyFile,
		Usage: "PEM RSA private key (PKCS#1 or PKCS#8) that signs Connect requests; unset sends them unsigned"})
	s.Bool(&w.Connect.RequireSignature, settings.Spec{Env: EnvConnectSignRequests, Default: "false",
		Usage: "require signed Connect requests: the worker does not start without CONNECT_ORG_KEY_FILE"})
	s.URL(&w.ZeroHash.BaseURL, settings.Spec{Env: EnvZeroHashAPIURL, Required: true,
		Usage: "Zero Hash platform API base URL, e.g. https://api.cert.zerohash.com"})
	s.Secret(&w.ZeroHash.APIKey, settings.Spec{Env: EnvZeroHashAPIKey, Required: true,
		Usage: "Zero Hash API key"})
	s.Secret(&w.ZeroHash.APISecret, settings.Spec{Env: EnvZeroHashAPISecret, Required: true,
		Usage: "Zero Hash API secret (base64)"})
	s.Secret(&w.ZeroHash.Passphrase, settings.Spec{Env: EnvZeroHashPassphrase, Required: true,
		Usage: "Zero Hash API passphrase"})
	s.Int(&w.MaxConcurrentActivities, settings.Spec{Env: EnvMaxConcurrentActivities, Aliases: aliasesOf(EnvMaxConcurrentActivities),
		Usage: "activities run at once by this worker; 0 keeps the SDK default"})
	s.Duration(&w.ReconcileEvery, settings.Spec{Env: EnvReconcileEvery, Default: "5m", Aliases: aliasesOf(EnvReconcileEvery),
		Usage: "how often to reconcile Zero Hash movements (GET /movements) by a Temporal Schedule; 0 turns it off"})
	var secrets, secretsFile string
	s.URL(&w.Platform.URL, settings.Spec{Env: EnvPlatformWebhookURL,
		Usage: "the platform's webhook: every status change of every transfer is posted there, signed; unset turns notifications off"})
	s.Secret(&secrets, settings.Spec{Env: EnvPlatformWebhookSecret, OwnFile: true,
		Usage: "Standard Webhooks secrets, whsec_ + base64, comma-separated, newest first (each signs every message)"})
	s.String(&secretsFile, settings.Spec{Env: EnvPlatformWebhookSecretFile,
		Usage: "file holding the whsec_ secrets, one a line; adds to " + EnvPlatformWebhookSecret})
	s.Duration(&w.Platform.RetryFor, settings.Spec{Env: EnvPlatformWebhookRetryFor, Default: activities.DefaultPlatformRetryFor.String(),
		Usage: "how long one notification is retried before it goes to review"})
	s.Duration(&w.Platform.Timeout, settings.Spec{Env: EnvPlatformWebhookTimeout, Default: activities.DefaultPlatformTimeout.String(),
		Usage: "one delivery attempt without an answer within it counts as failed"})
	s.Addr(&st.MetricsAddr, settings.Spec{Env: EnvMetricsAddr, Aliases: aliasesOf(EnvMetricsAddr),
		Usage: "serve Prometheus /metrics here, e.g. :9090; unset serves none"})
	s.Addr(&st.AdminAddr, settings.Spec{Env: EnvWorkerAdminAddr,
		Usage: "serve /readyz (started and polling) and /metrics here, e.g. 127.0.0.1:9091; unset serves none"})
	s.Bool(&st.RegisterSearchAttributes, settings.Spec{Env: EnvRegisterSearchAttributes, Default: "true",
		Aliases: aliasesOf(EnvRegisterSearchAttributes),
		Usage:   "add missing search attributes to the namespace at start"})
	s.Duration(&st.GaugeInterval, settings.Spec{Env: EnvGaugeInterval, Default: DefaultVisibilityInterval.String(),
		Usage: "how often this worker counts the visibility gauges (4 CountWorkflowExecutions each time); 0 turns them off, e.g. on all replicas but a few"})
	s.Level(&st.LogLevel, settings.Spec{Env: EnvLogLevel, Default: "info", Usage: "debug, info, warn or error"})
	s.Bool(&w.Deployment.UseVersioning, settings.Spec{Env: EnvWorkerVersioning, Default: "false",
		Usage: "run as the Worker Deployment version WORKER_DEPLOYMENT_NAME + WORKER_BUILD_ID: transfers stay on the version that started them; a version gets work once it is made current (docs/versioning.md)"})
	s.String(&w.Deployment.Name, settings.Spec{Env: EnvWorkerDeploymentName, Default: DefaultDeploymentName,
		Usage: "Worker Deployment this worker belongs to, with WORKER_VERSIONING"})
	s.String(&w.Deployment.BuildID, settings.Spec{Env: EnvWorkerBuildID,
		Usage: "this build's id in the deployment, with WORKER_VERSIONING; unset: the binary's VCS revision, else its module version, else a hash of the executable"})
	if err := s.Parse(args); err != nil {
		return nil, err
	}
	w.TaskQueue = st.Temporal.TaskQueue
	if w.Deployment.UseVersioning && w.Deployment.BuildID == "" {
		id, err := DefaultBuildID()
		if err != nil {
			return nil, &settings.Error{Env: EnvWorkerBuildID, Flag: settings.FlagName(EnvWorkerBuildID),
				Err: fmt.Errorf("not set, and no default from the build: %w", err)}
		}
		w.Deployment.BuildID = id
	}
	if err := loadPlatformSecrets(&w.Platform, secrets, secretsFile); err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if err := gaugeInterval(st.GaugeInterval); err != nil {
		return nil, &settings.Error{Env: EnvGaugeInterval, Flag: settings.FlagName(EnvGaugeInterval), Err: err}
	}
	return st, nil
}

// minGaugeInterval keeps one worker's counts (4 visibility calls a round) well inside a namespace's visibility
// rate limit.
const minGaugeInterval = time.Second

// gaugeInterval accepts 0 (off) or at least minGaugeInterval.
func gaugeInterval(d time.Duration) error {
	if d != 0 && d < minGaugeInterval {
		return fmt.Errorf("must be 0 (off) or at least %s", minGaugeInterval)
	}
	return nil
}

// loadPlatformSecrets parses PLATFORM_WEBHOOK_SECRET and the file of PLATFORM_WEBHOOK_SECRET_FILE together; an
// error names the variable and never quotes a secret.
func loadPlatformSecrets(p *PlatformConfig, list, file string) error {
	env := EnvPlatformWebhookSecret
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return &settings.Error{Env: EnvPlatformWebhookSecretFile, Flag: settings.FlagName(EnvPlatformWebhookSecretFile),
				Err: fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))}
		}
		list += "\n" + string(data)
		if strings.TrimSpace(list) == strings.TrimSpace(string(data)) {
			env = EnvPlatformWebhookSecretFile
		}
	}
	if strings.TrimSpace(list) == "" {
		return nil
	}
	secrets, err := platformhook.ParseSecrets(list)
	if err != nil {
		return &settings.Error{Env: env, Flag: settings.FlagName(env), Err: err}
	}
	p.Secrets = secrets
	return nil
}
