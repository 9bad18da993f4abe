package bridgeapp

import (
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/internal/settings"
)

// FuzzParseSize checks BRIDGE_MAX_BODY parsing with any text: it never panics and accepts only a plain count, or
// one with a KiB or MiB suffix, between 1 byte and connect.MaxEventSize.
func FuzzParseSize(f *testing.F) {
	for _, seed := range []string{"1048576", "512KiB", "1MiB", "2MiB", "0", "-1", "1e3", "9223372036854775807KiB",
		"KiB", "1KiBMiB", "1 KiB", "+5"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := parseSize(raw)
		if err != nil {
			return
		}
		digits, unit := raw, int64(1)
		if d, ok := strings.CutSuffix(raw, "KiB"); ok {
			digits, unit = d, 1<<10
		} else if d, ok := strings.CutSuffix(raw, "MiB"); ok {
			digits, unit = d, 1<<20
		}
		want, perr := strconv.ParseInt(digits, 10, 64)
		if perr != nil || n != want*unit || n < 1 || n > connect.MaxEventSize {
			t.Fatalf("parseSize(%q) = %d", raw, n)
		}
	})
}

// FuzzLoadSettings checks the bridge's settings with any secret and size: no panic, and no error quotes the secret.
func FuzzLoadSettings(f *testing.F) {
	f.Add(secretValue, "1MiB", "300s")
	f.Add(secretValue, "2MiB", "1ms")
	f.Add("tolerance", "x", "y")
	f.Fuzz(func(t *testing.T, secret, size, tolerance string) {
		env := settings.MapEnv(goodEnv())
		env["ZEROHASH_WEBHOOK_SECRET"], env["BRIDGE_MAX_BODY"], env["CONNECT_WEBHOOK_TOLERANCE"] = secret, size, tolerance
		_, err := LoadSettings(nil, env, io.Discard)
		if err == nil || len(secret) < 8 || !strings.Contains(err.Error(), secret) {
			return
		}
		env["ZEROHASH_WEBHOOK_SECRET"] = secretValue
		if _, other := LoadSettings(nil, env, io.Discard); other == nil || !strings.Contains(other.Error(), secret) {
			t.Fatalf("error quotes the webhook secret: %v", err)
		}
	})
}
