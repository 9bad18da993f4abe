package decimal

import "strings"

// Normalize returns the canonical text of a decimal number, so two spellings of one amount compare equal as
// strings: any exponent spelled out (Plain), trailing fractional zeros and a bare point dropped, and negative
// zero written as "0". "10.00" and "1e1" both become "10"; "-0.50" becomes "-0.5". The sign is kept. Errors are
// Plain's: ErrNotDecimal or ErrExponent.
func Normalize(s string) (string, error) {
	plain, err := Plain(s)
	if err != nil {
		return "", err
	}
	sign, digits := "", plain
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	if whole, frac, ok := strings.Cut(digits, "."); ok {
		frac = strings.TrimRight(frac, "0")
		digits = whole
		if frac != "" {
			digits += "." + frac
		}
	}
	if digits == "0" {
		return "0", nil
	}
	return sign + digits, nil
}
