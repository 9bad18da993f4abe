package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
)

func TestTemporalFlagBeatsEnvBeatsProfile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "temporal.toml")
	profile := "[profile.default]\naddress = \"file:7233\"\nnamespace = \"file-ns\"\n"
	if err := os.WriteFile(file, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		args          []string
		env           MapEnv
		wantHostPort  string
		wantNamespace string
		wantQueue     string
	}{
		{"profile", nil, MapEnv{}, "file:7233", "file-ns", "default-queue"},
		{"env over profile", nil, MapEnv{EnvTemporalAddress: "env:7233", EnvTemporalNamespace: "env-ns", EnvTemporalTaskQueue: "env-queue"},
			"env:7233", "env-ns", "env-queue"},
		{"flag over env", []string{"-temporal-address", "flag:7233", "-temporal-namespace", "flag-ns", "-temporal-task-queue", "flag-queue"},
			MapEnv{EnvTemporalAddress: "env:7233", EnvTemporalNamespace: "env-ns", EnvTemporalTaskQueue: "env-queue"},
			"flag:7233", "flag-ns", "flag-queue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["TEMPORAL_CONFIG_FILE"] = file
			tt.env[EnvCodecPlaintext] = "true"
			s, _ := newSet(tt.env)
			tc := BindTemporal(s, "default-queue")
			if err := s.Parse(tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			opts, err := tc.ClientOptions()
			if err != nil {
				t.Fatalf("ClientOptions: %v", err)
			}
			if opts.HostPort != tt.wantHostPort || opts.Namespace != tt.wantNamespace || tc.TaskQueue != tt.wantQueue {
				t.Fatalf("got %s %s %s, want %s %s %s", opts.HostPort, opts.Namespace, tc.TaskQueue,
					tt.wantHostPort, tt.wantNamespace, tt.wantQueue)
			}
		})
	}
}

func TestTemporalDefaultsAndAPIKey(t *testing.T) {
	env := MapEnv{"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "absent.toml"), "TEMPORAL_API_KEY": "k3y",
		EnvCodecPlaintext: "true"}
	s, _ := newSet(env)
	tc := BindTemporal(s, "connect-transfers")
	if err := s.Parse(nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	opts, err := tc.ClientOptions()
	if err != nil {
		t.Fatalf("ClientOptions: %v", err)
	}
	if opts.Namespace != client.DefaultNamespace || opts.HostPort != "" || tc.TaskQueue != "connect-transfers" {
		t.Fatalf("got namespace %q host %q queue %q", opts.Namespace, opts.HostPort, tc.TaskQueue)
	}
	if got := HostPort(opts); got != client.DefaultHostPort {
		t.Fatalf("HostPort = %q, want the SDK default", got)
	}
	if opts.Credentials == nil || opts.ConnectionOptions.TLS == nil {
		t.Fatal("TEMPORAL_API_KEY did not give credentials over TLS")
	}
}

func TestTemporalMissingProfileIsAnError(t *testing.T) {
	env := MapEnv{"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "absent.toml"), "TEMPORAL_PROFILE": "prod"}
	s, _ := newSet(env)
	tc := BindTemporal(s, "q")
	if err := s.Parse(nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if _, err := tc.ClientOptions(); err == nil || !strings.Contains(err.Error(), "prod") {
		t.Fatalf("ClientOptions = %v, want an error naming the profile", err)
	}
}

func TestTemporalPayloadEncryptionKeys(t *testing.T) {
	const key = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes 0..31, a test key
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("# current first\n"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(t.TempDir(), "absent.toml")
	tests := []struct {
		name    string
		env     MapEnv
		args    []string
		wantKey string // expected first key id; "" means plain payloads
		wantErr string
	}{
		{"none", MapEnv{}, nil, "", "CONNECTFLOW_CODEC_PLAINTEXT=true"},
		{"plaintext chosen", MapEnv{"CONNECTFLOW_CODEC_PLAINTEXT": "true"}, nil, "", ""},
		{"plaintext and keys", MapEnv{"CONNECTFLOW_CODEC_PLAINTEXT": "true", "CONNECTFLOW_CODEC_KEYS": key}, nil, "", "choose one"},
		{"strict without keys", MapEnv{"CONNECTFLOW_CODEC_STRICT": "true", "CONNECTFLOW_CODEC_PLAINTEXT": "true"}, nil, "", "needs payload keys"},
		{"strict", MapEnv{"CONNECTFLOW_CODEC_STRICT": "true", "CONNECTFLOW_CODEC_KEYS_FILE": file}, nil, "k1", ""},
		{"inline", MapEnv{"CONNECTFLOW_CODEC_KEYS": key}, nil, "k1", ""},
		{"file flag", MapEnv{}, []string{"-connectflow-codec-keys-file", file}, "k1", ""},
		{"both", MapEnv{"CONNECTFLOW_CODEC_KEYS": key, "CONNECTFLOW_CODEC_KEYS_FILE": file}, nil, "", "not both"},
		{"short key", MapEnv{"CONNECTFLOW_CODEC_KEYS": "k1:AAEC"}, nil, "", "CONNECTFLOW_CODEC_KEYS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["TEMPORAL_CONFIG_FILE"] = absent
			s, _ := newSet(tt.env)
			tc := BindTemporal(s, "q")
			err := s.Parse(tt.args)
			var opts client.Options
			if err == nil {
				opts, err = tc.ClientOptions()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "AAEC") {
					t.Fatalf("want an error naming %q without the key, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantKey == "" {
				if opts.FailureConverter != nil || tc.CodecKeys != nil {
					t.Fatal("no keys must leave payloads plain")
				}
				return
			}
			if opts.DataConverter == nil || opts.FailureConverter == nil || tc.CodecKeys[0].ID != tt.wantKey {
				t.Fatalf("keys not applied: %+v", tc.CodecKeys)
			}
		})
	}
}
