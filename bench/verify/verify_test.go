package verify

import (
	"errors"
	"testing"

	"github.com/connectflow/connectflow/connect"
)

func newFixture(tb testing.TB) *Fixture {
	tb.Helper()
	f, err := NewFixture()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return f
}

func BenchmarkRSAVerifyFloor(b *testing.B)  { newFixture(b).Floor(b) }
func BenchmarkVerifySignature(b *testing.B) { newFixture(b).Signature(b) }
func BenchmarkVerifyJWT(b *testing.B)       { newFixture(b).JWT(b) }
func BenchmarkVerifyBoth(b *testing.B)      { newFixture(b).Both(b) }
func BenchmarkBridgeHandler(b *testing.B)   { newFixture(b).Handler(b) }

// TestFixtureChecksForReal proves each benchmarked operation accepts the signed webhook and rejects a forged one,
// so no benchmark can time a check that passes without checking.
func TestFixtureChecksForReal(t *testing.T) {
	f := newFixture(t)
	for name, op := range map[string]func() error{"signature": f.signature, "jwt": f.jwt, "handler": f.serve} {
		if err := op(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	tampered := *f
	tampered.body = append([]byte(nil), f.body...)
	tampered.body[len(tampered.body)-3] ^= 1
	if err := tampered.signature(); !errors.Is(err, connect.ErrSignatureMismatch) {
		t.Errorf("signature over a tampered body: got %v, want %v", err, connect.ErrSignatureMismatch)
	}
	if err := tampered.serve(); err == nil {
		t.Error("the bridge accepted a tampered body")
	}

	forged := *f
	forged.bearer = f.bearer[:len(f.bearer)-8] + "AAAAAAAA"
	if err := forged.jwt(); err == nil {
		t.Error("a bearer JWT with a forged signature verified")
	}
	forged.header = f.header.Clone()
	forged.header.Set("Authorization", "Bearer "+forged.bearer)
	if err := forged.serve(); err == nil {
		t.Error("the bridge accepted a forged bearer JWT")
	}

	unsigned := *f
	unsigned.header = f.header.Clone()
	unsigned.header.Del(connect.HeaderSignature)
	if err := unsigned.serve(); err == nil {
		t.Error("the bridge accepted a webhook without a signature")
	}
}

// TestBenchmarksMeasure runs each benchmark briefly the way the bench command does and checks it measured work.
func TestBenchmarksMeasure(t *testing.T) {
	f := newFixture(t)
	for name, bench := range map[string]func(*testing.B){"floor": f.Floor, "signature": f.Signature, "jwt": f.JWT,
		"both": f.Both, "handler": f.Handler} {
		res := testing.Benchmark(bench)
		if res.N == 0 || res.NsPerOp() <= 0 {
			t.Errorf("%s: measured nothing: %+v", name, res)
		}
	}
}
