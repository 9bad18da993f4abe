package decimal

import "testing"

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"1.50": "1.5", "1.5": "1.5", "15e-1": "1.5", "-0.0": "0", "0": "0", "10": "10", "100.000": "100",
		"-0.013": "-0.013", "0.0130": "0.013", "1E2": "100", " 2.0 ": "2",
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "01.5", "1.", "1e999", "--1"} {
		if got, err := Canonical(in); err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", in, got)
		}
	}
}
