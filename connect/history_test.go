package connect

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestSessionRequestJSONNamesAndLegacyForm(t *testing.T) {
	want := SessionRequest{RequestID: "deposit-1", Kind: KindWithdrawal, ReferenceID: "USER01",
		Metadata: map[string]string{"k": "v"}, AccountLabel: "main", Asset: "BTC", Network: "bitcoin", Amount: "0.5"}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	const tagged = `{"request_id":"deposit-1","kind":"withdrawal","reference_id":"USER01","metadata":{"k":"v"},"account_label":"main","asset":"BTC","network":"bitcoin","amount":"0.5"}`
	if string(b) != tagged {
		t.Fatalf("encoded %s, want %s", b, tagged)
	}
	// The form histories recorded before the tags hold: Go field names.
	const legacy = `{"RequestID":"deposit-1","Kind":"withdrawal","ReferenceID":"USER01","Metadata":{"k":"v"},"AccountLabel":"main","Asset":"BTC","Network":"bitcoin","Amount":"0.5"}`
	for _, in := range []string{tagged, legacy} {
		var got SessionRequest
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %s as %+v, want %+v", in, got, want)
		}
	}
	var got SessionRequest
	if err := json.Unmarshal([]byte(`{"request_id":"new","RequestID":"old"}`), &got); err != nil || got.RequestID != "new" {
		t.Fatalf("the tagged name wins: %+v, %v", got, err)
	}
	if err := json.Unmarshal([]byte(`{"request_id":1}`), &got); err == nil {
		t.Fatal("a wrong type must be refused")
	}
}
