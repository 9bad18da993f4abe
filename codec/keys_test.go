package codec

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fixed secrets, so the table can spell specs out; each is 32 bytes unless its name says otherwise.
var (
	secretA   = bytes.Repeat([]byte{0xA1}, 32)
	secretB   = bytes.Repeat([]byte{0xB2}, 32)
	b64A      = base64.StdEncoding.EncodeToString(secretA)
	b64B      = base64.StdEncoding.EncodeToString(secretB)
	b64Short  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xC3}, 16))
	b64Long   = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xD4}, 33))
	b64URLish = base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xFB}, 32)) // has '-' and '_'
)

// assertNoKeyMaterial fails when err quotes any base64 secret of spec, or a run of 8 of its characters.
func assertNoKeyMaterial(t *testing.T, err error, spec string) {
	t.Helper()
	for _, s := range []string{b64A, b64B, b64Short, b64Long, b64URLish, "notbase64!!"} {
		if !strings.Contains(spec, s) {
			continue
		}
		for i := 0; i+8 <= len(s); i++ {
			if strings.Contains(err.Error(), s[i:i+8]) {
				t.Fatalf("error %q quotes key material %q", err, s[i:i+8])
			}
		}
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		wantIDs []string
		wantErr string
	}{
		{"one key", "k1:" + b64A, []string{"k1"}, ""},
		{"rotation order kept", "k2:" + b64B + ",k1:" + b64A, []string{"k2", "k1"}, ""},
		{"spaces and a trailing comma", "  k2 : " + b64B + " , k1:" + b64A + ",", []string{"k2", "k1"}, ""},
		{"id characters", "prod-2026.01_a:" + b64A, []string{"prod-2026.01_a"}, ""},
		{"empty spec", "", nil, "codec keys: no keys"},
		{"only commas", " , ,", nil, "codec keys: no keys"},
		{"duplicate ids", "k1:" + b64A + ",k2:" + b64B + ",k1:" + b64B, nil, `entry 3: key id "k1" already used by entry 1`},
		{"bad base64", "k1:" + b64A + ",k2:notbase64!!", nil, `entry 2 (key "k2"): secret is not standard base64`},
		{"url-safe base64", "k1:" + b64URLish, nil, `entry 1 (key "k1"): secret is not standard base64`},
		{"16-byte secret", "k1:" + b64Short, nil, `entry 1 (key "k1"): secret is 16 bytes, want 32`},
		{"33-byte secret", "k1:" + b64A + ",k2:" + b64Long, nil, `entry 2 (key "k2"): secret is 33 bytes, want 32`},
		{"empty id", ":" + b64A, nil, "entry 1: empty key id"},
		{"no colon: a bare secret", b64A, nil, "entry 1: want id:base64secret, found no ':'"},
		{"secret pasted as the id", b64A + ":" + b64B, nil, "entry 1: key id has a character other than"},
		{"id too long", strings.Repeat("k", 65) + ":" + b64A, nil, "entry 1: key id is 65 characters, more than 64"},
		{"empty secret", "k1:", nil, `entry 1 (key "k1"): secret is 0 bytes, want 32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				assertNoKeyMaterial(t, err, tt.spec)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
				want := secretA
				if k.ID == "k2" {
					want = secretB
				}
				if !bytes.Equal(k.Secret, want) {
					t.Fatalf("key %s has the wrong secret", k.ID)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Fatalf("ids = %v, want %v", ids, tt.wantIDs)
			}
			if _, err := New(keys); err != nil {
				t.Fatalf("New rejects parsed keys: %v", err)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	commented := write("keys", "# connectflow payload keys; the first is current\n\n"+
		"k2:"+b64B+"   # added 2026-03\n"+
		"  # k0:retired, kept as a comment\n"+
		"k1:"+b64A+",\n")
	oneLine := write("one-line", "k2:"+b64B+",k1:"+b64A)
	badLine := write("bad", "# header\nk2:"+b64B+"\n\nk1:"+b64Short+"\n")
	dupAcrossLines := write("dup", "k1:"+b64A+"\nk1:"+b64B+"\n")
	onlyComments := write("empty", "# no keys yet\n\n")

	tests := []struct {
		name    string
		env     map[string]string
		wantIDs []string
		wantErr string
	}{
		{"neither set", nil, nil, ""},
		{"env", map[string]string{EnvKeys: "k2:" + b64B + ",k1:" + b64A}, []string{"k2", "k1"}, ""},
		{"file with comments and blank lines", map[string]string{EnvKeysFile: commented}, []string{"k2", "k1"}, ""},
		{"file on one line", map[string]string{EnvKeysFile: oneLine}, []string{"k2", "k1"}, ""},
		{"both set", map[string]string{EnvKeys: "k1:" + b64A, EnvKeysFile: commented}, nil,
			"set CONNECTFLOW_CODEC_KEYS or CONNECTFLOW_CODEC_KEYS_FILE, not both"},
		{"bad env", map[string]string{EnvKeys: "k1:" + b64Short}, nil,
			`CONNECTFLOW_CODEC_KEYS: codec keys: entry 1 (key "k1"): secret is 16 bytes, want 32`},
		{"bad line in file", map[string]string{EnvKeysFile: badLine}, nil,
			"CONNECTFLOW_CODEC_KEYS_FILE " + badLine + `: line 4 (key "k1"): secret is 16 bytes, want 32`},
		{"duplicate across lines", map[string]string{EnvKeysFile: dupAcrossLines}, nil, `line 2: key id "k1" already used by line 1`},
		{"file with no keys", map[string]string{EnvKeysFile: onlyComments}, nil, "CONNECTFLOW_CODEC_KEYS_FILE " + onlyComments + ": no keys"},
		{"missing file", map[string]string{EnvKeysFile: filepath.Join(dir, "absent")}, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := LoadKeys(func(name string) string { return tt.env[name] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				for _, path := range []string{commented, oneLine, badLine, dupAcrossLines} {
					content, _ := os.ReadFile(path)
					assertNoKeyMaterial(t, err, string(content))
				}
				assertNoKeyMaterial(t, err, tt.env[EnvKeys])
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantIDs == nil {
				if keys != nil {
					t.Fatalf("keys = %v, want nil when nothing is set", keys)
				}
				return
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Fatalf("ids = %v, want %v", ids, tt.wantIDs)
			}
			if !bytes.Equal(keys[0].Secret, secretB) || !bytes.Equal(keys[1].Secret, secretA) {
				t.Fatal("secrets do not match their ids")
			}
		})
	}
}
