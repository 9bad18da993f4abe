package settings

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/connectflow/connectflow/codec"
)

// Environment variables for Temporal that this package binds to flags. envconfig reads the rest (TEMPORAL_API_KEY,
// TEMPORAL_TLS*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, ...) and the config file's profile.
const (
	EnvTemporalAddress   = "TEMPORAL_ADDRESS"
	EnvTemporalNamespace = "TEMPORAL_NAMESPACE"
	EnvTemporalTaskQueue = "TEMPORAL_TASK_QUEUE"
)

// DialTimeout bounds how long a process waits to reach Temporal at start, so a wrong address fails in seconds.
const DialTimeout = 10 * time.Second

// Temporal is how a process reaches Temporal and which task queue it uses.
type Temporal struct {
	Address   string // overrides the profile's address when set
	Namespace string // overrides the profile's namespace when set
	TaskQueue string
	// CodecKeys encrypt every payload this process writes; set by ClientOptions, nil leaves payloads plain.
	CodecKeys     []codec.Key
	codecKeys     string
	codecKeysFile string
	env           Env
}

// BindTemporal registers -temporal-address, -temporal-namespace and -temporal-task-queue on s.
func BindTemporal(s *Set, defaultTaskQueue string) *Temporal {
	t := &Temporal{env: s.env}
	s.String(&t.Address, Spec{Env: EnvTemporalAddress,
		Usage: "Temporal frontend host:port (else the envconfig profile's, else localhost:7233)"})
	s.String(&t.Namespace, Spec{Env: EnvTemporalNamespace,
		Usage: "Temporal namespace (else the envconfig profile's, else default)"})
	s.String(&t.TaskQueue, Spec{Env: EnvTemporalTaskQueue, Usage: "task queue of the transfer workflows",
		Default: defaultTaskQueue, Required: true})
	s.Secret(&t.codecKeys, Spec{Env: codec.EnvKeys, Usage: "payload encryption keys id:base64key,...; the first encrypts, all decrypt"})
	s.String(&t.codecKeysFile, Spec{Env: codec.EnvKeysFile, Usage: "file with the payload encryption keys, one id:base64key per line"})
	return t
}

// ClientOptions loads the SDK's envconfig (config file profile, then TEMPORAL_* variables) and applies Address and
// Namespace on top, so a flag beats its variable, which beats the file. Namespace is never empty in the result.
func (t *Temporal) ClientOptions() (client.Options, error) {
	env := t.env
	if env == nil {
		env = OSEnv
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
	keys, err := codec.LoadKeys(func(name string) string {
		if name == codec.EnvKeys {
			return t.codecKeys
		}
		return t.codecKeysFile
	})
	if err != nil {
		return client.Options{}, err
	}
	if err := codec.Apply(&opts, keys); err != nil {
		return client.Options{}, fmt.Errorf("payload encryption: %w", err)
	}
	t.CodecKeys = keys
	return opts, nil
}

// HostPort is where opts dials: its HostPort, or the SDK's default when that is empty.
func HostPort(opts client.Options) string {
	if opts.HostPort == "" {
		return client.DefaultHostPort
	}
	return opts.HostPort
}
