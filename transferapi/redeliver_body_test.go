package transferapi_test

import (
	"strings"
	"testing"
)

// TestRedeliverPresentFieldsValid: openapi's RedeliverRequest takes kind (the Kind enum) and transfer_id (the
// TransferID pattern), both or neither; neither allows "", so a field that is present must be valid, and an empty
// string is not read as absent.
func TestRedeliverPresentFieldsValid(t *testing.T) {
	hs := offlineServer(t)
	const review = "/v1/reviews/review-deposit:cx-1:confirmed/redeliver"
	for _, tc := range []struct {
		body, want string // want: the fields of the 422, or "503" when the body is valid (Temporal is down)
	}{
		{`{"reason":"r","kind":"","transfer_id":""}`, "kind: must be deposit or withdrawal; transfer_id: must be 1 to 128 letters, digits and ._:@-, starting with a letter or digit"},
		{`{"reason":"r","kind":""}`, "kind: must be deposit or withdrawal; transfer_id: required with kind"},
		{`{"reason":"r","transfer_id":""}`, "kind: required with transfer_id; transfer_id: must be 1 to 128 letters, digits and ._:@-, starting with a letter or digit"},
		{`{"reason":"r","transfer_id":"t1"}`, "kind: required with transfer_id"},
		{`{"reason":"r","kind":"withdrawal"}`, "transfer_id: required with kind"},
		{`{"reason":"r","kind":"refund","transfer_id":"t 1"}`, "kind: must be deposit or withdrawal; transfer_id: must be 1 to 128 letters, digits and ._:@-, starting with a letter or digit"},
		{`{"reason":"r","kind":"deposit","transfer_id":"t1"}`, "503"},
		{`{"reason":"r"}`, "503"},
	} {
		a := call(t, "POST", hs.URL+review, tokenB, "application/json", tc.body)
		if tc.want == "503" {
			if a.status != 503 {
				t.Errorf("%s: %d %s; want it past validation (503 with Temporal down)", tc.body, a.status, a.raw)
			}
			continue
		}
		var got []string
		for _, e := range a.problem.Errors {
			got = append(got, e.Field+": "+e.Detail)
		}
		if a.status != 422 || strings.Join(got, "; ") != tc.want {
			t.Errorf("%s: %d %s; want 422 %s", tc.body, a.status, a.raw, tc.want)
		}
	}
}
