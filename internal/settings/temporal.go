package settings

import (
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/telemetry"
)

// Environment variables for Temporal that this package binds to flags. envconfig reads the rest (TEMPORAL_API_KEY,
// TEMPORAL_TLS*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, ...) and the config file's profile.
const (
	EnvTemporalAddress   = "TEMPORAL_ADDRESS"
	EnvTemporalNamespace = "TEMPORAL_NAMESPACE"
	EnvTemporalTaskQueue = "TEMPORAL_TASK_QUEUE"
	// EnvTemporalAPIKey is read here (not only by envconfig) so it has a _FILE variant like every secret.
	EnvTemporalAPIKey = "TEMPORAL_API_KEY"
	// EnvCodecPlaintext=true lets a process run without payload keys, writing session JWTs and emails into
	// Temporal's history in clear; without it, and without keys, ClientOptions refuses (ErrNoPayloadKeys).
	EnvCodecPlaintext = "CONNECTFLOW_CODEC_PLAINTEXT"
	// EnvCodecStrict=true refuses every unencrypted payload, once a deployment's histories are all encrypted.
	EnvCodecStrict = "CONNECTFLOW_CODEC_STRICT"
	// mTLS to Temporal: envconfig's own names, bound here so every binary lists them in -h and takes them as flags.
	EnvTemporalTLSCert       = "TEMPORAL_TLS_CLIENT_CERT_PATH"
	EnvTemporalTLSKey        = "TEMPORAL_TLS_CLIENT_KEY_PATH"
	EnvTemporalTLSCA         = "TEMPORAL_TLS_SERVER_CA_CERT_PATH"
	EnvTemporalTLSServerName = "TEMPORAL_TLS_SERVER_NAME"
)

// ErrNoPayloadKeys is ClientOptions' refusal to run without payload encryption keys unless plaintext was chosen.
var ErrNoPayloadKeys = fmt.Errorf("no payload encryption keys: set %s (or %s%s), or %s=true to write payloads (session JWTs, emails) in plaintext",
	codec.EnvKeys, codec.EnvKeys, FileSuffix, EnvCodecPlaintext)

// DialTimeout bounds how long a process waits to reach Temporal at start, so a wrong address fails in seconds.
const DialTimeout = 10 * time.Second

// Temporal is how a process reaches Temporal and which task queue it uses.
type Temporal struct {
	Address   string // overrides the profile's address when set
	Namespace string // overrides the profile's namespace when set
	TaskQueue string
	// CodecKeys encrypt every payload this process writes; set by ClientOptions, nil leaves payloads plain.
	CodecKeys []codec.Key
	// Plaintext is true when the process was told to run without payload keys (EnvCodecPlaintext).
	Plaintext bool
	// Strict refuses unencrypted payloads (EnvCodecStrict).
	Strict bool
	// Logger receives the codec's warnings and ClientOptions' plaintext warning; nil: slog.Default().
	Logger    *slog.Logger
	codecKeys string
	overlay   map[string]*string // envconfig variables bound here, by name
	env       Env
	set       *Set
}

// Deprecated lists the deprecated setting names the process's Set read (Set.Deprecated): every process binds
// Temporal, so its start-up (internal/cmdmain) warns of them through here once its logger exists.
func (t *Temporal) Deprecated() []Deprecation {
	if t.set == nil {
		return nil
	}
	return t.set.Deprecated()
}

// BindTemporal registers -temporal-address, -temporal-namespace and -temporal-task-queue on s.
func BindTemporal(s *Set, defaultTaskQueue string) *Temporal {
	t := &Temporal{env: s.env, set: s}
	s.String(&t.Address, Spec{Env: EnvTemporalAddress,
		Usage: "Temporal frontend host:port (else the envconfig profile's, else localhost:7233)"})
	s.String(&t.Namespace, Spec{Env: EnvTemporalNamespace,
		Usage: "Temporal namespace (else the envconfig profile's, else default)"})
	s.String(&t.TaskQueue, Spec{Env: EnvTemporalTaskQueue, Usage: "task queue of the transfer workflows",
		Default: defaultTaskQueue, Required: true})
	s.Secret(&t.codecKeys, Spec{Env: codec.EnvKeys, FileText: codec.KeysFileText,
		Usage: "payload encryption keys id:base64key,...; the first encrypts, all decrypt (the _FILE: one per line)"})
	s.Bool(&t.Plaintext, Spec{Env: EnvCodecPlaintext,
		Usage: "run without payload keys: session JWTs and emails go into Temporal's history in clear"})
	s.Bool(&t.Strict, Spec{Env: EnvCodecStrict, Usage: "refuse every unencrypted payload (once all histories are encrypted)"})
	t.overlay = map[string]*string{}
	bind := func(env string, secret bool, usage string) {
		p := new(string)
		t.overlay[env] = p
		if secret {
			s.Secret(p, Spec{Env: env, Usage: usage})
		} else {
			s.String(p, Spec{Env: env, Usage: usage})
		}
	}
	bind(EnvTemporalAPIKey, true, "Temporal API key (else the envconfig profile's); implies TLS")
	bind(EnvTemporalTLSCert, false, "PEM client certificate for mTLS to Temporal (with "+EnvTemporalTLSKey+")")
	bind(EnvTemporalTLSKey, false, "PEM private key of the mTLS client certificate")
	bind(EnvTemporalTLSCA, false, "PEM CA that signed Temporal's server certificate (else the system roots)")
	bind(EnvTemporalTLSServerName, false, "server name to verify Temporal's certificate against (else the address's host)")
	return t
}

// ClientOptions loads the SDK's envconfig (config file profile, then TEMPORAL_* variables) and applies Address and
// Namespace on top, so a flag beats its variable, which beats the file. Namespace is never empty in the result.
// When tracing is on (internal/telemetry), the options carry its interceptors.
func (t *Temporal) ClientOptions() (client.Options, error) {
	env := t.env
	if env == nil {
		env = OSEnv
	}
	set := map[string]string{}
	for name, p := range t.overlay {
		if *p != "" {
			set[name] = *p
		}
	}
	if len(set) > 0 {
		env = overlayEnv{Env: env, set: set}
	}
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{EnvLookup: env})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client settings: %w", err)
	}
	if t.Address != "" {
		opts.HostPort = t.Address
	}
	if t.Namespace != "" {
		opts.Namespace = t.Namespace
	}
	if opts.Namespace == "" {
		opts.Namespace = client.DefaultNamespace
	}
	var keys []codec.Key
	logger := t.Logger
	if logger == nil {
		logger = slog.Default()
	}
	switch {
	case t.codecKeys != "" && t.Plaintext:
		return client.Options{}, fmt.Errorf("%s=true and payload keys are both set: choose one", EnvCodecPlaintext)
	case t.codecKeys != "":
		if keys, err = codec.ParseKeys(t.codecKeys); err != nil {
			return client.Options{}, fmt.Errorf("%s: %w", codec.EnvKeys, err)
		}
	case t.Strict:
		return client.Options{}, fmt.Errorf("%s=true needs payload keys (%s)", EnvCodecStrict, codec.EnvKeys)
	case !t.Plaintext:
		return client.Options{}, ErrNoPayloadKeys
	default:
		logger.Warn("payload encryption is off (" + EnvCodecPlaintext + "=true): session JWTs and emails are written to Temporal's history in plaintext")
	}
	if err := codec.ApplyWithOptions(&opts, keys, codec.Options{Strict: t.Strict, Logger: logger}); err != nil {
		return client.Options{}, fmt.Errorf("payload encryption: %w", err)
	}
	t.CodecKeys = keys
	// Tracing (when otelsetup.Setup turned it on): every client, and every worker built on one, is traced.
	if err := telemetry.AddTemporal(&opts); err != nil {
		return client.Options{}, err
	}
	return opts, nil
}

// HostPort is where opts dials: its HostPort, or the SDK's default when that is empty.
func HostPort(opts client.Options) string {
	if opts.HostPort == "" {
		return client.DefaultHostPort
	}
	return opts.HostPort
}

// overlayEnv answers envconfig with the settings bound here (a flag, or a secret's _FILE), else the environment.
type overlayEnv struct {
	Env
	set map[string]string
}

func (e overlayEnv) LookupEnv(name string) (string, bool) {
	if v, ok := e.set[name]; ok {
		return v, true
	}
	return e.Env.LookupEnv(name)
}
