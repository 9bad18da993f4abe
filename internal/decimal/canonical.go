package decimal

import "strings"

// Canonical is s as plain decimal text with no redundant digits, so two texts of the same number are equal
// strings: "1.50", "1.5" and "15e-1" all give "1.5",
// and "-0.0" gives "0". It refuses what Plain refuses.
func Canonical(s string) (string, error) {
	p, err := Plain(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	sign := ""
	if strings.HasPrefix(p, "-") {
		sign, p = "-", p[1:]
	}
	whole, frac, _ := strings.Cut(p, ".")
	frac = strings.TrimRight(frac, "0")
	if whole = strings.TrimLeft(whole, "0"); whole == "" {
		whole = "0"
	}
	if whole == "0" && frac == "" {
		return "0", nil
	}
	if frac == "" {
		return sign + whole, nil
	}
	return sign + whole + "." + frac, nil
}
