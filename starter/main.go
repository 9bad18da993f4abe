// Command starter starts Connect transfers and onboarding from the command line, through package
// starter/transfer, and prints the result as one JSON object on stdout:
//
//	starter deposit    -transfer-id T -reference-id R [-metadata k=v]... [-account-label L] [-await-ledger] [-if-busy supersede|refuse]
//	starter withdrawal -transfer-id T -reference-id R -asset A -network N -amount X [-account-label L] [-if-busy ...]
//	starter status     -kind deposit|withdrawal -transfer-id T
//	starter onboarding -email E [-phone P]
//	starter resolve    (-kind K -transfer-id T | -review-id ID) -outcome confirmed|failed -reason R -operator O
//	starter redeliver  -review-id ID -reason R -operator O [-kind K -transfer-id T]
//	starter serve      [-starter-addr A] ...: the transfer API over HTTP (package transferapi); "starter serve -h"
//	starter reconcile
//	starter version    (or -version, also after any command): the module version and VCS revision
//
// Temporal is reached as the worker reaches it (envconfig, TEMPORAL_* variables, -temporal-* flags).
// Exit status: 0 on success; 1 with a one-line "starter: ..." on stderr when the call fails; 2 for bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/buildinfo"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/telemetry/otelsetup"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/workflows"
)

const (
	exitFailure = 1
	exitUsage   = 2
	// defaultTimeout bounds a whole call; a deposit waits for Connect to open its session.
	defaultTimeout = 60 * time.Second
)

const overview = `usage: starter <command> [flags]

commands:
  deposit      start a deposit and print its Connect session (workflow_id, run_id, session_id, jwt, expires_at)
  withdrawal   start a withdrawal and print its Connect session
  status       print a transfer's status and events
  onboarding   issue a Zero Hash onboarding token
  resolve      record an operator's decision on a stalled or timed-out transfer, or on a review
  redeliver    deliver the event a review holds to its transfer (applied once), recording who and why
  serve        serve the transfer API over HTTP for platform backends in any language (until SIGINT/SIGTERM)
  reconcile    run one Zero Hash reconciliation (GET /movements) now and print its summary
  version      print the module version and VCS revision of this binary (also -version)

"starter <command> -h" lists the command's flags.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], settings.OSEnv, os.Stdout, os.Stderr))
}

// command is one subcommand: it registers its flags, then checks them and returns the call to make.
type command func(fs *flag.FlagSet) (validate func() (call, error))

// call does the command's work against Temporal and returns what to print.
type call func(ctx context.Context, tr *transfer.Client) (any, error)

var commands = map[string]command{
	"deposit":    startCommand(connect.KindDeposit),
	"withdrawal": startCommand(connect.KindWithdrawal),
	"status":     statusCommand,
	"onboarding": onboardingCommand,
	"resolve":    resolveCommand,
	"redeliver":  redeliverCommand,
	"reconcile":  reconcileCommand,
}

func run(ctx context.Context, args []string, env settings.Env, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, overview)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, overview)
		return 0
	case "version", "-version", "--version":
		buildinfo.Fprint(stdout, "starter")
		return 0
	}
	if name == "serve" {
		return transferapi.Main(ctx, args[1:], env, stderr)
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "starter: unknown command %q\n%s", name, overview)
		return exitUsage
	}

	s := settings.New("starter "+name, settings.Options{Env: env, Output: stderr, VersionOutput: stdout})
	temporalSettings := settings.BindTemporal(s, workflows.DefaultTaskQueue)
	fs := s.FlagSet()
	timeout := fs.Duration("timeout", defaultTimeout, "bound on the whole call, reaching Temporal included")
	validate := cmd(fs)
	usageError := func(msg string) int {
		fmt.Fprintf(stderr, "starter: %s: %s\n", name, msg)
		fs.Usage()
		return exitUsage
	}
	switch err := s.Parse(args[1:]); {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, settings.ErrUsage):
		return exitUsage // already printed with the usage
	case err != nil:
		return usageError(oneLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *timeout <= 0 {
		return usageError("-timeout must be positive")
	}
	do, err := validate()
	if err != nil {
		return usageError(err.Error())
	}
	stopTracing, err := otelsetup.Start(ctx, "connectflow-starter", stderr) // when OTEL_* says so (docs/tracing.md)
	if err != nil {
		return usageError(err.Error())
	}
	defer stopTracing()
	temporalSettings.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	opts, err := temporalSettings.ClientOptions()
	if err != nil {
		return usageError(oneLine(err.Error()))
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	out, err := dialAndCall(ctx, opts, temporalSettings.TaskQueue, do)
	if err != nil {
		msg := describe(err)
		if ctx.Err() != nil {
			msg += fmt.Sprintf(" (no answer within -timeout %s", *timeout)
			if !errors.Is(err, errUnreachable) {
				msg += fmt.Sprintf(": is a worker polling task queue %s?", temporalSettings.TaskQueue)
			}
			msg += ")"
		}
		fmt.Fprintln(stderr, "starter: "+oneLine(msg))
		return exitFailure
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintln(stderr, "starter: write result: "+oneLine(err.Error()))
		return exitFailure
	}
	return 0
}

// errUnreachable marks a failure to connect, as opposed to a call that got no answer.
var errUnreachable = errors.New("cannot reach Temporal")

// dialAndCall connects within settings.DialTimeout (so a wrong address fails in seconds) and makes the call.
func dialAndCall(ctx context.Context, opts client.Options, taskQueue string, do call) (any, error) {
	// The SDK's own log lines would break the one-line error contract on stderr.
	opts.Logger = log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	dialCtx, cancel := context.WithTimeout(ctx, settings.DialTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", errUnreachable, settings.HostPort(opts), err)
	}
	defer c.Close()
	return do(ctx, transfer.NewClient(c, transfer.Options{TaskQueue: taskQueue}))
}

// startCommand is deposit or withdrawal: both start a transfer and print its session.
func startCommand(kind connect.Kind) command {
	return func(fs *flag.FlagSet) func() (call, error) {
		in := workflows.TransferInput{Kind: kind}
		metadata := metadataFlag{}
		fs.StringVar(&in.TransferID, "transfer-id", "", "the platform's own id for this transfer (required; one workflow per id)")
		fs.StringVar(&in.ReferenceID, "reference-id", "", "the platform's id of the user, Connect's reference_id (required)")
		fs.Var(metadata, "metadata", "session metadata `key=value`; repeat for more")
		fs.StringVar(&in.AccountLabel, "account-label", "", "Zero Hash account label")
		fs.BoolVar(&in.AwaitLedger, "await-ledger", false,
			"keep the transfer open after confirmed until its Zero Hash ledger movement arrives")
		fs.StringVar((*string)(&in.IfBusy), "if-busy", string(workflows.IfBusySupersede),
			"when another transfer of the reference awaits its user: supersede it, or refuse to start")
		if kind == connect.KindWithdrawal {
			fs.StringVar(&in.Asset, "asset", "", "asset to withdraw, e.g. BTC (required)")
			fs.StringVar(&in.Network, "network", "", "network to withdraw on, e.g. bitcoin (required)")
			fs.StringVar(&in.Amount, "amount", "", "amount to withdraw, a decimal such as 0.013 (required)")
		}
		return func() (call, error) {
			need := map[string]string{"transfer-id": in.TransferID, "reference-id": in.ReferenceID}
			if kind == connect.KindWithdrawal {
				need["asset"], need["network"], need["amount"] = in.Asset, in.Network, in.Amount
			}
			if err := required(need); err != nil {
				return nil, err
			}
			if kind == connect.KindWithdrawal && (!decimal.MatchString(in.Amount) || strings.Trim(in.Amount, "0.") == "") {
				return nil, errors.New("-amount must be a positive decimal such as 0.013")
			}
			if len(metadata) > 0 {
				in.Metadata = metadata
			}
			if err := in.Validate(); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tr *transfer.Client) (any, error) { return tr.Start(ctx, in) }, nil
		}
	}
}

// decimal is an unsigned decimal number without exponent, as Connect takes amounts.
var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

func statusCommand(fs *flag.FlagSet) func() (call, error) {
	kind := fs.String("kind", "", "deposit or withdrawal (required)")
	transferID := fs.String("transfer-id", "", "the platform's id of the transfer (required)")
	return func() (call, error) {
		if err := required(map[string]string{"kind": *kind, "transfer-id": *transferID}); err != nil {
			return nil, err
		}
		if k := connect.Kind(*kind); !k.Valid() {
			return nil, fmt.Errorf("-kind must be %s or %s", connect.KindDeposit, connect.KindWithdrawal)
		}
		return func(ctx context.Context, tr *transfer.Client) (any, error) {
			st, err := tr.Status(ctx, connect.Kind(*kind), *transferID)
			if err != nil {
				return nil, err
			}
			return withoutJWT(st), nil
		}, nil
	}
}

// statusView is a transfer's whole record without the session JWT, which only the user's frontend should hold.
type statusView struct {
	workflows.TransferState
	Session *sessionView `json:"session,omitempty"` // shadows TransferState.Session
}

type sessionView struct {
	SessionID string    `json:"session_id"`
	AccountID string    `json:"account_id,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

func withoutJWT(st workflows.TransferState) statusView {
	v := statusView{TransferState: st}
	if s := st.Session; s != nil {
		v.Session = &sessionView{SessionID: s.SessionID, AccountID: s.AccountID, ExpiresAt: s.ExpiresAt}
	}
	v.TransferState.Session = nil
	return v
}

func onboardingCommand(fs *flag.FlagSet) func() (call, error) {
	var req workflows.OnboardingRequest
	fs.StringVar(&req.Email, "email", "", "the customer's email address (required)")
	fs.StringVar(&req.Phone, "phone", "", "the customer's phone number")
	return func() (call, error) {
		if err := required(map[string]string{"email": req.Email}); err != nil {
			return nil, err
		}
		// The address is PII: the message says what is wrong without repeating it.
		if addr, err := mail.ParseAddress(req.Email); err != nil || addr.Address != req.Email {
			return nil, errors.New("-email must be a bare email address such as name@example.com")
		}
		return func(ctx context.Context, tr *transfer.Client) (any, error) {
			token, err := tr.Onboarding(ctx, req)
			if err != nil {
				return nil, err
			}
			return struct {
				Token string `json:"token"`
			}{token}, nil
		}, nil
	}
}

// resolveCommand records an audited operator decision: on a transfer by kind and id, or on a review workflow.
func resolveCommand(fs *flag.FlagSet) func() (call, error) {
	kind := fs.String("kind", "", "deposit or withdrawal (with -transfer-id)")
	transferID := fs.String("transfer-id", "", "the platform's id of a stalled or timed-out transfer")
	reviewID := fs.String("review-id", "", "the workflow id of a review (instead of -kind and -transfer-id)")
	var r workflows.Resolution
	fs.StringVar((*string)(&r.Outcome), "outcome", "", "confirmed or failed (required)")
	fs.StringVar(&r.Reason, "reason", "", "why, for the audit trail (required)")
	fs.StringVar(&r.Operator, "operator", "", "who decides, for the audit trail (required)")
	return func() (call, error) {
		if err := required(map[string]string{"outcome": string(r.Outcome), "reason": r.Reason, "operator": r.Operator}); err != nil {
			return nil, err
		}
		if err := r.Validate(); err != nil {
			return nil, errors.New(describe(err))
		}
		if *reviewID != "" {
			if *kind != "" || *transferID != "" {
				return nil, errors.New("give either -review-id or -kind with -transfer-id, not both")
			}
			return func(ctx context.Context, tr *transfer.Client) (any, error) {
				return tr.ResolveReview(ctx, *reviewID, r)
			}, nil
		}
		if err := required(map[string]string{"kind": *kind, "transfer-id": *transferID}); err != nil {
			return nil, err
		}
		if k := connect.Kind(*kind); !k.Valid() {
			return nil, fmt.Errorf("-kind must be %s or %s", connect.KindDeposit, connect.KindWithdrawal)
		}
		return func(ctx context.Context, tr *transfer.Client) (any, error) {
			return tr.ResolveTransfer(ctx, connect.Kind(*kind), *transferID, r)
		}, nil
	}
}

// redeliverCommand delivers the event a review holds to its transfer, audited like resolve (transfer.Redeliver).
func redeliverCommand(fs *flag.FlagSet) func() (call, error) {
	reviewID := fs.String("review-id", "", "the workflow id of the review holding the event (required)")
	fs.StringVar(reviewID, "review", "", "same as -review-id")
	var req transfer.RedeliverRequest
	fs.StringVar(&req.Reason, "reason", "", "why, for the audit trail (required)")
	fs.StringVar(&req.Operator, "operator", "", "who decides, for the audit trail (required)")
	fs.StringVar(&req.Operator, "actor", "", "same as -operator")
	kind := fs.String("kind", "", "deposit or withdrawal: with -transfer-id, the transfer to deliver to (default: the event's own)")
	fs.StringVar(&req.TransferID, "transfer-id", "", "with -kind, the platform's id of the transfer to deliver to")
	return func() (call, error) {
		if err := required(map[string]string{"review-id": *reviewID, "reason": req.Reason, "operator": req.Operator}); err != nil {
			return nil, err
		}
		if *kind != "" || req.TransferID != "" {
			if err := required(map[string]string{"kind": *kind, "transfer-id": req.TransferID}); err != nil {
				return nil, fmt.Errorf("%w (both name the transfer to deliver to)", err)
			}
			if k := connect.Kind(*kind); !k.Valid() {
				return nil, fmt.Errorf("-kind must be %s or %s", connect.KindDeposit, connect.KindWithdrawal)
			}
			req.Kind = connect.Kind(*kind)
		}
		return func(ctx context.Context, tr *transfer.Client) (any, error) {
			return tr.Redeliver(ctx, *reviewID, req)
		}, nil
	}
}

// reconcileCommand runs one reconciliation now, through the schedule when it exists, and prints its summary.
func reconcileCommand(*flag.FlagSet) func() (call, error) {
	return func() (call, error) {
		return func(ctx context.Context, tr *transfer.Client) (any, error) { return tr.Reconcile(ctx) }, nil
	}
}

// required names every empty flag among flags (flag name -> value), in a stable order.
func required(flags map[string]string) error {
	var missing []string
	for name, v := range flags {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, "-"+name)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s is required", missing[0])
	}
	slices.Sort(missing)
	return fmt.Errorf("%s are required", strings.Join(missing, ", "))
}

// metadataFlag collects repeated -metadata key=value flags.
type metadataFlag map[string]string

func (m metadataFlag) String() string { return "" }

func (m metadataFlag) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	switch {
	case !ok || strings.TrimSpace(k) == "":
		return errors.New("must be key=value")
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	m[k] = v
	return nil
}

// describe says why a call failed: a workflow's application error as "Type: message" (e.g.
// "ConnectForbidden: ..."), anything else as its own text.
func describe(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		return appErr.Type() + ": " + appErr.Message()
	}
	return err.Error()
}

// oneLine keeps an error to the single stderr line scripts expect.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}
