// Package decimal turns JSON numbers into plain decimal text, exactly: amounts and balances never pass through
// float64, and an exponent is spelled out digit for digit (1.5e-3 becomes 0.0015).
package decimal

import (
	"errors"
	"fmt"
	"strings"
)

// MaxExponent bounds a number's exponent so its plain text stays small.
const MaxExponent = 64

// The two ways a text is refused; messages read after the field name ("amount" is not a decimal number).
var (
	ErrNotDecimal = errors.New("is not a decimal number")
	ErrExponent   = fmt.Errorf("has an exponent beyond ±%d", MaxExponent)
)

// Plain checks s against the JSON number grammar and rewrites any exponent as plain decimal digits,
// leaving exponent-free text untouched (so "1.50" stays "1.50").
func Plain(s string) (string, error) {
	sign, rest := "", s
	if strings.HasPrefix(rest, "-") {
		sign, rest = "-", rest[1:]
	}
	mantissa, expText, hasExp := strings.Cut(strings.ReplaceAll(rest, "E", "e"), "e")
	intPart, fracPart, hasPoint := strings.Cut(mantissa, ".")
	if !allDigits(intPart) || (len(intPart) > 1 && intPart[0] == '0') || (hasPoint && !allDigits(fracPart)) {
		return "", ErrNotDecimal
	}
	if !hasExp {
		return s, nil
	}
	expSign := 1
	if len(expText) > 0 && (expText[0] == '+' || expText[0] == '-') {
		if expText[0] == '-' {
			expSign = -1
		}
		expText = expText[1:]
	}
	if !allDigits(expText) {
		return "", ErrNotDecimal
	}
	if expText = strings.TrimLeft(expText, "0"); len(expText) > 2 {
		return "", ErrExponent
	}
	exp := 0
	for i := 0; i < len(expText); i++ {
		exp = exp*10 + int(expText[i]-'0')
	}
	if exp > MaxExponent {
		return "", ErrExponent
	}
	digits := intPart + fracPart
	point := len(intPart) + expSign*exp // position of the decimal point within digits
	var whole, frac string
	switch {
	case point <= 0:
		whole, frac = "0", strings.Repeat("0", -point)+digits
	case point >= len(digits):
		whole = digits + strings.Repeat("0", point-len(digits))
	default:
		whole, frac = digits[:point], digits[point:]
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	if frac == "" {
		return sign + whole, nil
	}
	return sign + whole + "." + frac, nil
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
