// Package buildinfo says which build a connectflow binary is: its module path and version and the VCS revision it
// was built from, as `-version` prints them on every command.
//
// The go tool stamps the revision into every binary built in a git checkout (-buildvcs=auto, -trimpath or not).
// A build without the repository (the Docker build: .git is not in its context) passes it at link time instead:
//
//	go build -trimpath -ldflags "-X github.com/connectflow/connectflow/internal/buildinfo.vcsRevision=$(git rev-parse HEAD)" ./worker
//
// A stamp from the go tool wins over the link-time one. A binary with neither says "unknown".
package buildinfo

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
)

// Set with -ldflags -X where the go tool cannot stamp VCS data (see the package comment); a time is RFC 3339.
var (
	vcsRevision string
	vcsTime     string
)

// Unknown stands for a revision the binary does not know.
const Unknown = "unknown"

// Info is what a binary knows of its build.
type Info struct {
	Path      string // the main package, e.g. github.com/connectflow/connectflow/worker
	Module    string // its module, e.g. github.com/connectflow/connectflow
	Version   string // the module version: "(devel)" when built from a checkout, a tag when installed by version
	Revision  string // the VCS commit, or Unknown
	Time      string // the commit's time (RFC 3339), or ""
	Modified  bool   // the checkout had changes not committed
	GoVersion string
}

// Read returns this binary's Info.
func Read() Info {
	info, _ := debug.ReadBuildInfo()
	return FromDebug(info)
}

// FromDebug turns the go tool's build info (nil when the binary has none) into an Info, falling back on the
// link-time revision and time.
func FromDebug(info *debug.BuildInfo) Info {
	i := Info{GoVersion: runtime.Version()}
	if info != nil {
		i.Path, i.Module, i.Version = info.Path, info.Main.Path, info.Main.Version
		i.GoVersion = cmp.Or(info.GoVersion, i.GoVersion)
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.time":
				i.Time = s.Value
			case "vcs.modified":
				i.Modified, _ = strconv.ParseBool(s.Value)
			}
		}
	}
	if i.Revision == "" {
		i.Revision, i.Time = vcsRevision, cmp.Or(i.Time, vcsTime)
	}
	i.Revision = cmp.Or(i.Revision, Unknown)
	i.Version = cmp.Or(i.Version, "(devel)")
	i.Module = cmp.Or(i.Module, Module)
	return i
}

// Module is connectflow's module path, for a binary whose build info does not name it (a test binary's does).
const Module = "github.com/connectflow/connectflow"

// String is one line: "module version revision R [time T] [modified] go1.x [path P]".
func (i Info) String() string {
	s := fmt.Sprintf("%s %s revision %s", i.Module, i.Version, i.Revision)
	if i.Time != "" {
		s += " time " + i.Time
	}
	if i.Modified {
		s += " modified"
	}
	s += " " + i.GoVersion
	if i.Path != "" && i.Path != i.Module {
		s += " path " + i.Path
	}
	return s
}

// Fprint writes "program: " and the Info's line to w.
func Fprint(w io.Writer, program string) {
	fmt.Fprintf(w, "%s: %s\n", program, Read())
}

// FlagUsage is the -version flag's help line on every command.
const FlagUsage = "print the module version and VCS revision of this binary, and exit"

// ErrVersion is what a command's flag parsing returns after -version printed the build. It wraps flag.ErrHelp, so
// a caller that exits 0 after -h does the same after -version.
var ErrVersion = fmt.Errorf("%w: -version printed", flag.ErrHelp)

// Flag registers -version on fs. After fs.Parse, the returned check prints the build to w as "name: line" (name
// is fs.Name()) and returns ErrVersion when -version was given; otherwise it returns nil.
func Flag(fs *flag.FlagSet, w io.Writer) (check func() error) {
	v := fs.Bool("version", false, FlagUsage)
	return func() error {
		if !*v {
			return nil
		}
		Fprint(w, fs.Name())
		return ErrVersion
	}
}
