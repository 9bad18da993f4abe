package zerohash_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/zerohash"
)

// publishedVector is testdata/webhook_headers_deposit_completed.json: a full header set of the published names
// over the guide's deposit balance sample; its _source says how each value was derived.
type publishedVector struct {
	Source   string            `json:"_source"`
	BodyFile string            `json:"body_file"`
	Headers  map[string]string `json:"headers"`
}

func loadVector(t testing.TB) (publishedVector, []byte, http.Header) {
	t.Helper()
	var v publishedVector
	if err := json.Unmarshal(readTestdata(t, "webhook_headers_deposit_completed.json"), &v); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, val := range v.Headers {
		h.Set(k, val)
	}
	return v, readTestdata(t, v.BodyFile), h
}

func testRSAKey(t testing.TB) (*rsa.PrivateKey, *rsa.PublicKey) {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, "webhook_rsa_test_key.pem"))
	if block == nil {
		t.Fatal("no PEM in webhook_rsa_test_key.pem")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := zerohash.ParseWebhookPublicKey(readTestdata(t, "webhook_rsa_test_public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// vectorTime is the vector's x-zh-hook-timestamp as a clock, plus d.
func vectorTime(d time.Duration) func() time.Time {
	return func() time.Time { return time.UnixMilli(1746113199073).Add(d) }
}

// TestPublishedHeaderVector checks the signers against values openssl computed (known answers), and that a full
// published header set verifies under every configuration.
func TestPublishedHeaderVector(t *testing.T) {
	v, body, h := loadVector(t)
	key, pub := testRSAKey(t)
	ts := v.Headers[zerohash.HeaderHookTimestamp]
	if got := zerohash.SignBalanceWebhook(testWebhookSecret, body); got != v.Headers[zerohash.HeaderHookSignature] {
		t.Errorf("legacy HMAC %s, want %s", got, v.Headers[zerohash.HeaderHookSignature])
	}
	if got := zerohash.SignTimedWebhook(testWebhookSecret, body, ts); got != v.Headers[zerohash.HeaderHookTimedSignature] {
		t.Errorf("timed HMAC %s, want %s", got, v.Headers[zerohash.HeaderHookTimedSignature])
	}
	for _, c := range []struct{ ts, header string }{{"", zerohash.HeaderHookRSASignature}, {ts, zerohash.HeaderHookTimedRSASignature}} {
		got, err := zerohash.SignRSAWebhook(key, body, c.ts)
		if err != nil || got != v.Headers[c.header] {
			t.Errorf("%s: %s, %v; want %s", c.header, got, err, v.Headers[c.header])
		}
	}
	for name, ver := range map[string]zerohash.WebhookVerifier{
		"hmac":         {Secret: testWebhookSecret, Now: vectorTime(0)},
		"rsa":          {PublicKey: pub, Now: vectorTime(0)},
		"both":         {Secret: testWebhookSecret, PublicKey: pub, Now: vectorTime(0)},
		"both, timed":  {Secret: testWebhookSecret, PublicKey: pub, RequireTimestamp: true, Now: vectorTime(time.Minute)},
		"hmac, timed ": {Secret: testWebhookSecret, RequireTimestamp: true, Now: vectorTime(-time.Minute)},
	} {
		ev, err := ver.Construct(h, body)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ev.NotificationID != v.Headers[zerohash.HeaderHookNotificationID] || ev.Asset != "USD" {
			t.Errorf("%s: parsed %+v", name, ev)
		}
	}
}

// TestWebhookVerifierSchemes runs each scheme's acceptance and refusals behind a real loopback handler.
func TestWebhookVerifierSchemes(t *testing.T) {
	v, body, full := loadVector(t)
	_, pub := testRSAKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ts := v.Headers[zerohash.HeaderHookTimestamp]
	only := func(names ...string) http.Header {
		h := http.Header{}
		for _, n := range append(names, zerohash.HeaderHookNotificationID, zerohash.HeaderPayloadType) {
			if val := full.Get(n); val != "" {
				h.Set(n, val)
			}
		}
		return h
	}
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	otherLegacy, _ := zerohash.SignRSAWebhook(other, body, "")
	hmacV := zerohash.WebhookVerifier{Secret: testWebhookSecret, Now: vectorTime(0)}
	rsaV := zerohash.WebhookVerifier{PublicKey: pub, Now: vectorTime(0)}
	bothV := zerohash.WebhookVerifier{Secret: testWebhookSecret, PublicKey: pub, Now: vectorTime(0)}
	strictV := hmacV
	strictV.RequireTimestamp = true
	late := hmacV
	late.Now = vectorTime(zerohash.DefaultWebhookTolerance + time.Second)
	early := hmacV
	early.Now = vectorTime(-zerohash.DefaultWebhookTolerance - time.Second)

	cases := []struct {
		name   string
		v      zerohash.WebhookVerifier
		h      http.Header
		body   []byte
		status int
		errHas string
	}{
		{"hmac: legacy only", hmacV, only(zerohash.HeaderHookSignature), body, 200, ""},
		{"hmac: timed only", hmacV, only(zerohash.HeaderHookTimedSignature, zerohash.HeaderHookTimestamp), body, 200, ""},
		{"hmac: all four headers, RSA ones ignored", hmacV, full, body, 200, ""},
		{"hmac: RSA headers only", hmacV, only(zerohash.HeaderHookRSASignature, zerohash.HeaderHookTimedRSASignature, zerohash.HeaderHookTimestamp), body, 400, zerohash.HeaderHookSignature},
		{"hmac: nothing", hmacV, only(), body, 400, zerohash.HeaderHookSignature},
		{"hmac: timed wrong, legacy right", hmacV, with(only(zerohash.HeaderHookSignature, zerohash.HeaderHookTimestamp),
			zerohash.HeaderHookTimedSignature, zerohash.SignTimedWebhook("guessed", body, ts)), body, 403, zerohash.HeaderHookTimedSignature},
		{"hmac: legacy wrong, timed right", hmacV, with(full, zerohash.HeaderHookSignature, zerohash.SignBalanceWebhook("guessed", body)), body, 403, zerohash.HeaderHookSignature},
		{"hmac: timed without timestamp", hmacV, only(zerohash.HeaderHookTimedSignature), body, 400, zerohash.HeaderHookTimestamp},
		{"hmac: timestamp in seconds", hmacV, with(only(zerohash.HeaderHookTimedSignature), zerohash.HeaderHookTimestamp, "1746113199"), body, 403, "milliseconds"},
		{"hmac: timestamp not digits", hmacV, with(only(zerohash.HeaderHookTimedSignature), zerohash.HeaderHookTimestamp, "-1746113199073"), body, 400, zerohash.HeaderHookTimestamp},
		{"hmac: timestamp moved by 1 ms", hmacV, with(only(zerohash.HeaderHookTimedSignature), zerohash.HeaderHookTimestamp, "1746113199074"), body, 403, ""},
		{"hmac: replayed past the tolerance", late, only(zerohash.HeaderHookTimedSignature, zerohash.HeaderHookTimestamp), body, 403, "away from now"},
		{"hmac: from the future", early, only(zerohash.HeaderHookTimedSignature, zerohash.HeaderHookTimestamp), body, 403, "away from now"},
		{"hmac: one byte of body changed", hmacV, full, bytes.Replace(body, []byte(`"10.00"`), []byte(`"11.00"`), 1), 403, ""},
		{"hmac: legacy not hex", hmacV, with(only(), zerohash.HeaderHookSignature, "zz"), body, 400, zerohash.HeaderHookSignature},
		{"require timestamp: legacy only", strictV, only(zerohash.HeaderHookSignature), body, 400, "timestamped signatures are required"},
		{"require timestamp: timed", strictV, only(zerohash.HeaderHookTimedSignature, zerohash.HeaderHookTimestamp), body, 200, ""},
		{"rsa: legacy only", rsaV, only(zerohash.HeaderHookRSASignature), body, 200, ""},
		{"rsa: timed only", rsaV, only(zerohash.HeaderHookTimedRSASignature, zerohash.HeaderHookTimestamp), body, 200, ""},
		{"rsa: HMAC headers only", rsaV, only(zerohash.HeaderHookSignature, zerohash.HeaderHookTimedSignature, zerohash.HeaderHookTimestamp), body, 400, zerohash.HeaderHookRSASignature},
		{"rsa: signed by another key", rsaV, with(only(), zerohash.HeaderHookRSASignature, otherLegacy), body, 403, zerohash.HeaderHookRSASignature},
		{"rsa: not hex", rsaV, with(only(), zerohash.HeaderHookRSASignature, "xyz"), body, 400, ""},
		{"rsa: too long", rsaV, with(only(), zerohash.HeaderHookRSASignature, strings.Repeat("ab", 1025)), body, 400, ""},
		{"rsa: timed signature over the legacy string", rsaV, with(only(zerohash.HeaderHookTimestamp),
			zerohash.HeaderHookTimedRSASignature, full.Get(zerohash.HeaderHookRSASignature)), body, 403, ""},
		{"both: all valid", bothV, full, body, 200, ""},
		{"both: RSA valid, HMAC wrong", bothV, with(full, zerohash.HeaderHookTimedSignature, strings.Repeat("0", 64)), body, 403, ""},
		{"both: HMAC legacy only", bothV, only(zerohash.HeaderHookSignature), body, 200, ""},
		{"no scheme configured", zerohash.WebhookVerifier{}, full, body, 500, "no webhook signing scheme"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, "read", http.StatusBadRequest)
					return
				}
				if _, err := c.v.Construct(r.Header, b); err != nil {
					http.Error(w, err.Error(), zerohash.VerifyStatus(err))
				}
			}))
			defer srv.Close()
			req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = c.h.Clone()
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, answer, c.status)
			}
			if !strings.Contains(string(answer), c.errHas) {
				t.Errorf("answer %q does not name %q", answer, c.errHas)
			}
			if strings.Contains(string(answer), testWebhookSecret) {
				t.Errorf("answer repeats the secret: %q", answer)
			}
		})
	}
}

// TestVerifyDoesNotWriteIntoBody: appending the timestamp must not touch the caller's buffer.
func TestVerifyDoesNotWriteIntoBody(t *testing.T) {
	_, body, h := loadVector(t)
	buf := make([]byte, len(body), len(body)+64)
	copy(buf, body)
	spare := buf[len(buf):cap(buf)]
	for i := range spare {
		spare[i] = 'x'
	}
	if err := (zerohash.WebhookVerifier{Secret: testWebhookSecret, Now: vectorTime(0)}).Verify(h, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[len(buf):cap(buf)], bytes.Repeat([]byte("x"), 64)) {
		t.Fatal("Verify wrote past the body into the caller's buffer")
	}
}

func TestParseWebhookPublicKey(t *testing.T) {
	_, pub := testRSAKey(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
	if got, err := zerohash.ParseWebhookPublicKey(pkcs1); err != nil || !got.Equal(pub) {
		t.Errorf("PKCS #1: %v", err)
	}
	key, _ := testRSAKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zh"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if got, err := zerohash.ParseWebhookPublicKey(cert); err != nil || !got.Equal(pub) {
		t.Errorf("certificate: %v", err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, c := range map[string]struct {
		pem    []byte
		errHas string
	}{
		"not PEM":     {[]byte("hello"), "no PEM block"},
		"private key": {readTestdata(t, "webhook_rsa_test_key.pem"), "RSA PRIVATE KEY"},
		"1024 bits":   {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}), "1024 bits"},
		"EC key":      {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), "want RSA"},
		"garbage DER": {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), "PUBLIC KEY"},
	} {
		if _, err := zerohash.ParseWebhookPublicKey(c.pem); err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("%s: error %v, want one naming %q", name, err, c.errHas)
		}
	}
}

// TestLegacyWrappersKeepTheirContract: VerifyBalanceWebhook refuses an empty secret and accepts the guide's form.
func TestLegacyWrappersKeepTheirContract(t *testing.T) {
	_, body, h := loadVector(t)
	if err := zerohash.VerifyBalanceWebhook("", h, body); err == nil || zerohash.VerifyStatus(err) != 500 {
		t.Errorf("empty secret: %v", err)
	}
	legacy := http.Header{}
	legacy.Set(zerohash.HeaderHookSignature, h.Get(zerohash.HeaderHookSignature))
	legacy.Set(zerohash.HeaderHookTimestamp, strconv.FormatInt(time.Now().UnixMilli(), 10)) // not signed: ignored
	if err := zerohash.VerifyBalanceWebhook(testWebhookSecret, legacy, body); err != nil {
		t.Errorf("legacy: %v", err)
	}
	if err := zerohash.VerifyBalanceWebhook(testWebhookSecret, h, body); !errors.Is(err, zerohash.ErrStaleTimestamp) {
		t.Errorf("the vector's 2025 timed signature verified now: %v", err)
	}
}

// FuzzWebhookVerifier checks the multi-scheme verifier with any four signature headers, timestamp and body under
// every configuration: it never panics; it accepts only when some configured signature is genuine for exactly
// this body (and timestamp, within the tolerance, for a timed one), with a timed one when RequireTimestamp; every
// configured signature sent must be genuine; a refusal maps to 400 or 403 and never repeats the secret.
// Seeds: the published vector's headers, spoilt in the ways below.
func FuzzWebhookVerifier(f *testing.F) {
	v, body, _ := loadVector(f)
	hd := v.Headers
	ts := hd[zerohash.HeaderHookTimestamp]
	f.Add(body, hd[zerohash.HeaderHookSignature], hd[zerohash.HeaderHookRSASignature], hd[zerohash.HeaderHookTimedSignature], hd[zerohash.HeaderHookTimedRSASignature], ts, uint8(7))
	f.Add(body, hd[zerohash.HeaderHookSignature], "", "", "", "", uint8(1))
	f.Add(body, "", "", hd[zerohash.HeaderHookTimedSignature], "", ts, uint8(5))
	f.Add(body, "", hd[zerohash.HeaderHookRSASignature], "", hd[zerohash.HeaderHookTimedRSASignature], "1746113199074", uint8(2))
	f.Add(append(body, ' '), hd[zerohash.HeaderHookSignature], "", "zz", "", "17461131990730000000", uint8(3))
	f.Add([]byte(`{}`), "", strings.Repeat("f", 600), "", "", "-5", uint8(6))
	_, pub := testRSAKey(f)
	now := vectorTime(0)
	f.Fuzz(func(t *testing.T, body []byte, legacy, legacyRSA, timed, timedRSA, timestamp string, config uint8) {
		ver := zerohash.WebhookVerifier{Now: now, RequireTimestamp: config&4 != 0}
		if config&1 != 0 {
			ver.Secret = testWebhookSecret
		}
		if config&2 != 0 {
			ver.PublicKey = pub
		}
		h := http.Header{}
		for k, val := range map[string]string{zerohash.HeaderHookSignature: legacy, zerohash.HeaderHookRSASignature: legacyRSA,
			zerohash.HeaderHookTimedSignature: timed, zerohash.HeaderHookTimedRSASignature: timedRSA, zerohash.HeaderHookTimestamp: timestamp} {
			h.Set(k, val)
		}
		err := ver.Verify(h, body)
		if ver.Secret == "" && ver.PublicKey == nil {
			if !errors.Is(err, zerohash.ErrNoWebhookScheme) {
				t.Fatalf("no scheme configured, yet %v", err)
			}
			return
		}
		fresh := false
		if ms, perr := strconv.ParseInt(strings.TrimSpace(h.Get(zerohash.HeaderHookTimestamp)), 10, 64); perr == nil && !strings.HasPrefix(strings.TrimSpace(timestamp), "-") && !strings.HasPrefix(strings.TrimSpace(timestamp), "+") {
			d := now().Sub(time.UnixMilli(ms))
			fresh = d <= zerohash.DefaultWebhookTolerance && d >= -zerohash.DefaultWebhookTolerance
		}
		tsText := strings.TrimSpace(h.Get(zerohash.HeaderHookTimestamp))
		genuineHMAC := func(sig string, timedSig bool) bool {
			want := zerohash.SignBalanceWebhook(testWebhookSecret, body)
			if timedSig {
				want = zerohash.SignTimedWebhook(testWebhookSecret, body, tsText)
			}
			return strings.EqualFold(strings.TrimSpace(sig), want)
		}
		if err != nil {
			if s := zerohash.VerifyStatus(err); s != http.StatusBadRequest && s != http.StatusForbidden {
				t.Fatalf("refusal %v maps to HTTP %d", err, s)
			}
			if strings.Contains(err.Error(), testWebhookSecret) {
				t.Fatalf("error repeats the secret: %v", err)
			}
			return
		}
		// Accepted: every configured HMAC signature sent is genuine, and the accepting one is allowed.
		sentTimed := false
		if ver.Secret != "" {
			if strings.TrimSpace(legacy) != "" && !genuineHMAC(legacy, false) {
				t.Fatalf("accepted a wrong legacy HMAC %q", legacy)
			}
			if strings.TrimSpace(timed) != "" {
				if !genuineHMAC(timed, true) || !fresh {
					t.Fatalf("accepted timed HMAC %q at timestamp %q", timed, timestamp)
				}
				sentTimed = true
			}
		}
		if ver.PublicKey != nil && strings.TrimSpace(timedRSA) != "" {
			if !fresh {
				t.Fatalf("accepted a timed RSA signature at stale timestamp %q", timestamp)
			}
			sentTimed = true
		}
		if ver.RequireTimestamp && !sentTimed {
			t.Fatal("RequireTimestamp accepted a webhook without a timed signature")
		}
		if !sentTimed && !(ver.Secret != "" && strings.TrimSpace(legacy) != "") && !(ver.PublicKey != nil && strings.TrimSpace(legacyRSA) != "") {
			t.Fatal("accepted a webhook with no signature of a configured scheme")
		}
	})
}
