package buildinfo

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromDebug(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Path: Module + "/worker",
		Main: debug.Module{Path: Module, Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "vcs.revision", Value: "0123abc"},
			{Key: "vcs.time", Value: "2026-11-30T20:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := FromDebug(stamped)
	want := Info{Path: Module + "/worker", Module: Module, Version: "(devel)", Revision: "0123abc",
		Time: "2026-11-30T20:00:00Z", Modified: true, GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("FromDebug = %+v, want %+v", got, want)
	}
	if s := got.String(); s != Module+" (devel) revision 0123abc time 2026-11-30T20:00:00Z modified go1.26.8 path "+Module+"/worker" {
		t.Errorf("String() = %q", s)
	}

	// No VCS stamp (-buildvcs=false, or no .git): the link-time revision, else Unknown.
	bare := &debug.BuildInfo{GoVersion: "go1.26.8", Path: Module + "/worker", Main: debug.Module{Path: Module, Version: "v1.2.3"}}
	if got := FromDebug(bare); got.Revision != Unknown || got.Version != "v1.2.3" || got.Time != "" {
		t.Errorf("without a stamp: %+v", got)
	}
	vcsRevision, vcsTime = "feedbeef", "2026-01-02T03:04:05Z"
	t.Cleanup(func() { vcsRevision, vcsTime = "", "" })
	if got := FromDebug(bare); got.Revision != "feedbeef" || got.Time != "2026-01-02T03:04:05Z" {
		t.Errorf("link-time revision not used: %+v", got)
	}
	if got := FromDebug(stamped); got.Revision != "0123abc" || got.Time != "2026-11-30T20:00:00Z" {
		t.Errorf("the go tool's stamp must win over the link-time one: %+v", got)
	}
	if got := FromDebug(nil); got.Module != Module || got.Version != "(devel)" || got.Revision != "feedbeef" || got.GoVersion == "" {
		t.Errorf("without build info: %+v", got)
	}
}

func TestFlag(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	check := Flag(fs, &out)
	if err := fs.Parse(nil); err != nil || check() != nil || out.Len() != 0 {
		t.Fatalf("without -version: %v, %v, %q", err, check(), out.String())
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	check = Flag(fs, &out)
	if err := fs.Parse([]string{"-version"}); err != nil {
		t.Fatal(err)
	}
	if err := check(); !errors.Is(err, ErrVersion) || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("after -version: %v, want ErrVersion wrapping flag.ErrHelp", err)
	}
	if !strings.HasPrefix(out.String(), "x: "+Module+" ") || !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("printed %q", out.String())
	}
}

// TestBuiltBinaryVersion builds a real command as the Makefile and the Dockerfile do (-trimpath) and runs it with
// -version: in a git checkout the go tool stamps the revision; with -buildvcs=false (the Docker build, which has
// no .git) the -ldflags -X revision is printed; with neither, "unknown".
var versionLine = regexp.MustCompile(`^probe: ` + regexp.QuoteMeta(Module) + ` (\(devel\)|v\S+) revision \S+ `)

func TestBuiltBinaryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	head, gitErr := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	dir := t.TempDir()
	build := func(name string, args ...string) string {
		t.Helper()
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", append(append([]string{"build", "-trimpath", "-o", bin}, args...), "./deploy/probe")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
		return bin
	}
	version := func(bin string) string {
		t.Helper()
		cmd := exec.Command(bin, "-version")
		cmd.Env = []string{"HOME=" + dir} // no setting at all: -version needs none
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -version: %v", bin, err)
		}
		line := string(out)
		// The version is "(devel)", or with a clean VCS stamp the go tool's pseudo-version of the commit.
		if !versionLine.MatchString(line) || !strings.Contains(line, " path "+Module+"/deploy/probe") {
			t.Fatalf("%s -version: %q", bin, line)
		}
		return line
	}

	// The go tool stamps only a checkout whose .git is a folder (not a git worktree, whose .git is a file), and
	// only with -buildvcs=true on this machine, whose go env sets GOFLAGS=-buildvcs=false.
	if info, err := os.Stat(filepath.Join(root, ".git")); gitErr == nil && err == nil && info.IsDir() {
		rev := strings.TrimSpace(string(head))
		if line := version(build("stamped", "-buildvcs=true")); !strings.Contains(line, "revision "+rev+" time ") {
			t.Errorf("a -trimpath build in the git checkout: %q, want revision %s and its time", line, rev)
		}
	} else {
		t.Logf("not a plain git checkout (git: %v, .git: %v): the go tool's own stamp is not checked", gitErr, err)
	}
	const linked = "0123456789abcdef0123456789abcdef01234567"
	if line := version(build("linked", "-buildvcs=false",
		"-ldflags=-s -w -X "+Module+"/internal/buildinfo.vcsRevision="+linked)); !strings.Contains(line, "revision "+linked) {
		t.Errorf("-buildvcs=false with the revision at link time: %q", line)
	}
	line := version(build("bare", "-buildvcs=false"))
	if !regexp.MustCompile(`revision unknown go1\.`).MatchString(line) {
		t.Errorf("-buildvcs=false without a revision: %q, want revision unknown", line)
	}
}
