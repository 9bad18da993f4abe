package settings

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
)

// MinRSAKeyBits is the smallest RSA private key accepted; Connect's own keys are 2048-bit.
const MinRSAKeyBits = 2048

// Each method below registers one setting and sets *p to its zero value; Parse fills it. A setting left empty
// keeps that zero value, and the parse step only ever sees non-empty text.

// String registers a plain text setting.
func (s *Set) String(p *string, spec Spec) {
	*p = ""
	s.add(spec, "string", func(raw string) error { *p = raw; return nil })
}

// Secret registers a text setting that -h never shows a default for; its value appears in no error either. It
// also registers spec.Env+FileSuffix (flag -name-file): the path of a file holding the value, for Docker and
// Kubernetes secrets. Setting both is an error.
func (s *Set) Secret(p *string, spec Spec) {
	*p = ""
	st := s.add(spec, "secret", func(raw string) error { *p = raw; return nil })
	st.secret = true
	if spec.OwnFile {
		return
	}
	file := s.add(Spec{Env: spec.Env + FileSuffix, Usage: "file holding " + spec.Env + " (a Docker secret); not with " + spec.Env},
		"path", func(string) error { return nil })
	file.fileOf, st.file = st, file
}

// URL registers an absolute https URL (plain http only for a loopback host); see CheckURL.
func (s *Set) URL(p *string, spec Spec) {
	*p = ""
	s.add(spec, "url", func(raw string) error {
		if err := CheckURL(raw); err != nil {
			return err
		}
		*p = raw
		return nil
	})
}

// Duration registers a non-negative duration such as 30s or 5m.
func (s *Set) Duration(p *time.Duration, spec Spec) {
	*p = 0
	s.add(spec, "duration", func(raw string) error {
		d, err := time.ParseDuration(raw)
		switch {
		case err != nil:
			return errors.New("must be a duration such as 30s or 5m")
		case d < 0:
			return errors.New("must not be negative")
		}
		*p = d
		return nil
	})
}

// Int registers a non-negative whole number.
func (s *Set) Int(p *int, spec Spec) {
	*p = 0
	s.add(spec, "int", func(raw string) error {
		n, err := strconv.Atoi(raw)
		switch {
		case err != nil:
			return errors.New("must be a whole number")
		case n < 0:
			return errors.New("must not be negative")
		}
		*p = n
		return nil
	})
}

// Bool registers a true/false setting; the flag alone (-name) means true.
func (s *Set) Bool(p *bool, spec Spec) {
	*p = false
	st := s.add(spec, "", func(raw string) error {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("must be true or false")
		}
		*p = b
		return nil
	})
	st.isBool = true
}

// RSAPrivateKeyFile registers the path of a PEM file holding an RSA private key (PKCS#1 or PKCS#8); Parse reads
// and checks the key.
func (s *Set) RSAPrivateKeyFile(p **rsa.PrivateKey, spec Spec) {
	*p = nil
	s.add(spec, "path", func(path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cannot read the key file: %w", err)
		}
		key, err := ParseRSAPrivateKeyPEM(data)
		if err != nil {
			return err
		}
		*p = key
		return nil
	})
}

// Func registers a setting that parse turns into the caller's own type. parse sees only non-empty text, and its
// error must not quote that text if it can be secret.
func (s *Set) Func(spec Spec, kind string, parse func(string) error) {
	s.add(spec, kind, parse)
}

// CheckURL accepts an absolute https URL without credentials, query or fragment. Plain http is accepted only for
// a loopback host (a local sandbox): every URL here carries credentials or fetches keys.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return errors.New("must be an absolute URL such as https://api.example.com/v1")
	case u.User != nil:
		return errors.New("must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("must use https (plain http only for a loopback host)")
	}
	return errors.New("must be an https URL")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseRSAPrivateKeyPEM returns the first RSA private key in data, PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY"), of at least MinRSAKeyBits. Other PEM blocks, such as a certificate, are skipped.
func ParseRSAPrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no RSA PRIVATE KEY or PRIVATE KEY PEM block found")
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, errors.New("the key is encrypted; give an unencrypted key")
			}
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the key is encrypted; give an unencrypted key")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block does not parse: %w", block.Type, err)
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the key is a %T, not RSA", key)
		}
		if err := CheckRSAKey(rsaKey); err != nil {
			return nil, err
		}
		return rsaKey, nil
	}
}

// CheckRSAKey accepts an RSA private key of at least MinRSAKeyBits whose parts are consistent.
func CheckRSAKey(key *rsa.PrivateKey) error {
	if bits := key.N.BitLen(); bits < MinRSAKeyBits {
		return fmt.Errorf("the RSA key has %d bits, want at least %d", bits, MinRSAKeyBits)
	}
	if err := key.Validate(); err != nil {
		return fmt.Errorf("the RSA key is invalid: %w", err)
	}
	return nil
}

// Addr registers a listen address, host:port, such as :9090 or 127.0.0.1:8080.
func (s *Set) Addr(p *string, spec Spec) {
	*p = ""
	s.add(spec, "host:port", func(raw string) error {
		if err := CheckAddr(raw); err != nil {
			return err
		}
		*p = raw
		return nil
	})
}

// CheckAddr accepts host:port with a numeric port (the host may be empty: all interfaces).
func CheckAddr(raw string) error {
	_, port, err := net.SplitHostPort(raw)
	if err != nil {
		return errors.New("must be host:port, such as :9090")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("must end in a port number from 0 to 65535")
	}
	return nil
}

// Level registers a log level: debug, info, warn or error.
func (s *Set) Level(p *slog.Level, spec Spec) {
	*p = slog.LevelInfo
	s.add(spec, "level", func(raw string) error {
		if err := p.UnmarshalText([]byte(raw)); err != nil {
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	})
}
