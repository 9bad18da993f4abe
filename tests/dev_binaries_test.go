package tests

import (
	"bytes"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/internal/buildinfo"
	"github.com/connectflow/connectflow/internal/cmdtest"
)

// What a binary's -h says it reads: "env NAME" under a setting, "  -name" for a flag.
var (
	usageEnv  = regexp.MustCompile(`(?m)\benv ([A-Z][A-Z0-9_]*)\b`)
	usageFlag = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
)

// binaryUsage runs a built binary with args (ending in -h) and returns its usage text; -h must exit 0.
func binaryUsage(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out.String())
	}
	return out.String()
}

// usageSet returns the first group of every match of re in usage, failing when there is none: a usage text the
// pattern does not fit would make every check on it pass vacuously.
func usageSet(t *testing.T, re *regexp.Regexp, usage string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(usage, -1) {
		set[m[1]] = true
	}
	if len(set) == 0 {
		t.Fatalf("usage lists nothing matching %s:\n%s", re, usage)
	}
	return set
}

// readers maps each of connectflow's binaries that reads settings from the environment to the variables its -h
// lists.
func readers(t *testing.T) map[string]map[string]bool {
	t.Helper()
	return map[string]map[string]bool{
		"worker":        usageSet(t, usageEnv, binaryUsage(t, cmdtest.Build(t, "../worker"), "-h")),
		"webhookbridge": usageSet(t, usageEnv, binaryUsage(t, cmdtest.Build(t, "../webhookbridge"), "-h")),
		"starter":       usageSet(t, usageEnv, binaryUsage(t, cmdtest.Build(t, "../starter"), "deposit", "-h")),
	}
}

// TestSmallBinariesDoNotLinkTheServer keeps the Temporal server and its UI out of everything but the dev command.
func TestSmallBinariesDoNotLinkTheServer(t *testing.T) {
	heavy := regexp.MustCompile(`^(go\.temporal\.io/server|github\.com/temporalio/ui-server)(/|$)`)
	for _, pkg := range []string{"worker", "webhookbridge", "starter", "sandbox"} {
		out, err := exec.Command("go", "list", "-deps", "../"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range bytes.Fields(out) {
			if heavy.Match(dep) {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
	// The check itself must see the server where it is: in the dev command.
	out, err := exec.Command("go", "list", "-deps", "../dev").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps dev: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^go\.temporal\.io/server/temporal$`).Match(out) ||
		!regexp.MustCompile(`(?m)^github\.com/temporalio/ui-server/v2/server$`).Match(out) {
		t.Fatal("dev does not list the Temporal server and UI packages: the check above proves nothing")
	}
}

// TestEveryBinaryAnswersVersion runs each of connectflow's commands, built as `go build` builds them, with -version
// and nothing else: exit 0, one line on stdout naming the command, its module path, a version and a revision. The
// revision is the commit where the go tool stamps it (a plain git checkout with -buildvcs on), else "unknown":
// internal/buildinfo's test checks the stamped and the link-time (-ldflags -X) revisions.
func TestEveryBinaryAnswersVersion(t *testing.T) {
	// The module is the root's, or for the server-linked commands their own (github.com/connectflow/connectflow/dev).
	line := regexp.MustCompile(`^([a-z]+): ` + regexp.QuoteMeta(buildinfo.Module) + `(/[a-z]+)? (\(devel\)|v\S+) revision \S+ .*go1\.\S+`)
	for _, pkg := range []string{"worker", "webhookbridge", "starter", "sandbox", "deploy/probe", "dev", "bench", "tests/chaos"} {
		cmd := exec.Command(cmdtest.Build(t, "../"+pkg), "-version")
		cmd.Env = []string{"HOME=" + t.TempDir()} // no setting: -version reads none
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s -version: %v\n%s", pkg, err, stderr.String())
			continue
		}
		m := line.FindStringSubmatch(stdout.String())
		if m == nil || m[1] != path.Base(pkg) || strings.Count(stdout.String(), "\n") != 1 {
			t.Errorf("%s -version printed %q", pkg, stdout.String())
		}
	}
}
