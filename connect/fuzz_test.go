package connect

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseEvent checks that no body panics the parser and that every accepted event is fully normalized.
// Seeds: every sample under testdata/events, the bad inputs below, and testdata/fuzz/FuzzParseEvent.
func FuzzParseEvent(f *testing.F) {
	samples, err := filepath.Glob(filepath.Join("testdata", "events", "*"))
	if err != nil || len(samples) == 0 {
		f.Fatalf("no event samples to seed from: %v", err)
	}
	for _, path := range samples {
		body, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, seed := range []string{
		``, `{}`, `[]`, `null`, `{"event":1}`, `{"event":""}`, `{"event":"connect.deposit.confirmed"`,
		`{"event":"connect.deposit.confirmed","deposit":{"id":1}}`,
		`{"event":"connect.deposit.confirmed","deposit":{"amount":1e-64}}`,
		`{"event":"connect.deposit.confirmed","deposit":{"amount":"-0.0e+0"}}`,
		`{"event":"connect.withdrawal.unexpected","withdrawal":{},"session":{"metadata":{"a":{"b":[1,{"c":null}]}}}}`,
		`{"event":"CONNECT.DEPOSITS.ABANDONED","error":[1,2],"fees":{"amount":"7"}}`,
	} {
		f.Add([]byte(seed))
	}
	known := map[Status]bool{StatusInitiated: true, StatusBroadcasted: true, StatusConfirmed: true, StatusFailed: true, StatusUnexpected: true, StatusUnknown: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseEvent(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error with no text")
			}
			return
		}
		if e.DedupeKey == "" {
			t.Fatalf("accepted event has no DedupeKey: %+v", e)
		}
		if e.Kind != "" && !e.Kind.Valid() {
			t.Fatalf("Kind %q is not a known kind", e.Kind)
		}
		if !known[e.Status] {
			t.Fatalf("Status %q is not a known status", e.Status)
		}
		if e.Status != StatusUnknown && !e.Kind.Valid() {
			t.Fatalf("known status %q with no kind", e.Status)
		}
		if kind, status := NormalizeEventName(e.Name); kind != e.Kind || status != e.Status {
			t.Fatalf("event (%q, %q) disagrees with NormalizeEventName(%q) = (%q, %q)", e.Kind, e.Status, e.Name, kind, status)
		}
		if k := DedupeKey(e); k != e.DedupeKey {
			t.Fatalf("DedupeKey(e) = %q, ParseEvent set %q", k, e.DedupeKey)
		}
		again, err := ParseEvent(body)
		if err != nil || again.DedupeKey != e.DedupeKey {
			t.Fatalf("second parse: key %q err %v, first key %q", again.DedupeKey, err, e.DedupeKey)
		}
	})
}

// fuzzSigned is a message signed once at fuzz setup, so iterations need no RSA private-key operation
// (which, under fuzzing instrumentation, would cut the exec rate a hundredfold).
type fuzzSigned struct {
	url       string
	body      []byte
	signature string
}

// FuzzVerifyWebhook checks that arbitrary headers never panic or pass unless they carry the genuine signature,
// and that a genuine signature passes for exactly its own URL and body: any other body the fuzzer finds, and
// any single-byte change of the signed body, must fail as a mismatch.
// Seeds: the cases below and testdata/fuzz/FuzzVerifyWebhook.
func FuzzVerifyWebhook(f *testing.F) {
	key, _, keys := sigTestKeys(f)
	opts := sigTestAt(mustUnix(f, sigTestTimestamp))
	var signed []fuzzSigned
	for _, m := range []struct {
		url  string
		body []byte
	}{
		{sigTestURL, []byte(sigTestBody)},
		{sigTestURL, evtSample(f, "guide_deposit_confirmed.json")},
		{"https://hooks.example.com/connect/withdrawals?v=2", nil},
	} {
		sig := sigTestSign(f, key, sigTestTimestamp, http.MethodPost, m.url, m.body)
		signed = append(signed, fuzzSigned{m.url, m.body, sig})
		f.Add(m.url, m.body, sigTestTimestamp, sig, uint8(len(signed)-1), uint(len(m.body)/2), byte(1))
	}
	f.Add(sigTestURL, []byte(sigTestBody+" "), sigTestTimestamp, signed[0].signature, uint8(0), uint(0), byte(0x80))
	f.Add(sigTestURL, []byte{}, sigTestTimestamp, "", uint8(2), uint(7), byte(0x80))
	f.Add("", []byte("x"), "", "AAAA", uint8(1), uint(1), byte(0))
	f.Add(sigTestURL, []byte(sigTestBody), "+1753371727", signed[0].signature, uint8(0), uint(3), byte(2))

	f.Fuzz(func(t *testing.T, url string, body []byte, timestamp, signature string, pick uint8, pos uint, flip byte) {
		// 1. Arbitrary headers: no panic, a labelled failure, and success only for a genuine signature.
		h := http.Header{}
		h.Set(HeaderTimestamp, timestamp)
		h.Set(HeaderSignature, signature)
		err := VerifyWebhook(keys, url, h, body, opts)
		if err == nil {
			genuine, signErr := Sign(key, timestamp, http.MethodPost, url, body)
			sent, decErr := base64.StdEncoding.DecodeString(signature)
			want, _ := base64.StdEncoding.DecodeString(genuine)
			if signErr != nil || decErr != nil || !bytes.Equal(sent, want) {
				t.Fatalf("accepted a signature the key did not make (url %q timestamp %q)", url, timestamp)
			}
		} else if VerifyFailureReason(err) == "other" && url != "" {
			t.Fatalf("unlabelled failure: %v", err)
		}

		// 2. A genuine signature with the fuzzer's URL and body: accepted exactly when both are the signed ones.
		m := signed[int(pick)%len(signed)]
		h.Set(HeaderTimestamp, sigTestTimestamp)
		h.Set(HeaderSignature, m.signature)
		err = VerifyWebhook(keys, url, h, body, opts)
		switch {
		case url == m.url && bytes.Equal(body, m.body):
			if err != nil {
				t.Fatalf("genuine signature rejected: %v", err)
			}
		case url == "":
			if err == nil {
				t.Fatal("accepted an empty URL")
			}
		case !errors.Is(err, ErrSignatureMismatch):
			t.Fatalf("other URL or body: VerifyWebhook = %v, want %v", err, ErrSignatureMismatch)
		}

		// 3. The signed body with one byte changed, and with one byte appended, never verifies.
		if flip == 0 {
			flip = 1
		}
		mutated := append([]byte(nil), m.body...)
		if len(mutated) == 0 {
			mutated = []byte{flip}
		} else {
			mutated[pos%uint(len(mutated))] ^= flip
		}
		for _, b := range [][]byte{mutated, append(m.body[:len(m.body):len(m.body)], flip)} {
			if err := VerifyWebhook(keys, m.url, h, b, opts); !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("mutated body: VerifyWebhook = %v, want %v", err, ErrSignatureMismatch)
			}
		}
	})
}
