package connect

import "encoding/json"

// UnmarshalJSON reads a SessionRequest in its tagged form ({"request_id": ...}) and in the untagged form Temporal
// histories recorded before the tags ({"RequestID": ...}); a tagged name wins when both are present. Fields whose
// tag differs from the Go name only in case (Kind, Metadata, Asset, Network, Amount) match either way already.
func (r *SessionRequest) UnmarshalJSON(b []byte) error {
	type tagged SessionRequest // no methods: plain decoding
	var t tagged
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	var legacy struct {
		RequestID    string `json:"RequestID"`
		ReferenceID  string `json:"ReferenceID"`
		AccountLabel string `json:"AccountLabel"`
	}
	if err := json.Unmarshal(b, &legacy); err != nil {
		return err
	}
	*r = SessionRequest(t)
	for _, f := range []struct {
		dst *string
		old string
	}{
		{&r.RequestID, legacy.RequestID},
		{&r.ReferenceID, legacy.ReferenceID},
		{&r.AccountLabel, legacy.AccountLabel},
	} {
		if *f.dst == "" {
			*f.dst = f.old
		}
	}
	return nil
}
