package decimal_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/connectflow/connectflow/internal/decimal"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"10.00": "10", "10": "10", "1e1": "10", "0.0100": "0.01", "-0.50": "-0.5", "-0": "0", "-0.000": "0",
		"0": "0", "0.0": "0", "1.5e-3": "0.0015", "12345678901234567890.1230": "12345678901234567890.123",
		"-1E+2": "-100", "0.01": "0.01",
	} {
		got, err := decimal.Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "01", "1.", ".5", "+1", "1e999", "10,00", " 1"} {
		if _, err := decimal.Normalize(in); !errors.Is(err, decimal.ErrNotDecimal) && !errors.Is(err, decimal.ErrExponent) {
			t.Errorf("Normalize(%q): error %v", in, err)
		}
	}
}

// FuzzNormalize checks that Normalize keeps the value (compared exactly as rationals), is idempotent, and
// spells every value one way: no trailing fractional zero, no bare point, no negative zero.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"10.00", "-0.50", "1e1", "-0", "0.0", "1.5e-3", "1E+64", "01", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decimal.Normalize(s)
		if err != nil {
			return
		}
		plain, _ := decimal.Plain(s)
		a, okA := new(big.Rat).SetString(plain)
		b, okB := new(big.Rat).SetString(got)
		if !okA || !okB || a.Cmp(b) != 0 {
			t.Fatalf("Normalize(%q) = %q changes the value", s, got)
		}
		if again, err := decimal.Normalize(got); err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, again %q, %v", s, got, again, err)
		}
		if got == "-0" || got[len(got)-1] == '.' || (containsPoint(got) && got[len(got)-1] == '0') {
			t.Fatalf("Normalize(%q) = %q is not canonical", s, got)
		}
	})
}

func containsPoint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}
