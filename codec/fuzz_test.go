package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// fuzzKeys are fixed so seeds sealed once stay openable across fuzz runs.
var fuzzKeys = []Key{
	{ID: "k2", Secret: bytes.Repeat([]byte{0x42}, KeySize)},
	{ID: "k1", Secret: bytes.Repeat([]byte{0x17}, KeySize)},
}

// fuzzSeal seals p under key k as Encode does, but with a nonce derived from n, so every fuzz worker process
// builds the same sealed seeds (Encode's own nonces are random).
func fuzzSeal(tb testing.TB, k Key, p *commonpb.Payload, n byte) []byte {
	tb.Helper()
	block, err := aes.NewCipher(k.Secret)
	if err != nil {
		tb.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		tb.Fatal(err)
	}
	plain, err := proto.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{n}, gcm.NonceSize())
	return gcm.Seal(nonce, nonce, plain, []byte(k.ID))
}

// FuzzDecode checks the codec's Decode with any encrypted-looking payload: it never panics, opens only a payload
// sealed with one of its keys, unchanged (tampered, truncated or relabelled data fails), and never repeats a
// key's secret. Seeds: sealed small payloads and their mutations, and testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	c, err := New(fuzzKeys)
	if err != nil {
		f.Fatal(err)
	}
	sealed := map[string][]byte{} // sealed data -> the marshaled payload it holds
	for i, data := range []string{`"alice@example.com"`, `{"jwt":"eyJ..."}`, ``} {
		p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: []byte(data)}
		blob := fuzzSeal(f, fuzzKeys[0], p, byte(i))
		plain, err := proto.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		sealed[string(blob)] = plain
		genuine := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(MetadataEncoding),
			MetadataKeyID: []byte(fuzzKeys[0].ID)}, Data: blob}
		if _, err := c.Decode([]*commonpb.Payload{genuine}); err != nil {
			f.Fatalf("a sealed seed does not open, so the seeds test nothing: %v", err)
		}
		f.Add(fuzzKeys[0].ID, blob)
		f.Add(fuzzKeys[1].ID, blob) // relabelled: must not open
		f.Add(fuzzKeys[0].ID, blob[:len(blob)-1])
	}
	f.Add("nope", []byte("x"))
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, keyID string, data []byte) {
		p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(MetadataEncoding),
			MetadataKeyID: []byte(keyID)}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{p})
		if err != nil {
			// The error may quote the payload's own key id; it leaks a secret only if the payload did not hold it.
			for _, k := range fuzzKeys {
				for _, form := range []string{base64.StdEncoding.EncodeToString(k.Secret), string(k.Secret)} {
					if strings.Contains(err.Error(), form) && !strings.Contains(keyID, form) && !bytes.Contains(data, []byte(form)) {
						t.Fatalf("error repeats key %s's secret: %v", k.ID, err)
					}
				}
			}
			return
		}
		plain, ok := sealed[string(data)]
		if !ok || keyID != fuzzKeys[0].ID {
			t.Fatalf("opened data nobody sealed under key %q", keyID)
		}
		got, err := proto.Marshal(out[0])
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("opened to %v, sealed %x", out[0], plain)
		}
	})
}

// FuzzParseKeys checks the key list parser with any text: it never panics, accepts only well-formed unique keys
// of KeySize bytes, and never quotes the base64 secret of any entry in an error.
func FuzzParseKeys(f *testing.F) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize))
	for _, seed := range []string{"k1:" + good, "k2:" + good + ",k1:" + good, "k1:" + good + ",k1:" + good,
		good, "k 1:" + good, "k1:" + good[:20], ":" + good, "k1:" + good + ",", " , ", "k1:!!!!"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		keys, err := ParseKeys(spec)
		if err != nil {
			for _, text := range strings.Split(spec, ",") {
				_, secret, ok := strings.Cut(text, ":")
				if secret = strings.TrimSpace(secret); !ok || len(secret) < 8 || !strings.Contains(err.Error(), secret) {
					continue
				}
				// The secret may spell other parts of the message (`key "AAAAAAA"` holds the secret `AAAAAAA"`): it
				// is quoted only if changing it to other letters of the same length takes it out of the error.
				alt := strings.Map(func(r rune) rune {
					if r == 'q' {
						return 'z'
					}
					return 'q'
				}, secret)
				id, rest, _ := strings.Cut(text, ":")
				changed := strings.Replace(spec, text, id+":"+strings.Replace(rest, secret, alt, 1), 1) // this entry's secret only
				if _, err2 := ParseKeys(changed); err2 != nil && strings.Contains(err2.Error(), secret) {
					continue
				}
				t.Fatalf("error quotes a secret: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if checkKeyID(k.ID) != nil || len(k.Secret) != KeySize || seen[k.ID] {
				t.Fatalf("accepted key %v (%d bytes)", k, len(k.Secret))
			}
			seen[k.ID] = true
		}
		if _, err := New(keys); err != nil {
			t.Fatalf("parsed keys New rejects: %v", err)
		}
	})
}

// FuzzKeysFileText checks the keys-file reader with any content: it never panics, its output holds no control
// character, comment or blank entry, and whatever ParseKeys accepts of it is what a file of the same keys holds.
func FuzzKeysFileText(f *testing.F) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize))
	for _, seed := range []string{"# current first\nk1:" + good + "\n", "k2:" + good + ",k1:" + good, "\r\n#\n", "",
		"k1:" + good + " # old\n\n k2:" + good + "\r\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := KeysFileText(data)
		if err != nil {
			return
		}
		if text == "" || strings.ContainsAny(text, "\n\r#") || strings.Contains(text, ",,") ||
			strings.HasPrefix(text, ",") || strings.HasSuffix(text, ",") {
			t.Fatalf("KeysFileText(%q) = %q", data, text)
		}
		_, _ = ParseKeys(text) // must not panic
	})
}
