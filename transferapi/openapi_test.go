package transferapi_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/transferapi/transferapitest"
)

var ginParam = regexp.MustCompile(`:([a-z_]+)`)

// TestOpenAPIMatchesRouter: every route is documented, every documented route is served.
func TestOpenAPIMatchesRouter(t *testing.T) {
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if spec.Doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v", spec.Doc["openapi"])
	}
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth, err := transferapi.NewAuthenticator(mustTokens(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := transferapi.New(transferapi.Options{Temporal: c, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, r := range srv.Routes() {
		served = append(served, ginParam.ReplaceAllString(r, "{$1}"))
	}
	sort.Strings(served)
	documented := spec.Operations()
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("served but not documented: %s", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("documented but not served: %s", r)
		}
	}
	if len(served) != 16 { // issue 13's 14, POST /v1/reconcile (issue 17), POST /v1/reviews/{review_id}/redeliver (issue 16)
		t.Errorf("%d routes served, want 16: %v", len(served), served)
	}
}

// TestOpenAPIExamplesValid validates every example of the document against the schema beside it, and requires an
// example for every request body and every JSON answer.
func TestOpenAPIExamplesValid(t *testing.T) {
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if _, isMedia := m["schema"]; isMedia && (strings.HasSuffix(ptr, "/application~1json") || strings.HasSuffix(ptr, "/application~1problem+json")) {
			examples, _ := m["examples"].(map[string]any)
			if len(examples) == 0 && !strings.Contains(ptr, "openapi.json") {
				t.Errorf("%s: no example", ptr)
			}
			for name, ex := range examples {
				value := ex.(map[string]any)["value"]
				if err := spec.Validate(ptr+"/schema", value); err != nil {
					t.Errorf("%s example %s: %v", ptr, name, err)
				}
				checked++
			}
		}
		for k, child := range m {
			walk(ptr+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), child)
		}
	}
	walk("", spec.Doc)
	if checked < 30 {
		t.Fatalf("only %d examples checked", checked)
	}
	// Every problem type the API answers with is documented, except the router's own.
	doc := string(transferapi.OpenAPI)
	for _, typ := range transferapi.ProblemTypes() {
		switch typ {
		case transferapi.TypeNotFound, transferapi.TypeMethodNotAllowed:
			continue
		}
		if !strings.Contains(doc, fmt.Sprintf("%q", typ)) {
			t.Errorf("problem type %s appears in no example", typ)
		}
	}
	// A wrong example is caught: the check can fail.
	if err := spec.Validate("/components/schemas/StartRequest", map[string]any{"transfer_id": "x", "colour": "red"}); err == nil {
		t.Fatal("an unknown field must fail StartRequest")
	}
}

func mustTokens(t *testing.T) []transferapi.Token {
	t.Helper()
	toks, err := transferapi.ParseTokens("backend:" + tokenA)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// TestOpenAPIDocumentsInternal: every /v1 operation can answer 500 internal (a Temporal error the API does not
// expect, an unreadable history, or a handler's panic, which observe answers as a problem), so each documents it,
// with an example of the problem it gets.
func TestOpenAPIDocumentsInternal(t *testing.T) {
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	paths := spec.Doc["paths"].(map[string]any)
	n := 0
	for _, op := range spec.Operations() {
		method, path, _ := strings.Cut(op, " ")
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		n++
		responses := paths[path].(map[string]any)[strings.ToLower(method)].(map[string]any)["responses"].(map[string]any)
		if _, ok := responses["500"]; !ok {
			t.Errorf("%s documents no 500", op)
		}
	}
	if n != 12 {
		t.Errorf("%d /v1 operations, want 12", n)
	}
	body := []byte(`{"type":"` + transferapi.TypeInternal + `","title":"Internal error","status":500}`)
	for _, op := range []struct{ method, path string }{{"POST", "/v1/deposits"}, {"GET", "/v1/transfers"}, {"POST", "/v1/reviews/{review_id}/redeliver"}} {
		if err := spec.CheckResponse(op.method, op.path, 500, transferapi.ProblemContentType, body); err != nil {
			t.Error(err)
		}
	}
}
