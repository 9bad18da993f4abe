package codec_test

import (
	"fmt"

	"github.com/connectflow/connectflow/codec"
	"go.temporal.io/sdk/client"
)

func ExampleApply() {
	// k2 is current; k1 stays listed until no open history needs it. Secrets: openssl rand -base64 32.
	keys, err := codec.ParseKeys("k2:sbKysrKysrKysrKysrKysrKysrKysrKysrKysrKysrI=,k1:oaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaE=")
	if err != nil {
		fmt.Println(err)
		return
	}
	opts := client.Options{HostPort: "localhost:7233"}
	if err := codec.Apply(&opts, keys); err != nil {
		fmt.Println(err)
		return
	}
	p, err := opts.DataConverter.ToPayload("alice@example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(keys, string(p.Metadata["encoding"]), string(p.Metadata[codec.MetadataKeyID]))
	// Output: [codec.Key{ID:"k2"} codec.Key{ID:"k1"}] binary/encrypted k2
}
