package connect

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzStatusError checks the error-answer reader with any body: no panic, never a credential in the error, a
// shape only for the published error shapes, a gRPC name only for a gRPC code, and bounded text.
// Seeds: the published error examples in testdata/contract and the cases below.
func FuzzStatusError(f *testing.F) {
	samples, err := filepath.Glob(filepath.Join("testdata", "contract", "*error*.json"))
	if err != nil || len(samples) == 0 {
		f.Fatalf("no error examples to seed from: %v", err)
	}
	for _, path := range samples {
		body, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(403, body)
	}
	for _, seed := range []string{``, `{}`, `{"code":99,"message":"x"}`, `{"code":"7"}`, `{"error":true,"message":1}`,
		`{"error":"invalid_client","error_description":"` + testSecret + `"}`, `<html>` + testSecret + `</html>`,
		`{"code":12345678901234567890}`, `{"code":-3,"error":"x"}`} {
		f.Add(400, []byte(seed))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 400 || status > 599 {
			status = 400 + (status%200+200)%200
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		e := statusError(OpCreateSession, resp, time.Unix(1753371727, 0), []byte(`{"request":"body"}`), testSecret)
		text := e.Error()
		if strings.Contains(text, testSecret) {
			t.Fatalf("error repeats the secret: %q", text)
		}
		if e.StatusCode != status || !strings.Contains(text, "HTTP ") {
			t.Fatalf("error %q does not name status %d", text, status)
		}
		switch e.Shape {
		case "", ShapeOAuth, ShapeConnect:
		default:
			t.Fatalf("shape %q", e.Shape)
		}
		if e.Code != "" && !isNumber(e.Code) {
			t.Fatalf("Code %q is not a number", e.Code)
		}
		if e.CodeName != "" && grpcCodeName(e.Code) != e.CodeName {
			t.Fatalf("CodeName %q for code %q", e.CodeName, e.Code)
		}
		if utf8.RuneCountInString(e.Message) > maxMessageLen+len("...")+len("HTTP 599: ") ||
			utf8.RuneCountInString(e.ErrorCode) > maxMessageLen+len("...") || strings.ContainsAny(text, "\n\r") {
			t.Fatalf("unbounded or multi-line error text %q", text)
		}
	})
}
