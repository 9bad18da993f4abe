package transferapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/connect"
)

// FuzzParseTokens: any list parses or fails without panicking, and no error quotes a token of the list.
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{"a:0123456789abcdef0123456789abcdef", "a:0123456789abcdef0123456789abcdef:operator,b:x",
		"# c\n\na:b:c:d", "", ":", "a:" + strings.Repeat("z", 40) + ":admin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		toks, err := ParseTokens(list)
		if err == nil && len(toks) == 0 {
			t.Fatal("no error and no token")
		}
		if err == nil {
			return
		}
		for entry := range strings.FieldsFuncSeq(list, func(r rune) bool { return r == ',' || r == '\n' }) {
			fields := strings.Split(strings.TrimSpace(entry), ":")
			if len(fields) < 2 || len(fields[1]) < 8 || !strings.Contains(err.Error(), fields[1]) ||
				strings.Contains(fields[0], fields[1]) {
				continue
			}
			// A token equal to words of the message itself ("operator") or to another entry's name (names are
			// not secret) is not quoted: with only the token fields changed to other letters of the same length,
			// those words are still in the error.
			tok := fields[1]
			alt := strings.Map(func(r rune) rune {
				if r == 'q' {
					return 'z'
				}
				return 'q'
			}, tok)
			if _, err2 := ParseTokens(replaceTokenFields(list, tok, alt)); err2 != nil && strings.Contains(err2.Error(), tok) {
				continue
			}
			t.Fatalf("error %q quotes token %q", err, tok)
		}
	})
}

// replaceTokenFields changes tok to alt in the token field (the second) of every entry of list, and nowhere
// else: names, roles and comments keep their text.
func replaceTokenFields(list, tok, alt string) string {
	lines := strings.Split(list, "\n")
	for i, line := range lines {
		entries := strings.Split(line, ",")
		for j, entry := range entries {
			fields := strings.Split(entry, ":")
			if len(fields) >= 2 && strings.Contains(fields[1], tok) {
				fields[1] = strings.ReplaceAll(fields[1], tok, alt)
				entries[j] = strings.Join(fields, ":")
			}
		}
		lines[i] = strings.Join(entries, ",")
	}
	return strings.Join(lines, "\n")
}

// FuzzStartRequest: any body is decoded and checked without panicking; an accepted one is a valid input.
func FuzzStartRequest(f *testing.F) {
	for _, s := range []string{`{"transfer_id":"t1","reference_id":"U"}`, `{"transfer_id":"t1","reference_id":"U","asset":"BTC","network":"bitcoin","amount":"0.1"}`,
		`{"metadata":{"connectflow_kind":"x"}}`, `[]`, `{"amount":1}`, `{"x":1,"y":2}`, `null`} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, withdrawal bool) {
		r := httptest.NewRequest(http.MethodPost, "/v1/deposits", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req StartRequest
		if p := readJSON(r, httptest.NewRecorder(), DefaultMaxBody, &req); p != nil {
			if p.Status < 400 || p.Status > 499 {
				t.Fatalf("body problem with status %d", p.Status)
			}
			return
		}
		kind := connect.KindDeposit
		if withdrawal {
			kind = connect.KindWithdrawal
		}
		in, p := req.input(kind)
		if p != nil {
			if p.Status != http.StatusUnprocessableEntity || len(p.Errors) == 0 {
				t.Fatalf("invalid input answered %+v", p)
			}
			return
		}
		if err := in.Validate(); err != nil || !transferIDPattern.MatchString(in.TransferID) {
			t.Fatalf("accepted an invalid input %+v: %v", in, err)
		}
	})
}
