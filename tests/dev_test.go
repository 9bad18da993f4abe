package tests

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	_ "modernc.org/sqlite" // reads the dev data folder's database file, as Temporal's SQLite store does

	"github.com/connectflow/connectflow/internal/cmdtest"
	"github.com/connectflow/connectflow/workflows"
)

// Demo lines the tests read: "demo: deposit    deposit-demo-...  session opened (session <id>)  <link>" and the
// closing "demo: finished: deposit confirmed, withdrawal confirmed".
var (
	demoOpened   = regexp.MustCompile(`^demo: (deposit|withdrawal) +(\S+)  session opened \(session (\S+)\)  (\S+)$`)
	demoFinished = regexp.MustCompile(`^demo: finished: (.*)$`)
	demoLedger   = regexp.MustCompile(`^platform: ledger: `)
)

// demoTransfer is one demo transfer as the dev command printed it.
type demoTransfer struct {
	kind, workflowID, sessionID, link string
}

// waitDemo waits for the demo to finish and returns its two transfers, failing unless both were confirmed.
func waitDemo(t *testing.T, p *devProcess) map[string]demoTransfer {
	t.Helper()
	lines := p.waitLine(demoFinished, devDemoTimeout)
	if got := demoFinished.FindStringSubmatch(lines[len(lines)-1])[1]; got != "deposit confirmed, withdrawal confirmed" {
		t.Fatalf("demo finished with %q", got)
	}
	out := map[string]demoTransfer{}
	var steps []string
	for _, line := range lines {
		if m := demoOpened.FindStringSubmatch(line); m != nil {
			out[m[1]] = demoTransfer{kind: m[1], workflowID: m[2], sessionID: m[3], link: m[4]}
		}
		if strings.HasPrefix(line, "demo: deposit ") {
			steps = append(steps, strings.Fields(line)[3])
		}
	}
	if len(out) != 2 {
		t.Fatalf("demo printed %d opened transfers, want a deposit and a withdrawal", len(out))
	}
	// Each step as it happens: the deposit's session, then the guide's three statuses in order.
	if want := []string{"session", "initiated", "broadcasted", "confirmed"}; strings.Join(steps, " ") != strings.Join(want, " ") {
		t.Fatalf("deposit steps %q, want %q", steps, want)
	}
	for _, tr := range out {
		if want := p.rows["Temporal UI"] + "/namespaces/default/workflows/" + tr.workflowID; tr.link != want {
			t.Fatalf("%s link %q, want %q", tr.kind, tr.link, want)
		}
	}
	// The demo platform verified the worker's notifications and credited the deposit once; its ledger comes last.
	if !slices.Contains(lines, "platform: credited demo-user-1 0.013 BTC (once)") {
		t.Fatalf("the demo platform did not credit the deposit once:\n%s", strings.Join(lines, "\n"))
	}
	ledger := p.waitLine(demoLedger, 10*time.Second)
	if last := ledger[len(ledger)-1]; !strings.Contains(last, "platform: ledger: 8 notifications applied once each") ||
		strings.Count(last, "credited demo-user-1 0.013 BTC") != 1 {
		t.Fatalf("demo platform ledger: %q", last)
	}
	return out
}

// checkListed waits until the UI's API lists each transfer completed, with its search attributes.
func checkListed(t *testing.T, uiURL string, transfers map[string]demoTransfer) {
	t.Helper()
	for _, tr := range transfers {
		var last string
		ok := waitFor(30*time.Second, func() bool {
			list, err := listWorkflows(t, uiURL, "default", fmt.Sprintf("WorkflowId = %q", tr.workflowID))
			switch {
			case err != nil:
				last = err.Error()
			case len(list) != 1:
				last = fmt.Sprintf("%d executions listed", len(list))
			default:
				w := list[0]
				last = fmt.Sprintf("status %s, attributes kind=%q status=%q session=%q reference=%q connect=%q", w.Status,
					w.attr("TransferKind"), w.attr("TransferStatus"), w.attr("ConnectSessionID"),
					w.attr("ConnectReferenceID"), w.attr("ConnectTransferID"))
				return w.Status == "WORKFLOW_EXECUTION_STATUS_COMPLETED" && w.attr("TransferKind") == tr.kind &&
					w.attr("TransferStatus") == string(workflows.StatusConfirmed) && w.attr("ConnectSessionID") == tr.sessionID &&
					strings.HasPrefix(w.attr("ConnectReferenceID"), "demo-user-") && w.attr("ConnectTransferID") != ""
			}
			return false
		})
		if !ok {
			t.Fatalf("UI API on %s: %s", tr.workflowID, last)
		}
	}
	// The search attributes are indexed, not only stored: a query on them finds both transfers.
	list, err := listWorkflows(t, uiURL, "default", `TransferStatus = "confirmed" AND TransferKind IN ("deposit", "withdrawal")`)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, w := range list {
		found[w.Execution.WorkflowID] = true
	}
	for _, tr := range transfers {
		if !found[tr.workflowID] {
			t.Fatalf("query on the search attributes misses %s (found %v)", tr.workflowID, found)
		}
	}
}

// waitFor polls cond until it holds or timeout passes, and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// runWithEnv runs a built binary with the dev command's printed environment and returns its exit code and output.
func runWithEnv(t *testing.T, env map[string]string, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir()} // nothing of the developer's: only what the banner printed
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return 0, stdout.String(), stderr.String()
}

// transferStatus reads a transfer through `starter status`.
func transferStatus(t *testing.T, starter string, env map[string]string, kind, id string) workflows.TransferState {
	t.Helper()
	code, out, errOut := runWithEnv(t, env, starter, "status", "-kind", kind, "-transfer-id", id)
	if code != 0 {
		t.Fatalf("starter status %s %s: exit %d: %s", kind, id, code, errOut)
	}
	var st workflows.TransferState
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("starter status output %q: %v", out, err)
	}
	return st
}

func TestDevCommand(t *testing.T) {
	bin := cmdtest.Build(t, "../dev")
	starter := cmdtest.Build(t, "../starter")

	t.Run("demo in memory, UI and starter, clean stop", func(t *testing.T) {
		p := startDev(t, bin, append([]string{"-memory", "-pace", "100ms"}, freePorts...)...)
		transfers := waitDemo(t, p)
		if _, err := httpGet(p.rows["Temporal UI"] + "/"); err != nil {
			t.Fatalf("UI page: %v", err)
		}
		checkListed(t, p.rows["Temporal UI"], transfers)
		checkPrintedEnv(t, p, readers(t))

		// A user's own deposit, started with the printed environment, is played by the sandbox to the end.
		env := p.envMap()
		code, out, errOut := runWithEnv(t, env, starter, "deposit", "-transfer-id", "mine-1", "-reference-id", "my-user")
		if code != 0 || !strings.Contains(out, `"session_id"`) {
			t.Fatalf("starter deposit: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if !waitFor(time.Minute, func() bool {
			return transferStatus(t, starter, env, "deposit", "mine-1").Status == workflows.StatusConfirmed
		}) {
			t.Fatalf("the starter's deposit did not confirm: %+v", transferStatus(t, starter, env, "deposit", "mine-1"))
		}

		// The transfer API of the banner, with its dev token, starts a deposit over plain HTTP; the demo platform
		// is told when it is confirmed.
		checkDevAPI(t, p)

		if code := p.interrupt(); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
		if !strings.Contains(p.stdout.String(), "connectflow dev: stopped cleanly") {
			t.Fatal("no clean-stop line after SIGINT")
		}
		checkNoSecretsOutsideEnv(t, p)
	})

	t.Run("data folder survives a restart", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "dev-data")
		args := append([]string{"-data", data, "-pace", "100ms"}, freePorts...)
		first := startDev(t, bin, args...)
		transfers := waitDemo(t, first)

		// A second stack on the same folder is refused, naming the folder, while the first runs.
		code, _, errOut := runWithEnv(t, nil, bin, append([]string{"-data", data, "-no-demo"}, freePorts...)...)
		if code != 1 || !strings.Contains(errOut, data) || !strings.Contains(errOut, "in use") {
			t.Fatalf("second stack on one folder: exit %d, stderr %q", code, errOut)
		}
		if code := first.interrupt(); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
		checkDatabaseIntact(t, filepath.Join(data, "temporal.db"))

		second := startDev(t, bin, append(args, "-no-demo", "-outcome", "manual")...)
		checkListed(t, second.rows["Temporal UI"], transfers)
		env := second.envMap()
		// Encrypted by default with a key kept beside the database: the restart prints the same one.
		if key := env["CONNECTFLOW_CODEC_KEYS"]; key == "" || key != first.envMap()["CONNECTFLOW_CODEC_KEYS"] {
			t.Fatalf("payload key across a restart: first %q, second %q", first.envMap()["CONNECTFLOW_CODEC_KEYS"], key)
		}
		if info, err := os.Stat(filepath.Join(data, "codec-keys")); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("the data folder's codec-keys file: %v %v, want mode 0600", info, err)
		}
		if st := transferStatus(t, starter, env, "withdrawal", strings.TrimPrefix(transfers["withdrawal"].workflowID, "withdrawal-")); st.Status != workflows.StatusConfirmed || st.TxHash == "" {
			t.Fatalf("the earlier withdrawal after a restart: %+v", st)
		}

		// With -outcome manual the sandbox waits for its control API: play a failure on demand.
		code, out, errOut := runWithEnv(t, env, starter, "withdrawal", "-transfer-id", "mine-2", "-reference-id", "my-user",
			"-asset", "BTC", "-network", "bitcoin", "-amount", "0.25")
		var started struct {
			SessionID string `json:"session_id"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &started) != nil || started.SessionID == "" {
			t.Fatalf("starter withdrawal: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		time.Sleep(500 * time.Millisecond) // past a pace of webhooks: none may come by itself
		if st := transferStatus(t, starter, env, "withdrawal", "mine-2"); st.Status != workflows.StatusAwaitingUser {
			t.Fatalf("with -outcome manual the sandbox played by itself: %s", st.Status)
		}
		play := second.rows["Connect sandbox"] + "/sandbox/sessions/" + started.SessionID + "/play"
		resp, err := http.Post(play, "application/json", strings.NewReader(`{"outcome":"failed","duplicates":1,"failure_reason":"insufficient funds"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %s", play, resp.Status)
		}
		var st workflows.TransferState
		if !waitFor(time.Minute, func() bool {
			st = transferStatus(t, starter, env, "withdrawal", "mine-2")
			return st.Status == workflows.StatusFailed
		}) {
			t.Fatalf("played failure did not arrive: %+v", st)
		}
		if st.FailureReason != "insufficient funds" {
			t.Fatalf("failure reason %q", st.FailureReason)
		}
		if code := second.interrupt(); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
		checkDatabaseIntact(t, filepath.Join(data, "temporal.db"))
	})

	t.Run("encrypted payloads and the UI's codec server", func(t *testing.T) {
		key := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		p := startDevEnv(t, bin, []string{"CONNECTFLOW_CODEC_KEYS=" + key},
			append([]string{"-memory", "-pace", "100ms"}, freePorts...)...)
		transfers := waitDemo(t, p)
		codecURL := p.rows["Codec server"]
		if codecURL == "" {
			t.Fatal("the banner names no codec server")
		}
		var token string
		for _, line := range p.banner {
			if m := regexp.MustCompile(`with token (\S+)\)$`).FindStringSubmatch(line); m != nil {
				token = m[1]
			}
		}

		// The UI is told where to decrypt, with cookies (the codec server's sign-in).
		body, err := httpGet(p.rows["Temporal UI"] + "/api/v1/settings")
		if err != nil {
			t.Fatal(err)
		}
		var settings struct {
			Codec struct {
				Endpoint           string
				IncludeCredentials bool
			}
		}
		if err := json.Unmarshal(body, &settings); err != nil || settings.Codec.Endpoint != codecURL || !settings.Codec.IncludeCredentials {
			t.Fatalf("UI settings %s (%v), want codec endpoint %s with credentials", body, err, codecURL)
		}

		// History holds ciphertext: a client without the keys reads the start input as encrypted bytes.
		c, err := client.Dial(client.Options{HostPort: p.envMap()["TEMPORAL_ADDRESS"], Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		events := c.GetWorkflowHistory(ctx, transfers["deposit"].workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		first, err := events.Next()
		if err != nil {
			t.Fatal(err)
		}
		input := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
		if len(input) != 1 || string(input[0].GetMetadata()["encoding"]) != "binary/encrypted" {
			t.Fatalf("start input stored as %v, want one binary/encrypted payload", input)
		}

		// The codec server opens it for the token's holder, and for no one else.
		remote := func(token string) converter.PayloadCodec {
			return converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: codecURL,
				ModifyRequest: func(r *http.Request) error { r.Header.Set("Authorization", "Bearer "+token); return nil }})
		}
		if _, err := remote("wrong-token").Decode(input); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Fatalf("a wrong token decoded: %v", err)
		}
		plain, err := remote(token).Decode(input)
		if err != nil {
			t.Fatalf("decode with the printed token: %v", err)
		}
		if id := strings.TrimPrefix(transfers["deposit"].workflowID, "deposit-"); !strings.Contains(string(plain[0].GetData()), `"transfer_id":"`+id+`"`) {
			t.Fatalf("decoded input %s lacks transfer %s", plain[0].GetData(), id)
		}

		// A starter given the same keys reads the transfer; the banner never prints them.
		env := p.envMap()
		if _, printed := env["CONNECTFLOW_CODEC_KEYS"]; printed || strings.Contains(p.stdout.String(), key[3:]) {
			t.Fatal("the banner prints the encryption keys")
		}
		env["CONNECTFLOW_CODEC_KEYS"] = key
		if st := transferStatus(t, starter, env, "deposit", strings.TrimPrefix(transfers["deposit"].workflowID, "deposit-")); st.Status != workflows.StatusConfirmed {
			t.Fatalf("deposit read through the starter: %+v", st)
		}
		if code := p.interrupt(); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
	})

	t.Run("server only", func(t *testing.T) {
		p := startDev(t, bin, "-memory", "-server-only", "-temporal-port", "0", "-ui-port", "0")
		for _, row := range []string{"Connect sandbox", "Webhook bridge", "Worker metrics"} {
			if v, ok := p.rows[row]; ok {
				t.Errorf("-server-only runs a %s at %s", row, v)
			}
		}
		env := p.envMap()
		if len(p.env) != 1 || len(env) != 4 || env["TEMPORAL_ADDRESS"] == "" || env["CONNECTFLOW_CODEC_KEYS"] == "" {
			t.Fatalf("-server-only environment %v, want the three TEMPORAL_ lines and the stack's payload key", p.env)
		}
		checkPrintedEnv(t, p, readers(t))
		if _, err := httpGet(p.rows["Temporal UI"] + "/"); err != nil {
			t.Fatalf("UI page: %v", err)
		}
		c, err := client.Dial(client.Options{HostPort: env["TEMPORAL_ADDRESS"], Namespace: env["TEMPORAL_NAMESPACE"]})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		attrs, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range workflows.SearchAttributeNames {
			if got := attrs.GetCustomAttributes()[name]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
				t.Errorf("search attribute %s is %v, want Keyword", name, got)
			}
		}
		if code := p.interrupt(); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
	})

	t.Run("busy port is named", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		code, _, errOut := runWithEnv(t, nil, bin, "-memory", "-server-only", "-temporal-port", port, "-ui-port", "0")
		if code != 1 || !strings.Contains(errOut, "port "+port) || !strings.Contains(errOut, "not free") {
			t.Fatalf("exit %d, stderr %q; want 1 naming port %s", code, errOut, port)
		}
	})

	t.Run("bad flags are named", func(t *testing.T) {
		code, _, errOut := runWithEnv(t, nil, bin, "-memory", "-data", "x", "-outcome", "maybe", "-ui-port", "70000")
		if code != 2 {
			t.Fatalf("exit %d, want 2", code)
		}
		for _, want := range []string{"-data: cannot be used with -memory", `-outcome: "maybe" is not`, "-ui-port: 70000 is outside"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		}
	})
}

// checkPrintedEnv holds the banner's environment to what the binaries read: each "# a, b and c" group lists only
// variables every one of a, b and c reads, and each value is set.
func checkPrintedEnv(t *testing.T, p *devProcess, readers map[string]map[string]bool) {
	t.Helper()
	if len(p.env) == 0 {
		t.Fatal("the banner prints no environment")
	}
	for _, g := range p.env {
		binaries := strings.FieldsFunc(strings.ReplaceAll(g.title, " and ", ","), func(r rune) bool { return r == ',' || r == ' ' })
		if len(binaries) == 0 || len(g.vars) == 0 {
			t.Errorf("env group %q is empty", g.title)
		}
		for _, bin := range binaries {
			reads, ok := readers[bin]
			if !ok {
				t.Errorf("env group %q names %q, not a binary that reads settings", g.title, bin)
				continue
			}
			for _, name := range sortedKeys(g.vars) {
				if !reads[name] {
					t.Errorf("env group %q: %s does not read %s", g.title, bin, name)
				}
				if g.vars[name] == "" {
					t.Errorf("env group %q: %s is empty", g.title, name)
				}
			}
		}
	}
}

// checkNoSecretsOutsideEnv: the sandbox's secrets appear once each on stdout, in the env lines, never on stderr;
// no JWT appears anywhere.
func checkNoSecretsOutsideEnv(t *testing.T, p *devProcess) {
	t.Helper()
	env := p.envMap()
	stdout, stderr := p.stdout.String(), p.stderr.String()
	for _, name := range []string{"CONNECT_CLIENT_SECRET", "ZEROHASH_API_SECRET", "ZEROHASH_PASSPHRASE", "ZEROHASH_WEBHOOK_SECRET",
		"CONNECTFLOW_CODEC_KEYS"} {
		if env[name] == "" {
			t.Fatalf("the banner prints no %s", name)
		}
		if n := strings.Count(stdout, env[name]); n != 1 {
			t.Errorf("%s's value appears %d times on stdout, want once (its env line)", name, n)
		}
		if strings.Contains(stderr, env[name]) {
			t.Errorf("%s's value appears on stderr", name)
		}
	}
	if jwt := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.`); jwt.MatchString(stdout) || jwt.MatchString(stderr) {
		t.Error("a JWT appears in the output")
	}
}

// checkDatabaseIntact opens the SQLite file the dev command left and runs SQLite's own integrity check.
func checkDatabaseIntact(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&result); err != nil {
		t.Fatalf("integrity check of %s: %v", path, err)
	}
	if result != "ok" {
		t.Fatalf("integrity check of %s: %s", path, result)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM executions_visibility").Scan(&n); err != nil || n < 2 {
		t.Fatalf("%s holds %d executions (%v), want the demo's two at least", path, n, err)
	}
}

// checkDevAPI starts a deposit through the banner's transfer API with its dev token, over raw HTTP, and waits for
// the demo platform's ledger to hold its confirmed notification.
func checkDevAPI(t *testing.T, p *devProcess) {
	t.Helper()
	m := regexp.MustCompile(`bearer token (\S+),`).FindStringSubmatch(p.stdout.String())
	if m == nil || p.rows["Transfer API"] == "" || p.rows["Demo platform"] == "" {
		t.Fatalf("the banner names no transfer API with a token or no demo platform: %v", p.rows)
	}
	req, _ := http.NewRequest(http.MethodPost, p.rows["Transfer API"]+"/v1/deposits",
		strings.NewReader(`{"transfer_id":"api-1","reference_id":"api-user"}`))
	req.Header.Set("Authorization", "Bearer "+m[1])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/deposits: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"workflow_id":"deposit-api-1"`) {
		t.Fatalf("POST /v1/deposits: %d %s", resp.StatusCode, body)
	}
	var last string
	if !waitFor(time.Minute, func() bool {
		b, err := httpGet(p.rows["Demo platform"] + "/platform/ledger")
		last = string(b)
		return err == nil && strings.Contains(last, `"webhook_id":"deposit-api-1:4","type":"deposit.confirmed"`)
	}) {
		t.Fatalf("the demo platform's ledger has no confirmed notification for deposit-api-1: %s", last)
	}
	// The sandbox's control API drives the demo platform's faults: a bad body reaches the platform's own check.
	resp, err = http.Post(p.rows["Connect sandbox"]+"/sandbox/platform/faults", "application/json", strings.NewReader(`{"count":0}`))
	if err != nil {
		t.Fatalf("POST /sandbox/platform/faults: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "count: 1 to 100") {
		t.Fatalf("POST /sandbox/platform/faults {count:0}: %d %s; want the demo platform's 422", resp.StatusCode, body)
	}
}
