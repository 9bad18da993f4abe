package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// tap is a transparent proxy between the workers and the sandbox's Connect API. It keeps every access token and
// session JWT the sandbox answers with, so the log scan can look for the exact values, and passes every fault
// through as it was: an error status as is, a dropped connection as a dropped connection.
type tap struct {
	srv    *http.Server
	url    string
	proxy  *httputil.ReverseProxy
	values *secretSet
}

func startTap(upstream string, values *secretSet) (*tap, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &tap{url: "http://" + ln.Addr().String(), values: values}
	t.proxy = &httputil.ReverseProxy{
		Rewrite:        func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: t.keep,
		ErrorHandler:   dropConnection,
	}
	t.srv = &http.Server{Handler: t.proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.srv.Serve(ln) }() // ends with Close
	return t, nil
}

func (t *tap) close() { _ = t.srv.Close() }

// keep records the credentials in a token or session answer and hands the body on unchanged.
func (t *tap) keep(resp *http.Response) error {
	path := resp.Request.URL.Path
	if resp.StatusCode != http.StatusOK || !(strings.HasSuffix(path, "/oauth/token") || strings.HasSuffix(path, "/sessions")) {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var answer struct {
		AccessToken string `json:"access_token"`
		JWT         string `json:"jwt"`
		Token       struct {
			JWT string `json:"jwt"`
		} `json:"token"`
	}
	if json.Unmarshal(body, &answer) == nil {
		t.values.add(kindAccessToken, answer.AccessToken)
		t.values.add(kindSessionJWT, answer.JWT)
		t.values.add(kindSessionJWT, answer.Token.JWT)
	}
	return nil
}

// dropConnection answers a failed upstream request the way the upstream failed it: by closing the connection.
func dropConnection(w http.ResponseWriter, _ *http.Request, _ error) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // cannot hijack (HTTP/2): aborting resets the stream instead
	}
	_ = conn.Close() // the point is to close it; there is nothing to tell anyone
}
