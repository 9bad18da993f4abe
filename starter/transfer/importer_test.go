package transfer_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// serverOnly are module paths (each with everything under it) that only the Temporal server, its UI and its
// persistence and cloud plugins bring in. A Go backend importing starter/transfer must resolve none of them.
var serverOnly = []string{
	"go.temporal.io/server",
	"github.com/temporalio/ui-server",
	"github.com/temporalio/ringpop-go",
	"github.com/temporalio/tchannel-go",
	"github.com/temporalio/sqlparser",
	"k8s.io",
	"sigs.k8s.io",
	"github.com/aws",
	"cloud.google.com/go/storage",
	"github.com/gocql",
	"github.com/olivere/elastic",
	"github.com/go-sql-driver/mysql",
	"github.com/jackc/pgx",
	"github.com/lib/pq",
	"modernc.org/sqlite",
}

func under(module, prefix string) bool {
	return module == prefix || strings.HasPrefix(module, prefix+"/")
}

// importerMain is a platform backend's smallest use of the library: a Temporal client and a transfer.Client on it.
const importerMain = `package main

import (
	"fmt"
	"os"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/starter/transfer"
)

func main() {
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:7233"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	var transfers *transfer.Client = transfer.NewClient(c, transfer.Options{})
	fmt.Println("transfer client ready:", transfers != nil)
}
`

// goCmd runs the go command in dir outside any workspace with GOFLAGS set to goflags (-mod=mod: free to add
// requirements, resolved from the module cache or GOPROXY as the environment has it), and returns its stdout.
func goCmd(t *testing.T, dir, goflags string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOWORK=") && !strings.HasPrefix(kv, "GOFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GOWORK=off", "GOFLAGS="+goflags)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return string(out)
}

// modules is the module paths `go list -m all` prints (the first field of each line).
func modules(listing string) []string {
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			paths = append(paths, f[0])
		}
	}
	return paths
}

// TestOutsideImporterResolvesNoServerModule is the module split's contract: a Go program in a module of its own,
// outside this repository, that imports starter/transfer (with a replace to this checkout) resolves no module of
// the Temporal server's, and builds and runs.
func TestOutsideImporterResolvesNoServerModule(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rootMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^module github\.com/connectflow/connectflow$`).Match(rootMod) {
		t.Fatalf("%s is not connectflow's root module", root)
	}
	goLine := regexp.MustCompile(`(?m)^go \S+$`).Find(rootMod)
	if goLine == nil {
		t.Fatalf("%s/go.mod has no go line", root)
	}

	dir := t.TempDir()
	if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
		t.Fatalf("temp module %s is inside the checkout %s", dir, root)
	}
	goMod := "module example.com/backend\n\n" + string(goLine) + "\n\n" +
		"require github.com/connectflow/connectflow v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/connectflow/connectflow => " + root + "\n"
	// The checkout's go.sum covers every module the importer can need; tidy adds what it lacks from the cache/proxy.
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": sums, "main.go": []byte(importerMain)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	goCmd(t, dir, "-mod=mod", "mod", "tidy")
	graph := modules(goCmd(t, dir, "-mod=mod", "list", "-m", "all"))
	have := map[string]bool{}
	var bad []string
	for _, m := range graph {
		have[m] = true
		for _, p := range serverOnly {
			if under(m, p) {
				bad = append(bad, m)
				break
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("the importer resolves %d server-only modules:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	// The listing is the real graph: it holds the library and the SDK it builds on.
	for _, m := range []string{"github.com/connectflow/connectflow", "go.temporal.io/sdk"} {
		if !have[m] {
			t.Errorf("the importer's go list -m all lacks %s: the check above proves nothing\n%s", m, strings.Join(graph, "\n"))
		}
	}
	t.Logf("an importer of starter/transfer resolves %d modules", len(graph))

	bin := filepath.Join(dir, "backend")
	goCmd(t, dir, "-mod=mod", "build", "-o", bin, ".")
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "transfer client ready: true" {
		t.Fatalf("the importer's binary: %v\n%s", err, out)
	}

	// The list above must name what the server really brings: every entry is in the dev module's graph.
	devGraph := modules(goCmd(t, filepath.Join(root, "dev"), "-mod=readonly", "list", "-m", "all"))
	for _, p := range serverOnly {
		found := false
		for _, m := range devGraph {
			found = found || under(m, p)
		}
		if !found {
			t.Errorf("no module under %s in dev's graph: drop it from serverOnly or fix the check", p)
		}
	}
}
