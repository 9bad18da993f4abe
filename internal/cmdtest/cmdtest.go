// Package cmdtest builds connectflow's commands for tests that run them as real processes: each command once per
// test binary, with the go tool that runs the tests.
package cmdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]result{} // package path -> binary; only looked up
)

type result struct {
	path string
	err  error
}

// Build compiles the command in pkg (as `go build` takes it: ".", "../starter") and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	r, ok := built[pkg]
	if !ok {
		r = build(pkg)
		built[pkg] = r
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

func build(pkg string) result {
	if dir == "" {
		d, err := os.MkdirTemp("", "connectflow-bin-")
		if err != nil {
			return result{err: err}
		}
		dir = d
	}
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return result{err: err}
	}
	bin := filepath.Join(dir, filepath.Base(abs))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return result{err: fmt.Errorf("go build %s: %v\n%s", pkg, err, out)}
	}
	return result{path: bin}
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir) // a temp dir left behind is harmless; the test result stands
		dir = ""
	}
}
