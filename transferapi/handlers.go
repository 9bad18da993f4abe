package transferapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// Field bounds, in characters (openapi's maxLength) unless said otherwise. A transfer id appears in URL paths, so
// it is URL-safe.
const (
	maxReferenceID   = 128
	maxMetadataKeys  = 20
	maxMetadataKey   = 64
	maxMetadataValue = 256
	maxTextField     = 64 // asset, network, amount, account_label
	maxReason        = 500
	maxEmailBytes    = 254 // bytes: RFC 5321's bound on a deliverable address is in octets
	defaultPageSize  = 20
	maxPageSize      = 100
)

var (
	transferIDPattern = regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,%d}$`, transfer.MaxTransferIDBytes-1))
	amountPattern     = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	phonePattern      = regexp.MustCompile(`^\+?[0-9]{6,15}$`) // as Zero Hash takes it (E.164 digits)
)

// StartRequest is the body of POST /v1/deposits and POST /v1/withdrawals: the starter CLI's flags as JSON.
type StartRequest struct {
	TransferID   string            `json:"transfer_id"`
	ReferenceID  string            `json:"reference_id"`
	Asset        string            `json:"asset"`
	Network      string            `json:"network"`
	Amount       string            `json:"amount"`
	Metadata     map[string]string `json:"metadata"`
	AccountLabel string            `json:"account_label"`
	AwaitLedger  bool              `json:"await_ledger"`
	// IfBusy is what a start does when another transfer of the reference awaits its user: "supersede" (the
	// default; Connect keeps one session per reference, so the older one ends superseded) or "refuse" (409).
	IfBusy string `json:"if_busy"`
}

// StartResponse answers a start: the session the frontend hands to the Auth SDK, and where the transfer stands.
type StartResponse struct {
	WorkflowID string           `json:"workflow_id"`
	SessionID  string           `json:"session_id"`
	JWT        string           `json:"jwt"`
	ExpiresAt  time.Time        `json:"expires_at"`
	Status     workflows.Status `json:"status"`
}

// transferIDRule is what transferIDPattern takes, as a field error says it.
var transferIDRule = fmt.Sprintf("1 to %d letters, digits and ._:@-, starting with a letter or digit", transfer.MaxTransferIDBytes)

// reasonError names what is wrong with an operator's reason (resolve, redeliver), nil when nothing is.
func reasonError(reason string) []FieldError {
	if strings.TrimSpace(reason) == "" || utf8.RuneCountInString(reason) > maxReason {
		return []FieldError{{Field: "reason", Detail: fmt.Sprintf("required, at most %d characters", maxReason)}}
	}
	return nil
}

// input checks the request as the starter CLI does, naming every bad field, and returns the workflow's input.
func (r StartRequest) input(kind connect.Kind) (workflows.TransferInput, *Problem) {
	var errs []FieldError
	bad := func(field, detail string) { errs = append(errs, FieldError{Field: field, Detail: detail}) }
	if !transferIDPattern.MatchString(r.TransferID) {
		bad("transfer_id", "required: "+transferIDRule)
	}
	if r.ReferenceID == "" {
		bad("reference_id", "required")
	} else if !plainText(r.ReferenceID, maxReferenceID) {
		bad("reference_id", fmt.Sprintf("at most %d characters, no control characters or surrounding spaces", maxReferenceID))
	}
	if kind == connect.KindWithdrawal {
		for _, f := range []struct{ name, v string }{{"asset", r.Asset}, {"network", r.Network}} {
			switch {
			case f.v == "":
				bad(f.name, "required for a withdrawal")
			case !plainText(f.v, maxTextField):
				bad(f.name, fmt.Sprintf("at most %d characters, no control characters or surrounding spaces", maxTextField))
			}
		}
		switch {
		case r.Amount == "":
			bad("amount", "required for a withdrawal")
		case len(r.Amount) > maxTextField || !amountPattern.MatchString(r.Amount) || strings.Trim(r.Amount, "0.") == "":
			bad("amount", "must be a positive decimal such as 0.013")
		}
	} else {
		for _, f := range []struct{ name, v string }{{"asset", r.Asset}, {"network", r.Network}, {"amount", r.Amount}} {
			if f.v != "" {
				bad(f.name, "a deposit takes none: the user chooses what to send in the Auth SDK")
			}
		}
	}
	switch workflows.IfBusy(r.IfBusy) {
	case "", workflows.IfBusySupersede, workflows.IfBusyRefuse:
	default:
		bad("if_busy", fmt.Sprintf("must be %q or %q", workflows.IfBusySupersede, workflows.IfBusyRefuse))
	}
	if r.AccountLabel != "" && !plainText(r.AccountLabel, maxTextField) {
		bad("account_label", fmt.Sprintf("at most %d characters, no control characters or surrounding spaces", maxTextField))
	}
	if len(r.Metadata) > maxMetadataKeys {
		bad("metadata", fmt.Sprintf("at most %d keys", maxMetadataKeys))
	}
	for _, k := range sortedKeys(r.Metadata) {
		switch {
		case k == workflows.MetadataTransferID || k == workflows.MetadataKind:
			bad("metadata."+k, "reserved by connectflow")
		case k == "" || !plainText(k, maxMetadataKey):
			bad("metadata", fmt.Sprintf("keys must be 1 to %d characters without control characters", maxMetadataKey))
		case !plainText(r.Metadata[k], maxMetadataValue) && r.Metadata[k] != "":
			bad("metadata."+k, fmt.Sprintf("at most %d characters, no control characters", maxMetadataValue))
		}
	}
	if len(errs) > 0 {
		return workflows.TransferInput{}, invalid(errs...)
	}
	in := workflows.TransferInput{Kind: kind, TransferID: r.TransferID, ReferenceID: r.ReferenceID,
		AccountLabel: r.AccountLabel, Asset: r.Asset, Network: r.Network, Amount: r.Amount, AwaitLedger: r.AwaitLedger,
		IfBusy: workflows.IfBusy(r.IfBusy)}
	if len(r.Metadata) > 0 {
		in.Metadata = maps.Clone(r.Metadata)
	}
	if err := in.Validate(); err != nil { // the workflow's own rule, should it ever be stricter than the above
		return workflows.TransferInput{}, invalid(FieldError{Field: "body", Detail: err.Error()})
	}
	return in, nil
}

// plainText is text of at most n characters (openapi's maxLength counts characters, not bytes) without control
// characters or surrounding spaces.
func plainText(v string, n int) bool {
	return utf8.RuneCountInString(v) <= n && strings.IndexFunc(v, unicode.IsControl) < 0 && strings.TrimSpace(v) == v
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

// start answers a start: 201 when this request created the transfer, 200 for one that exists with the same body
// (a retry, or the loser of concurrent first starts), 409 when it exists with another, 502 when Connect refused its
// session.
func (s *Server) start(kind connect.Kind) handler {
	return func(c *gin.Context, _ Caller) (int, any, *Problem) {
		var req StartRequest
		if p := readJSON(c.Request, c.Writer, s.maxBody, &req); p != nil {
			return 0, nil, p
		}
		in, p := req.input(kind)
		if p != nil {
			return 0, nil, p
		}
		in.Timeouts = s.timeouts
		ctx := c.Request.Context()
		id := workflows.WorkflowID(kind, in.TransferID)
		c.Set(keyWorkflowID, id)
		before, p := s.recorded(ctx, id)
		if p != nil {
			return 0, nil, p
		}
		if before != nil {
			if p := conflict(before.input, in); p != nil {
				return 0, nil, p
			}
		}
		wctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		started, err := s.transfers.Start(wctx, in)
		if err != nil {
			var busy *transfer.BusyError
			if errors.As(err, &busy) {
				return 0, nil, newProblem(TypeTransferBusy, fmt.Sprintf("transfer %s of this reference awaits its user; "+
					"retry later, or start with if_busy=%s to end it superseded", busy.WorkflowID, workflows.IfBusySupersede))
			}
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) {
				p := newProblem(TypeSessionRefused, appErr.Message())
				p.Code = appErr.Type()
				return 0, nil, p
			}
			if before != nil && before.closed { // finished without a session: the library says why
				return 0, nil, s.closedWithoutSession(wctx, kind, in.TransferID)
			}
			return 0, nil, s.temporalProblem(c, err, "start "+id)
		}
		out := StartResponse{WorkflowID: started.WorkflowID, SessionID: started.SessionID, JWT: started.JWT,
			ExpiresAt: started.ExpiresAt, Status: started.Status}
		if before == nil && !started.Created {
			// Two starts of one new id raced and this one joined the winner's workflow: it must have its body.
			after, p := s.recorded(ctx, id)
			if p != nil {
				return 0, nil, p
			}
			if after != nil {
				if p := conflict(after.input, in); p != nil {
					return 0, nil, p
				}
			}
		}
		if out.Status == "" {
			st, err := s.transfers.Status(wctx, kind, in.TransferID)
			if err != nil {
				return 0, nil, s.temporalProblem(c, err, "status of "+id)
			}
			out.Status = st.Status
		}
		if started.Created {
			return http.StatusCreated, out, nil
		}
		return http.StatusOK, out, nil
	}
}

// closedWithoutSession is the 502 of a repeated start of a transfer whose session Connect refused.
func (s *Server) closedWithoutSession(ctx context.Context, kind connect.Kind, transferID string) *Problem {
	st, qerr := s.transfers.Status(ctx, kind, transferID)
	if qerr != nil || st.Session != nil {
		return newProblem(TypeInternal, "")
	}
	p := newProblem(TypeSessionRefused, fmt.Sprintf("the transfer ended %s: %s", st.Status, st.FailureReason))
	p.Code = string(st.Status)
	return p
}

// record is a transfer workflow as history shows it: the input it started with, and whether it has closed.
type record struct {
	input     workflows.TransferInput
	closed    bool
	sessionID string
}

// recorded returns the transfer workflow id's record, or nil when there is none.
func (s *Server) recorded(ctx context.Context, id string) (*record, *Problem) {
	qctx, cancel := context.WithTimeout(ctx, s.quick)
	defer cancel()
	desc, err := s.temporal.DescribeWorkflowExecution(qctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	info := desc.GetWorkflowExecutionInfo()
	rec := &record{closed: info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}
	if p := info.GetSearchAttributes().GetIndexedFields()[workflows.SearchConnectSessionID.GetName()]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &rec.sessionID) // absent until the session opens
	}
	it := s.temporal.GetWorkflowHistory(qctx, id, info.GetExecution().GetRunId(), false,
		enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return nil, unavailable(errors.New("history of " + id + " is empty"))
	}
	first, err := it.Next()
	if err != nil {
		return nil, unavailable(err)
	}
	attrs := first.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || attrs.GetWorkflowType().GetName() != "TransferWorkflow" {
		return nil, newProblem(TypeInternal, "")
	}
	if err := s.dc.FromPayloads(attrs.GetInput(), &rec.input); err != nil {
		return nil, newProblem(TypeInternal, "")
	}
	return rec, nil
}

// conflict is the 409 naming each field where a repeated start differs from the recorded one, or nil.
func conflict(was, now workflows.TransferInput) *Problem {
	var diff []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"reference_id", was.ReferenceID == now.ReferenceID},
		{"asset", was.Asset == now.Asset},
		{"network", was.Network == now.Network},
		{"amount", was.Amount == now.Amount},
		{"metadata", maps.Equal(was.Metadata, now.Metadata)},
		{"account_label", was.AccountLabel == now.AccountLabel},
		{"await_ledger", was.AwaitLedger == now.AwaitLedger},
		{"if_busy", ifBusyOrDefault(was.IfBusy) == ifBusyOrDefault(now.IfBusy)},
	} {
		if !f.same {
			diff = append(diff, f.name)
		}
	}
	if len(diff) == 0 {
		return nil
	}
	return newProblem(TypeTransferConflict, fmt.Sprintf("transfer %s was started with another %s; use a new transfer_id",
		now.TransferID, strings.Join(diff, ", ")))
}

// ifBusyOrDefault reads an absent if_busy as its default, supersede: the two mean the same.
func ifBusyOrDefault(v workflows.IfBusy) workflows.IfBusy {
	if v == "" {
		return workflows.IfBusySupersede
	}
	return v
}

// StatusResponse is a transfer's whole record without the session JWT, which only the user's frontend should hold
// (what `starter status` prints).
type StatusResponse struct {
	workflows.TransferState
	Session *SessionView `json:"session,omitempty"` // shadows TransferState.Session
}

// SessionView is a session without its JWT.
type SessionView struct {
	SessionID string    `json:"session_id"`
	AccountID string    `json:"account_id,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

func withoutJWT(st workflows.TransferState) StatusResponse {
	v := StatusResponse{TransferState: st}
	if ss := st.Session; ss != nil {
		v.Session = &SessionView{SessionID: ss.SessionID, AccountID: ss.AccountID, ExpiresAt: ss.ExpiresAt}
	}
	v.TransferState.Session = nil
	return v
}

// transferID reads and checks the path's transfer id.
func (s *Server) transferID(c *gin.Context, kind connect.Kind) (string, *Problem) {
	id := c.Param(transferIDParameter)
	if !transferIDPattern.MatchString(id) {
		return "", newProblem(TypeTransferNotFound, "no transfer has such an id")
	}
	c.Set(keyWorkflowID, workflows.WorkflowID(kind, id))
	return id, nil
}

func (s *Server) status(kind connect.Kind) handler {
	return func(c *gin.Context, _ Caller) (int, any, *Problem) {
		id, p := s.transferID(c, kind)
		if p != nil {
			return 0, nil, p
		}
		if _, p := s.existing(c.Request.Context(), kind, id); p != nil {
			return 0, nil, p
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), s.timeout)
		defer cancel()
		st, err := s.transfers.Status(ctx, kind, id)
		if err != nil {
			return 0, nil, s.temporalProblem(c, err, "status of "+workflows.WorkflowID(kind, id))
		}
		return http.StatusOK, withoutJWT(st), nil
	}
}

// existing is the record of a transfer that must exist: 404 when it does not.
func (s *Server) existing(ctx context.Context, kind connect.Kind, id string) (*record, *Problem) {
	rec, p := s.recorded(ctx, workflows.WorkflowID(kind, id))
	if p != nil {
		return nil, p
	}
	if rec == nil {
		return nil, newProblem(TypeTransferNotFound, fmt.Sprintf("no %s with transfer_id %s", kind, id))
	}
	return rec, nil
}

// SDKEventRequest is the body of POST .../sdk-events: one Auth SDK callback, as the bridge's /v1/sdk-events takes.
type SDKEventRequest struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	ID     string `json:"id"`
}

// Accepted answers a relayed SDK event: Temporal recorded it in the transfer's history.
type Accepted struct {
	Status     string `json:"status"`
	WorkflowID string `json:"workflow_id"`
}

func (s *Server) sdkEvent(kind connect.Kind) handler {
	return func(c *gin.Context, _ Caller) (int, any, *Problem) {
		id, p := s.transferID(c, kind)
		if p != nil {
			return 0, nil, p
		}
		var req SDKEventRequest
		if p := readJSON(c.Request, c.Writer, s.maxBody, &req); p != nil {
			return 0, nil, p
		}
		var errs []FieldError
		switch req.Type {
		case workflows.SDKTypeClose, workflows.SDKTypeEvent, workflows.SDKTypeDeposit, workflows.SDKTypeWithdrawal,
			workflows.SDKTypeError:
		default:
			errs = append(errs, FieldError{Field: "type", Detail: "must be close, event, deposit, withdrawal or error"})
		}
		if utf8.RuneCountInString(req.Detail) > workflows.MaxSDKDetail {
			errs = append(errs, FieldError{Field: "detail", Detail: fmt.Sprintf("at most %d characters", workflows.MaxSDKDetail)})
		}
		if utf8.RuneCountInString(req.ID) > workflows.MaxSDKID {
			errs = append(errs, FieldError{Field: "id", Detail: fmt.Sprintf("at most %d characters", workflows.MaxSDKID)})
		}
		if len(errs) > 0 {
			return 0, nil, invalid(errs...)
		}
		rec, p := s.existing(c.Request.Context(), kind, id)
		if p != nil {
			return 0, nil, p
		}
		wid := workflows.WorkflowID(kind, id)
		if rec.closed {
			return 0, nil, newProblem(TypeTransferClosed, wid+" has finished: it takes no more events")
		}
		// The bridge's key for the same callback, so one relayed both ways counts once.
		ev := workflows.SDKEvent{Type: req.Type, Detail: req.Detail, DedupeKey: sdkDedupeKey(cmpOr(rec.sessionID, wid), req)}
		ctx, cancel := context.WithTimeout(c.Request.Context(), s.quick)
		defer cancel()
		if err := s.temporal.SignalWorkflow(ctx, wid, "", workflows.SignalSDKEvent, ev); err != nil {
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				return 0, nil, newProblem(TypeTransferClosed, wid+" has finished: it takes no more events")
			}
			return 0, nil, unavailable(err)
		}
		return http.StatusAccepted, Accepted{Status: "accepted", WorkflowID: wid}, nil
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sdkDedupeKey is bridge's key for one callback: session, type, and a hash of detail and id.
func sdkDedupeKey(sessionID string, in SDKEventRequest) string {
	h := sha256.New()
	h.Write([]byte(in.Detail))
	h.Write([]byte{0})
	h.Write([]byte(in.ID))
	return "sdk:" + sessionID + ":" + in.Type + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// ResolveRequest is the body of POST .../resolve; the operator is the authenticated caller.
type ResolveRequest struct {
	Outcome workflows.Status `json:"outcome"`
	Reason  string           `json:"reason"`
}

func (s *Server) resolve(kind connect.Kind) handler {
	return func(c *gin.Context, caller Caller) (int, any, *Problem) {
		id, p := s.transferID(c, kind)
		if p != nil {
			return 0, nil, p
		}
		var req ResolveRequest
		if p := readJSON(c.Request, c.Writer, s.maxBody, &req); p != nil {
			return 0, nil, p
		}
		var errs []FieldError
		if req.Outcome != workflows.StatusConfirmed && req.Outcome != workflows.StatusFailed {
			errs = append(errs, FieldError{Field: "outcome", Detail: "must be confirmed or failed"})
		}
		errs = append(errs, reasonError(req.Reason)...)
		if len(errs) > 0 {
			return 0, nil, invalid(errs...)
		}
		rec, p := s.existing(c.Request.Context(), kind, id)
		if p != nil {
			return 0, nil, p
		}
		wid := workflows.WorkflowID(kind, id)
		if rec.closed {
			return 0, nil, newProblem(TypeTransferClosed, wid+" has finished: there is nothing to resolve")
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), s.timeout)
		defer cancel()
		out, err := s.transfers.ResolveTransfer(ctx, kind, id,
			workflows.Resolution{Operator: caller.Name, Outcome: req.Outcome, Reason: req.Reason})
		if err != nil {
			var appErr *temporal.ApplicationError
			var notFound *serviceerror.NotFound
			switch {
			case errors.As(err, &appErr) && appErr.Type() == "NotResolvable":
				return 0, nil, newProblem(TypeNotResolvable, appErr.Message())
			case errors.As(err, &appErr) && appErr.Type() == "InvalidResolution":
				return 0, nil, invalid(FieldError{Field: "body", Detail: appErr.Message()})
			case errors.As(err, &notFound):
				return 0, nil, newProblem(TypeTransferClosed, wid+" has finished: there is nothing to resolve")
			}
			return 0, nil, s.temporalProblem(c, err, "resolve "+wid)
		}
		return http.StatusOK, out, nil
	}
}

// OnboardingRequest is the body of POST /v1/onboarding-tokens. Both fields are personal data: no answer or log
// line repeats them.
type OnboardingRequest struct {
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number"`
}

// OnboardingResponse holds the Zero Hash onboarding token.
type OnboardingResponse struct {
	Token string `json:"token"`
}

func (s *Server) onboarding(c *gin.Context, _ Caller) (int, any, *Problem) {
	var req OnboardingRequest
	if p := readJSON(c.Request, c.Writer, s.maxBody, &req); p != nil {
		return 0, nil, p
	}
	var errs []FieldError
	if addr, err := mail.ParseAddress(req.Email); err != nil || addr.Address != req.Email || len(req.Email) > maxEmailBytes {
		errs = append(errs, FieldError{Field: "email", Detail: "required: a bare email address such as name@example.com"})
	}
	if req.PhoneNumber != "" && !phonePattern.MatchString(req.PhoneNumber) {
		errs = append(errs, FieldError{Field: "phone_number", Detail: "a phone number such as +15550100: 6 to 15 digits with an optional leading +"})
	}
	if len(errs) > 0 {
		return 0, nil, invalid(errs...)
	}
	var token string
	if p := s.runWorkflow(c, "onboarding", func(ctx context.Context) (err error) {
		token, err = s.transfers.Onboarding(ctx, workflows.OnboardingRequest{Email: req.Email, Phone: req.PhoneNumber})
		return err
	}, func(appErr *temporal.ApplicationError) *Problem {
		return newProblem(TypeOnboardingRefused, appErr.Message())
	}); p != nil {
		return 0, nil, p
	}
	return http.StatusOK, OnboardingResponse{Token: token}, nil
}

// runWorkflow runs a workflow that starts and ends within the request (onboarding, a reconciliation): Temporal's
// health first, so an unreachable Temporal is a 503 at once rather than a timeout, then run within the API's
// timeout. The workflow's own failure (an application error) is failed's problem with the error's type as its
// code; any other error is temporalProblem's.
func (s *Server) runWorkflow(c *gin.Context, what string, run func(context.Context) error,
	failed func(*temporal.ApplicationError) *Problem) *Problem {
	hctx, hcancel := context.WithTimeout(c.Request.Context(), s.quick)
	defer hcancel()
	if _, err := s.temporal.CheckHealth(hctx, &client.CheckHealthRequest{}); err != nil {
		return unavailable(err)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.timeout)
	defer cancel()
	err := run(ctx)
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		p := failed(appErr)
		p.Code = appErr.Type()
		return p
	}
	return s.temporalProblem(c, err, what)
}

// reconcileNow runs one Zero Hash reconciliation (GET /movements since the cursor) and answers its summary: the
// schedule's run when the schedule exists, so it is listed under it in the UI. It takes no body.
func (s *Server) reconcileNow(c *gin.Context, _ Caller) (int, any, *Problem) {
	var r transfer.Reconciled
	if p := s.runWorkflow(c, "reconcile", func(ctx context.Context) (err error) {
		r, err = s.transfers.Reconcile(ctx)
		return err
	}, func(appErr *temporal.ApplicationError) *Problem {
		return newProblem(TypeReconcileFailed, fmt.Sprintf("run %s: %s", r.WorkflowID, appErr.Message()))
	}); p != nil {
		return 0, nil, p
	}
	return http.StatusOK, r, nil
}

// TransferSummary is one transfer in a list, from visibility (no event record: GET the transfer for that).
type TransferSummary struct {
	WorkflowID  string           `json:"workflow_id"`
	Kind        connect.Kind     `json:"kind"`
	TransferID  string           `json:"transfer_id"`
	ReferenceID string           `json:"reference_id,omitempty"`
	Status      workflows.Status `json:"status"`
	StartedAt   time.Time        `json:"started_at"`
	ClosedAt    *time.Time       `json:"closed_at,omitempty"`
}

// TransferPage is a page of transfers and the token of the next one ("" on the last page).
type TransferPage struct {
	Transfers     []TransferSummary `json:"transfers"`
	NextPageToken string            `json:"next_page_token,omitempty"`
}

// sealPageToken wraps Temporal's page token with a check binding it to the query it pages through, so a token
// mangled in transit or reused with other filters is refused with 422 instead of reaching Temporal. It is not a
// secret: the filters, not the token, decide what a page may hold.
func sealPageToken(token []byte, query string) string {
	if len(token) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append(pageTokenCheck(token, query), token...))
}

// openPageToken unwraps a sealed token; "" opens to nil (the first page).
func openPageToken(sealed, query string) ([]byte, bool) {
	if sealed == "" {
		return nil, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) <= pageTokenCheckSize {
		return nil, false
	}
	token := raw[pageTokenCheckSize:]
	if !bytes.Equal(raw[:pageTokenCheckSize], pageTokenCheck(token, query)) {
		return nil, false
	}
	return token, true
}

const pageTokenCheckSize = 8

func pageTokenCheck(token []byte, query string) []byte {
	h := sha256.New()
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write(token)
	return h.Sum(nil)[:pageTokenCheckSize]
}

// allStatuses are the statuses a list may filter on: every status of the transfer state machine.
var allStatuses = workflows.Statuses

// list answers a page of transfers from Temporal's visibility store, in its order: running transfers first, most
// recently started first, then finished ones, most recently finished first.
func (s *Server) list(c *gin.Context, _ Caller) (int, any, *Problem) {
	q := c.Request.URL.Query()
	var errs []FieldError
	for name := range q {
		switch name {
		case "kind", "status", "reference_id", "page_size", "page_token":
			if len(q[name]) > 1 {
				errs = append(errs, FieldError{Field: name, Detail: "given more than once"})
			}
		default:
			errs = append(errs, FieldError{Field: name, Detail: "unknown query parameter"})
		}
	}
	query := []string{"WorkflowType = 'TransferWorkflow'"}
	if k := q.Get("kind"); k != "" {
		if !connect.Kind(k).Valid() {
			errs = append(errs, FieldError{Field: "kind", Detail: "must be deposit or withdrawal"})
		}
		query = append(query, fmt.Sprintf("%s = '%s'", workflows.SearchTransferKind.GetName(), k))
	}
	if st := q.Get("status"); st != "" {
		if !containsStatus(workflows.Status(st)) {
			errs = append(errs, FieldError{Field: "status", Detail: "must be one of " + statusList()})
		}
		query = append(query, fmt.Sprintf("%s = '%s'", workflows.SearchTransferStatus.GetName(), st))
	}
	if ref := q.Get("reference_id"); ref != "" {
		if !plainText(ref, maxReferenceID) {
			errs = append(errs, FieldError{Field: "reference_id", Detail: fmt.Sprintf("at most %d characters", maxReferenceID)})
		}
		query = append(query, fmt.Sprintf("%s = %s", workflows.SearchConnectReferenceID.GetName(), quote(ref)))
	}
	size := defaultPageSize
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			errs = append(errs, FieldError{Field: "page_size", Detail: fmt.Sprintf("must be a whole number from 1 to %d", maxPageSize)})
		}
		size = n
	}
	visibilityQuery := strings.Join(query, " AND ")
	token, ok := openPageToken(q.Get("page_token"), visibilityQuery)
	if !ok {
		errs = append(errs, FieldError{Field: "page_token", Detail: "must be the next_page_token of a page with the same filters"})
	}
	if len(errs) > 0 {
		return 0, nil, invalid(errs...)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.quick)
	defer cancel()
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: int32(size), NextPageToken: token, Query: visibilityQuery,
	})
	if err != nil {
		if len(token) > 0 && !isTimeoutOrUnavailable(err) {
			c.Set(keyErr, err)
			return 0, nil, invalid(FieldError{Field: "page_token", Detail: "must be the next_page_token of a page with the same filters"})
		}
		return 0, nil, unavailable(err)
	}
	page := TransferPage{Transfers: []TransferSummary{}, NextPageToken: sealPageToken(resp.GetNextPageToken(), visibilityQuery)}
	for _, info := range resp.GetExecutions() {
		page.Transfers = append(page.Transfers, summary(info.GetExecution().GetWorkflowId(), info.GetSearchAttributes(),
			info.GetStartTime().AsTime(), info.GetCloseTime()))
	}
	return http.StatusOK, page, nil
}

func summary(wid string, sa *commonpb.SearchAttributes, started time.Time, closed *timestamppb.Timestamp) TransferSummary {
	read := func(name string) string {
		var v string
		if p := sa.GetIndexedFields()[name]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &v) // a missing or odd value reads as ""
		}
		return v
	}
	out := TransferSummary{WorkflowID: wid, Kind: connect.Kind(read(workflows.SearchTransferKind.GetName())),
		ReferenceID: read(workflows.SearchConnectReferenceID.GetName()),
		Status:      workflows.Status(read(workflows.SearchTransferStatus.GetName())), StartedAt: started.UTC()}
	out.TransferID = strings.TrimPrefix(wid, string(out.Kind)+"-")
	if closed.IsValid() {
		t := closed.AsTime().UTC()
		out.ClosedAt = &t
	}
	return out
}

func containsStatus(st workflows.Status) bool {
	for _, s := range allStatuses {
		if s == st {
			return true
		}
	}
	return false
}

func statusList() string {
	names := make([]string, len(allStatuses))
	for i, s := range allStatuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// quote makes a visibility query string literal: single quotes, with \ and ' escaped.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// temporalProblem classifies an error of a call that waited on a workflow: Temporal unreachable is 503; no answer
// in time while Temporal is healthy is 504 (no worker polling?); anything else is a logged 500.
func (s *Server) temporalProblem(c *gin.Context, err error, what string) *Problem {
	c.Set(keyErr, err)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return newProblem(TypeTransferNotFound, "")
	}
	if !isTimeoutOrUnavailable(err) {
		return newProblem(TypeInternal, "")
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), s.quick)
	defer cancel()
	if _, herr := s.temporal.CheckHealth(hctx, &client.CheckHealthRequest{}); herr != nil {
		return unavailable(herr)
	}
	return newProblem(TypeTimeout, fmt.Sprintf("%s: no answer within %s: is a worker polling task queue %s?", what, s.timeout, s.taskQueue))
}

// unavailable is the 503 of a Temporal call that failed.
func unavailable(err error) *Problem {
	return newProblem(TypeTemporalUnavailable, "Temporal did not answer: "+grpcCode(err))
}

func grpcCode(err error) string {
	if isTimeoutOrUnavailable(err) {
		return "unreachable or too slow"
	}
	return status.Code(err).String()
}

func isTimeoutOrUnavailable(err error) bool {
	var unavail *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var canceled *serviceerror.Canceled
	switch {
	case errors.As(err, &unavail), errors.As(err, &deadline), errors.As(err, &canceled),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}
