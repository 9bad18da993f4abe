package connecttest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connecttest"
)

func TestToken(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{TokenTTL: 2 * time.Hour})
	tests := []struct {
		name      string
		body      string
		status    int
		wantError string
	}{
		{"good credentials", `{"client_id":"sandbox-client-id","client_secret":"sandbox-client-secret"}`, http.StatusOK, ""},
		{"extra OAuth fields", `{"client_id":"sandbox-client-id","client_secret":"sandbox-client-secret","grant_type":"client_credentials","audience":"x"}`, http.StatusOK, ""},
		{"wrong secret", `{"client_id":"sandbox-client-id","client_secret":"nope"}`, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", `{"client_id":"other","client_secret":"sandbox-client-secret"}`, http.StatusUnauthorized, "invalid_client"},
		{"missing secret", `{"client_id":"sandbox-client-id"}`, http.StatusBadRequest, "invalid_request"},
		{"missing id", `{"client_secret":"sandbox-client-secret"}`, http.StatusBadRequest, "invalid_request"},
		{"not JSON", `client_id=sandbox-client-id`, http.StatusBadRequest, "invalid_request"},
		{"wrong types", `{"client_id":1,"client_secret":true}`, http.StatusBadRequest, "invalid_request"},
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
				if e.Error != tt.wantError || e.Description == "" {
					t.Fatalf("error body %s: want error %q and a description", a.body, tt.wantError)
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
	if got := srv.Stats().TokensIssued; got != 2 {
		t.Errorf("TokensIssued = %d, want 2", got)
	}
}

func TestTokensAreDistinct(t *testing.T) {
	srv := newSandbox(t, connecttest.Options{})
	if a, b := accessToken(t, srv), accessToken(t, srv); a == b {
		t.Fatal("two token requests got the same access token")
	}
}
