package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// secretSet is every secret value of the run, by kind, for the log scan.
type secretSet struct {
	mu     sync.Mutex
	byText map[string]string // value -> kind
}

// Kinds of secret and PII the scan looks for.
const (
	kindClientSecret    = "Connect client secret"
	kindAPISecret       = "Zero Hash API secret"
	kindAPIKey          = "Zero Hash API key"
	kindPassphrase      = "Zero Hash passphrase"
	kindWebhookSecret   = "Zero Hash webhook secret"
	kindCodecKey        = "payload encryption key"
	kindAccessToken     = "Connect access token"
	kindSessionJWT      = "session JWT"
	kindOnboardingToken = "onboarding token"
	kindEmail           = "email"
	kindPhone           = "phone"
	// kindDatabasePassword is the cluster topology's PostgreSQL password: it is in the nodes' DSN.
	kindDatabasePassword = "PostgreSQL password"
)

func newSecretSet() *secretSet { return &secretSet{byText: map[string]string{}} }

// minSecretLen keeps short values (which could match by chance) out of the exact-value search.
const minSecretLen = 8

func (s *secretSet) add(kind, value string) {
	if len(value) < minSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byText[value] = kind
}

func (s *secretSet) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.byText))
	for k, v := range s.byText {
		out[k] = v
	}
	return out
}

// Shapes of secrets and PII the scan finds even when it does not know the exact value.
var leakPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	// A compact JWS: base64url JSON header, payload, signature. Session JWTs, webhook bearers, onboarding tokens.
	{"JWT", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)},
	{kindEmail, regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)},
	{"bearer credential", regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}`)},
}

// finding is one secret or piece of PII in one log line. It never holds the value itself.
type finding struct {
	file string
	line int
	kind string
}

func (f finding) String() string { return fmt.Sprintf("%s:%d: %s", f.file, f.line, f.kind) }

// scanResult is what the scan looked at and found.
type scanResult struct {
	files, lines int
	findings     []finding
}

// Log lines are read in pieces of readBuffer bytes; a piece carries the last overlapBytes of the previous piece of
// the same line, so a value split across two pieces is still found (values are far shorter than overlapBytes).
const (
	readBuffer   = 64 << 10
	overlapBytes = 4 << 10
)

// scanLogs reads every file under dir and reports each line holding a known secret value (values: value ->
// kind) or anything shaped like a JWT, an email or a bearer credential.
func scanLogs(dir string, values map[string]string) (scanResult, error) {
	var res scanResult
	known := newNeedles(values)
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return res, err
	}
	sort.Strings(paths)
	for _, path := range paths {
		n, found, err := scanFile(path, known)
		if err != nil {
			return res, err
		}
		res.files++
		res.lines += n
		res.findings = append(res.findings, found...)
	}
	return res, nil
}

// scanFile returns how many lines path has and what they hold, each kind reported once per line.
func scanFile(path string, known *needles) (int, []finding, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, readBuffer)
	var found []finding
	var carry []byte           // the tail of the current line's previous piece
	kinds := map[string]bool{} // kinds already reported for the current line
	lines := 0
	for {
		piece, err := r.ReadSlice('\n')
		if len(piece) > 0 {
			text := append(carry, piece...)
			for _, kind := range scanLine(string(text), known) {
				if !kinds[kind] {
					kinds[kind] = true
					found = append(found, finding{file: filepath.Base(path), line: lines + 1, kind: kind})
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				carry = bytes.Clone(text[max(len(text)-overlapBytes, 0):])
				continue
			}
		}
		if len(piece) > 0 || len(carry) > 0 {
			lines++ // a line ended, at a newline or at the end of the file
		}
		carry = nil
		clear(kinds)
		switch {
		case errors.Is(err, io.EOF):
			return lines, found, nil
		case err != nil:
			return lines, found, fmt.Errorf("scan %s: %w", path, err)
		}
	}
}

// needles finds many known values in a line in one pass: each value is filed under its first needlePrefix bytes,
// so a line costs one map lookup per byte instead of one search per value.
type needles struct {
	byPrefix map[string][]needle
}

type needle struct{ value, kind string }

// needlePrefix is the prefix length values are filed under; minSecretLen keeps every value at least this long.
const needlePrefix = minSecretLen

func newNeedles(values map[string]string) *needles {
	n := &needles{byPrefix: map[string][]needle{}}
	for v, kind := range values {
		if len(v) < needlePrefix {
			continue
		}
		n.byPrefix[v[:needlePrefix]] = append(n.byPrefix[v[:needlePrefix]], needle{v, kind})
	}
	return n
}

// find calls add with the kind of every known value in line.
func (n *needles) find(line string, add func(kind string)) {
	for i := 0; i+needlePrefix <= len(line); i++ {
		for _, nd := range n.byPrefix[line[i:i+needlePrefix]] {
			if strings.HasPrefix(line[i:], nd.value) {
				add(nd.kind)
			}
		}
	}
}

// scanLine returns the kinds of secret or PII in line, each once.
func scanLine(line string, known *needles) []string {
	var kinds []string
	add := func(k string) {
		for _, have := range kinds {
			if have == k {
				return
			}
		}
		kinds = append(kinds, k)
	}
	known.find(line, add)
	for _, p := range leakPatterns {
		if p.re.MatchString(line) {
			add(p.kind)
		}
	}
	sort.Strings(kinds)
	return kinds
}
