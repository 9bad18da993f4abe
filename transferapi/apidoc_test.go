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
