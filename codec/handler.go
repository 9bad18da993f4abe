package codec

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.temporal.io/sdk/converter"
)

const (
	// maxRequestBytes bounds a request body: Temporal refuses payloads over 2 MiB, and the UI sends a few at once.
	maxRequestBytes = 8 << 20
	// corsMaxAge lets a browser reuse a preflight answer for ten minutes.
	corsMaxAge     = "600"
	corsAllowHeads = "Content-Type, X-Namespace, Authorization"
	// CookieName carries the token for the Temporal UI, which cannot send a bearer token of its own choosing to a
	// codec endpoint; it sends cookies when its codec setting "include credentials" is on.
	CookieName = "connectflow_codec"
	// LoginPath is where a person who holds the token signs the browser in: GET shows a form, POST sets the cookie.
	LoginPath = "/login"
)

// Handler is the codec server for the Temporal UI: the SDK's payload codec HTTP handler (POST .../encode and
// .../decode, protojson {"payloads":[...]}) behind a bearer token and CORS for the UI's origins.
//
// Every request but a CORS preflight needs "Authorization: Bearer <token>" or the CookieName cookie holding the
// token (401 otherwise, with no detail); GET LoginPath offers a form that sets that cookie for the Temporal UI.
// Preflights (OPTIONS) are answered without a token, and only for allowedOrigins, such as
// "http://localhost:8233"; responses carry Access-Control-Allow-Origin only for those origins, with credentials
// allowed. An empty token, or an origin that is not scheme://host[:port], is an error.
func Handler(keys []Key, token string, allowedOrigins []string) (http.Handler, error) {
	c, err := New(keys)
	if err != nil {
		return nil, err
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, errors.New("codec server: empty bearer token")
	}
	origins := make(map[string]bool, len(allowedOrigins))
	for _, o := range allowedOrigins {
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("codec server: allowed origin %q: %w", o, err)
		}
		origins[norm] = true
	}
	return &codecServer{
		codec:     converter.NewPayloadCodecHTTPHandler(c),
		tokenHash: sha256.Sum256([]byte(token)),
		origins:   origins,
	}, nil
}

type codecServer struct {
	codec     http.Handler
	tokenHash [sha256.Size]byte // compared as hashes so the compare takes the same time whatever the length
	origins   map[string]bool   // normalized scheme://host[:port]
}

func (s *codecServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	allowed := origin != "" && s.origins[origin]
	if allowed {
		// Set before the token check, so the UI can read a 401 too.
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		if !allowed {
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsAllowHeads)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusOK)
		return
	}
	if r.URL.Path == LoginPath {
		s.login(w, r)
		return
	}
	if !s.authorized(r) {
		h.Set("WWW-Authenticate", "Bearer")
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	s.codec.ServeHTTP(w, r)
}

func (s *codecServer) authorized(r *http.Request) bool {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return s.valid(token)
	}
	c, err := r.Cookie(CookieName)
	return err == nil && s.valid(c.Value)
}

func (s *codecServer) valid(token string) bool {
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

const loginForm = `<!doctype html><title>connectflow codec</title>
<form method="post"><p>Codec server token: <input name="token" type="password" autofocus> <button>Sign in</button></p></form>`

// login signs a browser in: with the right token it sets an HttpOnly cookie the UI's codec requests carry.
func (s *codecServer) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.Method {
	case http.MethodGet:
		fmt.Fprint(w, loginForm)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if !s.valid(r.PostFormValue("token")) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "Wrong token.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: strings.TrimSpace(r.PostFormValue("token")),
			Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
		fmt.Fprint(w, "Signed in: the Temporal UI in this browser can now decode payloads.")
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}
}

// normalizeOrigin returns origin as a browser sends it in the Origin header: lowercase scheme://host[:port].
func normalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(origin))
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("want an http or https origin such as http://localhost:8233 (no wildcard)")
	case u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("want scheme://host[:port] with no path, query or user")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
