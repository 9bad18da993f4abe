package workerapp

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/connectflow/connectflow/workflows"
)

// fakeOperator is a Temporal operator service holding one namespace's custom search attributes.
type fakeOperator struct {
	operatorservice.UnimplementedOperatorServiceServer
	mu         sync.Mutex
	namespace  string
	attrs      map[string]enumspb.IndexedValueType
	listErr    error
	addErr     error
	raced      bool // another worker adds the same attributes just before this add arrives
	addedCalls []map[string]enumspb.IndexedValueType
}

func (f *fakeOperator) ListSearchAttributes(_ context.Context, req *operatorservice.ListSearchAttributesRequest) (*operatorservice.ListSearchAttributesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	if req.GetNamespace() != f.namespace {
		return nil, status.Errorf(codes.NotFound, "namespace %s not found", req.GetNamespace())
	}
	out := map[string]enumspb.IndexedValueType{}
	for k, v := range f.attrs {
		out[k] = v
	}
	return &operatorservice.ListSearchAttributesResponse{CustomAttributes: out}, nil
}

func (f *fakeOperator) AddSearchAttributes(_ context.Context, req *operatorservice.AddSearchAttributesRequest) (*operatorservice.AddSearchAttributesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addedCalls = append(f.addedCalls, req.GetSearchAttributes())
	if f.raced {
		for k, v := range req.GetSearchAttributes() {
			f.attrs[k] = v
		}
	}
	if f.addErr != nil {
		return nil, f.addErr
	}
	for k, v := range req.GetSearchAttributes() {
		if _, ok := f.attrs[k]; ok {
			return nil, status.Errorf(codes.AlreadyExists, "%s exists", k)
		}
		f.attrs[k] = v
	}
	return &operatorservice.AddSearchAttributesResponse{}, nil
}

type operatorConn struct {
	svc operatorservice.OperatorServiceClient
}

func (o operatorConn) OperatorService() operatorservice.OperatorServiceClient { return o.svc }

// serveOperator runs f as a gRPC server on loopback and returns a client for it.
func serveOperator(t *testing.T, f *fakeOperator) OperatorClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	operatorservice.RegisterOperatorServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return operatorConn{operatorservice.NewOperatorServiceClient(conn)}
}

func keywords(names ...string) map[string]enumspb.IndexedValueType {
	m := map[string]enumspb.IndexedValueType{}
	for _, n := range names {
		m[n] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return m
}

func TestRegisterSearchAttributes(t *testing.T) {
	all := workflows.SearchAttributeNames
	const allCommand = "temporal operator search-attribute create --namespace payments" +
		" --name ConnectReferenceID --type Keyword --name ConnectSessionID --type Keyword" +
		" --name ConnectTransferID --type Keyword --name PlatformNotified --type Keyword" +
		" --name TransferKind --type Keyword --name TransferStatus --type Keyword"
	tests := []struct {
		name      string
		have      map[string]enumspb.IndexedValueType
		listErr   error
		addErr    error
		raced     bool
		wantAdded map[string]enumspb.IndexedValueType // nil: no add call
		wantErr   []string
	}{
		{name: "all present", have: keywords(all...)},
		{name: "none present", have: keywords("Unrelated"), wantAdded: keywords(all...)},
		{name: "some present", have: keywords("TransferKind", "TransferStatus"),
			wantAdded: keywords("ConnectSessionID", "ConnectReferenceID", "ConnectTransferID", "PlatformNotified")},
		{name: "wrong type", have: map[string]enumspb.IndexedValueType{"ConnectSessionID": enumspb.INDEXED_VALUE_TYPE_TEXT},
			wantErr: []string{"must be Keyword", "ConnectSessionID is Text"}},
		{name: "add denied", have: keywords("TransferKind"), addErr: status.Error(codes.PermissionDenied, "no"),
			wantAdded: keywords("TransferStatus", "ConnectSessionID", "ConnectReferenceID", "ConnectTransferID", "PlatformNotified"),
			wantErr: []string{"add not allowed in namespace payments", "create them with: temporal operator search-attribute create --namespace payments" +
				" --name ConnectReferenceID --type Keyword --name ConnectSessionID --type Keyword" +
				" --name ConnectTransferID --type Keyword --name PlatformNotified --type Keyword --name TransferStatus --type Keyword"}},
		{name: "list unimplemented", listErr: status.Error(codes.Unimplemented, "no operator API"),
			wantErr: []string{"list not allowed in namespace payments", allCommand}},
		{name: "added by another worker meanwhile", have: keywords(), raced: true, wantAdded: keywords(all...)},
		{name: "server unavailable", have: keywords(), addErr: status.Error(codes.Unavailable, "down"),
			wantAdded: keywords(all...), wantErr: []string{"search attributes: add in namespace payments", "down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOperator{namespace: "payments", attrs: tt.have, listErr: tt.listErr, addErr: tt.addErr, raced: tt.raced}
			if f.attrs == nil {
				f.attrs = map[string]enumspb.IndexedValueType{}
			}
			err := RegisterSearchAttributes(context.Background(), serveOperator(t, f), "payments")
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("RegisterSearchAttributes: %v", err)
			}
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v lacks %q", err, want)
				}
			}
			if tt.wantErr == nil {
				for _, name := range all {
					if f.attrs[name] != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
						t.Errorf("%s is not a Keyword attribute afterwards", name)
					}
				}
			}
			switch {
			case tt.wantAdded == nil && len(f.addedCalls) != 0:
				t.Fatalf("added %v, want no add call", f.addedCalls)
			case tt.wantAdded != nil && (len(f.addedCalls) != 1 || !sameTypes(f.addedCalls[0], tt.wantAdded)):
				t.Fatalf("added %v, want one call adding %v", f.addedCalls, tt.wantAdded)
			}
		})
	}
}

func TestRegisterSearchAttributesUnknownNamespace(t *testing.T) {
	f := &fakeOperator{namespace: "payments", attrs: keywords()}
	err := RegisterSearchAttributes(context.Background(), serveOperator(t, f), "typo")
	if err == nil || !strings.Contains(err.Error(), "list in namespace typo") || strings.Contains(err.Error(), "create them with") {
		t.Fatalf("error %v: want the server's answer, not a command", err)
	}
}

func sameTypes(a, b map[string]enumspb.IndexedValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
