package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	testSecret = "cs-Q2HJ7ZKD4XWNP5LMRT3VB6YA" // shaped like the suite's generated client secrets
	testPhone  = "15551234567"
	testJWT    = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzZXNzaW9uIjp7ImlkIjoiczEifX0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)

func testNeedles() *needles {
	return newNeedles(map[string]string{testSecret: kindClientSecret, testPhone: kindPhone, "short": kindAPIKey})
}

func TestScanLine(t *testing.T) {
	cases := []struct {
		name string
		line string
		want []string
	}{
		{"a bridge log line", `{"msg":"bridge request","workflow_id":"deposit-chaos-00001","key":"deposit:9b73-e4:initiated","took":9658199}`, nil},
		{"a sandbox log line", `level=INFO msg="session opened" session_id=9b730ca7-e46c-4aa2-821a-9d09b780512e kind=deposit`, nil},
		{"the client secret", `connecting with secret ` + testSecret + `"`, []string{kindClientSecret}},
		{"the secret at the very end", testSecret, []string{kindClientSecret}},
		{"a phone", `{"phone":"` + testPhone + `"}`, []string{kindPhone}},
		{"a JWT nobody registered", `token=` + testJWT, []string{"JWT"}},
		{"an email", `sent to jane.doe+x@mail.example.co.uk`, []string{kindEmail}},
		{"a bearer credential", `Authorization: Bearer QWERTYUIOPASDFGHJKL1234`, []string{"bearer credential"}},
		{"several kinds, each once", testSecret + " " + testSecret + " " + testPhone + " a@b.io", []string{kindClientSecret, kindEmail, kindPhone}},
		{"values shorter than the minimum are not searched", `short short`, nil},
		{"half a secret is not the secret", testSecret[:len(testSecret)-1], nil},
	}
	known := testNeedles()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scanLine(c.line, known)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("scanLine = %q, want %q", got, want)
			}
		})
	}
}

func TestScanLogs(t *testing.T) {
	dir := t.TempDir()
	// A line far longer than the read buffer with the secret across a piece boundary, then a clean line, then a
	// leak on the last line without a trailing newline.
	long := strings.Repeat("x", readBuffer-10) + testSecret + strings.Repeat("y", 3*readBuffer)
	files := map[string]string{
		"worker-1.stderr": "clean line\n" + long + "\nanother clean line\nphone " + testPhone,
		"bridge-1.stderr": "nothing here\n" + testJWT + "\n",
		"empty.stdout":    "",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := scanLogs(dir, map[string]string{testSecret: kindClientSecret, testPhone: kindPhone})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.findings {
		got = append(got, f.String())
	}
	want := []string{"bridge-1.stderr:2: JWT", "worker-1.stderr:2: " + kindClientSecret, "worker-1.stderr:4: " + kindPhone}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if res.files != 3 || res.lines != 6 {
		t.Fatalf("scanned %d files, %d lines; want 3 files, 6 lines", res.files, res.lines)
	}
	for _, f := range res.findings {
		if strings.Contains(f.String(), testSecret) || strings.Contains(f.String(), testPhone) {
			t.Fatalf("a finding repeats the value it found: %s", f)
		}
	}
}
