package activities

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/connectflow/connectflow/connect"
)

// fakeTemporal lists pages of workflows and records signals and signal-with-starts.
type fakeTemporal struct {
	pages     [][]string // workflow ids per page
	closed    map[string]bool
	gone      map[string]bool // answers NotFound to a signal
	queries   []string
	signals   []string
	started   []client.StartWorkflowOptions
	startArgs []any
	startErr  error
}

func (f *fakeTemporal) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.queries = append(f.queries, req.Query)
	page := 0
	if len(req.NextPageToken) > 0 {
		page = int(req.NextPageToken[0])
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for _, id := range f.pages[page] {
		st := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		if f.closed[id] {
			st = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		}
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: id}, Status: st})
	}
	if page+1 < len(f.pages) {
		resp.NextPageToken = []byte{byte(page + 1)}
	}
	return resp, nil
}

func (f *fakeTemporal) SignalWorkflow(_ context.Context, id, _, name string, arg any) error {
	if f.gone[id] {
		return serviceerror.NewNotFound("workflow not found")
	}
	f.signals = append(f.signals, id+" "+name+" "+string(arg.(json.RawMessage)))
	return nil
}

func (f *fakeTemporal) SignalWithStartWorkflow(_ context.Context, id, signal string, arg any, opts client.StartWorkflowOptions,
	wf any, args ...any) (client.WorkflowRun, error) {
	f.started = append(f.started, opts)
	f.startArgs = append(f.startArgs, wf, signal, arg, args[0])
	return nil, f.startErr
}

func TestSignalMatchingSignalsEveryListedWorkflowButTheCaller(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	fake := &fakeTemporal{pages: [][]string{{"deposit-old", "deposit-new"}, {"deposit-closed", "deposit-gone", "deposit-older"}},
		closed: map[string]bool{"deposit-closed": true}, gone: map[string]bool{"deposit-gone": true}}
	env.RegisterActivity(&Activities{Temporal: fake})
	v, err := env.ExecuteActivity((&Activities{}).SignalMatching, SignalMatchingRequest{Query: "Q", Exclude: "deposit-new",
		Signal: "supersede", Arg: json.RawMessage(`{"workflow_id":"deposit-new"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := v.Get(&ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] != "deposit-old" || ids[1] != "deposit-older" {
		t.Fatalf("signalled %v, want the two running others", ids)
	}
	if len(fake.queries) != 2 || fake.queries[0] != "Q" || fake.signals[0] != `deposit-old supersede {"workflow_id":"deposit-new"}` {
		t.Fatalf("queries %v signals %v", fake.queries, fake.signals)
	}
}

func TestOpenReviewIsIdempotentByWorkflowID(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	fake := &fakeTemporal{}
	env.RegisterActivity(&Activities{Temporal: fake})
	req := ReviewRequest{WorkflowID: "review-ledger:m-1", WorkflowType: "ReviewWorkflow", Signal: "ledger",
		SignalArg: json.RawMessage(`{"movement_id":"m-1"}`), Input: json.RawMessage(`{"reason":"ledger_mismatch"}`), Summary: "Needs review: ledger_mismatch"}
	v, err := env.ExecuteActivity((&Activities{}).OpenReview, req)
	if err != nil {
		t.Fatal(err)
	}
	var out ReviewOpened
	if err := v.Get(&out); err != nil || out.Closed || out.WorkflowID != req.WorkflowID {
		t.Fatalf("opened %+v, %v", out, err)
	}
	opts := fake.started[0]
	if opts.ID != req.WorkflowID || opts.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE || opts.TaskQueue == "" || opts.StaticSummary != req.Summary {
		t.Fatalf("start options %+v", opts)
	}
	if fake.startArgs[0] != "ReviewWorkflow" || fake.startArgs[1] != "ledger" {
		t.Fatalf("started %v", fake.startArgs)
	}
	// A resolved review is not reopened: the event was handled before.
	fake.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("done", "", "")
	v, err = env.ExecuteActivity((&Activities{}).OpenReview, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&out); err != nil || !out.Closed {
		t.Fatalf("resolved review: %+v, %v", out, err)
	}
	fake.startErr = errors.New("unavailable")
	if _, err := env.ExecuteActivity((&Activities{}).OpenReview, req); err == nil {
		t.Fatal("a Temporal failure must fail the attempt so it is retried")
	}
	if _, err := env.ExecuteActivity((&Activities{Temporal: nil}).OpenReview, ReviewRequest{}); err == nil {
		t.Fatal("an empty request must be refused")
	}
}

// The workflow sends typed values; the activity gets the same JSON and passes it on unchanged.
func TestRequestsKeepTheirArgumentsAsJSON(t *testing.T) {
	type event struct {
		ID     string `json:"id"`
		Amount string `json:"amount"`
	}
	b, err := json.Marshal(ReviewRequest{WorkflowID: "review-x", SignalArg: event{"e-1", "0.013"}, Input: map[string]string{"reason": "r"}})
	if err != nil {
		t.Fatal(err)
	}
	var got ReviewRequest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.WorkflowID != "review-x" || string(got.SignalArg.(json.RawMessage)) != `{"id":"e-1","amount":"0.013"}` ||
		string(got.Input.(json.RawMessage)) != `{"reason":"r"}` {
		t.Fatalf("decoded %+v", got)
	}
	b, err = json.Marshal(SignalMatchingRequest{Query: "Q", Signal: "s", Arg: event{"e-2", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	var sm SignalMatchingRequest
	if err := json.Unmarshal(b, &sm); err != nil || sm.Query != "Q" || string(sm.Arg.(json.RawMessage)) != `{"id":"e-2","amount":"1"}` {
		t.Fatalf("decoded %+v, %v", sm, err)
	}
}

func TestOpenSessionSupersedesAndNeverFailsTheSessionForIt(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	fake := &fakeTemporal{pages: [][]string{{"deposit-old"}}}
	env.RegisterActivity(&Activities{Connect: fakeConnect{}, Temporal: fake})
	req := OpenSessionRequest{Session: connect.SessionRequest{RequestID: "deposit-new"}, Supersede: &SignalMatchingRequest{Query: "Q", Exclude: "deposit-new",
		Signal: "supersede", Arg: json.RawMessage(`{}`)}}
	v, err := env.ExecuteActivity((&Activities{}).OpenSession, req)
	if err != nil {
		t.Fatal(err)
	}
	var out OpenedSession
	if err := v.Get(&out); err != nil || out.Session.ID != "sess-1" || len(out.Superseded) != 1 || out.SupersedeError != "" {
		t.Fatalf("opened %+v, %v", out, err)
	}
	// No Temporal client: the session still opens, and the failure is reported for the workflow to record.
	env2 := s.NewTestActivityEnvironment()
	env2.RegisterActivity(&Activities{Connect: fakeConnect{}})
	v, err = env2.ExecuteActivity((&Activities{}).OpenSession, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&out); err != nil || out.Session.ID != "sess-1" || out.SupersedeError == "" {
		t.Fatalf("opened %+v, %v", out, err)
	}
	// A session Connect refuses fails the activity as CreateSession does.
	env3 := s.NewTestActivityEnvironment()
	env3.RegisterActivity(&Activities{Connect: fakeConnect{err: errors.New("boom")}, Temporal: fake})
	if _, err := env3.ExecuteActivity((&Activities{}).OpenSession, req); err == nil {
		t.Fatal("a refused session must fail")
	}
}

// blockingTemporal answers a list only when its context ends (or fails at once with err); nothing else is called.
type blockingTemporal struct {
	Temporal
	err error
}

func (b blockingTemporal) ListWorkflow(ctx context.Context, _ *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if b.err != nil {
		return nil, b.err
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// OpenSession's OthersCheck (workflows.MachineV2): NoOthers only when the list answered in time and holds no
// running workflow but the caller; a second one, a list with more pages, a failure or a list slower than
// OthersCheckWait all say "there may be", and none of them fails the session or holds it until the list ends (the
// blocking list never ends on its own).
func TestOpenSessionChecksForOtherTransfers(t *testing.T) {
	check := &OthersCheck{Query: "Q", Exclude: "deposit-new"}
	for _, c := range []struct {
		name     string
		temporal Temporal
		want     bool
	}{
		{"only the caller", &fakeTemporal{pages: [][]string{{"deposit-new"}}}, true},
		{"none listed", &fakeTemporal{pages: [][]string{{}}}, true},
		{"a closed one besides", &fakeTemporal{pages: [][]string{{"deposit-new", "deposit-done"}}, closed: map[string]bool{"deposit-done": true}}, true},
		{"another running", &fakeTemporal{pages: [][]string{{"deposit-old", "deposit-new"}}}, false},
		{"more than a page", &fakeTemporal{pages: [][]string{{"deposit-new"}, {"deposit-old"}}}, false},
		{"list fails", blockingTemporal{err: errors.New("visibility unavailable")}, false},
		{"list slower than OthersCheckWait", blockingTemporal{}, false},
		{"no Temporal client", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(&Activities{Connect: fakeConnect{}, Temporal: c.temporal})
			v, err := env.ExecuteActivity((&Activities{}).OpenSession, OpenSessionRequest{
				Session: connect.SessionRequest{RequestID: "deposit-new"}, Others: check})
			if err != nil {
				t.Fatal(err)
			}
			var out OpenedSession
			if err := v.Get(&out); err != nil || out.Session.ID != "sess-1" {
				t.Fatalf("opened %+v, %v", out, err)
			}
			if out.NoOthers != c.want {
				t.Errorf("NoOthers = %v, want %v", out.NoOthers, c.want)
			}
			if f, ok := c.temporal.(*fakeTemporal); ok && (len(f.queries) != 1 || f.queries[0] != "Q") {
				t.Errorf("listed %q, want one list of the check's query", f.queries)
			}
		})
	}
	// The check lists only once Connect opened the session: a transfer of the reference that started while the
	// session was being opened (and so holds a session the new one replaced) is listed.
	opened := &orderConnect{}
	order := &orderTemporal{opened: opened}
	var s0 testsuite.WorkflowTestSuite
	env0 := s0.NewTestActivityEnvironment()
	env0.RegisterActivity(&Activities{Connect: opened, Temporal: order})
	if _, err := env0.ExecuteActivity((&Activities{}).OpenSession, OpenSessionRequest{
		Session: connect.SessionRequest{RequestID: "deposit-new"}, Others: check}); err != nil {
		t.Fatal(err)
	}
	if !order.listed || order.before {
		t.Errorf("listed %v, before the session opened %v: want one list, after", order.listed, order.before)
	}
	// Not asked (before MachineV2): no list at all.
	fake := &fakeTemporal{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&Activities{Connect: fakeConnect{}, Temporal: fake})
	if _, err := env.ExecuteActivity((&Activities{}).OpenSession, OpenSessionRequest{Session: connect.SessionRequest{RequestID: "d"}}); err != nil {
		t.Fatal(err)
	}
	if len(fake.queries) != 0 {
		t.Errorf("listed %q without an OthersCheck", fake.queries)
	}
}

// orderConnect opens a session and remembers that it did.
type orderConnect struct{ done bool }

func (o *orderConnect) CreateSession(context.Context, connect.SessionRequest) (*connect.Session, error) {
	o.done = true
	return &connect.Session{ID: "sess-1", JWT: "jwt"}, nil
}

// orderTemporal lists nothing and notes whether it was asked before the session opened.
type orderTemporal struct {
	Temporal
	opened         *orderConnect
	listed, before bool
}

func (o *orderTemporal) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	o.listed, o.before = true, !o.opened.done
	return &workflowservice.ListWorkflowExecutionsResponse{}, nil
}
