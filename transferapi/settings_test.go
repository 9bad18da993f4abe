package transferapi_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/transferapi"
)

func TestLoadSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# ops\nops:"+tokenB+":operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := transferapi.LoadSettings(nil, settings.MapEnv{"STARTER_API_TOKENS": "backend:" + tokenA,
		"STARTER_API_TOKENS_FILE": file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st.Addr != transferapi.DefaultAddr || len(st.Tokens) != 2 || !st.Tokens[1].Operator ||
		st.RequestTimeout != time.Minute || st.TemporalTimeout != 5*time.Second {
		t.Fatalf("settings %+v", st)
	}
	st, err = transferapi.LoadSettings([]string{"-starter-addr", ":9999", "-starter-jwks-url", "https://idp.example/jwks"},
		settings.MapEnv{"STARTER_JWT_AUDIENCE": "api"}, io.Discard)
	if err != nil || st.Addr != ":9999" || st.JWKSURL == "" || st.JWTAudience != "api" || len(st.Tokens) != 0 {
		t.Fatalf("JWT only: %+v, %v", st, err)
	}
	for _, tc := range []struct {
		env  settings.MapEnv
		want []string
	}{
		{settings.MapEnv{}, []string{"STARTER_API_TOKENS (flag -starter-api-tokens): required"}},
		{settings.MapEnv{"STARTER_API_TOKENS": "backend:" + tokenA[:20]}, []string{"STARTER_API_TOKENS", "at least 32"}},
		{settings.MapEnv{"STARTER_API_TOKENS_FILE": filepath.Join(t.TempDir(), "missing")}, []string{"STARTER_API_TOKENS_FILE", "cannot read"}},
		{settings.MapEnv{"STARTER_API_TOKENS": "b:" + tokenA, "STARTER_JWT_ISSUER": "x"}, []string{"STARTER_JWKS_URL", "required when"}},
		{settings.MapEnv{"STARTER_API_TOKENS": "b:" + tokenA, "STARTER_JWKS_URL": "http://idp.example/jwks"}, []string{"STARTER_JWKS_URL", "https"}},
		{settings.MapEnv{"STARTER_API_TOKENS": "b:" + tokenA, "STARTER_REQUEST_TIMEOUT": "10ms"}, []string{"STARTER_REQUEST_TIMEOUT", "at least 1s"}},
		{settings.MapEnv{"STARTER_API_TOKENS": "b:" + tokenA, "STARTER_ADDR": "nowhere"}, []string{"STARTER_ADDR", "host:port"}},
	} {
		_, err := transferapi.LoadSettings(nil, tc.env, io.Discard)
		if err == nil {
			t.Errorf("%v: no error", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v; want it to name %q", tc.env, err, w)
			}
		}
		if strings.Contains(err.Error(), tokenA[:20]) {
			t.Errorf("the error quotes a token: %v", err)
		}
	}
	var out strings.Builder
	if _, err := transferapi.LoadSettings([]string{"-h"}, settings.MapEnv{}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, env := range []string{"STARTER_ADDR", "STARTER_API_TOKENS", "STARTER_API_TOKENS_FILE", "STARTER_JWKS_URL",
		"STARTER_JWT_ISSUER", "STARTER_JWT_AUDIENCE", "STARTER_REQUEST_TIMEOUT", "STARTER_TEMPORAL_TIMEOUT"} {
		if !strings.Contains(out.String(), "env "+env) {
			t.Errorf("-h does not name %s", env)
		}
	}
}
