package platformhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/platformhook"
)

// The Standard Webhooks specification's published vector (libraries/go/webhook_test.go, TestWebhookSign, in
// github.com/standard-webhooks/standard-webhooks): our format is theirs, so their libraries verify us.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecrets(t *testing.T, list string) []platformhook.Secret {
	t.Helper()
	s, err := platformhook.ParseSecrets(list)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignMatchesPublishedVector(t *testing.T) {
	got, err := platformhook.Sign(mustSecrets(t, vectorSecret), vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("signature %q, want the specification's %q", got, vectorSignature)
	}
}

func vectorHeaders() http.Header {
	h := http.Header{}
	h.Set(platformhook.HeaderID, vectorID)
	h.Set(platformhook.HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(platformhook.HeaderSignature, vectorSignature)
	return h
}

func at(sec int64) platformhook.VerifyOptions {
	return platformhook.VerifyOptions{Now: func() time.Time { return time.Unix(sec, 0) }}
}

func TestVerifyPublishedVector(t *testing.T) {
	id, err := platformhook.Verify(mustSecrets(t, vectorSecret), vectorHeaders(), []byte(vectorPayload), at(vectorTimestamp+10))
	if err != nil || id != vectorID {
		t.Fatalf("Verify = %q, %v; want %q, nil", id, err, vectorID)
	}
}

func TestRotationSignsWithEveryKeyAndVerifiesWithAny(t *testing.T) {
	oldS, newS := platformhook.NewSecret(), platformhook.NewSecret()
	h := http.Header{}
	body := []byte(`{"type":"deposit.confirmed"}`)
	now := time.Unix(1_800_000_000, 0)
	if err := platformhook.SetHeaders(h, mustSecrets(t, newS+","+oldS), "deposit-t1:3", now, body); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(h.Get(platformhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want one per secret", n)
	}
	for _, only := range []string{oldS, newS} {
		if _, err := platformhook.Verify(mustSecrets(t, only), h, body, at(now.Unix())); err != nil {
			t.Fatalf("a receiver holding one of the two secrets: %v", err)
		}
	}
	if _, err := platformhook.Verify(mustSecrets(t, platformhook.NewSecret()), h, body, at(now.Unix())); !errors.Is(err, platformhook.ErrNoValidSignature) {
		t.Fatalf("unrelated secret: %v, want ErrNoValidSignature", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	secrets := mustSecrets(t, vectorSecret)
	body := []byte(vectorPayload)
	cases := []struct {
		name   string
		mutate func(h http.Header, body *[]byte)
		now    int64
		want   error
	}{
		{"body changed", func(_ http.Header, b *[]byte) { *b = []byte(`{"test": 2432232315}`) }, vectorTimestamp, platformhook.ErrNoValidSignature},
		{"id changed", func(h http.Header, _ *[]byte) { h.Set(platformhook.HeaderID, "msg_other") }, vectorTimestamp, platformhook.ErrNoValidSignature},
		{"timestamp changed", func(h http.Header, _ *[]byte) { h.Set(platformhook.HeaderTimestamp, "1614265331") }, vectorTimestamp, platformhook.ErrNoValidSignature},
		{"replayed too late", func(http.Header, *[]byte) {}, vectorTimestamp + 301, platformhook.ErrTimestampOutside},
		{"from the future", func(http.Header, *[]byte) {}, vectorTimestamp - 301, platformhook.ErrTimestampOutside},
		{"no id", func(h http.Header, _ *[]byte) { h.Del(platformhook.HeaderID) }, vectorTimestamp, platformhook.ErrMissingHeader},
		{"no timestamp", func(h http.Header, _ *[]byte) { h.Del(platformhook.HeaderTimestamp) }, vectorTimestamp, platformhook.ErrMissingHeader},
		{"no signature", func(h http.Header, _ *[]byte) { h.Del(platformhook.HeaderSignature) }, vectorTimestamp, platformhook.ErrMissingHeader},
		{"milliseconds", func(h http.Header, _ *[]byte) { h.Set(platformhook.HeaderTimestamp, "1614265330000") }, vectorTimestamp, platformhook.ErrBadTimestamp},
		{"not a number", func(h http.Header, _ *[]byte) { h.Set(platformhook.HeaderTimestamp, "yesterday") }, vectorTimestamp, platformhook.ErrBadTimestamp},
		{"only an asymmetric signature", func(h http.Header, _ *[]byte) {
			h.Set(platformhook.HeaderSignature, "v1a,"+strings.TrimPrefix(vectorSignature, "v1,"))
		}, vectorTimestamp, platformhook.ErrNoValidSignature},
		{"signature flood", func(h http.Header, _ *[]byte) {
			h.Set(platformhook.HeaderSignature, strings.Repeat("v1,AAAA ", 9)+vectorSignature)
		}, vectorTimestamp, platformhook.ErrTooManySignatures},
		{"dot in id", func(h http.Header, _ *[]byte) { h.Set(platformhook.HeaderID, "a.b") }, vectorTimestamp, platformhook.ErrBadID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, b := vectorHeaders(), append([]byte(nil), body...)
			c.mutate(h, &b)
			if _, err := platformhook.Verify(secrets, h, b, at(c.now)); !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
}

func TestVerifySkipsOtherVersionsBesideAValidOne(t *testing.T) {
	h := vectorHeaders()
	h.Set(platformhook.HeaderSignature, "v1a,bm90IHJlYWw= v2,xyz "+vectorSignature)
	if _, err := platformhook.Verify(mustSecrets(t, vectorSecret), h, []byte(vectorPayload), at(vectorTimestamp)); err != nil {
		t.Fatal(err)
	}
}

func TestParseSecrets(t *testing.T) {
	for _, bad := range []string{"", " , ", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 22)} {
		if _, err := platformhook.ParseSecrets(bad); err == nil {
			t.Errorf("ParseSecrets(%q) accepted", bad)
		}
	}
	s := mustSecrets(t, " "+vectorSecret+",\n"+platformhook.NewSecret()+" ")
	if len(s) != 2 {
		t.Fatalf("%d secrets", len(s))
	}
	if strings.Contains(s[0].String(), "MfKQ") {
		t.Fatalf("String leaks the key: %s", s[0])
	}
}

// TestVerifyRefusesNonCanonicalBase64: the published signature ends "...1OE="; "...1OF=" differs only in the last
// character's unused low bits, so lenient decoding reads the same 32 bytes. Verify decodes strictly: only the
// signature as the sender encoded it verifies (signatures are not malleable).
func TestVerifyRefusesNonCanonicalBase64(t *testing.T) {
	secrets := mustSecrets(t, vectorSecret)
	for _, last := range []string{"F", "G", "H"} {
		h := vectorHeaders()
		h.Set(platformhook.HeaderSignature, strings.TrimSuffix(vectorSignature, "E=")+last+"=")
		if _, err := platformhook.Verify(secrets, h, []byte(vectorPayload), at(vectorTimestamp)); !errors.Is(err, platformhook.ErrNoValidSignature) {
			t.Errorf("signature ...1O%s= (the vector's with unused bits set): %v, want %v", last, err, platformhook.ErrNoValidSignature)
		}
	}
	if _, err := platformhook.Verify(secrets, vectorHeaders(), []byte(vectorPayload), at(vectorTimestamp)); err != nil {
		t.Fatalf("the vector itself: %v", err)
	}
}

// TestParseSecretRefusesNonCanonicalBase64: a secret is read as strictly as a signature; 32 zero bytes are 43
// "A" and "=", and a last "B" only sets unused bits.
func TestParseSecretRefusesNonCanonicalBase64(t *testing.T) {
	canonical := platformhook.SecretPrefix + strings.Repeat("A", 43) + "="
	if _, err := platformhook.ParseSecret(canonical); err != nil {
		t.Fatalf("canonical secret refused: %v", err)
	}
	altered := platformhook.SecretPrefix + strings.Repeat("A", 42) + "B="
	if _, err := platformhook.ParseSecret(altered); !errors.Is(err, platformhook.ErrBadSecret) {
		t.Fatalf("ParseSecret of non-canonical base64: %v, want %v", err, platformhook.ErrBadSecret)
	}
}

// TestSecretsBoundedBySignatures: each secret adds a signature to every message and Verify reads at most
// MaxSignatures, so ParseSecrets takes at most MaxSignatures secrets, naming the limit when given more; with the
// most it takes, what Sign writes still verifies with any one of them.
func TestSecretsBoundedBySignatures(t *testing.T) {
	list := make([]string, platformhook.MaxSignatures+1)
	for i := range list {
		list[i] = platformhook.NewSecret()
	}
	_, err := platformhook.ParseSecrets(strings.Join(list, ","))
	if !errors.Is(err, platformhook.ErrTooManySecrets) || !strings.Contains(err.Error(), "at most "+strconv.Itoa(platformhook.MaxSignatures)) {
		t.Fatalf("ParseSecrets of %d secrets: %v; want %v naming the limit", len(list), err, platformhook.ErrTooManySecrets)
	}
	for _, s := range list {
		if strings.Contains(err.Error(), strings.TrimPrefix(s, platformhook.SecretPrefix)) {
			t.Fatalf("the error quotes a secret: %v", err)
		}
	}
	all := mustSecrets(t, strings.Join(list[:platformhook.MaxSignatures], ","))
	h := http.Header{}
	if err := platformhook.SetHeaders(h, all, "deposit-t1:1", time.Unix(vectorTimestamp, 0), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if _, err := platformhook.Verify(all[i:i+1], h, []byte("{}"), at(vectorTimestamp)); err != nil {
			t.Fatalf("signed with %d secrets, verified with secret %d: %v", len(all), i, err)
		}
	}
	one, err := platformhook.ParseSecret(list[0])
	if err != nil {
		t.Fatal(err)
	}
	more := append(all, one) // built without ParseSecrets
	if _, err := platformhook.Sign(more, "deposit-t1:1", time.Unix(vectorTimestamp, 0), nil); !errors.Is(err, platformhook.ErrTooManySecrets) {
		t.Fatalf("Sign with %d secrets: %v, want %v", len(more), err, platformhook.ErrTooManySecrets)
	}
}

func TestSignRefusesAmbiguousIDs(t *testing.T) {
	for _, id := range []string{"", "deposit-a.b:1", "x y", strings.Repeat("a", 513)} {
		if _, err := platformhook.Sign(mustSecrets(t, vectorSecret), id, time.Unix(1, 0), nil); !errors.Is(err, platformhook.ErrBadID) {
			t.Errorf("Sign(id %.20q): %v, want ErrBadID", id, err)
		}
	}
}

// FuzzVerify: no header set panics Verify, and whatever it accepts was signed with the secret.
func FuzzVerify(f *testing.F) {
	f.Add(vectorID, strconv.Itoa(vectorTimestamp), vectorSignature, []byte(vectorPayload))
	f.Add("", "", "", []byte(nil))
	f.Add("a.b", "-1", "v1,", []byte("{}"))
	f.Add(vectorID, "99999999999999999999", "v1a,x v1,=== ,,,", []byte("x"))
	secrets, err := platformhook.ParseSecrets(vectorSecret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(platformhook.HeaderID, id)
		h.Set(platformhook.HeaderTimestamp, ts)
		h.Set(platformhook.HeaderSignature, sig)
		got, err := platformhook.Verify(secrets, h, body, at(vectorTimestamp))
		if err != nil {
			return
		}
		sec, _ := strconv.ParseInt(h.Get(platformhook.HeaderTimestamp), 10, 64)
		want, serr := platformhook.Sign(secrets, got, time.Unix(sec, 0), body)
		if serr != nil || !strings.Contains(h.Get(platformhook.HeaderSignature), want) {
			t.Fatalf("accepted id %q ts %q sig %q, but our own signature is %q (%v)", got, ts, sig, want, serr)
		}
	})
}
