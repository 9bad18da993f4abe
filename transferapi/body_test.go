package transferapi_test

import (
	"strings"
	"testing"

	"github.com/connectflow/connectflow/transferapi"
)

// fieldsOf lists the fields a 422 names, in its order.
func fieldsOf(a answer) string {
	var fields []string
	for _, e := range a.problem.Errors {
		fields = append(fields, e.Field+": "+e.Detail)
	}
	return strings.Join(fields, "; ")
}

// want422 posts body to path and reports unless the answer is 422 invalid-request naming exactly want.
func want422(t *testing.T, url, token, name, body, want string) answer {
	t.Helper()
	a := call(t, "POST", url, token, "application/json", body)
	if a.status != 422 || a.problem.Type != transferapi.TypeInvalidRequest {
		t.Errorf("%s: %d %s; want 422 invalid-request", name, a.status, a.raw)
		return a
	}
	if got := fieldsOf(a); got != want {
		t.Errorf("%s: errors %q, want %q", name, got, want)
	}
	return a
}

// TestNullFieldsRefused: openapi types every request field (string, boolean, object) and none is nullable, so a
// null is refused with 422 naming the field, as a field of the wrong type is, on every route that takes a body.
func TestNullFieldsRefused(t *testing.T) {
	hs := offlineServer(t)
	const review = "/v1/reviews/review-deposit:cx-1:confirmed/redeliver"
	for _, tc := range []struct {
		name, path, token, body, want string
	}{
		{"start asset", "/v1/deposits", tokenA, `{"transfer_id":"t1","reference_id":"U","asset":null}`,
			"asset: must be a string, not null"},
		{"start every typed field", "/v1/withdrawals", tokenA,
			`{"transfer_id":"t1","reference_id":"U","asset":"BTC","network":"bitcoin","amount":"1","metadata":null,"await_ledger":null,"if_busy":null,"account_label":null}`,
			"account_label: must be a string, not null; await_ledger: must be true or false, not null; " +
				"if_busy: must be a string, not null; metadata: must be an object of strings, not null"},
		{"start required fields", "/v1/deposits", tokenA, `{"transfer_id":null,"reference_id":null}`,
			"reference_id: must be a string, not null; transfer_id: must be a string, not null"},
		{"start metadata value", "/v1/deposits", tokenA, `{"transfer_id":"t1","reference_id":"U","metadata":{"order":null}}`,
			"metadata.order: must be a string, not null"},
		{"sdk-events detail", "/v1/deposits/t1/sdk-events", tokenA, `{"type":"close","detail":null}`,
			"detail: must be a string, not null"},
		{"sdk-events type and id", "/v1/withdrawals/t1/sdk-events", tokenA, `{"type":null,"id":null}`,
			"id: must be a string, not null; type: must be a string, not null"},
		{"resolve", "/v1/deposits/t1/resolve", tokenB, `{"outcome":null,"reason":null}`,
			"outcome: must be a string, not null; reason: must be a string, not null"},
		{"onboarding", "/v1/onboarding-tokens", tokenA, `{"email":"a@example.com","phone_number":null}`,
			"phone_number: must be a string, not null"},
		{"redeliver", review, tokenB, `{"reason":"r","kind":null,"transfer_id":null}`,
			"kind: must be a string, not null; transfer_id: must be a string, not null"},
	} {
		a := want422(t, hs.URL+tc.path, tc.token, tc.name, tc.body, tc.want)
		if a.status == 422 && a.problem.Detail != tc.want {
			t.Errorf("%s: detail %q, want %q", tc.name, a.problem.Detail, tc.want)
		}
	}
}

// TestEveryWrongTypedFieldNamed: the body reader names every field of the wrong type, not only the first, and
// names unknown and wrong-typed fields together.
func TestEveryWrongTypedFieldNamed(t *testing.T) {
	hs := offlineServer(t)
	for _, tc := range []struct {
		name, path, token, body, want string
	}{
		{"three wrong types", "/v1/withdrawals", tokenA, `{"transfer_id":1,"reference_id":2,"asset":3,"network":"n","amount":"1"}`,
			"asset: must be a string; reference_id: must be a string; transfer_id: must be a string"},
		{"unknown and wrong type", "/v1/withdrawals", tokenA, `{"transfer_id":"t1","reference_id":2,"asset":"BTC","network":"n","amount":"1","extra":1}`,
			"extra: unknown field; reference_id: must be a string"},
		{"unknown, wrong type and null", "/v1/deposits", tokenA, `{"transfer_id":"t1","reference_id":"U","await_ledger":"yes","metadata":[],"if_busy":null,"colour":"red"}`,
			"await_ledger: must be true or false; colour: unknown field; if_busy: must be a string, not null; metadata: must be an object of strings"},
		{"metadata values", "/v1/deposits", tokenA, `{"transfer_id":"t1","reference_id":"U","metadata":{"a":1,"b":"ok","c":true}}`,
			"metadata.a: must be a string; metadata.c: must be a string"},
		{"resolve", "/v1/deposits/t1/resolve", tokenB, `{"outcome":1,"reason":{}}`,
			"outcome: must be a string; reason: must be a string"},
	} {
		want422(t, hs.URL+tc.path, tc.token, tc.name, tc.body, tc.want)
	}
}

// TestRepeatedKeysRefused: a key given twice is refused with 422 naming it. Before, the field checks saw only its
// last value while the decoder read every one: {"transfer_id":5,"transfer_id":"t1"} was a 400 quoting Go, and a
// null followed by a string passed.
func TestRepeatedKeysRefused(t *testing.T) {
	hs := offlineServer(t)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"wrong type then string", `{"transfer_id":5,"transfer_id":"t1","reference_id":"U"}`,
			"transfer_id: given more than once"},
		{"null then string", `{"transfer_id":null,"transfer_id":"t1","reference_id":"U"}`,
			"transfer_id: given more than once"},
		{"metadata key", `{"transfer_id":"t1","reference_id":"U","metadata":{"k":1,"k":"v"}}`,
			"metadata.k: given more than once"},
		{"three times, named once", `{"transfer_id":"t1","reference_id":"U","asset":"BTC","asset":"ETH","asset":"BTC"}`,
			"asset: given more than once"},
	} {
		want422(t, hs.URL+"/v1/deposits", tokenA, tc.name, tc.body, tc.want)
	}
}
