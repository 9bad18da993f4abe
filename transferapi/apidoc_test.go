package transferapi_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/transferapi/transferapitest"
)

var (
	curlLine = regexp.MustCompile(`curl [^\n]*?(?:-X (POST) )?"?\$API(/[^ "?]*)`)
	curlBody = regexp.MustCompile(`-d '([^']*)'`)
	idSeg    = regexp.MustCompile(`^/v1/(deposits|withdrawals)/[^/]+`)
)

// TestAPIDocCurlExamples: every curl example of the transfer API's page (docs/api.md) names a documented
// operation, and its body is valid for it; the page's error table names every problem type.
func TestAPIDocCurlExamples(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(raw)
	if !strings.HasPrefix(section, "# The transfer API") {
		t.Fatal("docs/api.md does not start with the transfer API's title")
	}
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops := spec.Operations()
	// A command may continue over lines ending in a backslash.
	commands := strings.Split(strings.ReplaceAll(section, "\\\n", " "), "\n")
	checked := 0
	for _, cmd := range commands {
		m := curlLine.FindStringSubmatch(cmd)
		if m == nil {
			continue
		}
		method := "GET"
		if m[1] != "" {
			method = m[1]
		}
		path := idSeg.ReplaceAllString(m[2], "/v1/$1/{transfer_id}")
		op := method + " " + path
		found := false
		for _, o := range ops {
			found = found || o == op
		}
		if !found {
			t.Errorf("docs/api.md example %q: %s is not an operation", strings.TrimSpace(cmd), op)
			continue
		}
		if b := curlBody.FindStringSubmatch(cmd); b != nil {
			var body any
			if err := json.Unmarshal([]byte(b[1]), &body); err != nil {
				t.Errorf("docs/api.md example %q: body is not JSON: %v", cmd, err)
				continue
			}
			schema := requestSchema(t, spec, path, strings.ToLower(method))
			if err := spec.Validate(schema, body); err != nil {
				t.Errorf("docs/api.md example %q: %v", cmd, err)
			}
		}
		checked++
	}
	if checked < 7 {
		t.Fatalf("only %d curl examples found", checked)
	}
	for _, typ := range transferapi.ProblemTypes() {
		name := strings.TrimPrefix(typ, "urn:connectflow:problem:")
		if !strings.Contains(section, name) {
			t.Errorf("docs/api.md's error table lacks %s", typ)
		}
	}
}

func requestSchema(t *testing.T, spec *transferapitest.Spec, path, method string) string {
	t.Helper()
	paths := spec.Doc["paths"].(map[string]any)
	op := paths[path].(map[string]any)[method].(map[string]any)
	ref := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["$ref"].(string)
	return strings.TrimPrefix(ref, "#")
}

// TestAPIDocReservedMetadataKeys: the metadata keys docs/api.md calls reserved are exactly those the API refuses
// (openapi names the same two), and another connectflow_ key is a platform's own.
func TestAPIDocReservedMetadataKeys(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	sentence := regexp.MustCompile("`metadata` \\(([^)]*)\\)").FindStringSubmatch(string(raw))
	if sentence == nil {
		t.Fatal("docs/api.md does not describe the start body's metadata")
	}
	var keys []string
	for _, m := range regexp.MustCompile("`(connectflow_[^`]*)`").FindAllStringSubmatch(sentence[1], -1) {
		keys = append(keys, m[1])
	}
	if strings.Join(keys, ",") != "connectflow_transfer_id,connectflow_kind" {
		t.Errorf("docs/api.md's metadata (%s) names reserved keys %v, want exactly connectflow_transfer_id and connectflow_kind", sentence[1], keys)
	}
	hs := offlineServer(t)
	for _, k := range keys {
		a := call(t, "POST", hs.URL+"/v1/deposits", tokenA, "application/json",
			`{"transfer_id":"t1","reference_id":"U","metadata":{"`+k+`":"x"}}`)
		if a.status != 422 || len(a.problem.Errors) != 1 || a.problem.Errors[0].Field != "metadata."+k {
			t.Errorf("docs/api.md reserves %s, but the API answers %d %s", k, a.status, a.raw)
		}
	}
	if a := call(t, "POST", hs.URL+"/v1/deposits", tokenA, "application/json",
		`{"transfer_id":"t1","reference_id":"U","metadata":{"connectflow_order":"x"}}`); a.status != 503 {
		t.Errorf("metadata key connectflow_order: %d %s; want it past validation (503 with Temporal down)", a.status, a.raw)
	}
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	desc := spec.Doc["components"].(map[string]any)["schemas"].(map[string]any)["StartRequest"].(map[string]any)["properties"].(map[string]any)["metadata"].(map[string]any)["description"].(string)
	for _, k := range keys {
		if !strings.Contains(desc, k) {
			t.Errorf("openapi's metadata description %q does not name %s", desc, k)
		}
	}
}
