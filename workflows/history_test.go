package workflows

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/connectflow/connectflow/connect"
)

const historiesDir = "testdata/histories"

// A recorded history is never regenerated, only added (docs/versioning.md): MANIFEST.sha256 pins every recorded
// file's hash. A changed or deleted history fails here; a new one fails until its line is added to the manifest.
func TestRecordedHistoriesAreOnlyAdded(t *testing.T) {
	f, err := os.Open(filepath.Join(historiesDir, "MANIFEST.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pinned := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("manifest line %q: want \"<sha256>  <file>\"", line)
		}
		pinned[name] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for name, sum := range pinned {
		data, err := os.ReadFile(filepath.Join(historiesDir, name))
		if err != nil {
			t.Errorf("%s is in the manifest but cannot be read (a recorded history is never deleted): %v", name, err)
			continue
		}
		if got := sha256Hex(data); got != sum {
			t.Errorf("%s changed (sha256 %s, recorded %s): a recorded history is never regenerated; record a new one under a new name", name, got, sum)
		}
	}
	files, _ := filepath.Glob(filepath.Join(historiesDir, "*.json"))
	for _, path := range files {
		name := filepath.Base(path)
		if _, ok := pinned[name]; !ok {
			data, _ := os.ReadFile(path)
			t.Errorf("%s is not in MANIFEST.sha256: add the line %q", name, sha256Hex(data)+"  "+name)
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func loadHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return h
}

func historyFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(historiesDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	return files
}

// The transfer result's JSON keeps every name and value closed workflows returned: decoding a recorded result into
// today's TransferResult and encoding it again gives back every field the recorded one had.
func TestResultJSONCompatibleWithRecordedResults(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	checked := 0
	for _, path := range historyFiles(t) {
		h := loadHistory(t, path)
		if h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName() != "TransferWorkflow" {
			continue
		}
		for _, ev := range h.Events {
			done := ev.GetWorkflowExecutionCompletedEventAttributes()
			if ev.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED || len(done.GetResult().GetPayloads()) == 0 {
				continue
			}
			raw := done.GetResult().GetPayloads()[0].GetData()
			var recorded map[string]any
			if err := json.Unmarshal(raw, &recorded); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var r TransferResult
			if err := dc.FromPayload(done.GetResult().GetPayloads()[0], &r); err != nil {
				t.Fatalf("%s: decode into TransferResult: %v", path, err)
			}
			again, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var now map[string]any
			if err := json.Unmarshal(again, &now); err != nil {
				t.Fatal(err)
			}
			for k, v := range recorded {
				if !reflect.DeepEqual(now[k], v) {
					t.Errorf("%s: result field %q was %v, is now %v", filepath.Base(path), k, v, now[k])
				}
			}
			if r.Status == "" || len(r.Events) == 0 {
				t.Errorf("%s: result decoded empty: %+v", filepath.Base(path), r)
			}
			checked++
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d recorded transfer results, want every completed transfer", checked)
	}
}

// Histories recorded before connect.SessionRequest had JSON tags hold its untagged form; a worker that retries such
// a session activity decodes it into the same request.
func TestSessionRequestsInRecordedHistoriesDecode(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	checked := 0
	for _, path := range historyFiles(t) {
		h := loadHistory(t, path)
		wid := ""
		for _, ev := range h.Events {
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				var in TransferInput
				if a.GetWorkflowType().GetName() == "TransferWorkflow" && dc.FromPayload(a.GetInput().GetPayloads()[0], &in) == nil {
					wid = WorkflowID(in.Kind, in.TransferID)
				}
			}
			a := ev.GetActivityTaskScheduledEventAttributes()
			if a == nil || a.GetActivityType().GetName() != "CreateSession" {
				continue
			}
			var req connect.SessionRequest
			if err := dc.FromPayload(a.GetInput().GetPayloads()[0], &req); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if req.RequestID != wid || req.ReferenceID == "" || !req.Kind.Valid() || req.Metadata[MetadataTransferID] == "" {
				t.Errorf("%s: session request decoded as %+v (workflow %s)", filepath.Base(path), req, wid)
			}
			checked++
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d session requests", checked)
	}
}

// A replay must issue the same commands whatever search attributes the started event carries: the histories
// recorded before the recorder encoded first hold the final values there (the SDK's replayer had updated them in
// place), a real history holds the ones the starter set, or none. The workflow decides its upserts from its own
// record, never from its info.
func TestReplayIgnoresTheStartedEventsSearchAttributes(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	keyword := func(v string) *commonpb.Payload {
		p, err := dc.ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		p.Metadata["type"] = []byte("Keyword")
		return p
	}
	for _, attrs := range []map[string]*commonpb.Payload{
		nil, // started without any
		{"TransferKind": keyword("deposit"), "TransferStatus": keyword("creating_session"), "ConnectReferenceID": keyword("USER01")},
	} {
		h := loadHistory(t, filepath.Join(historiesDir, "deposit_confirmed_v1.json"))
		h.Events[0].GetWorkflowExecutionStartedEventAttributes().SearchAttributes = &commonpb.SearchAttributes{IndexedFields: attrs}
		r := worker.NewWorkflowReplayer()
		Register(r)
		if err := r.ReplayWorkflowHistory(nil, h); err != nil {
			t.Fatalf("replay with started search attributes %v: %v", attrs, err)
		}
	}
}
