// Command sandbox runs the Zero Hash Connect sandbox (package connecttest) as a process, for local stacks and
// manual testing:
//
//	go run ./sandbox -addr 127.0.0.1:8090 -deposit-webhook-url http://127.0.0.1:8080/webhooks/connect/deposits
//
// It prints the URL it serves, the environment the worker and the bridge need (secrets included, since they are
// sandbox secrets; never the RSA private keys), then serves until SIGINT or SIGTERM and exits 0. Bad flags exit 2
// with a message naming the flag. The control API (/sandbox/...) is documented in package connecttest.
package main

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/buildinfo"
)

// exitUsage is the exit status for bad flags, as the flag package uses.
const exitUsage = 2

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// outcomeManual leaves every session to the control API, as `go run ./dev -outcome manual` does.
const outcomeManual = "manual"

// deprecatedFlags maps each flag kept from before the sandbox's flags matched dev's to the one to use instead.
var deprecatedFlags = map[string]string{"autoplay": "outcome", "autoplay-after": "pace", "v": "log-level"}

// flagFor names the command-line flag behind each connecttest.Options field it sets.
var flagFor = map[string]string{
	"Addr":                 "-addr",
	"PublicURL":            "-public-url",
	"TokenTTL":             "-token-ttl",
	"SessionTTL":           "-session-ttl",
	"AllowedScopes":        "-scopes",
	"APISecret":            "-api-secret",
	"DepositWebhookURL":    "-deposit-webhook-url",
	"WithdrawalWebhookURL": "-withdrawal-webhook-url",
	"BalanceWebhookURL":    "-balance-webhook-url",
	"AutoPlay":             "-outcome",
	"AutoPlayAfter":        "-pace",
	"SigningKey":           "-signing-key",
}

// run is the whole command; it serves until ctx ends and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts connecttest.Options
	fs.StringVar(&opts.Addr, "addr", "127.0.0.1:8090", "listen address; port 0 picks a free port")
	fs.StringVar(&opts.PublicURL, "public-url", "", "base URL clients use when it is not the listen address (e.g. from a container)")
	fs.StringVar(&opts.ClientID, "client-id", connecttest.DefaultClientID, "Connect API client_id")
	fs.StringVar(&opts.ClientSecret, "client-secret", connecttest.DefaultClientSecret, "Connect API client_secret")
	fs.StringVar(&opts.OrganizationID, "organization-id", connecttest.DefaultOrganizationID, "organization id: the token request's organization_id and the sessions' x-connect-client-id must be it; in session JWTs")
	fs.StringVar(&opts.Audience, "audience", "", "token audience the sandbox accepts (default: its base URL, what a client derives from its API URL)")
	fs.BoolVar(&opts.GuideTokenRequest, "guide-token-request", false, "also accept the guide's token request {client_id, client_secret} without audience, grant_type, organization_id")
	fs.StringVar(&opts.APIKey, "api-key", connecttest.DefaultAPIKey, "Zero Hash platform API key")
	fs.StringVar(&opts.APISecret, "api-secret", connecttest.DefaultAPISecret, "Zero Hash platform API secret (base64)")
	fs.StringVar(&opts.Passphrase, "passphrase", connecttest.DefaultPassphrase, "Zero Hash platform API passphrase")
	fs.StringVar(&opts.WebhookSecret, "webhook-secret", connecttest.DefaultWebhookSecret, "secret that signs balance webhooks")
	fs.StringVar(&opts.DepositWebhookURL, "deposit-webhook-url", "", "where deposit webhooks go (empty: none are sent)")
	fs.StringVar(&opts.WithdrawalWebhookURL, "withdrawal-webhook-url", "", "where withdrawal webhooks go (empty: none are sent)")
	fs.StringVar(&opts.BalanceWebhookURL, "balance-webhook-url", "", "where account_balance.changed webhooks go (empty: none are sent)")
	fs.DurationVar(&opts.TokenTTL, "token-ttl", connecttest.DefaultTokenTTL, "access token lifetime")
	fs.DurationVar(&opts.SessionTTL, "session-ttl", connecttest.DefaultSessionTTL, "session lifetime")
	fs.BoolVar(&opts.WebhookBearer, "webhook-bearer", false, "add the guide's bearer JWT to Connect webhooks (the published headers have none)")
	fs.BoolVar(&opts.NumericJWTTimes, "numeric-jwt-times", false, "session JWT iat/exp as numbers instead of the guide's RFC 3339 strings")
	// The same names as `go run ./dev`'s flags for the same things: -outcome, -pace, -log-level.
	outcome := fs.String("outcome", outcomeManual, "how the sandbox plays each new session by itself: confirmed, failed, none (never finishes) or manual (only through the control API)")
	pace := fs.Duration("pace", connecttest.DefaultAutoPlayAfter, "pause before each webhook of a played session")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info (every session and delivery), warn or error")
	autoplayAfter := fs.Duration("autoplay-after", connecttest.DefaultAutoPlayAfter, "deprecated: use -pace (this one pauses only before the first webhook)")
	scopes := fs.String("scopes", string(connect.ScopeDepositSend)+","+string(connect.ScopeWithdrawalRequest)+","+string(connect.ScopeWithdrawalSend),
		"comma-separated session scopes the organization may use (user:withdrawal:send is the guide's variant)")
	// Every secret flag has a -NAME-file twin, as every secret setting of the other commands has a _FILE variant.
	secretFiles := map[string]*string{}
	for _, name := range []string{"client-secret", "api-secret", "passphrase", "webhook-secret"} {
		secretFiles[name] = fs.String(name+"-file", "", "file holding -"+name+" (a Docker secret); not with -"+name)
	}
	autoplay := fs.String("autoplay", "", "deprecated: use -outcome (empty: manual)")
	signingKey := fs.String("signing-key", "", "PEM file with the RSA private key that signs JWTs and webhooks (default: a fresh key per start)")
	orgKey := fs.String("org-public-key", "", "PEM file with the organization's RSA public key; when set, session requests must be signed")
	verbose := fs.Bool("v", false, "deprecated: use -log-level info")
	version := buildinfo.Flag(fs, stdout)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage // the flag package has printed which flag was wrong
	}
	if version() != nil {
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sandbox: unexpected argument %q (all settings are flags; see -h)\n", fs.Arg(0))
		return exitUsage
	}
	usage := func(flagName string, err error) int {
		fmt.Fprintf(stderr, "sandbox: %s: %v\n", flagName, err)
		return exitUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range slices.Sorted(maps.Keys(secretFiles)) {
		path := *secretFiles[name]
		if path == "" {
			continue
		}
		if given[name] {
			return usage("-"+name+"-file", fmt.Errorf("give -%s or -%s-file, not both", name, name))
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return usage("-"+name+"-file", err)
		}
		if err := fs.Set(name, strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")); err != nil {
			return usage("-"+name+"-file", err)
		}
	}
	for _, old := range slices.Sorted(maps.Keys(deprecatedFlags)) {
		switch name := deprecatedFlags[old]; {
		case given[old] && given[name]:
			return usage("-"+old, fmt.Errorf("is the deprecated name of -%s: give one of them", name))
		case given[old]:
			fmt.Fprintf(stderr, "sandbox: -%s is deprecated: use -%s\n", old, name)
		}
	}
	opts.AutoPlayAfter = *pace
	delay := *pace // dev's -pace: before the first webhook and between the next ones
	if given["autoplay"] {
		*outcome = cmp.Or(*autoplay, outcomeManual)
	}
	if given["autoplay-after"] {
		opts.AutoPlayAfter, delay = *autoplayAfter, 0 // as before: only before the first webhook
	}
	if given["v"] {
		*logLevel = "warn"
		if *verbose {
			*logLevel = "info"
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usage("-log-level", fmt.Errorf("%q is not debug, info, warn or error", *logLevel))
	}
	for _, f := range []struct{ name, value string }{
		{"-client-id", opts.ClientID}, {"-client-secret", opts.ClientSecret}, {"-organization-id", opts.OrganizationID},
		{"-api-key", opts.APIKey}, {"-api-secret", opts.APISecret}, {"-passphrase", opts.Passphrase},
		{"-webhook-secret", opts.WebhookSecret},
	} {
		if strings.TrimSpace(f.value) == "" {
			return usage(f.name, errors.New("must not be empty"))
		}
	}
	for _, sc := range strings.Split(*scopes, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			opts.AllowedScopes = append(opts.AllowedScopes, connect.Scope(sc))
		}
	}
	if len(opts.AllowedScopes) == 0 {
		return usage("-scopes", errors.New("names no scope"))
	}
	switch o := connecttest.Outcome(*outcome); o {
	case outcomeManual:
	case connecttest.OutcomeConfirmed, connecttest.OutcomeFailed, connecttest.OutcomeNone:
		opts.AutoPlay = &connecttest.Play{Outcome: o, Delay: delay}
	default:
		flagName := "-outcome"
		if given["autoplay"] {
			flagName = "-autoplay"
		}
		return usage(flagName, fmt.Errorf("%q is not confirmed, failed, none or %s", *outcome, outcomeManual))
	}
	var err error
	if *signingKey != "" {
		if opts.SigningKey, err = readPrivateKey(*signingKey); err != nil {
			return usage("-signing-key", err)
		}
	}
	if *orgKey != "" {
		if opts.OrgPublicKey, err = readPublicKey(*orgKey); err != nil {
			return usage("-org-public-key", err)
		}
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	srv, err := connecttest.New(opts)
	if err != nil {
		var optErr *connecttest.OptionError
		if errors.As(err, &optErr) && flagFor[optErr.Field] != "" {
			return usage(flagFor[optErr.Field], optErr.Err)
		}
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return 1
	}
	defer srv.Close()
	if _, err := io.WriteString(stdout, banner(srv, opts)); err != nil {
		fmt.Fprintf(stderr, "sandbox: print the environment: %v\n", err)
		return 1
	}
	<-ctx.Done()
	srv.Close()
	fmt.Fprintln(stderr, "sandbox: stopped")
	return 0
}

// banner tells the user where the sandbox is and what to paste into the worker's and bridge's environment.
func banner(srv *connecttest.Server, opts connecttest.Options) string {
	var w strings.Builder
	orNone := func(u string) string {
		if u == "" {
			return "(not set: these webhooks are not sent)"
		}
		return u
	}
	fmt.Fprintf(&w, "Connect sandbox listening on %s (signing key id %s)\n\n", srv.URL, srv.CurrentKeyID())
	fmt.Fprintln(&w, "# Environment for the worker and the webhook bridge:")
	for _, kv := range srv.Env() {
		fmt.Fprintln(&w, kv)
	}
	fmt.Fprintln(&w, "\n# Webhook targets (-deposit-webhook-url, -withdrawal-webhook-url, -balance-webhook-url):")
	fmt.Fprintf(&w, "#   deposit:    %s\n", orNone(opts.DepositWebhookURL))
	fmt.Fprintf(&w, "#   withdrawal: %s\n", orNone(opts.WithdrawalWebhookURL))
	fmt.Fprintf(&w, "#   balance:    %s\n", orNone(opts.BalanceWebhookURL))
	fmt.Fprintf(&w, "# Control API: POST %s/sandbox/sessions/{id}/play, GET %s/sandbox/stats\n", srv.URL, srv.URL)
	fmt.Fprintf(&w, "# Zero Hash ledger: GET %s/movements (X-SCX signed); drop balance webhooks: POST %s/sandbox/balance-webhooks/drop\n", srv.URL, srv.URL)
	return w.String()
}

// readPEM returns the first PEM block of a file.
func readPEM(path string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	return block, nil
}

// readPrivateKey reads an RSA private key in PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") PEM.
func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, want an RSA key", path, key)
		}
		return rsaKey, nil
	}
	return nil, fmt.Errorf("%s holds a %q PEM block, want RSA PRIVATE KEY or PRIVATE KEY", path, block.Type)
}

// readPublicKey reads an RSA public key in PKIX ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY") PEM.
func readPublicKey(path string) (*rsa.PublicKey, error) {
	block, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rsaKey, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, want an RSA key", path, key)
		}
		return rsaKey, nil
	}
	return nil, fmt.Errorf("%s holds a %q PEM block, want PUBLIC KEY or RSA PUBLIC KEY", path, block.Type)
}
