package transferapi_test

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/transferapi/transferapitest"
)

// TestLengthsCountCharacters: openapi's maxLength counts characters, so a field of exactly maxLength non-ASCII
// characters (two or three bytes each) passes validation (the offline server then answers 503 from Temporal),
// and one character more is a 422 naming the field. Each body is also checked against the document itself.
func TestLengthsCountCharacters(t *testing.T) {
	hs := offlineServerWith(t, slog.New(slog.DiscardHandler), transferapi.DefaultMaxBody)
	spec, err := transferapitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	e, euro := func(n int) string { return strings.Repeat("é", n) }, func(n int) string { return strings.Repeat("€", n) }
	body := func(m map[string]any) string {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	withdrawal := func(ref, asset, network, label, key, value string) string {
		return body(map[string]any{"transfer_id": "t1", "reference_id": ref, "asset": asset, "network": network,
			"amount": "1", "account_label": label, "metadata": map[string]string{key: value}})
	}
	const review = "/v1/reviews/review-deposit:cx-1:confirmed/redeliver"
	for _, tc := range []struct {
		name, path, schema, token, body string
		fields                          []string // nil: valid, so 503 with Temporal down
	}{
		{"start at the bounds", "/v1/withdrawals", "StartRequest", tokenA, withdrawal(e(128), e(64), euro(64), e(64), euro(64), e(256)), nil},
		{"start past the bounds", "/v1/withdrawals", "StartRequest", tokenA, withdrawal(e(129), e(65), euro(65), e(65), "k", e(257)),
			[]string{"account_label", "asset", "metadata.k", "network", "reference_id"}},
		{"start metadata key past its bound", "/v1/deposits", "StartRequest", tokenA,
			body(map[string]any{"transfer_id": "t1", "reference_id": "U", "metadata": map[string]string{euro(65): "v"}}), []string{"metadata"}},
		{"sdk event at the bounds", "/v1/deposits/t1/sdk-events", "SDKEventRequest", tokenA, body(map[string]any{"type": "event", "detail": e(256), "id": euro(128)}), nil},
		{"sdk event past the bounds", "/v1/deposits/t1/sdk-events", "SDKEventRequest", tokenA, body(map[string]any{"type": "event", "detail": e(257), "id": euro(129)}), []string{"detail", "id"}},
		{"resolve at the bound", "/v1/deposits/t1/resolve", "ResolveRequest", tokenB, body(map[string]any{"outcome": "failed", "reason": euro(500)}), nil},
		{"resolve past the bound", "/v1/deposits/t1/resolve", "ResolveRequest", tokenB, body(map[string]any{"outcome": "failed", "reason": e(501)}), []string{"reason"}},
		{"redeliver at the bound", review, "RedeliverRequest", tokenB, body(map[string]any{"reason": euro(500)}), nil},
		{"redeliver past the bound", review, "RedeliverRequest", tokenB, body(map[string]any{"reason": e(501)}), []string{"reason"}},
	} {
		specErr := spec.Validate("/components/schemas/"+tc.schema, []byte(tc.body))
		if (specErr == nil) != (tc.fields == nil) {
			t.Errorf("%s: the test's body disagrees with openapi: %v", tc.name, specErr)
		}
		a := call(t, "POST", hs.URL+tc.path, tc.token, "application/json", tc.body)
		if tc.fields == nil {
			if a.status != 503 {
				t.Errorf("%s: %d %s; want it past validation (503 with Temporal down)", tc.name, a.status, a.raw)
			}
			continue
		}
		var fields []string
		for _, fe := range a.problem.Errors {
			fields = append(fields, fe.Field)
		}
		if a.status != 422 || strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("%s: %d %s; want 422 naming %v", tc.name, a.status, a.raw, tc.fields)
		}
	}
	// The list's reference_id filter has the same bound.
	if a := call(t, "GET", hs.URL+"/v1/transfers?reference_id="+url.QueryEscape(e(128)), tokenA, "", ""); a.status != 503 {
		t.Errorf("list by a 128-character reference_id: %d %s; want 503", a.status, a.raw)
	}
	if a := call(t, "GET", hs.URL+"/v1/transfers?reference_id="+url.QueryEscape(e(129)), tokenA, "", ""); a.status != 422 {
		t.Errorf("list by a 129-character reference_id: %d %s; want 422", a.status, a.raw)
	}
}
