// Package codec encrypts every Temporal payload connectflow writes (workflow and activity inputs and results,
// signals, queries, memos, failure messages and stack traces) with AES-256-GCM, so customer data, session JWTs and
// onboarding tokens are unreadable in Temporal's history without a key. Search attributes are not payloads the
// codec sees: they must never carry PII.
//
// Keys rotate: the first key seals new payloads, every listed key opens old ones. Each payload names its key in
// its metadata (MetadataKeyID), never the key itself.
//
//	keys, err := codec.LoadKeys(os.Getenv)          // CONNECTFLOW_CODEC_KEYS="k2:<base64>,k1:<base64>"
//	err = codec.Apply(&clientOptions, keys)          // worker, starter, bridge, dev stack: the same one call
//	h, err := codec.Handler(keys, token, []string{"http://localhost:8233"}) // codec server for the Temporal UI
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const (
	// MetadataEncoding is the payload metadata "encoding" of an encrypted payload.
	MetadataEncoding = "binary/encrypted"
	// MetadataKeyID is the payload metadata key naming the key that sealed the payload.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the length of a key's secret: AES-256.
	KeySize = 32
)

// Key is one named AES-256 key. Printing a Key (fmt, slog) shows its ID only.
type Key struct {
	ID     string // short name stored in each payload's metadata: letters, digits, '.', '_', '-'
	Secret []byte // KeySize random bytes
}

// Format prints the key's ID and never its secret, whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = fmt.Fprintf(f, "codec.Key{ID:%q}", k.ID) }

// LogValue logs the key's ID and never its secret.
func (k Key) LogValue() slog.Value { return slog.GroupValue(slog.String("id", k.ID)) }

type aesCodec struct {
	currentID string                 // the first key: seals every new payload
	aeads     map[string]cipher.AEAD // every key by ID: opens old payloads too
}

// New returns an AES-256-GCM payload codec. Encode seals each whole payload (metadata and data, proto-marshaled)
// with the first key and a random 12-byte nonce; Decode opens payloads whose encoding is MetadataEncoding with
// the key MetadataKeyID names, and passes any other payload through unchanged. Sealed data is nonce (12 bytes) ||
// ciphertext || tag (16 bytes), with the key ID as additional data. A random nonce allows 2^32 payloads per key:
// rotate long before that.
func New(keys []Key) (converter.PayloadCodec, error) {
	if err := checkKeys(keys, nil); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	c := &aesCodec{currentID: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block) // prepends the 12-byte nonce to the ciphertext
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
	}
	return c, nil
}

// Encode implements converter.PayloadCodec.
func (c *aesCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.currentID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload %d: %w", i, err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(MetadataEncoding),
				MetadataKeyID:              []byte(c.currentID),
			},
			// The key ID is additional data, so a payload relabelled with another key's ID fails to open.
			Data: aead.Seal(nil, nil, plain, []byte(c.currentID)),
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec.
func (c *aesCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != MetadataEncoding {
			out[i] = p
			continue
		}
		opened, err := c.open(p)
		if err != nil {
			return nil, err
		}
		out[i] = opened
	}
	return out, nil
}

func (c *aesCodec) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	rawID, ok := p.GetMetadata()[MetadataKeyID]
	if !ok {
		return nil, fmt.Errorf("codec: encrypted payload has no %q metadata", MetadataKeyID)
	}
	id := string(rawID)
	aead, ok := c.aeads[id]
	if !ok {
		return nil, fmt.Errorf("codec: payload sealed with key %q, which is not among the loaded keys", id)
	}
	if len(p.GetData()) < aead.Overhead() {
		return nil, fmt.Errorf("codec: payload sealed with key %q is truncated: %d bytes, less than nonce and tag",
			id, len(p.GetData()))
	}
	plain, err := aead.Open(nil, nil, p.GetData(), rawID)
	if err != nil {
		return nil, fmt.Errorf("codec: payload sealed with key %q failed authentication (tampered, or the key's bytes changed)", id)
	}
	var opened commonpb.Payload
	if err := proto.Unmarshal(plain, &opened); err != nil {
		return nil, fmt.Errorf("codec: payload sealed with key %q: unmarshal: %w", id, err)
	}
	return &opened, nil
}

// DataConverter is the SDK's default data converter with every payload passed through New(keys).
func DataConverter(keys []Key) (converter.DataConverter, error) {
	c, err := New(keys)
	if err != nil {
		return nil, err
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), nil
}

// FailureConverter moves failure messages and stack traces into an encoded payload (EncodeCommonAttributes), so
// an error that quotes customer data is sealed by dc too. The failure's type and flags stay readable.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// Apply sets opts.DataConverter and opts.FailureConverter for keys; with no keys it leaves opts unchanged, so a
// process without encryption configured runs as before. It refuses to replace a converter already set.
func Apply(opts *client.Options, keys []Key) error {
	if len(keys) == 0 {
		return nil
	}
	if opts == nil {
		return errors.New("codec: nil client options")
	}
	if opts.DataConverter != nil || opts.FailureConverter != nil {
		return errors.New("codec: client options already have a data or failure converter; refusing to replace it")
	}
	dc, err := DataConverter(keys)
	if err != nil {
		return err
	}
	opts.DataConverter = dc
	opts.FailureConverter = FailureConverter(dc)
	return nil
}
