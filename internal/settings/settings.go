// Package settings reads each setting of a process from a command-line flag or, when the flag is absent, from its
// environment variable. The flag's name is the variable's, lowercased and dashed: CONNECT_CLIENT_ID is
// -connect-client-id. Errors name both and never contain a value, so a secret cannot leak through one.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/connectflow/connectflow/internal/buildinfo"
)

// Env is where settings come from when no flag gives them; envconfig.EnvLookup has the same shape.
type Env interface {
	Environ() []string
	LookupEnv(key string) (string, bool)
}

type osEnv struct{}

func (osEnv) Environ() []string                   { return os.Environ() }
func (osEnv) LookupEnv(key string) (string, bool) { return os.LookupEnv(key) }

// OSEnv is the process environment.
var OSEnv Env = osEnv{}

// MapEnv is an environment holding exactly its entries, for tests and for processes that embed others.
type MapEnv map[string]string

// LookupEnv returns m[key] and whether it is present.
func (m MapEnv) LookupEnv(key string) (string, bool) { v, ok := m[key]; return v, ok }

// Environ returns the entries as KEY=value, sorted.
func (m MapEnv) Environ() []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Options configure a Set.
type Options struct {
	Env    Env       // default OSEnv
	Output io.Writer // where -h and flag syntax errors are printed; default os.Stderr
	// VersionOutput is where -version prints the build (internal/buildinfo); default os.Stdout.
	VersionOutput io.Writer
}

// Spec describes one setting.
type Spec struct {
	Env      string // the environment variable, e.g. "CONNECT_CLIENT_ID"; the flag is its lowercase, dashed form
	Usage    string // one line for -h
	Default  string // parsed like any other value when neither the flag nor the variable gives one
	Required bool   // an empty value is an error
	// FileText turns the content of a secret's _FILE variant into the setting's text; nil removes one trailing
	// newline. Only Secret settings have a _FILE variant.
	FileText func(content []byte) (string, error)
	// OwnFile says the caller registers and reads Env+FileSuffix itself, with rules of its own (a list the file
	// adds to); Secret then registers no _FILE variant.
	OwnFile bool
	// Aliases are deprecated names of Env, still read, each also a flag (METRICS_ADDR, -metrics-addr): after Env's
	// flag, an alias's flag; after Env's variable, an alias's variable. Each alias used is recorded for
	// Deprecated, by name only. -h lists them under Env. Not for a Secret (its _FILE has no alias).
	Aliases []string
}

// Deprecation is one deprecated setting name a Parse read: Old (a variable, or a flag with its dash) and the New
// name to use instead. It never holds a value.
type Deprecation struct{ Old, New string }

// Message is the one warning a process logs for d, naming the new setting and never the value.
func (d Deprecation) Message() string {
	return d.Old + " is deprecated and will be removed: use " + d.New + " (same value)"
}

// FileSuffix names a secret's file variant: CONNECT_CLIENT_SECRET_FILE holds the path of a file (a Docker or
// Kubernetes secret) whose content is CONNECT_CLIENT_SECRET. Every Secret setting has one, read by Parse.
const FileSuffix = "_FILE"

// Error is one setting that is missing or malformed.
type Error struct {
	Env  string
	Flag string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s (flag -%s): %v", e.Env, e.Flag, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// ErrRequired is the cause of an Error for a required setting that has no value.
var ErrRequired = errors.New("required")

// ErrUsage wraps a command-line syntax error (an unknown flag, a missing flag value) that Parse has already
// printed with the usage, so the caller need not print it again.
var ErrUsage = errors.New("bad command line")

// ErrVersion is Parse's answer to -version, after printing the build (internal/buildinfo). It wraps flag.ErrHelp,
// so a caller that exits 0 after -h does the same after -version.
var ErrVersion = buildinfo.ErrVersion

// Set is a flag.FlagSet whose settings fall back to environment variables.
type Set struct {
	fs       *flag.FlagSet
	env      Env
	settings []*setting
	byFlag   map[string]*setting
	version  func() error      // prints the build and returns ErrVersion after -version
	aliases  map[string]*alias // by flag name: deprecated names, left out of -h's list
	// deprecated lists the aliases the last Parse read.
	deprecated []Deprecation
}

// alias is a deprecated name of a setting: its variable and flag.
type alias struct {
	env     string
	flag    string
	flagged bool
	raw     string
}

func (a *alias) Set(raw string) error { a.raw, a.flagged = raw, true; return nil }
func (a *alias) String() string       { return "" }

// aliasBool lets a deprecated bool flag stand alone (-register-search-attributes).
type aliasBool struct{ *alias }

func (aliasBool) IsBoolFlag() bool { return true }

// setting is one registered Spec and how its text becomes the caller's value.
type setting struct {
	spec    Spec
	flag    string
	kind    string // placeholder shown in -h, e.g. "url"
	secret  bool
	flagged bool // given on the command line: the flag wins even when empty
	aliases []*alias
	raw     string // the flag's text, once flagged
	parse   func(string) error
	isBool  bool
	file    *setting // a secret's _FILE variant
	fileOf  *setting // set on a _FILE variant: the secret it fills
}

// New returns an empty Set named name (the program, for -h).
func New(name string, opts Options) *Set {
	if opts.Env == nil {
		opts.Env = OSEnv
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.VersionOutput == nil {
		opts.VersionOutput = os.Stdout
	}
	s := &Set{fs: flag.NewFlagSet(name, flag.ContinueOnError), env: opts.Env, byFlag: map[string]*setting{},
		aliases: map[string]*alias{}}
	s.fs.SetOutput(opts.Output)
	s.version = buildinfo.Flag(s.fs, opts.VersionOutput) // every command answers -version
	s.fs.Usage = s.usage
	return s
}

// FlagSet is the underlying flag set, for plain flags that have no environment variable.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// Args returns the arguments left after the flags.
func (s *Set) Args() []string { return s.fs.Args() }

// FlagName turns an environment variable's name into its flag's: CONNECT_CLIENT_ID -> connect-client-id.
func FlagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// add registers a setting; a duplicate or unnamed Spec is a programming error and panics, as flag does.
func (s *Set) add(spec Spec, kind string, parse func(string) error) *setting {
	if spec.Env == "" {
		panic("settings: Spec.Env is empty")
	}
	st := &setting{spec: spec, flag: FlagName(spec.Env), kind: kind, parse: parse}
	s.fs.Var(flagValue{st}, st.flag, spec.Usage)
	s.settings = append(s.settings, st)
	s.byFlag[st.flag] = st
	for _, name := range spec.Aliases {
		a := &alias{env: name, flag: FlagName(name)}
		var v flag.Value = a
		if kind == "" { // a Bool
			v = aliasBool{a}
		}
		s.fs.Var(v, a.flag, "deprecated: use -"+st.flag)
		s.aliases[a.flag] = a
		st.aliases = append(st.aliases, a)
	}
	return st
}

// Deprecated lists the deprecated names (Spec.Aliases) the last Parse read, for the process to warn of once its
// logger exists; names only, never a value.
func (s *Set) Deprecated() []Deprecation { return s.deprecated }

// flagValue records the flag's text; parsing waits until Parse so flag and variable are checked alike.
type flagValue struct{ s *setting }

func (v flagValue) Set(raw string) error {
	v.s.raw, v.s.flagged = raw, true
	return nil
}

func (v flagValue) String() string {
	if v.s == nil || v.s.secret {
		return ""
	}
	return v.s.spec.Default
}

func (v flagValue) IsBoolFlag() bool { return v.s != nil && v.s.isBool }

// Parse reads args, then fills every setting from its flag, else its variable (empty counts as unset), else its
// default. It returns flag.ErrHelp for -h, ErrVersion for -version (the build printed, no setting read), an
// ErrUsage for bad syntax, or every missing and malformed setting joined, each an *Error.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := s.version(); err != nil {
		return err
	}
	var problems []error
	s.deprecated = nil
	for _, st := range s.settings {
		if st.fileOf != nil {
			continue // read with its secret
		}
		raw, envName, flagName := s.textFrom(st)
		if st.file != nil {
			if path := s.text(st.file); path != "" {
				if raw != "" {
					problems = append(problems, &Error{Env: st.file.spec.Env, Flag: st.file.flag,
						Err: fmt.Errorf("set %s or %s, not both", st.spec.Env, st.file.spec.Env)})
					continue
				}
				text, err := readSecretFile(path, st.spec.FileText)
				if err != nil {
					problems = append(problems, &Error{Env: st.file.spec.Env, Flag: st.file.flag, Err: err})
					continue
				}
				if text == "" {
					problems = append(problems, &Error{Env: st.file.spec.Env, Flag: st.file.flag,
						Err: errors.New("the file is empty")})
					continue
				}
				raw = text
			}
		}
		if err := st.set(raw); err != nil {
			problems = append(problems, &Error{Env: envName, Flag: flagName, Err: err})
		}
	}
	return errors.Join(problems...)
}

// textFrom is text, and for a setting with aliases the one read first: its flag, an alias's flag, its variable,
// an alias's variable (each alias read is recorded as deprecated). It also returns the variable and flag named
// in an error about the text: the alias's when the text came from one.
func (s *Set) textFrom(st *setting) (raw, envName, flagName string) {
	if st.flagged || len(st.aliases) == 0 {
		return s.text(st), st.spec.Env, st.flag
	}
	for _, a := range st.aliases {
		if a.flagged {
			s.deprecated = append(s.deprecated, Deprecation{Old: "-" + a.flag, New: "-" + st.flag})
			return a.raw, a.env, a.flag
		}
	}
	if v, ok := s.env.LookupEnv(st.spec.Env); ok && v != "" {
		return v, st.spec.Env, st.flag
	}
	for _, a := range st.aliases {
		if v, ok := s.env.LookupEnv(a.env); ok && v != "" {
			s.deprecated = append(s.deprecated, Deprecation{Old: a.env, New: st.spec.Env})
			return v, a.env, a.flag
		}
	}
	return st.spec.Default, st.spec.Env, st.flag
}

// text is a setting's flag text when flagged, else its variable when non-empty, else its default.
func (s *Set) text(st *setting) string {
	if st.flagged {
		return st.raw
	}
	if v, ok := s.env.LookupEnv(st.spec.Env); ok && v != "" {
		return v
	}
	return st.spec.Default
}

// readSecretFile reads a secret's _FILE; its errors never quote the content.
func readSecretFile(path string, fileText func([]byte) (string, error)) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %w", err)
	}
	if fileText != nil {
		return fileText(data)
	}
	text := strings.TrimSuffix(string(data), "\n")
	return strings.TrimSuffix(text, "\r"), nil
}

func (st *setting) set(raw string) error {
	if raw == "" {
		if st.spec.Required {
			return ErrRequired
		}
		return nil // an optional setting left empty keeps its zero value
	}
	if err := CheckText(raw); err != nil {
		return err
	}
	return st.parse(raw)
}

// CheckText rejects what is surely a copy-paste accident: control characters (a newline from a secret file, an
// escape sequence) and leading or trailing white space.
func CheckText(v string) error {
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return errors.New("contains a control character (a trailing newline?)")
	}
	if strings.TrimSpace(v) != v {
		return errors.New("has leading or trailing white space")
	}
	return nil
}

// usage prints every flag, and for a setting its variable, default and whether it is required.
func (s *Set) usage() {
	out := s.fs.Output()
	fmt.Fprintf(out, "Usage of %s:\n", s.fs.Name())
	s.fs.VisitAll(func(f *flag.Flag) {
		if s.aliases[f.Name] != nil {
			return // listed under the setting it names
		}
		st := s.byFlag[f.Name]
		if st == nil {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  -%s\n    \t%s", strings.TrimSpace(f.Name+" "+name), usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
			return
		}
		fmt.Fprintf(out, "  -%s\n    \t%s\n    \tenv %s", strings.TrimSpace(st.flag+" "+st.kind), st.spec.Usage, st.spec.Env)
		if st.spec.Required {
			fmt.Fprint(out, ", required")
		}
		if st.spec.Default != "" && !st.secret {
			fmt.Fprintf(out, ", default %s", st.spec.Default)
		}
		if st.secret {
			fmt.Fprint(out, ", secret: prefer the variable (flags show in ps)")
		}
		for _, a := range st.aliases {
			fmt.Fprintf(out, "; deprecated alias %s (flag -%s)", a.env, a.flag)
		}
		fmt.Fprintln(out)
	})
}
