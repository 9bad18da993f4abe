package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// customer is the kind of value connectflow's workflows carry: PII and a session JWT.
type customer struct {
	Email      string            `json:"email"`
	Phone      string            `json:"phone"`
	SessionJWT string            `json:"session_jwt"`
	Metadata   map[string]string `json:"metadata"`
}

var alice = customer{
	Email:      "alice@example.com",
	Phone:      "33512345678",
	SessionJWT: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY2NvdW50In0.c2ln",
	Metadata:   map[string]string{"order": "42", "device": "iphone-of-alice"},
}

// newKey returns a key with fresh random bytes, as `openssl rand -base64 32` would give.
func newKey(t testing.TB, id string) Key {
	t.Helper()
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Secret: secret}
}

func newCodec(t testing.TB, keys ...Key) converter.PayloadCodec {
	t.Helper()
	c, err := New(keys)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func newDataConverter(t testing.TB, keys ...Key) converter.DataConverter {
	t.Helper()
	dc, err := DataConverter(keys)
	if err != nil {
		t.Fatalf("DataConverter: %v", err)
	}
	return dc
}

func wire(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoSecret fails when text holds any key's bytes in a form a log or error could carry them.
func assertNoSecret(t *testing.T, text string, keys ...Key) {
	t.Helper()
	for _, k := range keys {
		for _, form := range []string{
			base64.StdEncoding.EncodeToString(k.Secret),
			fmt.Sprintf("%x", k.Secret),
			fmt.Sprint(k.Secret),
			string(k.Secret),
		} {
			if strings.Contains(text, form) {
				t.Fatalf("key %s's secret appears in %q", k.ID, text)
			}
		}
	}
}

func TestDataConverterRoundTrip(t *testing.T) {
	k1 := newKey(t, "k1")
	dc := newDataConverter(t, k1)
	tests := []struct {
		name      string
		value     any
		plaintext string // what must not be readable in the encoded payload
		decodeTo  func() any
	}{
		{"string", "bob@example.org", "bob@example.org", func() any { return new(string) }},
		{"struct with PII", alice, "alice@example.com", func() any { return new(customer) }},
		{"pointer to struct", &alice, "33512345678", func() any { return new(customer) }},
		{"bytes", []byte("onboarding-token-0f3a"), "onboarding-token-0f3a", func() any { return new([]byte) }},
		{"map", map[string]string{"email": "carol@example.net"}, "carol@example.net", func() any { return new(map[string]string) }},
		{"number", 12345, "12345", func() any { return new(int) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := converter.GetDefaultDataConverter().ToPayload(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			// Control: without the codec the value is readable, so the check below can catch a leak.
			if !bytes.Contains(wire(t, plain), []byte(tt.plaintext)) {
				t.Fatalf("control: default converter payload does not contain %q", tt.plaintext)
			}

			p, err := dc.ToPayload(tt.value)
			if err != nil {
				t.Fatalf("ToPayload: %v", err)
			}
			if bytes.Contains(wire(t, p), []byte(tt.plaintext)) {
				t.Fatalf("encoded payload contains %q in plaintext", tt.plaintext)
			}
			wantMeta := map[string]string{converter.MetadataEncoding: MetadataEncoding, MetadataKeyID: "k1"}
			gotMeta := map[string]string{}
			for k, v := range p.GetMetadata() {
				gotMeta[k] = string(v)
			}
			if !reflect.DeepEqual(gotMeta, wantMeta) {
				t.Fatalf("metadata = %v, want %v (the inner encoding is sealed too)", gotMeta, wantMeta)
			}

			out := tt.decodeTo()
			if err := dc.FromPayload(p, out); err != nil {
				t.Fatalf("FromPayload: %v", err)
			}
			want := tt.value
			if reflect.TypeOf(want).Kind() == reflect.Pointer {
				want = reflect.ValueOf(want).Elem().Interface()
			}
			if got := reflect.ValueOf(out).Elem().Interface(); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %#v, want %#v", got, want)
			}
		})
	}
}

func TestDataConverterManyValues(t *testing.T) {
	dc := newDataConverter(t, newKey(t, "k1"))
	ps, err := dc.ToPayloads("T1", alice, 7)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wire(t, ps), []byte("alice@example.com")) {
		t.Fatal("encoded payloads contain the email in plaintext")
	}
	var (
		id string
		c  customer
		n  int
	)
	if err := dc.FromPayloads(ps, &id, &c, &n); err != nil {
		t.Fatal(err)
	}
	if id != "T1" || !reflect.DeepEqual(c, alice) || n != 7 {
		t.Fatalf("decoded %q %#v %d", id, c, n)
	}
	if got := dc.ToStrings(ps); !strings.Contains(got[1], "alice@example.com") {
		t.Fatalf("ToStrings decodes for display: got %q", got[1])
	}
}

func TestEncodeUsesFreshNonces(t *testing.T) {
	c := newCodec(t, newKey(t, "k1"))
	p, err := converter.GetDefaultDataConverter().ToPayload(alice)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[0].GetData(), b[0].GetData()) {
		t.Fatal("the same payload sealed twice gave the same bytes: nonce reused")
	}
}

func TestEncodeDoesNotMutateInput(t *testing.T) {
	k1 := newKey(t, "k1")
	c := newCodec(t, k1)
	p, err := converter.GetDefaultDataConverter().ToPayload(alice)
	if err != nil {
		t.Fatal(err)
	}
	before := proto.Clone(p)
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(p, before) {
		t.Fatal("Encode changed its input")
	}
	encBefore := proto.Clone(enc[0])
	if _, err := c.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(enc[0], encBefore) {
		t.Fatal("Decode changed its input")
	}
}

// The "done means" test: history written with key 1, read after key 2 was added in front.
func TestKeyRotation(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")

	// History written while k1 was the only key.
	history, err := newDataConverter(t, k1).ToPayloads("T1", alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range history.GetPayloads() {
		if got := string(p.GetMetadata()[MetadataKeyID]); got != "k1" {
			t.Fatalf("key id = %q, want k1", got)
		}
	}

	// k2 added first: old history still reads.
	rotated := newDataConverter(t, k2, k1)
	var (
		id string
		c  customer
	)
	if err := rotated.FromPayloads(history, &id, &c); err != nil {
		t.Fatalf("decode k1 history with [k2, k1]: %v", err)
	}
	if id != "T1" || !reflect.DeepEqual(c, alice) {
		t.Fatalf("decoded %q %#v", id, c)
	}

	// New payloads are sealed with k2, and k1 alone cannot read them.
	fresh, err := rotated.ToPayload(alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(fresh.GetMetadata()[MetadataKeyID]); got != "k2" {
		t.Fatalf("new payload key id = %q, want k2", got)
	}
	if err := newDataConverter(t, k1).FromPayload(fresh, &c); err == nil || !strings.Contains(err.Error(), `"k2"`) {
		t.Fatalf("decode k2 payload with [k1]: err = %v, want one naming k2", err)
	}

	// k1 retired too early: the error names the missing key, and no key's bytes.
	err = newDataConverter(t, k2).FromPayloads(history, &id, &c)
	if err == nil {
		t.Fatal("decode k1 history with [k2] only: no error")
	}
	if !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("error %q does not name key id k1", err)
	}
	assertNoSecret(t, err.Error(), k1, k2)
}

func TestDecodeRejects(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	plain, err := converter.GetDefaultDataConverter().ToPayload(alice)
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(t *testing.T) *commonpb.Payload {
		enc, err := newCodec(t, k1).Encode([]*commonpb.Payload{plain})
		if err != nil {
			t.Fatal(err)
		}
		return enc[0]
	}
	tests := []struct {
		name    string
		keys    []Key
		mangle  func(p *commonpb.Payload)
		wantErr string
	}{
		{"flipped ciphertext byte", []Key{k1}, func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 1 }, `key "k1" failed authentication`},
		{"flipped nonce byte", []Key{k1}, func(p *commonpb.Payload) { p.Data[0] ^= 0x80 }, `key "k1" failed authentication`},
		{"flipped tag byte", []Key{k1}, func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 }, `key "k1" failed authentication`},
		{"truncated to 10 bytes", []Key{k1}, func(p *commonpb.Payload) { p.Data = p.Data[:10] }, `key "k1" is truncated: 10 bytes`},
		{"tag cut short", []Key{k1}, func(p *commonpb.Payload) { p.Data = p.Data[:len(p.Data)-1] }, `key "k1" failed authentication`},
		{"empty data", []Key{k1}, func(p *commonpb.Payload) { p.Data = nil }, `key "k1" is truncated: 0 bytes`},
		{"relabelled to another loaded key", []Key{k1, k2}, func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k2") }, `key "k2" failed authentication`},
		{"relabelled to an id with the same bytes", []Key{k1, {ID: "k1-alias", Secret: k1.Secret}}, func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k1-alias") }, `key "k1-alias" failed authentication`},
		{"no key id", []Key{k1}, func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) }, `no "encryption-key-id" metadata`},
		{"unknown key id", []Key{k1}, func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k9") }, `key "k9", which is not among the loaded keys`},
		{"same id, other key bytes", []Key{newKey(t, "k1")}, func(*commonpb.Payload) {}, `key "k1" failed authentication`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sealed(t)
			tt.mangle(p)
			out, err := newCodec(t, tt.keys...).Decode([]*commonpb.Payload{p})
			if err == nil {
				t.Fatalf("Decode succeeded: %v", out)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
			assertNoSecret(t, err.Error(), append(tt.keys, k1, k2)...)
		})
	}
}

func TestDecodePassesThroughOtherPayloads(t *testing.T) {
	k1 := newKey(t, "k1")
	c := newCodec(t, k1)
	dc := converter.GetDefaultDataConverter()
	var others []*commonpb.Payload
	for _, v := range []any{nil, "plain", []byte{1, 2, 3}, alice} {
		p, err := dc.ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, p)
	}
	zlib, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode(others[3:])
	if err != nil {
		t.Fatal(err)
	}
	others = append(others, zlib...)
	sealed, err := c.Encode(others[1:2])
	if err != nil {
		t.Fatal(err)
	}

	// A batch mixing plain payloads (written before encryption was on) and sealed ones.
	in := append(append([]*commonpb.Payload{}, others...), sealed[0])
	out, err := c.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range others {
		if !proto.Equal(out[i], p) {
			t.Fatalf("payload %d (%s) changed: %v", i, p.GetMetadata()[converter.MetadataEncoding], out[i])
		}
	}
	if !proto.Equal(out[len(others)], others[1]) {
		t.Fatalf("sealed payload decoded to %v, want %v", out[len(others)], others[1])
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	k1 := newKey(t, "k1")
	tests := []struct {
		name    string
		keys    []Key
		wantErr string
	}{
		{"no keys", nil, "no keys"},
		{"short secret", []Key{{ID: "k1", Secret: k1.Secret[:16]}}, `key 1 (key "k1"): secret is 16 bytes, want 32`},
		{"long secret", []Key{k1, {ID: "k2", Secret: append(append([]byte{}, k1.Secret...), 0)}}, `key 2 (key "k2"): secret is 33 bytes, want 32`},
		{"empty id", []Key{{Secret: k1.Secret}}, "key 1: empty key id"},
		{"id with a colon", []Key{{ID: "k:1", Secret: k1.Secret}}, "key 1: key id has a character other than"},
		{"duplicate id", []Key{k1, newKey(t, "k2"), newKey(t, "k1")}, `key 3: key id "k1" already used by key 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.keys)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			assertNoSecret(t, err.Error(), tt.keys...)
		})
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := newKey(t, "k1")
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&out, verb+"\n", k)
		fmt.Fprintf(&out, verb+"\n", &k)
		fmt.Fprintf(&out, verb+"\n", []Key{k})
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("keys loaded", "key", k)
	slog.New(slog.NewTextHandler(&out, nil)).Info("keys loaded", "key", k)
	assertNoSecret(t, out.String(), k)
	if !strings.Contains(out.String(), `codec.Key{ID:"k1"}`) || !strings.Contains(out.String(), `"key":{"id":"k1"}`) {
		t.Fatalf("a printed key should show its id:\n%s", out.String())
	}
}

func TestFailureConverterSealsMessages(t *testing.T) {
	k1 := newKey(t, "k1")
	fc := FailureConverter(newDataConverter(t, k1))
	const (
		message = "onboarding refused for alice@example.com"
		cause   = "zero hash said: phone 33512345678 is invalid"
	)
	appErr := temporal.NewApplicationErrorWithCause(message, "OnboardingRefused", errors.New(cause), alice)

	// Control: the SDK's default failure converter leaves the message readable.
	if !bytes.Contains(wire(t, temporal.GetDefaultFailureConverter().ErrorToFailure(appErr)), []byte("alice@example.com")) {
		t.Fatal("control: default failure converter does not show the message")
	}

	f := fc.ErrorToFailure(appErr)
	raw := wire(t, f)
	for _, pii := range []string{"alice@example.com", "33512345678", "iphone-of-alice"} {
		if bytes.Contains(raw, []byte(pii)) {
			t.Fatalf("encoded failure contains %q in plaintext", pii)
		}
	}
	for level := f; level != nil; level = level.GetCause() {
		if enc := string(level.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]); enc != MetadataEncoding {
			t.Fatalf("failure %q: encoded attributes encoding %q, want %q", level.GetMessage(), enc, MetadataEncoding)
		}
	}
	if got := f.GetApplicationFailureInfo().GetType(); got != "OnboardingRefused" {
		t.Fatalf("failure type = %q, want it readable", got)
	}

	// Round trip through the wire form, as the worker reads it back from history.
	var stored failurepb.Failure
	if err := proto.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	back := fc.FailureToError(&stored)
	var decoded *temporal.ApplicationError
	if !errors.As(back, &decoded) {
		t.Fatalf("decoded %T, want *temporal.ApplicationError", back)
	}
	if decoded.Message() != message || decoded.Type() != "OnboardingRefused" {
		t.Fatalf("decoded message %q type %q", decoded.Message(), decoded.Type())
	}
	if got := errors.Unwrap(decoded); got == nil || !strings.Contains(got.Error(), cause) {
		t.Fatalf("decoded cause %v, want %q", got, cause)
	}
	var details customer
	if err := decoded.Details(&details); err != nil || !reflect.DeepEqual(details, alice) {
		t.Fatalf("details %#v, %v", details, err)
	}
}

func TestApply(t *testing.T) {
	k1 := newKey(t, "k1")

	t.Run("no keys leaves options alone", func(t *testing.T) {
		opts := client.Options{HostPort: "localhost:7233"}
		if err := Apply(&opts, nil); err != nil {
			t.Fatal(err)
		}
		if opts.DataConverter != nil || opts.FailureConverter != nil {
			t.Fatal("Apply with no keys set a converter")
		}
	})

	t.Run("keys set both converters", func(t *testing.T) {
		var opts client.Options
		if err := Apply(&opts, []Key{k1}); err != nil {
			t.Fatal(err)
		}
		p, err := opts.DataConverter.ToPayload(alice)
		if err != nil {
			t.Fatal(err)
		}
		if string(p.GetMetadata()[MetadataKeyID]) != "k1" {
			t.Fatalf("data converter does not seal: %v", p.GetMetadata())
		}
		f := opts.FailureConverter.ErrorToFailure(errors.New("bad email alice@example.com"))
		if bytes.Contains(wire(t, f), []byte("alice@example.com")) {
			t.Fatal("failure converter does not seal messages")
		}
		if got := opts.FailureConverter.FailureToError(f).Error(); got != "bad email alice@example.com" {
			t.Fatalf("failure decoded to %q", got)
		}
	})

	t.Run("refuses to replace a converter", func(t *testing.T) {
		opts := client.Options{DataConverter: converter.GetDefaultDataConverter()}
		if err := Apply(&opts, []Key{k1}); err == nil {
			t.Fatal("Apply replaced an existing data converter")
		}
	})

	t.Run("bad keys", func(t *testing.T) {
		var opts client.Options
		err := Apply(&opts, []Key{{ID: "k1", Secret: k1.Secret[:31]}})
		if err == nil || opts.DataConverter != nil {
			t.Fatalf("err = %v, converter = %v", err, opts.DataConverter)
		}
	})

	t.Run("nil options", func(t *testing.T) {
		if err := Apply(nil, []Key{k1}); err == nil {
			t.Fatal("Apply(nil) gave no error")
		}
	})
}

// Workers encode and decode from many goroutines through one codec.
func TestCodecConcurrentUse(t *testing.T) {
	dc := newDataConverter(t, newKey(t, "k2"), newKey(t, "k1"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				want := fmt.Sprintf("user%d-%d@example.com", g, i)
				p, err := dc.ToPayload(want)
				if err != nil {
					errs <- err
					return
				}
				var got string
				if err := dc.FromPayload(p, &got); err != nil || got != want {
					errs <- fmt.Errorf("round trip %q: got %q, %v", want, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkEncodeDecode1KiB(b *testing.B) {
	c := newCodec(b, newKey(b, "k1"))
	data := make([]byte, 1024)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/plain")}, Data: data}}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		enc, err := c.Encode(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// Strict mode refuses a plaintext payload; the default reads it but counts it; a process without keys refuses
// an encrypted one. Each outcome is counted in MetricUnencrypted.
func TestPlaintextAndEncryptedMismatches(t *testing.T) {
	keys := []Key{{ID: "k1", Secret: bytes.Repeat([]byte{3}, KeySize)}}
	plain, err := converter.GetDefaultDataConverter().ToPayloads("a session JWT")
	if err != nil {
		t.Fatal(err)
	}
	count := func(outcome string) float64 {
		m := &dto.Metric{}
		if err := MetricUnencrypted.WithLabelValues(outcome).Write(m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	lenient, _ := NewWithOptions(keys, Options{Logger: logger})
	before := count("plaintext_read")
	for range 2 {
		if _, err := lenient.Decode(plain.GetPayloads()); err != nil {
			t.Fatalf("lenient Decode: %v", err)
		}
	}
	if got := count("plaintext_read") - before; got != 2 || strings.Count(logs.String(), "decoded an unencrypted payload") != 1 {
		t.Fatalf("lenient: counted %v, logged %q; want 2 counted, one warning", got, logs.String())
	}

	strict, _ := NewWithOptions(keys, Options{Strict: true, Logger: logger})
	before = count("plaintext_refused")
	if _, err := strict.Decode(plain.GetPayloads()); !errors.Is(err, ErrPlaintext) || count("plaintext_refused")-before != 1 {
		t.Fatalf("strict Decode = %v, want ErrPlaintext counted once", err)
	}

	var opts client.Options
	if err := ApplyWithOptions(&opts, nil, Options{Logger: logger}); err != nil {
		t.Fatal(err)
	}
	sealed, err := lenient.Encode(plain.GetPayloads())
	if err != nil {
		t.Fatal(err)
	}
	before = count("encrypted_unreadable")
	var s string
	if err := opts.DataConverter.FromPayloads(&commonpb.Payloads{Payloads: sealed}, &s); !errors.Is(err, ErrEncrypted) ||
		count("encrypted_unreadable")-before != 1 {
		t.Fatalf("keyless FromPayloads = %v, want ErrEncrypted counted once", err)
	}
	if err := ApplyWithOptions(&client.Options{}, nil, Options{Strict: true}); err == nil {
		t.Fatal("strict mode without keys was accepted")
	}
}
