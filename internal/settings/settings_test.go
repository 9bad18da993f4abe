package settings

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newSet(env MapEnv) (*Set, *bytes.Buffer) {
	var out bytes.Buffer
	return New("test", Options{Env: env, Output: &out}), &out
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	const name = "TASK_QUEUE"
	tests := []struct {
		name string
		args []string
		env  MapEnv
		want string
	}{
		{"default", nil, MapEnv{}, "def"},
		{"env", nil, MapEnv{name: "from-env"}, "from-env"},
		{"flag", []string{"-task-queue", "from-flag"}, MapEnv{}, "from-flag"},
		{"flag over env", []string{"-task-queue=from-flag"}, MapEnv{name: "from-env"}, "from-flag"},
		{"double dash flag", []string{"--task-queue", "from-flag"}, MapEnv{name: "from-env"}, "from-flag"},
		{"empty env is unset", nil, MapEnv{name: ""}, "def"},
		{"empty flag clears env", []string{"-task-queue="}, MapEnv{name: "from-env"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSet(tt.env)
			var got string
			s.String(&got, Spec{Env: name, Default: "def"})
			if err := s.Parse(tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEveryKindFromEnvAndFlag(t *testing.T) {
	keyFile := writeKey(t, "PRIVATE KEY", pkcs8(t, testKey(t)))
	s, _ := newSet(MapEnv{"WAIT": "90s", "WORKERS": "7", "VERBOSE": "true", "ORG_KEY_FILE": keyFile,
		"API_URL": "https://api.example.com/v1", "API_SECRET": "s3cr3t"})
	var (
		wait     time.Duration
		workers  int
		verbose  bool
		enabled  bool
		key      *rsa.PrivateKey
		apiURL   string
		secret   string
		custom   string
		customed bool
	)
	s.Duration(&wait, Spec{Env: "WAIT"})
	s.Int(&workers, Spec{Env: "WORKERS"})
	s.Bool(&verbose, Spec{Env: "VERBOSE"})
	s.Bool(&enabled, Spec{Env: "ENABLED"})
	s.RSAPrivateKeyFile(&key, Spec{Env: "ORG_KEY_FILE"})
	s.URL(&apiURL, Spec{Env: "API_URL"})
	s.Secret(&secret, Spec{Env: "API_SECRET"})
	s.Func(Spec{Env: "CUSTOM"}, "word", func(raw string) error { custom, customed = strings.ToUpper(raw), true; return nil })
	if err := s.Parse([]string{"-enabled", "-workers", "3", "-custom", "abc", "rest"}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if wait != 90*time.Second || workers != 3 || !verbose || !enabled || key == nil || apiURL != "https://api.example.com/v1" ||
		secret != "s3cr3t" || custom != "ABC" || !customed {
		t.Fatalf("got wait=%v workers=%d verbose=%v enabled=%v key=%v url=%q secret set=%v custom=%q",
			wait, workers, verbose, enabled, key != nil, apiURL, secret != "", custom)
	}
	if args := s.Args(); len(args) != 1 || args[0] != "rest" {
		t.Fatalf("Args() = %q", args)
	}
}

func TestOptionalEmptySettingKeepsZeroAndSkipsParse(t *testing.T) {
	s, _ := newSet(MapEnv{})
	var key *rsa.PrivateKey
	called := false
	s.RSAPrivateKeyFile(&key, Spec{Env: "ORG_KEY_FILE"})
	s.Func(Spec{Env: "CUSTOM"}, "word", func(string) error { called = true; return nil })
	if err := s.Parse(nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if key != nil || called {
		t.Fatalf("key=%v parse called=%v; want nil and false", key, called)
	}
}

func TestMissingRequiredNamesEveryVariable(t *testing.T) {
	s, _ := newSet(MapEnv{"CONNECT_CLIENT_ID": ""})
	var id, secret, fine string
	s.String(&id, Spec{Env: "CONNECT_CLIENT_ID", Required: true})
	s.Secret(&secret, Spec{Env: "CONNECT_CLIENT_SECRET", Required: true})
	s.String(&fine, Spec{Env: "FINE", Required: true, Default: "x"})
	err := s.Parse(nil)
	if err == nil {
		t.Fatal("Parse succeeded without required settings")
	}
	if !errors.Is(err, ErrRequired) {
		t.Fatalf("error %v does not wrap ErrRequired", err)
	}
	for _, want := range []string{
		"CONNECT_CLIENT_ID (flag -connect-client-id): required",
		"CONNECT_CLIENT_SECRET (flag -connect-client-secret): required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "FINE") {
		t.Errorf("error %q names a setting that has its default", err)
	}
}

func TestMalformedSettingIsNamedAndNeverQuoted(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("this is not PEM at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	smallKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     string // the variable under test, registered as its kind
		value   string
		wantErr string
		quoted  bool // the message may contain the value (a file path is not a secret)
	}{
		{"relative url", "API_URL", "connect.internal/api", "must be an absolute URL", false},
		{"ftp url", "API_URL", "ftp://api.example.com", "must be an https URL", false},
		{"plain http to a remote host", "API_URL", "http://api.example.com", "must use https", false},
		{"credentials in url", "API_URL", "https://user:pw-s3cr3t@api.example.com", "must not carry credentials", false},
		{"query in url", "API_URL", "https://api.example.com/?token=s3cr3t", "must not have a query", false},
		{"bad duration", "WAIT", "ten-seconds", "must be a duration", false},
		{"negative duration", "WAIT", "-5s", "must not be negative", false},
		{"bad int", "WORKERS", "many", "must be a whole number", false},
		{"negative int", "WORKERS", "-1", "must not be negative", false},
		{"bad bool", "VERBOSE", "yes please", "must be true or false", false},
		{"secret with newline", "API_SECRET", "s3cr3t\n", "control character", false},
		{"secret with space", "API_SECRET", " s3cr3t", "white space", false},
		{"unreadable key file", "ORG_KEY_FILE", filepath.Join(dir, "missing.pem"), "cannot read the key file", true},
		{"garbage key file", "ORG_KEY_FILE", garbage, "no RSA PRIVATE KEY or PRIVATE KEY PEM block", true},
		{"certificate only", "ORG_KEY_FILE", writeKey(t, "CERTIFICATE", []byte("not a key")), "no RSA PRIVATE KEY", true},
		{"corrupt pkcs1", "ORG_KEY_FILE", writeKey(t, "RSA PRIVATE KEY", []byte("corrupt")), "RSA PRIVATE KEY block does not parse", true},
		{"encrypted pkcs8", "ORG_KEY_FILE", writeKey(t, "ENCRYPTED PRIVATE KEY", []byte("x")), "encrypted", true},
		{"ec key", "ORG_KEY_FILE", writeKey(t, "PRIVATE KEY", ecDER), "not RSA", true},
		{"small rsa key", "ORG_KEY_FILE", writeKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(smallKey)), "1024 bits", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSet(MapEnv{tt.env: tt.value})
			registerAllKinds(s)
			err := s.Parse(nil)
			var setErr *Error
			if !errors.As(err, &setErr) {
				t.Fatalf("Parse error %v is not a *settings.Error", err)
			}
			if setErr.Env != tt.env || !strings.HasPrefix(err.Error(), tt.env+" (flag -"+FlagName(tt.env)+"): ") {
				t.Fatalf("error %q does not name %s and its flag first", err, tt.env)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q lacks %q", err, tt.wantErr)
			}
			if !tt.quoted && strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
				t.Fatalf("error %q quotes the value", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error %q leaks a secret", err)
			}
		})
	}
}

func TestSameCheckForFlagAndEnv(t *testing.T) {
	s, _ := newSet(MapEnv{"API_URL": "https://fine.example.com"})
	var u string
	s.URL(&u, Spec{Env: "API_URL"})
	err := s.Parse([]string{"-api-url", "http://remote.example.com"})
	if err == nil || !strings.Contains(err.Error(), "API_URL (flag -api-url): must use https") {
		t.Fatalf("got %v, want the flag's value checked like the variable's", err)
	}
}

func TestLoopbackHTTPIsAllowed(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/api/v1", "http://localhost:9000", "http://[::1]:1", "https://api.example.com/api/v1/"} {
		if err := CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
}

func TestHelpListsFlagEnvDefaultAndRequiredButNoSecret(t *testing.T) {
	s, out := newSet(MapEnv{"API_SECRET": "s3cr3t", "TASK_QUEUE": "from-env"})
	var queue, secret string
	var plain string
	s.String(&queue, Spec{Env: "TASK_QUEUE", Usage: "task queue", Default: "connect-transfers"})
	s.Secret(&secret, Spec{Env: "API_SECRET", Usage: "API secret", Required: true})
	s.FlagSet().StringVar(&plain, "transfer-id", "", "the platform's transfer id")
	if err := s.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, want := range []string{
		"-task-queue string", "task queue", "env TASK_QUEUE, default connect-transfers",
		"-api-secret secret", "env API_SECRET, required, secret",
		"-transfer-id string", "the platform's transfer id",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "s3cr3t") || strings.Contains(help, "from-env") {
		t.Errorf("help shows a value from the environment:\n%s", help)
	}
}

func TestBadFlagSyntaxIsAFlagError(t *testing.T) {
	s, out := newSet(MapEnv{})
	var q string
	s.String(&q, Spec{Env: "TASK_QUEUE"})
	err := s.Parse([]string{"-no-such-flag"})
	var setErr *Error
	if !errors.Is(err, ErrUsage) || errors.As(err, &setErr) || !strings.Contains(err.Error(), "-no-such-flag") {
		t.Fatalf("Parse = %v, want ErrUsage with the flag package's message", err)
	}
	if !strings.Contains(out.String(), "-task-queue") {
		t.Fatalf("usage not printed on a bad flag:\n%s", out)
	}
}

func TestParseRSAPrivateKeyPEMAcceptsPKCS1AndPKCS8(t *testing.T) {
	key := testKey(t)
	for name, data := range map[string][]byte{
		"pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(t, key)}),
		"after a certificate": append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("c")}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(t, key)})...),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseRSAPrivateKeyPEM(data)
			if err != nil {
				t.Fatalf("ParseRSAPrivateKeyPEM: %v", err)
			}
			if !got.Equal(key) {
				t.Fatal("parsed a different key")
			}
		})
	}
}

func TestMapEnvEnviron(t *testing.T) {
	got := MapEnv{"B": "2", "A": "1"}.Environ()
	if strings.Join(got, ",") != "A=1,B=2" {
		t.Fatalf("Environ() = %q", got)
	}
}

// registerAllKinds registers one setting of each kind under the names the malformed-value table uses.
func registerAllKinds(s *Set) {
	var (
		u, secret string
		d         time.Duration
		n         int
		b         bool
		key       *rsa.PrivateKey
	)
	s.URL(&u, Spec{Env: "API_URL"})
	s.Secret(&secret, Spec{Env: "API_SECRET"})
	s.Duration(&d, Spec{Env: "WAIT"})
	s.Int(&n, Spec{Env: "WORKERS"})
	s.Bool(&b, Spec{Env: "VERBOSE"})
	s.RSAPrivateKeyFile(&key, Spec{Env: "ORG_KEY_FILE"})
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// testKey is one 2048-bit key shared by the tests: generating it is the slow part.
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() { key, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return key
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writeKey(t *testing.T, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every secret has a _FILE variant (Docker secrets): its content, less one trailing newline, is the value; setting
// both is an error naming both, and no error quotes the content.
func TestSecretFileVariant(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	if err := os.WriteFile(good, []byte("s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("s3cr3t\nvalue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     MapEnv
		args    []string
		want    string
		wantErr string
	}{
		{"file", MapEnv{"APP_SECRET_FILE": good}, nil, "s3cr3t-value", ""},
		{"flag", MapEnv{}, []string{"-app-secret-file", good}, "s3cr3t-value", ""},
		{"variable", MapEnv{"APP_SECRET": "inline"}, nil, "inline", ""},
		{"both", MapEnv{"APP_SECRET": "inline", "APP_SECRET_FILE": good}, nil, "", "set APP_SECRET or APP_SECRET_FILE, not both"},
		{"missing file", MapEnv{"APP_SECRET_FILE": filepath.Join(dir, "absent")}, nil, "", "APP_SECRET_FILE"},
		{"two lines", MapEnv{"APP_SECRET_FILE": bad}, nil, "", "control character"},
		{"neither", MapEnv{}, nil, "", "APP_SECRET (flag -app-secret): required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSet(tt.env)
			var got string
			s.Secret(&got, Spec{Env: "APP_SECRET", Required: true})
			err := s.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("Parse = %v, want an error with %q and no secret", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse = %v, value %q, want %q", err, got, tt.want)
			}
		})
	}
}

// TestAliases: a deprecated name is still read, after the new one, as a variable or a flag; each read is recorded
// by name (never the value) and an error about its value names it; -h lists the new name with its alias.
func TestAliases(t *testing.T) {
	const secretish = "value-7f3a"
	tests := []struct {
		name       string
		args       []string
		env        MapEnv
		want       string
		deprecated []Deprecation
	}{
		{"default", nil, MapEnv{}, "def", nil},
		{"new variable", nil, MapEnv{"WORKER_THING": "new"}, "new", nil},
		{"old variable", nil, MapEnv{"THING": secretish}, secretish, []Deprecation{{"THING", "WORKER_THING"}}},
		{"new variable beats old", nil, MapEnv{"WORKER_THING": "new", "THING": "old"}, "new", nil},
		{"old flag", []string{"-thing", "flagged"}, MapEnv{"WORKER_THING": "new"}, "flagged", []Deprecation{{"-thing", "-worker-thing"}}},
		{"new flag beats old flag", []string{"-thing", "old", "-worker-thing", "new"}, MapEnv{}, "new", nil},
		{"second alias", nil, MapEnv{"OLDER_THING": "older"}, "older", []Deprecation{{"OLDER_THING", "WORKER_THING"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSet(tt.env)
			var got string
			var on bool
			s.String(&got, Spec{Env: "WORKER_THING", Default: "def", Aliases: []string{"THING", "OLDER_THING"}})
			s.Bool(&on, Spec{Env: "WORKER_ON", Aliases: []string{"ON"}})
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got != tt.want || len(s.Deprecated()) != len(tt.deprecated) {
				t.Fatalf("got %q, deprecated %v; want %q, %v", got, s.Deprecated(), tt.want, tt.deprecated)
			}
			for i, d := range s.Deprecated() {
				if d != tt.deprecated[i] || strings.Contains(d.Message(), secretish) || !strings.Contains(d.Message(), d.New) {
					t.Errorf("deprecation %d: %+v %q, want %+v", i, d, d.Message(), tt.deprecated[i])
				}
			}
		})
	}

	// A deprecated bool flag stands alone, as the new one does.
	s, _ := newSet(MapEnv{})
	var on bool
	s.Bool(&on, Spec{Env: "WORKER_ON", Aliases: []string{"ON"}})
	if err := s.Parse([]string{"-on"}); err != nil || !on {
		t.Fatalf("-on: %v, %v", err, on)
	}

	// A bad value read through an alias is reported under the alias, the name the operator set.
	s, _ = newSet(MapEnv{"ADDR": "nine-thousand"})
	var addr string
	s.Addr(&addr, Spec{Env: "WORKER_ADDR", Aliases: []string{"ADDR"}})
	var se *Error
	if err := s.Parse(nil); !errors.As(err, &se) || se.Env != "ADDR" || se.Flag != "addr" {
		t.Fatalf("bad alias value: %v", err)
	}

	// -h: the new name as "env", the alias beside it, no line of its own.
	s, out := newSet(MapEnv{})
	s.String(new(string), Spec{Env: "WORKER_THING", Usage: "a thing", Aliases: []string{"THING"}})
	if err := s.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "env WORKER_THING; deprecated alias THING (flag -thing)") ||
		strings.Contains(out.String(), "  -thing") {
		t.Errorf("usage:\n%s", out.String())
	}
}

// TestVersionFlag: -version prints the build to VersionOutput and reads no setting, not even a required one.
func TestVersionFlag(t *testing.T) {
	var out, version bytes.Buffer
	s := New("tool", Options{Env: MapEnv{}, Output: &out, VersionOutput: &version})
	s.String(new(string), Spec{Env: "NEEDED", Required: true})
	err := s.Parse([]string{"-version"})
	if !errors.Is(err, ErrVersion) || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-version) = %v, want ErrVersion wrapping flag.ErrHelp", err)
	}
	if !strings.HasPrefix(version.String(), "tool: github.com/connectflow/connectflow ") || out.Len() != 0 {
		t.Errorf("version %q, output %q", version.String(), out.String())
	}
}
