package codec

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	testToken = "codec-demo-token-7f1c2e"
	uiOrigin  = "http://localhost:8233"
)

type codecServerFixture struct {
	url  string
	keys []Key
}

func startCodecServer(t *testing.T, keys ...Key) codecServerFixture {
	t.Helper()
	h, err := Handler(keys, testToken, []string{uiOrigin, "https://temporal.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return codecServerFixture{url: srv.URL, keys: keys}
}

// do sends one request the way the Temporal UI does; header values "" are left out.
func do(t *testing.T, method, url string, headers map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func uiHeaders(token string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return h
}

func parsePayloads(t *testing.T, body string) []*commonpb.Payload {
	t.Helper()
	var ps commonpb.Payloads
	if err := protojson.Unmarshal([]byte(body), &ps); err != nil {
		t.Fatalf("response is not protojson Payloads: %v\n%s", err, body)
	}
	return ps.GetPayloads()
}

func TestHandlerEncodeDecodeRoundTrip(t *testing.T) {
	s := startCodecServer(t, newKey(t, "k2"), newKey(t, "k1"))
	const data = `{"email":"alice@example.com","phone":"33512345678"}`
	b64 := base64.StdEncoding.EncodeToString
	// The UI's body, written out: protojson Payloads with base64 metadata values and data.
	body := fmt.Sprintf(`{"payloads":[{"metadata":{"encoding":%q},"data":%q},{"metadata":{"encoding":%q},"data":%q}]}`,
		b64([]byte("json/plain")), b64([]byte(data)), b64([]byte("json/plain")), b64([]byte(`"T1"`)))

	resp, encoded := do(t, http.MethodPost, s.url+"/encode", uiHeaders(testToken), body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/encode: %d %s", resp.StatusCode, encoded)
	}
	if strings.Contains(encoded, b64([]byte(data))) || strings.Contains(encoded, "alice@example.com") {
		t.Fatalf("/encode answer still shows the data: %s", encoded)
	}
	ps := parsePayloads(t, encoded)
	if len(ps) != 2 {
		t.Fatalf("/encode returned %d payloads, want 2", len(ps))
	}
	for _, p := range ps {
		if enc, id := string(p.GetMetadata()["encoding"]), string(p.GetMetadata()[MetadataKeyID]); enc != MetadataEncoding || id != "k2" {
			t.Fatalf("encoded metadata encoding=%q key=%q", enc, id)
		}
	}

	// The UI sends back what it holds; a namespace prefix in the path is accepted like the bare path.
	for _, path := range []string{"/decode", "/default/decode"} {
		resp, decoded := do(t, http.MethodPost, s.url+path, uiHeaders(testToken), encoded)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, decoded)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != uiOrigin {
			t.Fatalf("%s: Access-Control-Allow-Origin = %q, want %q", path, got, uiOrigin)
		}
		out := parsePayloads(t, decoded)
		if len(out) != 2 || string(out[0].GetData()) != data || string(out[1].GetData()) != `"T1"` ||
			string(out[0].GetMetadata()["encoding"]) != "json/plain" {
			t.Fatalf("%s: decoded %v", path, out)
		}
	}
}

// What the UI actually shows: history written by a worker's data converter, decoded by the codec server.
func TestHandlerDecodesWorkerHistory(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	s := startCodecServer(t, k2, k1)
	written, err := newDataConverter(t, k1).ToPayloads(alice) // before the rotation
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(written)
	if err != nil {
		t.Fatal(err)
	}
	resp, decoded := do(t, http.MethodPost, s.url+"/decode", uiHeaders(testToken), string(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/decode: %d %s", resp.StatusCode, decoded)
	}
	var got customer
	if err := converter.GetDefaultDataConverter().FromPayload(parsePayloads(t, decoded)[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Email != alice.Email || got.SessionJWT != alice.SessionJWT {
		t.Fatalf("decoded %#v", got)
	}
}

func TestHandlerRequiresBearerToken(t *testing.T) {
	k1 := newKey(t, "k1")
	s := startCodecServer(t, k1)
	sealed, err := newDataConverter(t, k1).ToPayloads("bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		authorization string
		wantStatus    int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer wrong-token-of-other-length", http.StatusUnauthorized},
		{"token off by one character", "Bearer " + testToken[:len(testToken)-1] + "X", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:8], http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"bearer with no token", "Bearer ", http.StatusUnauthorized},
		{"token without scheme", testToken, http.StatusUnauthorized},
		{"valid", "Bearer " + testToken, http.StatusOK},
		{"valid, scheme in lowercase", "bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		for _, path := range []string{"/encode", "/decode"} {
			t.Run(tt.name+path, func(t *testing.T) {
				h := uiHeaders("")
				h["Authorization"] = tt.authorization
				resp, got := do(t, http.MethodPost, s.url+path, h, string(body))
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.wantStatus, got)
				}
				if tt.wantStatus != http.StatusUnauthorized {
					return
				}
				if got != "Unauthorized\n" {
					t.Fatalf("401 body %q, want no detail", got)
				}
				if resp.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				}
				if resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
					t.Fatal("a 401 to the UI's origin must carry CORS headers so the UI can read it")
				}
			})
		}
	}
}

func TestHandlerCORS(t *testing.T) {
	s := startCodecServer(t, newKey(t, "k1"))
	preflight := func(origin string) map[string]string {
		return map[string]string{
			"Origin":                         origin,
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "authorization,content-type,x-namespace",
		}
	}

	t.Run("preflight from the UI, no token", func(t *testing.T) {
		resp, _ := do(t, http.MethodOptions, s.url+"/decode", preflight(uiOrigin), "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":      uiOrigin,
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "POST, OPTIONS",
			"Vary":                             "Origin",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Fatalf("%s = %q, want %q", k, got, v)
			}
		}
		allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"content-type", "x-namespace", "authorization"} {
			if !strings.Contains(allowed, h) {
				t.Fatalf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
			}
		}
	})

	t.Run("preflight from the second listed origin", func(t *testing.T) {
		resp, _ := do(t, http.MethodOptions, s.url+"/encode", preflight("https://temporal.example.com"), "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://temporal.example.com" {
			t.Fatalf("status %d, allow-origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	for _, origin := range []string{"http://evil.example", "http://localhost:8234", "https://localhost:8233", "null", ""} {
		t.Run("preflight from "+origin, func(t *testing.T) {
			resp, _ := do(t, http.MethodOptions, s.url+"/decode", preflight(origin), "")
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers"} {
				if got := resp.Header.Get(h); got != "" {
					t.Fatalf("%s = %q for an origin not listed", h, got)
				}
			}
		})
	}

	t.Run("request from another origin gets no CORS headers", func(t *testing.T) {
		h := uiHeaders(testToken)
		h["Origin"] = "http://evil.example"
		resp, _ := do(t, http.MethodPost, s.url+"/encode", h, `{"payloads":[]}`)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Access-Control-Allow-Origin = %q", got)
		}
	})
}

func TestHandlerRejectsBadRequests(t *testing.T) {
	k1 := newKey(t, "k1")
	s := startCodecServer(t, newKey(t, "k2")) // k1 is not loaded
	sealed, err := newDataConverter(t, k1).ToPayloads("bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	unknownKey, err := protojson.Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string
	}{
		{"not JSON", http.MethodPost, "/decode", "{payloads", http.StatusBadRequest, ""},
		{"payload sealed with an unknown key", http.MethodPost, "/decode", string(unknownKey), http.StatusBadRequest, `key "k1", which is not among the loaded keys`},
		{"body over the limit", http.MethodPost, "/encode", `{"payloads":[{"data":"` + strings.Repeat("A", maxRequestBytes) + `"}]}`, http.StatusBadRequest, "too large"},
		{"unknown path", http.MethodPost, "/other", `{"payloads":[]}`, http.StatusNotFound, ""},
		{"GET", http.MethodGet, "/decode", "", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, s.url+tt.path, uiHeaders(testToken), tt.body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			assertNoSecret(t, body, append(s.keys, k1)...)
		})
	}
}

func TestHandlerConstruction(t *testing.T) {
	k1 := newKey(t, "k1")
	tests := []struct {
		name    string
		keys    []Key
		token   string
		origins []string
		wantErr string
	}{
		{"empty token", []Key{k1}, "", []string{uiOrigin}, "empty bearer token"},
		{"blank token", []Key{k1}, " \n", []string{uiOrigin}, "empty bearer token"},
		{"no keys", nil, testToken, []string{uiOrigin}, "no keys"},
		{"wildcard origin", []Key{k1}, testToken, []string{"*"}, `allowed origin "*"`},
		{"origin without scheme", []Key{k1}, testToken, []string{"localhost:8233"}, `allowed origin "localhost:8233"`},
		{"origin with a path", []Key{k1}, testToken, []string{"http://localhost:8233/namespaces"}, "no path"},
		{"ftp origin", []Key{k1}, testToken, []string{"ftp://localhost"}, "http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Handler(tt.keys, tt.token, tt.origins)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Handler = %v, %v; want error containing %q", h, err, tt.wantErr)
			}
		})
	}

	t.Run("origin written with a slash and capitals matches the browser's", func(t *testing.T) {
		h, err := Handler([]Key{k1}, testToken+"\n", []string{"HTTP://LocalHost:8233/"})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		resp, _ := do(t, http.MethodOptions, srv.URL+"/decode", map[string]string{"Origin": uiOrigin}, "")
		if resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
			t.Fatalf("status %d, allow-origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		// The token read from a file keeps its newline out of the comparison.
		resp, body := do(t, http.MethodPost, srv.URL+"/encode", uiHeaders(testToken), `{"payloads":[]}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// The /encode answer is sealed with the server's keys, so a worker holding them reads it.
func TestHandlerEncodeReadableByWorker(t *testing.T) {
	k1 := newKey(t, "k1")
	s := startCodecServer(t, k1)
	plain, err := converter.GetDefaultDataConverter().ToPayloads(alice)
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	resp, encoded := do(t, http.MethodPost, s.url+"/encode", uiHeaders(testToken), string(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, encoded)
	}
	var got customer
	if err := newDataConverter(t, k1).FromPayloads(&commonpb.Payloads{Payloads: parsePayloads(t, encoded)}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Phone != alice.Phone {
		t.Fatalf("decoded %#v", got)
	}
	if bytes.Contains([]byte(encoded), []byte(alice.Phone)) {
		t.Fatal("encode answer shows the phone")
	}
}

// The UI cannot send a bearer token of its own, so a token holder signs the browser in and the cookie carries it.
func TestHandlerLoginCookie(t *testing.T) {
	k1 := newKey(t, "k1")
	s := startCodecServer(t, k1)
	sealed, err := newDataConverter(t, k1).ToPayloads("bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	resp, page := do(t, http.MethodGet, s.url+LoginPath, nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="token"`) {
		t.Fatalf("login form: %d %q", resp.StatusCode, page)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	resp, _ = do(t, http.MethodPost, s.url+LoginPath, form, "token=wrong")
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = do(t, http.MethodPost, s.url+LoginPath, form, "token="+testToken)
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusOK || len(cookies) != 1 || cookies[0].Name != CookieName || !cookies[0].HttpOnly {
		t.Fatalf("sign in: %d, cookies %v", resp.StatusCode, cookies)
	}
	for _, c := range []struct {
		cookie string
		want   int
	}{{CookieName + "=" + cookies[0].Value, http.StatusOK}, {CookieName + "=nope", http.StatusUnauthorized}} {
		h := uiHeaders("")
		h["Cookie"] = c.cookie
		resp, got := do(t, http.MethodPost, s.url+"/decode", h, string(body))
		if resp.StatusCode != c.want {
			t.Fatalf("decode with cookie %q: %d, want %d (%s)", c.cookie, resp.StatusCode, c.want, got)
		}
		if c.want == http.StatusOK && !strings.Contains(got, "payloads") {
			t.Fatalf("decode answer %q", got)
		}
	}
}
