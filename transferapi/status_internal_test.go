package transferapi

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// reviewStatuses belong to review workflows, not transfers.
var reviewStatuses = []string{"StatusNeedsReview", "StatusResolved", "StatusRedelivered"}

// TestStatusesMatchWorkflows keeps the list filter and the OpenAPI Status enum equal to the transfer statuses
// package workflows declares, so a status added there (and met in an answer) fails here first.
func TestStatusesMatchWorkflows(t *testing.T) {
	files, err := filepath.Glob("../workflows/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var declared []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || len(vs.Values) != 1 {
				return true
			}
			id, ok := vs.Type.(*ast.Ident)
			lit, isLit := vs.Values[0].(*ast.BasicLit)
			if !ok || id.Name != "Status" || !isLit || slices.Contains(reviewStatuses, vs.Names[0].Name) {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			declared = append(declared, v)
			return true
		})
	}
	if len(declared) < 10 {
		t.Fatalf("found only %d statuses in package workflows: %v", len(declared), declared)
	}
	var listed []string
	for _, s := range allStatuses {
		listed = append(listed, string(s))
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Status struct {
					Enum []string `json:"enum"`
				} `json:"Status"`
			} `json:"schemas"`
		} `json:"components"`
	}
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	slices.Sort(declared)
	slices.Sort(listed)
	enum := slices.Clone(doc.Components.Schemas.Status.Enum)
	slices.Sort(enum)
	if !slices.Equal(declared, listed) {
		t.Errorf("allStatuses %v, package workflows declares %v", listed, declared)
	}
	if !slices.Equal(declared, enum) {
		t.Errorf("openapi.json Status enum %v, package workflows declares %v", enum, declared)
	}
}
