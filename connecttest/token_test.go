package connecttest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connecttest"
)

func TestToken(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{TokenTTL: 2 * time.Hour})
	// body is the published request with some fields replaced ("-" drops the field).
	body := func(edit map[string]string) string {
		fields := map[string]string{"client_id": connecttest.DefaultClientID, "client_secret": connecttest.DefaultClientSecret,
			"audience": srv.URL, "grant_type": "client_credentials", "organization_id": connecttest.DefaultOrganizationID}
		for k, v := range edit {
			fields[k] = v
			if v == "-" {
				delete(fields, k)
			}
		}
		b, _ := json.Marshal(fields)
		return string(b)
	}
	tests := []struct {
		name      string
		body      string
		status    int
		wantError string
		wantWords string // the description must contain it
	}{
		{"published request", body(nil), http.StatusOK, "", ""},
		{"guide's two fields", `{"client_id":"sandbox-client-id","client_secret":"sandbox-client-secret"}`, http.StatusBadRequest, "invalid_request", "audience, grant_type, organization_id required"},
		{"no organization_id", body(map[string]string{"organization_id": "-"}), http.StatusBadRequest, "invalid_request", "organization_id required"},
		{"no audience", body(map[string]string{"audience": "-"}), http.StatusBadRequest, "invalid_request", "audience required"},
		{"no grant_type", body(map[string]string{"grant_type": "-"}), http.StatusBadRequest, "invalid_request", "grant_type required"},
		{"other grant_type", body(map[string]string{"grant_type": "password"}), http.StatusBadRequest, "unsupported_grant_type", "client_credentials"},
		{"another API's audience", body(map[string]string{"audience": "https://api.cert.connect.xyz"}), http.StatusBadRequest, "invalid_request", "audience"},
		{"another organization", body(map[string]string{"organization_id": "5c0e0b7a-1111-4b4b-9a9a-0123456789ab"}), http.StatusUnauthorized, "invalid_client", "organization_id"},
		{"wrong secret", body(map[string]string{"client_secret": "nope"}), http.StatusUnauthorized, "invalid_client", "client_secret"},
		{"unknown client", body(map[string]string{"client_id": "other"}), http.StatusUnauthorized, "invalid_client", "client_id"},
		{"missing secret", body(map[string]string{"client_secret": "-"}), http.StatusBadRequest, "invalid_request", "client_secret required"},
		{"missing id", body(map[string]string{"client_id": "-"}), http.StatusBadRequest, "invalid_request", "client_id required"},
		{"not JSON", `client_id=sandbox-client-id`, http.StatusBadRequest, "invalid_request", "JSON"},
		{"wrong types", `{"client_id":1,"client_secret":true}`, http.StatusBadRequest, "invalid_request", "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/oauth/token", []byte(tt.body), nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status != http.StatusOK {
				e := decode[struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}](t, a)
				if e.Error != tt.wantError || !strings.Contains(e.Description, tt.wantWords) {
					t.Fatalf("error body %s: want error %q and a description naming %q", a.body, tt.wantError, tt.wantWords)
				}
				return
			}
			ok := decode[struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
			}](t, a)
			if ok.AccessToken == "" || ok.TokenType != "Bearer" || ok.ExpiresIn != 7200 {
				t.Fatalf("token answer %s: want a token, Bearer, expires_in 7200", a.body)
			}
		})
	}
	if got := srv.Count(connecttest.EndpointToken); got != int64(len(tests)) {
		t.Errorf("Count(token) = %d, want %d", got, len(tests))
	}
	if got := srv.Stats().TokensIssued; got != 1 {
		t.Errorf("TokensIssued = %d, want 1", got)
	}
}

// GuideTokenRequest also takes the guide's {client_id, client_secret}, but still checks a full request.
func TestTokenGuideVariant(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{GuideTokenRequest: true})
	for _, tt := range []struct {
		body   string
		status int
	}{
		{`{"client_id":"sandbox-client-id","client_secret":"sandbox-client-secret"}`, http.StatusOK},
		{`{"client_id":"sandbox-client-id","client_secret":"nope"}`, http.StatusUnauthorized},
		{string(tokenBody(srv, connecttest.DefaultClientID, connecttest.DefaultClientSecret)), http.StatusOK},
		{`{"client_id":"sandbox-client-id","client_secret":"sandbox-client-secret","grant_type":"client_credentials"}`, http.StatusBadRequest},
	} {
		if a := doJSON(t, http.MethodPost, srv.URL+"/api/v1/oauth/token", []byte(tt.body), nil); a.status != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.body, a.status, tt.status, a.body)
		}
	}
}

func TestTokensAreDistinct(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	if a, b := accessToken(t, srv), accessToken(t, srv); a == b {
		t.Fatal("two token requests got the same access token")
	}
}
