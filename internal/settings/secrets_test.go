package settings_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"regexp"
	"testing"

	"github.com/connectflow/connectflow/internal/bridgeapp"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/workerapp"
	"github.com/connectflow/connectflow/transferapi"
)

// envLine is one setting's "env NAME..." line of -h; a secret's says "secret".
var envLine = regexp.MustCompile(`(?m)^\s+env ([A-Z][A-Z0-9_]*)(.*)$`)

// TestEverySecretHasAFileVariant: every setting a process's -h marks secret has NAME_FILE beside it (a Docker or
// Kubernetes secret mounted as a file), in the worker, the bridge and `starter serve` (the starter's other commands
// read only Temporal's settings, which the worker's list holds too).
func TestEverySecretHasAFileVariant(t *testing.T) {
	for name, load := range map[string]func([]string, settings.Env, io.Writer) error{
		"worker": func(a []string, e settings.Env, w io.Writer) error {
			_, err := workerapp.LoadSettings(a, e, w)
			return err
		},
		"webhookbridge": func(a []string, e settings.Env, w io.Writer) error {
			_, err := bridgeapp.LoadSettings(a, e, w)
			return err
		},
		"starter serve": func(a []string, e settings.Env, w io.Writer) error {
			_, err := transferapi.LoadSettings(a, e, w)
			return err
		},
	} {
		var usage bytes.Buffer
		if err := load([]string{"-h"}, settings.MapEnv{}, &usage); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s -h: %v", name, err)
		}
		listed, secrets := map[string]bool{}, []string{}
		for _, m := range envLine.FindAllStringSubmatch(usage.String(), -1) {
			listed[m[1]] = true
			if regexp.MustCompile(`\bsecret\b`).MatchString(m[2]) {
				secrets = append(secrets, m[1])
			}
		}
		if len(secrets) == 0 {
			t.Fatalf("%s -h marks no setting secret: the check proves nothing\n%s", name, usage.String())
		}
		for _, s := range secrets {
			if !listed[s+settings.FileSuffix] {
				t.Errorf("%s: secret %s has no %s%s", name, s, s, settings.FileSuffix)
			}
		}
	}
}
