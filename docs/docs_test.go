package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/workflows"
)

// pendingPages are pages the README links that other work of this round writes (issue 16: tracing, settings
// naming). A link to one of them may not resolve yet; once the page exists the test
// asks for its removal from this list, so the list cannot outlive its reason.
var pendingPages []string

// minDuplicate is the shortest paragraph or line (after joining whitespace) that may not appear in two of the
// README and the pages: long enough that a shared command or table header is not a duplicate section.
const minDuplicate = 100

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fenceLine = regexp.MustCompile("^\\s*```")
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pages(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("only %d pages in docs/: run the test from the docs folder", len(names))
	}
	return names
}

// links returns the targets of the markdown links of text outside code blocks.
func links(text string) []string {
	var out []string
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if fenceLine.MatchString(line) {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// TestEveryPageLinkedOnceFromREADME: each docs/*.md is linked exactly once from the README (a table of contents,
// not a maze), and the README links no page that is neither there nor pending.
func TestEveryPageLinkedOnceFromREADME(t *testing.T) {
	readme := read(t, "../README.md")
	count := map[string]int{}
	for _, l := range links(readme) {
		target, _, _ := strings.Cut(l, "#")
		if page, ok := strings.CutPrefix(target, "docs/"); ok && strings.HasSuffix(page, ".md") {
			count[page]++
		}
	}
	for _, page := range pages(t) {
		switch n := count[page]; {
		case n == 0:
			t.Errorf("README.md does not link docs/%s", page)
		case n > 1:
			t.Errorf("README.md links docs/%s %d times, want once", page, n)
		}
		if slices.Contains(pendingPages, page) {
			t.Errorf("docs/%s exists now: remove it from pendingPages", page)
		}
		delete(count, page)
	}
	for page, n := range count {
		if !slices.Contains(pendingPages, page) {
			t.Errorf("README.md links docs/%s, which does not exist", page)
		} else if n != 1 {
			t.Errorf("README.md links pending page docs/%s %d times, want once", page, n)
		}
	}
	for _, page := range pendingPages {
		if _, linked := count[page]; !linked {
			if _, err := os.Stat(page); err != nil {
				t.Errorf("pending page docs/%s is not linked from README.md", page)
			}
		}
	}
}

// blocks splits markdown into paragraphs and, separately, lines, each with its whitespace joined: what a copied
// section would share with its original.
func blocks(text string) []string {
	var out []string
	for _, para := range regexp.MustCompile(`\n\s*\n`).Split(text, -1) {
		out = append(out, strings.Join(strings.Fields(para), " "))
		for _, line := range strings.Split(para, "\n") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return out
}

// TestNoSectionInTwoPlaces: reference material lives in one place. No paragraph or line longer than minDuplicate
// of the README or of a page appears in the README or another page.
func TestNoSectionInTwoPlaces(t *testing.T) {
	files := append([]string{"../README.md"}, pages(t)...)
	texts := map[string]string{}
	for _, f := range files {
		texts[f] = strings.Join(strings.Fields(read(t, f)), " ")
	}
	for _, from := range files {
		for _, b := range blocks(read(t, from)) {
			if len(b) < minDuplicate {
				continue
			}
			for _, in := range files {
				if in != from && strings.Contains(texts[in], b) {
					t.Errorf("%s and %s both hold %q: keep it in one place", strings.TrimPrefix(from, "../"),
						strings.TrimPrefix(in, "../"), b)
				}
			}
		}
	}
}

// slug is GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(text string) map[string]bool {
	out := map[string]bool{}
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if fenceLine.MatchString(line) {
			fence = !fence
			continue
		}
		if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && !fence && strings.HasPrefix(line, "#") {
			s := slug(h)
			for i := 1; out[s]; i++ { // GitHub numbers repeated headings
				s = slug(h) + "-" + strconv.Itoa(i)
			}
			out[s] = true
		}
	}
	return out
}

// TestRelativeLinksResolve: every relative link of the README and the pages names a file of the repository, and
// an anchor names a heading of its page. (Pending pages may not exist yet.)
func TestRelativeLinksResolve(t *testing.T) {
	files := map[string]string{"../README.md": "README.md"}
	for _, page := range pages(t) {
		files[page] = "docs/" + page
	}
	for path, name := range files {
		text := read(t, path)
		for _, l := range links(text) {
			if strings.Contains(l, "://") || strings.HasPrefix(l, "mailto:") {
				continue
			}
			target, anchor, _ := strings.Cut(l, "#")
			resolved := path
			if target != "" {
				resolved = filepath.Join(filepath.Dir(path), target)
			}
			if _, err := os.Stat(resolved); err != nil {
				if isPending(resolved) {
					continue
				}
				t.Errorf("%s links %s: %v", name, l, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !anchors(read(t, resolved))[anchor] {
				t.Errorf("%s links %s: no heading with the anchor #%s", name, l, anchor)
			}
		}
	}
}

// isPending reports whether path is a pending page of this folder.
func isPending(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	here, err := filepath.Abs(".")
	return err == nil && filepath.Dir(abs) == here && slices.Contains(pendingPages, filepath.Base(abs))
}

// section returns the part of page under the heading title, up to the next heading of the same or a higher level.
func section(t *testing.T, page, title string) string {
	t.Helper()
	level := strings.Index(title, " ")
	i := strings.Index(page, "\n"+title+"\n")
	if i < 0 {
		t.Fatalf("temporal.md has no section %q", title)
	}
	rest := page[i+len(title)+2:]
	for _, line := range strings.Split(rest, "\n") {
		if n := len(line) - len(strings.TrimLeft(line, "#")); n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			return rest[:strings.Index(rest, "\n"+line+"\n")]
		}
	}
	return rest
}

// hasRow reports whether a table row of text starts with the code span `name` (after any leading column).
func hasRow(text, name string, rest ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "| `"+name+"` |") {
			cells := strings.Split(line, "|")
			ok := true
			for i, want := range rest {
				ok = ok && len(cells) > i+2 && strings.TrimSpace(cells[i+2]) == want
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// names is what the workflows package registers with Temporal, read from its source: the handlers' names as the
// workflows register them, and the search attribute keys they declare with their types.
type names struct {
	workflowTypes, signals, updates, queries []string
	searchAttrs                              map[string]string // name -> Temporal type
}

func parseWorkflows(t *testing.T) names {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("../workflows/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	consts := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, file)
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	value := func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, _ := strconv.Unquote(e.Value)
			return s
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return v
			}
		}
		t.Errorf("%s: a Temporal name that is not a string constant of package workflows", fset.Position(e.Pos()))
		return ""
	}
	n := names{searchAttrs: map[string]string{}}
	add := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	for _, file := range parsed {
		ast.Inspect(file, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			case *ast.Ident:
				fn = f.Name
			}
			switch {
			case fn == "RegisterWorkflow" && len(call.Args) == 1:
				if id, ok := call.Args[0].(*ast.Ident); ok {
					add(&n.workflowTypes, id.Name)
				}
			case fn == "GetSignalChannel" && len(call.Args) >= 2:
				add(&n.signals, value(call.Args[1]))
			case (fn == "SetUpdateHandler" || fn == "SetUpdateHandlerWithOptions") && len(call.Args) >= 2:
				add(&n.updates, value(call.Args[1]))
			case fn == "SetQueryHandler" && len(call.Args) >= 2:
				add(&n.queries, value(call.Args[1]))
			case strings.HasPrefix(fn, "NewSearchAttributeKey") && len(call.Args) == 1:
				typ := strings.TrimPrefix(fn, "NewSearchAttributeKey")
				if typ == "String" {
					typ = "Text"
				}
				n.searchAttrs[value(call.Args[0])] = typ
			}
			return true
		})
	}
	return n
}

// TestTemporalNamesTable: temporal.md names every workflow type, signal, update, query and search attribute the
// code registers (with the attribute's type), the task queue, the schedule and the deployment, and its commands
// that create the search attributes are the worker's.
func TestTemporalNamesTable(t *testing.T) {
	page := read(t, "temporal.md")
	n := parseWorkflows(t)
	if len(n.workflowTypes) < 5 || len(n.signals) < 5 || len(n.updates) < 4 || len(n.queries) < 1 || len(n.searchAttrs) < 6 {
		t.Fatalf("the parse of workflows/*.go found too little: %+v", n)
	}
	check := func(title string, list []string) {
		s := section(t, page, title)
		for _, name := range list {
			if !hasRow(s, name) {
				t.Errorf("temporal.md, %q: no row for `%s`", title, name)
			}
		}
	}
	check("### Workflow types", n.workflowTypes)
	check("### Signals", n.signals)
	check("### Updates", n.updates)
	check("### Queries", n.queries)

	attrs := section(t, page, "### Search attributes")
	for name, typ := range n.searchAttrs {
		if !hasRow(attrs, name, typ) {
			t.Errorf("temporal.md, search attributes: no row `%s` | %s", name, typ)
		}
	}
	for _, name := range workflows.SearchAttributeNames {
		if _, declared := n.searchAttrs[name]; !declared {
			t.Errorf("workflows.SearchAttributeNames has %s, but no search attribute key declares it", name)
		}
		if !hasRow(attrs, name, "Keyword") {
			t.Errorf("temporal.md, search attributes: no row `%s` | Keyword (the worker registers it as Keyword)", name)
		}
		if !strings.Contains(page, "--search-attribute "+name+"=Keyword") {
			t.Errorf("temporal.md: the start-dev command does not create %s", name)
		}
	}
	if cmd := workerapp.CreateSearchAttributesCommand("default", workflows.SearchAttributeNames); !strings.Contains(page, "\n"+cmd+"\n") {
		t.Errorf("temporal.md does not hold the worker's command %q", cmd)
	}
	for what, name := range map[string]string{
		"task queue":             workflows.DefaultTaskQueue,
		"schedule":               workflows.ReconcileScheduleID,
		"cursor workflow id":     workflows.ReconcileCursorWorkflowID,
		"reconcile run prefix":   workflows.ReconcileRunWorkflowPrefix + "-",
		"worker deployment name": workerapp.DefaultDeploymentName,
	} {
		if !strings.Contains(page, "`"+name) {
			t.Errorf("temporal.md does not name the %s %q", what, name)
		}
	}
	for _, q := range []string{workflows.QueryStalled, workflows.QueryNeedsPerson, workflows.QueryPlatformPending} {
		if !strings.Contains(page, `--query "`+q+`"`) {
			t.Errorf("temporal.md has no recipe listing %q", q)
		}
	}
}

// TestEveryMakeTestTargetDocumented: testing.md has a row for every target `make test` runs, so a target added to
// the Makefile is described where a reader looks for it.
func TestEveryMakeTestTargetDocumented(t *testing.T) {
	page := read(t, "testing.md")
	var targets []string
	for _, line := range strings.Split(read(t, "../Makefile"), "\n") {
		if deps, ok := strings.CutPrefix(line, "test:"); ok {
			targets = strings.Fields(deps)
		}
	}
	if len(targets) < 5 {
		t.Fatalf("the Makefile's test target lists %v", targets)
	}
	for _, target := range targets {
		if !hasRow(page, target) {
			t.Errorf("testing.md has no row for the make test target `%s`", target)
		}
	}
}
