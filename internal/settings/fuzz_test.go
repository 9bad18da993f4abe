package settings

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks settings parsing with any value for each kind of setting, from the environment and from flags:
// it never panics, every problem is an *Error naming its variable, and no error ever quotes a secret's value.
// Seeds: the cases below and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("https://api.example.com/v1", "s3cr3t-value-0001", "30s", "4", ":9090", "info", "true", false)
	f.Add("http://127.0.0.1:8090/api/v1", "s3cr3t\nvalue", "-1s", "-4", "9090", "loud", "maybe", true)
	f.Add("https://user:s3cr3t-value-0001@api.example.com", "s3cr3t-value-0001", "1h", "x", "[::1]:99999", "debug", "1", false)
	f.Add("ftp://api.example.com", " s3cr3t-value-0001 ", "", "", "", "", "", true)
	f.Fuzz(func(t *testing.T, url, secret, duration, count, addr, level, boolean string, asFlags bool) {
		values := map[string]string{"URL_SETTING": url, "SECRET_SETTING": secret, "DURATION_SETTING": duration,
			"INT_SETTING": count, "ADDR_SETTING": addr, "LEVEL_SETTING": level, "BOOL_SETTING": boolean}
		err := parseValues(values, asFlags)
		if err == nil || errors.Is(err, ErrUsage) {
			return
		}
		for _, e := range unjoin(err) {
			var se *Error
			if !errors.As(e, &se) || values[se.Env] == "" && !errors.Is(se, ErrRequired) {
				t.Fatalf("problem %v names no set variable", e)
			}
		}
		// A secret may look like anything; it leaks only when the same parse with another secret lacks the text.
		if len(secret) >= 8 && strings.Contains(err.Error(), secret) {
			values["SECRET_SETTING"] = "placeholder-secret"
			if other := parseValues(values, asFlags); other == nil || !strings.Contains(other.Error(), secret) {
				t.Fatalf("error quotes the secret: %v", err)
			}
		}
	})
}

// parseValues parses values (variable name -> text) given as flags or as the environment.
func parseValues(values map[string]string, asFlags bool) error {
	var args []string
	env := MapEnv{}
	for name, v := range values {
		if asFlags {
			args = append(args, "-"+FlagName(name)+"="+v)
		} else {
			env[name] = v
		}
	}
	return parseAll(env, args)
}

// parseAll registers one setting of every kind and parses env and args.
func parseAll(env MapEnv, args []string) error {
	s := New("fuzz", Options{Env: env, Output: io.Discard})
	var (
		url, secret, addr string
		d                 time.Duration
		n                 int
		level             slog.Level
		b                 bool
	)
	s.URL(&url, Spec{Env: "URL_SETTING", Required: true})
	s.Secret(&secret, Spec{Env: "SECRET_SETTING", Required: true})
	s.Duration(&d, Spec{Env: "DURATION_SETTING"})
	s.Int(&n, Spec{Env: "INT_SETTING"})
	s.Addr(&addr, Spec{Env: "ADDR_SETTING"})
	s.Level(&level, Spec{Env: "LEVEL_SETTING"})
	s.Bool(&b, Spec{Env: "BOOL_SETTING"})
	return s.Parse(args)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
