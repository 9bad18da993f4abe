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
	"sync"

	"github.com/prometheus/client_golang/prometheus"

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
	opts      Options
	warnOnce  sync.Once
}

// Options tune how a codec treats payloads that are not encrypted.
type Options struct {
	// Strict makes Decode refuse every payload that is not encrypted (ErrPlaintext), for a deployment whose
	// histories are all encrypted: a process started without keys can then not slip plaintext in unnoticed.
	Strict bool
	// Logger receives one warning the first time a plaintext payload is decoded (nil: slog.Default()).
	Logger *slog.Logger
}

// ErrPlaintext is the cause of a strict codec's refusal of a payload that is not encrypted.
var ErrPlaintext = errors.New("codec: strict mode refuses an unencrypted payload (written by a process without payload keys?)")

// ErrEncrypted is the cause of a plaintext process's refusal of an encrypted payload: it has no keys to open it.
var ErrEncrypted = errors.New("codec: payload is encrypted but this process runs without payload keys (CONNECTFLOW_CODEC_PLAINTEXT); give it the keys")

// MetricUnencrypted counts the payloads a process met that did not match its encryption: outcome "plaintext_read"
// (a keyed process decoded a plaintext payload), "plaintext_refused" (strict mode refused one) or
// "encrypted_unreadable" (a process without keys met an encrypted one). Register Collectors() to export it.
var MetricUnencrypted = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "connectflow_codec_mismatched_payloads_total",
	Help: "Payloads whose encryption did not match this process's: plaintext read or refused by a keyed process, or encrypted ones a process without keys met.",
}, []string{"outcome"})

// Collectors are the codec's metrics, for a process's Prometheus registry.
func Collectors() []prometheus.Collector { return []prometheus.Collector{MetricUnencrypted} }

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// New returns an AES-256-GCM payload codec. Encode seals each whole payload (metadata and data, proto-marshaled)
// with the first key and a random 12-byte nonce; Decode opens payloads whose encoding is MetadataEncoding with
// the key MetadataKeyID names, and passes any other payload through unchanged. Sealed data is nonce (12 bytes) ||
// ciphertext || tag (16 bytes), with the key ID as additional data. A random nonce allows 2^32 payloads per key:
// rotate long before that.
func New(keys []Key) (converter.PayloadCodec, error) { return NewWithOptions(keys, Options{}) }

// NewWithOptions is New with plaintext payloads treated as o says: refused when o.Strict, else decoded as they are
// and counted in MetricUnencrypted, with one warning logged.
func NewWithOptions(keys []Key, o Options) (converter.PayloadCodec, error) {
	if err := checkKeys(keys, nil); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	c := &aesCodec{currentID: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys)), opts: o}
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
			if c.opts.Strict {
				MetricUnencrypted.WithLabelValues("plaintext_refused").Inc()
				c.opts.logger().Error("refused an unencrypted payload (CONNECTFLOW_CODEC_STRICT): a process without payload keys wrote it",
					"encoding", string(p.GetMetadata()[converter.MetadataEncoding]))
				return nil, ErrPlaintext
			}
			MetricUnencrypted.WithLabelValues("plaintext_read").Inc()
			c.warnOnce.Do(func() {
				c.opts.logger().Warn("decoded an unencrypted payload: a process without payload keys is writing to this namespace, or the history predates encryption; set CONNECTFLOW_CODEC_STRICT=true once every history is encrypted",
					"encoding", string(p.GetMetadata()[converter.MetadataEncoding]))
			})
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
	return DataConverterWithOptions(keys, Options{})
}

// DataConverterWithOptions is DataConverter over NewWithOptions(keys, o).
func DataConverterWithOptions(keys []Key, o Options) (converter.DataConverter, error) {
	c, err := NewWithOptions(keys, o)
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
	return ApplyWithOptions(opts, keys, Options{})
}

// ApplyWithOptions is Apply with the codec's Options. With no keys it installs a pass-through codec that refuses
// encrypted payloads with ErrEncrypted (counted and logged), so a process run without keys beside keyed ones
// fails loudly on their payloads instead of with a bare "unknown encoding".
func ApplyWithOptions(opts *client.Options, keys []Key, o Options) error {
	if len(keys) == 0 {
		if opts == nil {
			return errors.New("codec: nil client options")
		}
		if o.Strict {
			return errors.New("codec: strict mode needs payload keys")
		}
		if opts.DataConverter != nil {
			return errors.New("codec: client options already have a data converter; refusing to replace it")
		}
		opts.DataConverter = converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), &plainCodec{opts: o})
		return nil
	}
	if opts == nil {
		return errors.New("codec: nil client options")
	}
	if opts.DataConverter != nil || opts.FailureConverter != nil {
		return errors.New("codec: client options already have a data or failure converter; refusing to replace it")
	}
	dc, err := DataConverterWithOptions(keys, o)
	if err != nil {
		return err
	}
	opts.DataConverter = dc
	opts.FailureConverter = FailureConverter(dc)
	return nil
}

// plainCodec is the codec of a process run without keys: it writes payloads as they are and refuses encrypted ones.
type plainCodec struct {
	opts     Options
	warnOnce sync.Once
}

func (*plainCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return payloads, nil
}

func (c *plainCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	for _, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) == MetadataEncoding {
			MetricUnencrypted.WithLabelValues("encrypted_unreadable").Inc()
			c.warnOnce.Do(func() {
				c.opts.logger().Error("met an encrypted payload without payload keys: processes with and without keys run side by side",
					"key_id", string(p.GetMetadata()[MetadataKeyID]))
			})
			return nil, ErrEncrypted
		}
	}
	return payloads, nil
}
