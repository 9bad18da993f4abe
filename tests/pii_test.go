package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/starter/transfer"
	"github.com/connectflow/connectflow/workflows"
)

// tokenRecorder remembers every access token Connect hands the worker, to look for it in history.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens []string
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/oauth/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var ans struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &ans) == nil && ans.AccessToken != "" {
		r.mu.Lock()
		r.tokens = append(r.tokens, ans.AccessToken)
		r.mu.Unlock()
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// rawHistories returns every workflow's history in the namespace as binary proto and as JSON text, with its
// payloads passed through decode when it is not nil (reading with the codec, as the UI's codec server does).
func (s *stack) rawHistories(c client.Client, decode converter.PayloadCodec) (all [][]byte) {
	s.t.Helper()
	list, err := c.ListWorkflow(s.ctx(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.namespace})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, ex := range list.GetExecutions() {
		hist := &historypb.History{}
		it := c.GetWorkflowHistory(s.ctx(), ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				s.t.Fatal(err)
			}
			hist.Events = append(hist.Events, ev)
		}
		if decode != nil {
			err := proxy.VisitPayloads(s.ctx(), hist, proxy.VisitPayloadsOptions{
				Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
					return decode.Decode(p)
				}})
			if err != nil {
				s.t.Fatalf("decode history: %v", err)
			}
		}
		bin, err := proto.Marshal(hist)
		if err != nil {
			s.t.Fatal(err)
		}
		text, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(hist)
		if err != nil {
			s.t.Fatal(err)
		}
		all = append(all, bin, text)
	}
	return all
}

func TestHistoryHoldsNoPlaintextPII(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	secret := make([]byte, codec.KeySize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	keys := []codec.Key{{ID: "test-key", Secret: secret}}
	opts := client.Options{Namespace: s.namespace}
	if err := codec.Apply(&opts, keys); err != nil {
		t.Fatal(err)
	}
	payloadCodec, err := codec.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.server.NewClientWithOptions(opts)

	recorder := &tokenRecorder{}
	cfg := s.workerConfig()
	cfg.Connect.HTTPClient = &http.Client{Transport: recorder}
	w, err := workerapp.New(sealed, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	tc := transfer.NewClient(sealed, transfer.Options{TaskQueue: taskQueue})

	const (
		email         = "pii.person@example.com"
		phone         = "33512345678"
		metadataValue = "metadata-value-7c1f"
	)
	started, err := tc.Start(s.ctx(), workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "pii-1",
		ReferenceID: "USER10", Metadata: map[string]string{"note": metadataValue}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []connect.Status{connect.StatusInitiated, connect.StatusConfirmed} {
		ev := event(connect.KindDeposit, st, "cx-pii-1", started.SessionID)
		ev.Metadata = map[string]string{"note": metadataValue}
		if err := sealed.SignalWorkflow(s.ctx(), started.WorkflowID, "", workflows.SignalConnectEvent, workflows.EventSignal{Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	var result workflows.TransferResult
	if err := sealed.GetWorkflow(s.ctx(), started.WorkflowID, "").Get(s.ctx(), &result); err != nil || result.Status != workflows.StatusConfirmed {
		t.Fatalf("deposit: %+v, %v", result.Status, err)
	}
	onboardingToken, err := tc.Onboarding(s.ctx(), workflows.OnboardingRequest{Email: email, Phone: phone})
	if err != nil {
		t.Fatal(err)
	}
	if len(recorder.tokens) == 0 {
		t.Fatal("recorded no access token: the check below would prove nothing")
	}

	secrets := map[string]string{
		"email": email, "phone": phone, "metadata value": metadataValue, "session JWT": started.JWT,
		"onboarding token": onboardingToken, "client secret": connecttest.DefaultClientSecret,
		"API secret": connecttest.DefaultAPISecret, "passphrase": connecttest.DefaultPassphrase,
	}
	for i, tok := range recorder.tokens {
		secrets["access token "+string(rune('0'+i))] = tok
	}
	plainReads, decodedReads := s.rawHistories(s.client, nil), s.rawHistories(s.client, payloadCodec)
	for what, v := range secrets {
		for _, raw := range plainReads {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("%s appears in plain text in history", what)
			}
		}
	}
	// Read through the codec, the customer data is there: the check above looked in the right place. Credentials
	// and access tokens never enter history at all, encrypted or not.
	for what, v := range secrets {
		found := false
		for _, raw := range decodedReads {
			found = found || bytes.Contains(raw, []byte(v))
		}
		wantFound := what == "email" || what == "phone" || what == "metadata value" || what == "session JWT" || what == "onboarding token"
		if found != wantFound {
			t.Errorf("%s in history read with the codec: %v, want %v", what, found, wantFound)
		}
	}
}

func TestKeyRotationReadsOldHistory(t *testing.T) {
	s := newStack(t, connecttest.Options{})
	k1, k2 := codec.Key{ID: "k1", Secret: make([]byte, codec.KeySize)}, codec.Key{ID: "k2", Secret: make([]byte, codec.KeySize)}
	for _, k := range []codec.Key{k1, k2} {
		if _, err := rand.Read(k.Secret); err != nil {
			t.Fatal(err)
		}
	}
	clientWith := func(keys ...codec.Key) client.Client {
		opts := client.Options{Namespace: s.namespace}
		if err := codec.Apply(&opts, keys); err != nil {
			t.Fatal(err)
		}
		return s.server.NewClientWithOptions(opts)
	}
	// History written with key 1 only.
	old := clientWith(k1)
	w, err := workerapp.New(old, s.workerConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	started, err := transfer.NewClient(old, transfer.Options{TaskQueue: taskQueue}).Start(s.ctx(),
		workflows.TransferInput{Kind: connect.KindDeposit, TransferID: "rot-1", ReferenceID: "USER11"})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()

	// After rotation: key 2 first, key 1 still present. A new worker finishes the transfer; its history mixes both.
	rotated := clientWith(k2, k1)
	w2, err := workerapp.New(rotated, s.workerConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w2.Stop)
	ev := event(connect.KindDeposit, connect.StatusConfirmed, "cx-rot-1", started.SessionID)
	if err := rotated.SignalWorkflow(s.ctx(), started.WorkflowID, "", workflows.SignalConnectEvent, workflows.EventSignal{Event: ev}); err != nil {
		t.Fatal(err)
	}
	var r workflows.TransferResult
	if err := rotated.GetWorkflow(s.ctx(), started.WorkflowID, "").Get(s.ctx(), &r); err != nil || r.Status != workflows.StatusConfirmed {
		t.Fatalf("after rotation: %+v, %v", r, err)
	}
	st, err := transfer.NewClient(rotated, transfer.Options{TaskQueue: taskQueue}).Status(s.ctx(), connect.KindDeposit, "rot-1")
	if err != nil || st.Session == nil || st.Session.JWT != started.JWT {
		t.Fatalf("state written under key 1 must read after rotation: %+v, %v", st.Session, err)
	}
	// The workflow's input was sealed with key 1: without that key it cannot be read, and the error names the key.
	it := s.client.GetWorkflowHistory(s.ctx(), started.WorkflowID, "", false, 0)
	first, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	input := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	onlyK2, err := codec.New([]codec.Key{k2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyK2.Decode(input); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("decoding key-1 payloads without key 1: want an error naming k1, got %v", err)
	}
	withBoth, err := codec.New([]codec.Key{k2, k1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withBoth.Decode(input); err != nil {
		t.Fatalf("decoding key-1 payloads after rotation: %v", err)
	}
}
