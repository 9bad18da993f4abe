package connect

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"
)

// BenchmarkVerifyWebhook is the bridge's hot path: headers to verdict for the guide's confirmed deposit.
func BenchmarkVerifyWebhook(b *testing.B) {
	key, _, keys := sigTestKeys(b)
	body := evtSample(b, "guide_deposit_confirmed.json")
	h := http.Header{}
	h.Set(HeaderTimestamp, sigTestTimestamp)
	h.Set(HeaderSignature, sigTestSign(b, key, sigTestTimestamp, http.MethodPost, sigTestURL, body))
	opts := sigTestAt(mustUnix(b, sigTestTimestamp))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyWebhook(keys, sigTestURL, h, body, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSAVerifyFloor is crypto/rsa alone on a precomputed digest: the cost VerifyWebhook cannot go below.
func BenchmarkRSAVerifyFloor(b *testing.B) {
	key, _, _ := sigTestKeys(b)
	body := evtSample(b, "guide_deposit_confirmed.json")
	digest := sha256.Sum256(SigningString(sigTestTimestamp, http.MethodPost, sigTestURL, body))
	sig, err := base64.StdEncoding.DecodeString(sigTestSign(b, key, sigTestTimestamp, http.MethodPost, sigTestURL, body))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEvent parses the guide's confirmed-deposit webhook.
func BenchmarkParseEvent(b *testing.B) {
	body := evtSample(b, "guide_deposit_confirmed.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(body); err != nil {
			b.Fatal(err)
		}
	}
}
