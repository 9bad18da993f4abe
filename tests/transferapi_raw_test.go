package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
	"github.com/connectflow/connectflow/transferapi"
	"github.com/connectflow/connectflow/workflows"
)

// rawHTTP sends one HTTP/1.0 request as literal bytes over TCP, as curl or any language's socket would, and
// returns the status code, the Content-Type and the body parsed as JSON. No Go HTTP client is involved.
func rawHTTP(t *testing.T, base, method, path, bearer, body string) (int, string, map[string]any) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(90 * time.Second))
	req := method + " " + path + " HTTP/1.0\r\nHost: " + u.Host + "\r\nAccept: application/json\r\n"
	if bearer != "" {
		req += "Authorization: Bearer " + bearer + "\r\n"
	}
	if body != "" {
		req += "Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
	}
	req += "\r\n" + body
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(bufio.NewReader(conn)) // HTTP/1.0: the body ends where the connection closes
	if err != nil {
		t.Fatal(err)
	}
	head, payload, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("%s %s: no header end in %q", method, path, raw)
	}
	lines := strings.Split(head, "\r\n")
	var proto string
	var status int
	if _, err := fmt.Sscanf(lines[0], "%s %d", &proto, &status); err != nil {
		t.Fatalf("status line %q: %v", lines[0], err)
	}
	contentType := ""
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Content-Type") {
			contentType = strings.TrimSpace(v)
		}
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(payload), &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, payload, err)
	}
	return status, contentType, out
}

// TestTransferAPIRawHTTP starts, relays and resolves a transfer with nothing but bytes on a socket: what a Node,
// Python or shell backend does. Connect's part (the initiated webhook) is played by the harness, as the bridge
// would deliver it.
func TestTransferAPIRawHTTP(t *testing.T) {
	a := newAPIStack(t, connecttest.Options{},
		transferapi.Options{Timeouts: workflows.Timeouts{Stall: time.Second, ReviewHorizon: 2 * time.Second}})
	a.startWorker()

	status, ctype, started := rawHTTP(t, a.url, "POST", "/v1/deposits", apiBackendToken,
		`{"transfer_id":"raw-1","reference_id":"USER40","metadata":{"order":"40"}}`)
	if status != 201 || ctype != "application/json; charset=utf-8" || started["jwt"] == "" || started["status"] != "awaiting_user" {
		t.Fatalf("start: %d %s %v", status, ctype, started)
	}
	sessionID, _ := started["session_id"].(string)

	status, _, acc := rawHTTP(t, a.url, "POST", "/v1/deposits/raw-1/sdk-events", apiBackendToken,
		`{"type":"deposit","detail":"deposit.submitted","id":"cb-1"}`)
	if status != 202 || acc["workflow_id"] != "deposit-raw-1" {
		t.Fatalf("relay: %d %v", status, acc)
	}

	a.signal(connect.KindDeposit, "raw-1", event(connect.KindDeposit, connect.StatusInitiated, "cx-raw-1", sessionID))
	eventually(t, "timed_out over raw HTTP", func() bool {
		status, _, st := rawHTTP(t, a.url, "GET", "/v1/deposits/raw-1", apiBackendToken, "")
		return status == 200 && st["status"] == string(workflows.StatusTimedOut)
	})

	status, ctype, p := rawHTTP(t, a.url, "POST", "/v1/deposits/raw-1/resolve", apiBackendToken,
		`{"outcome":"confirmed","reason":"on chain"}`)
	if status != 403 || ctype != transferapi.ProblemContentType || p["type"] != transferapi.TypeForbidden {
		t.Fatalf("resolve without the role: %d %s %v", status, ctype, p)
	}
	operatorJWT := a.idp.Token(t, "ops-bo", "connectflow:operator")
	status, _, res := rawHTTP(t, a.url, "POST", "/v1/deposits/raw-1/resolve", operatorJWT,
		`{"outcome":"confirmed","reason":"credited after checking the chain"}`)
	resolution, _ := res["resolution"].(map[string]any)
	if status != 200 || res["status"] != "confirmed" || resolution["operator"] != "ops-bo" {
		t.Fatalf("resolve: %d %v", status, res)
	}
	final, err := a.result(connect.KindDeposit, "raw-1")
	if err != nil || final.Resolution == nil || final.Resolution.Operator != "ops-bo" || final.Status != workflows.StatusConfirmed {
		t.Fatalf("the workflow's result must carry the authenticated operator: %+v, %v", final, err)
	}
	var sdkSeen bool
	for _, e := range final.Events {
		sdkSeen = sdkSeen || (e.Source == "sdk" && e.Name == "deposit" && e.Status == "deposit.submitted")
	}
	if !sdkSeen {
		t.Fatalf("the relayed SDK callback is not in the record: %+v", final.Events)
	}
}
