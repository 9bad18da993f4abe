package decimal

import (
	"errors"
	"testing"
)

func TestPlain(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"1.50", "1.50", nil}, {"0.013", "0.013", nil}, {"-2", "-2", nil},
		{"1.5e-3", "0.0015", nil}, {"15E2", "1500", nil}, {"1e+2", "100", nil}, {"-1.25e1", "-12.5", nil},
		{"123e-5", "0.00123", nil}, {"1e64", "1" + zeros(64), nil},
		{"1e65", "", ErrExponent}, {"1e999999", "", ErrExponent},
		{"01", "", ErrNotDecimal}, {".5", "", ErrNotDecimal}, {"5.", "", ErrNotDecimal}, {"+1", "", ErrNotDecimal},
		{"1,5", "", ErrNotDecimal}, {"NaN", "", ErrNotDecimal}, {"1e", "", ErrNotDecimal}, {"-", "", ErrNotDecimal}, {"", "", ErrNotDecimal},
	} {
		got, err := Plain(c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("Plain(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}
