package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/buildinfo"
)

// Default ports: Temporal's and its UI's usual ones, the sandbox's and the bridge's own defaults.
const (
	defaultTemporalPort = 7233
	defaultUIPort       = 8233
	defaultSandboxPort  = 8090
	defaultBridgePort   = 8080
	defaultMetricsPort  = 9090
	defaultCodecPort    = 8234
	defaultPlatformPort = 8091
	defaultAPIPort      = 8081 // starter serve's own default
	defaultDataDir      = ".dev-data"
	defaultPace         = time.Second
	// databaseFileName is the SQLite file inside the data folder.
	databaseFileName = "temporal.db"
)

// errPrinted marks a command-line syntax error the flag package has already printed with the usage.
var errPrinted = errors.New("bad command line")

// outcomeManual leaves every session to the control API: the sandbox plays nothing by itself.
const outcomeManual = "manual"

// config is the command line, checked.
type config struct {
	ip           string
	temporalPort int
	uiPort       int
	sandboxPort  int
	bridgePort   int
	metricsPort  int
	codecPort    int
	platformPort int
	apiPort      int
	dataDir      string // empty with memory
	memory       bool
	noDemo       bool
	serverOnly   bool
	outcome      string // a connecttest.Outcome or outcomeManual
	pace         time.Duration
	logLevel     slog.Level
	serverLevel  slog.Level
	codecKeys    []codec.Key // from CONNECTFLOW_CODEC_KEYS or _FILE; none leaves payloads plain
	cluster      clusterFlags
}

// databaseFile is the SQLite file, or empty for an in-memory server.
func (c config) databaseFile() string {
	if c.memory || c.cluster.postgres != "" {
		return ""
	}
	return filepath.Join(c.dataDir, databaseFileName)
}

// autoPlay is how the sandbox plays each new session, or nil when it waits for the control API.
func (c config) autoPlay() *connecttest.Play {
	if c.outcome == outcomeManual {
		return nil
	}
	return &connecttest.Play{Outcome: connecttest.Outcome(c.outcome), Delay: c.pace}
}

// parseConfig reads the flags. For -h it prints the usage and returns flag.ErrHelp; every other error names the
// flag and has been printed with the usage already when it is a syntax error.
func parseConfig(args []string, output io.Writer) (config, error) {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "Usage: go run ./dev [flags]\n\n%s\n\nFlags:\n", usageIntro)
		fs.PrintDefaults()
	}
	var c config
	var logLevel, serverLevel string
	fs.StringVar(&c.ip, "ip", "127.0.0.1", "address every part listens on")
	fs.IntVar(&c.temporalPort, "temporal-port", defaultTemporalPort, "Temporal frontend (gRPC) port; 0 picks a free port, as for every port")
	fs.IntVar(&c.uiPort, "ui-port", defaultUIPort, "Temporal Web UI port")
	fs.IntVar(&c.sandboxPort, "sandbox-port", defaultSandboxPort, "Connect sandbox port")
	fs.IntVar(&c.bridgePort, "bridge-port", defaultBridgePort, "webhook bridge port")
	fs.IntVar(&c.metricsPort, "metrics-port", defaultMetricsPort, "worker's Prometheus /metrics port")
	fs.IntVar(&c.apiPort, "api-port", defaultAPIPort, "transfer API (starter serve), with a bearer token made for the run")
	fs.IntVar(&c.platformPort, "platform-port", defaultPlatformPort, "demo platform that receives the worker's notifications")
	fs.IntVar(&c.codecPort, "codec-port", defaultCodecPort, "codec server the UI decrypts payloads through")
	fs.StringVar(&c.dataDir, "data", defaultDataDir, "folder holding Temporal's SQLite database, kept across restarts")
	fs.BoolVar(&c.memory, "memory", false, "keep everything in memory: nothing is written, nothing survives a restart")
	fs.BoolVar(&c.noDemo, "no-demo", false, "do not run the demo deposit and withdrawal")
	fs.BoolVar(&c.serverOnly, "server-only", false, "run only Temporal and its UI, for a worker and a bridge run as their own processes")
	fs.StringVar(&c.outcome, "outcome", string(connecttest.OutcomeConfirmed),
		"how the sandbox plays each new session by itself: confirmed, failed, none (never finishes) or manual (only through the control API)")
	fs.DurationVar(&c.pace, "pace", defaultPace, "pause before each webhook of a played session")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of the sandbox, bridge and worker on stderr: debug, info, warn or error")
	fs.StringVar(&serverLevel, "server-log-level", "error", "log level of the Temporal server on stderr")
	c.cluster.register(fs)
	version := buildinfo.Flag(fs, os.Stdout)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return config{}, err
	} else if err != nil {
		return config{}, fmt.Errorf("%w: %w", errPrinted, err)
	}
	if err := version(); err != nil {
		return config{}, err // buildinfo.ErrVersion wraps flag.ErrHelp: exit 0
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q (every setting is a flag; see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var problems []error
	bad := func(flagName, format string, args ...any) {
		problems = append(problems, fmt.Errorf("-%s: %s", flagName, fmt.Sprintf(format, args...)))
	}
	if net.ParseIP(c.ip) == nil {
		bad("ip", "%q is not an IP address", c.ip)
	}
	ports := map[int]string{}
	for _, p := range []struct {
		name string
		port int
	}{{"temporal-port", c.temporalPort}, {"ui-port", c.uiPort}, {"sandbox-port", c.sandboxPort},
		{"bridge-port", c.bridgePort}, {"metrics-port", c.metricsPort}, {"codec-port", c.codecPort},
		{"platform-port", c.platformPort}, {"api-port", c.apiPort}} {
		switch other, taken := ports[p.port]; {
		case p.port < 0 || p.port > 65535:
			bad(p.name, "%d is outside 0..65535", p.port)
		case taken && p.port != 0:
			bad(p.name, "%d is also -%s", p.port, other)
		default:
			ports[p.port] = p.name
		}
	}
	c.cluster.readFile(bad)
	switch {
	case c.cluster.postgres != "":
		c.dataDir = "" // the cluster check below names -data and -memory
	case c.memory && set["data"]:
		bad("data", "cannot be used with -memory, which writes nothing")
	case c.memory:
		c.dataDir = ""
	case strings.TrimSpace(c.dataDir) == "":
		bad("data", "must name a folder (or use -memory)")
	}
	switch connecttest.Outcome(c.outcome) {
	case connecttest.OutcomeConfirmed, connecttest.OutcomeFailed, connecttest.OutcomeNone, outcomeManual:
	default:
		bad("outcome", "%q is not confirmed, failed, none or manual", c.outcome)
	}
	c.cluster.check(set, bad)
	if c.pace <= 0 {
		bad("pace", "%v must be positive", c.pace)
	}
	if c.serverOnly && (set["outcome"] || set["pace"] || set["no-demo"]) {
		bad("server-only", "runs no sandbox and no demo, so -outcome, -pace and -no-demo do not apply")
	}
	for _, l := range []struct {
		name, text string
		level      *slog.Level
	}{{"log-level", logLevel, &c.logLevel}, {"server-log-level", serverLevel, &c.serverLevel}} {
		if err := l.level.UnmarshalText([]byte(l.text)); err != nil {
			bad(l.name, "%q is not debug, info, warn or error", l.text)
		}
	}
	return c, errors.Join(problems...)
}

const usageIntro = `Runs connectflow in one process: an embedded Temporal server (SQLite) and its Web UI, the Connect
sandbox, the worker and the webhook bridge; then a demo deposit and withdrawal. Ctrl-C stops it cleanly.
Every payload is encrypted and the UI decrypts through a codec server: with ` + codec.EnvKeys + ` (or
` + codec.EnvKeysFile + `) when set, else with a key the stack makes and keeps beside its database (` + codecKeyFileName + `)
and prints in the environment block.`
