package tests

// Attacks on the deployment (issue 14, findings 10 to 14): what a process started without keys, a host reachable
// from the network, a leaked deployment file or a worker that cannot poll would give away. Each test runs the real
// binaries against a real Temporal server; docs/security.md lists them.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/rpc/encryption"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"
	"gopkg.in/yaml.v3"

	"github.com/connectflow/connectflow/connecttest"
)

// deployKeys is a payload key for the processes of these tests.
var deployKeys = "atk1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))

// proc is one connectflow binary running for a test; SIGTERM at cleanup.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *proc) log() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProc runs bin with exactly env (plus PATH and a HOME without a Temporal profile).
func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	home := t.TempDir()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"TEMPORAL_CONFIG_FILE=" + filepath.Join(home, "absent.toml")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(bin), p.log())
		}
	})
	return p
}

// runProc runs bin to its end (killed after a minute: a process that should have refused to start may serve
// forever) and returns its exit status and combined output.
func runProc(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"TEMPORAL_CONFIG_FILE=" + filepath.Join(home, "absent.toml")}, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	return 0, string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getStatus GETs u and returns the status code and body; 0 when nothing answers.
func getStatus(u string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// workerEnv is the worker binary's environment against srv and sandbox, its admin listener on admin.
func deployWorkerEnv(srvAddr, namespace, admin string, sandbox *connecttest.Server) []string {
	return append(sandbox.Env(), "TEMPORAL_ADDRESS="+srvAddr, "TEMPORAL_NAMESPACE="+namespace,
		"TEMPORAL_TASK_QUEUE="+taskQueue, "WORKER_ADMIN_ADDR="+admin, "LOG_LEVEL=info")
}

// Finding 13: without payload keys every binary refuses to start unless plaintext is chosen by name, and then it
// warns. Before: each started silently and wrote session JWTs and emails into history in clear.
func TestAttackPlaintextByDefaultIsRefused(t *testing.T) {
	sandbox := connecttest.NewServer(t, connecttest.Options{})
	dead := freeAddr(t) // nothing listens: a binary that got past its settings exits 1, not 2
	base := []string{"TEMPORAL_ADDRESS=" + dead, "STARTER_API_TOKENS=backend:" + strings.Repeat("t", 40),
		"BRIDGE_PUBLIC_URL=https://hooks.example.com"}
	base = append(base, sandbox.Env()...)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"worker", nil}, {"webhookbridge", nil}, {"starter", []string{"status", "-kind", "deposit", "-transfer-id", "x"}},
		{"starter", []string{"serve"}},
	} {
		bin := buildBinary(t, c.name)
		code, out := runProc(t, bin, base, c.args...)
		if code != 2 || !strings.Contains(out, "CONNECTFLOW_CODEC_PLAINTEXT=true") {
			t.Errorf("%s %v without payload keys: exit %d, want 2 naming CONNECTFLOW_CODEC_PLAINTEXT; output:\n%s", c.name, c.args, code, out)
		}
	}
	// Chosen explicitly, it runs (here: fails to reach Temporal) and says payloads go in clear.
	bin := buildBinary(t, "starter")
	code, out := runProc(t, bin, append(base, "CONNECTFLOW_CODEC_PLAINTEXT=true"), "status", "-kind", "deposit", "-transfer-id", "x", "-timeout", "2s")
	if code != 1 || !strings.Contains(out, "payload encryption is off") {
		t.Errorf("starter with CONNECTFLOW_CODEC_PLAINTEXT=true: exit %d, want 1 with a plaintext warning; output:\n%s", code, out)
	}
}

// Finding 10: a keyed worker that meets a plaintext payload says so (a log line and a metric); with
// CONNECTFLOW_CODEC_STRICT=true it refuses the payload. Before: plaintext written by a keyless process was read
// silently, and there was no strict mode.
func TestAttackPlaintextPayloadsAreNotSilent(t *testing.T) {
	srv := temporaltest.NewServer(temporaltest.WithT(t))
	sandbox := connecttest.NewServer(t, connecttest.Options{})
	starter := buildBinary(t, "starter")
	worker := buildBinary(t, "worker")
	temporalEnv := []string{"TEMPORAL_ADDRESS=" + srv.GetFrontendHostPort(), "TEMPORAL_NAMESPACE=" + srv.GetDefaultNamespace(),
		"TEMPORAL_TASK_QUEUE=" + taskQueue}

	// A keyless starter (plaintext chosen) starts deposits: their input is plaintext in history.
	startDeposit := func(id string) string {
		t.Helper()
		cmd := exec.Command(starter, "deposit", "-transfer-id", id, "-reference-id", "USER10", "-timeout", "2s")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CONNECTFLOW_CODEC_PLAINTEXT=true"}, temporalEnv...)
		out, _ := cmd.CombinedOutput() // no worker may answer: the call can time out once the workflow is started
		t.Logf("starter deposit %s: %s", id, out)
		return string(out)
	}

	admin := freeAddr(t)
	w := startProc(t, worker, append(deployWorkerEnv(srv.GetFrontendHostPort(), srv.GetDefaultNamespace(), admin, sandbox),
		"CONNECTFLOW_CODEC_KEYS="+deployKeys))
	eventually(t, "the keyed worker is ready (search attributes registered)", func() bool {
		code, _ := getStatus("http://" + admin + "/readyz")
		return code == http.StatusOK
	})
	// The keyless side is loud too: the session the keyed worker sealed is an error for it, not garbage.
	if out := startDeposit("plain-1"); !strings.Contains(out, "runs without payload keys") {
		t.Errorf("the keyless starter read the keyed worker's encrypted result without saying so:\n%s", out)
	}
	eventually(t, "the keyed worker counts the plaintext payload it read", func() bool {
		_, body := getStatus("http://" + admin + "/metrics")
		return regexp.MustCompile(`connectflow_codec_mismatched_payloads_total\{outcome="plaintext_read"\} [1-9]`).MatchString(body)
	})
	if n := strings.Count(w.log(), "decoded an unencrypted payload"); n != 1 {
		t.Errorf("the keyed worker logged the plaintext warning %d times, want once", n)
	}

	// Strict mode: a second worker refuses the next plaintext workflow's payloads, logs and counts each.
	strictAdmin := freeAddr(t)
	strict := startProc(t, worker, append(deployWorkerEnv(srv.GetFrontendHostPort(), srv.GetDefaultNamespace(), strictAdmin, sandbox),
		"CONNECTFLOW_CODEC_KEYS="+deployKeys, "CONNECTFLOW_CODEC_STRICT=true"))
	_ = w.cmd.Process.Signal(syscall.SIGTERM) // only the strict worker polls from here on
	<-w.done
	startDeposit("plain-2")
	eventually(t, "the strict worker refuses the plaintext payload", func() bool {
		_, body := getStatus("http://" + strictAdmin + "/metrics")
		return regexp.MustCompile(`connectflow_codec_mismatched_payloads_total\{outcome="plaintext_refused"\} [1-9]`).MatchString(body) &&
			strings.Contains(strict.log(), "refused an unencrypted payload")
	})
}

// Finding 14: the worker's /readyz answers 200 only while the worker is started and Temporal sees it polling; it
// says 503 while Temporal is gone. Before: compose's health check scraped /metrics, healthy while nothing polled.
func TestAttackWorkerReadinessReflectsPolling(t *testing.T) {
	// Compose's worker healthcheck probes /readyz on the worker's admin listener.
	w := readCompose(t, composePath).Services["worker"]
	admin := w.Environment["WORKER_ADMIN_ADDR"]
	if admin == "" || w.Healthcheck == nil || !slices.Contains(w.Healthcheck.Test, "http://"+admin+"/readyz") {
		t.Errorf("compose: the worker's healthcheck %v does not probe /readyz on WORKER_ADMIN_ADDR %q", w.Healthcheck, admin)
	}

	srv := temporaltest.NewServer(temporaltest.WithT(t))
	sandbox := connecttest.NewServer(t, connecttest.Options{})
	admin = freeAddr(t)
	startProc(t, buildBinary(t, "worker"), append(deployWorkerEnv(srv.GetFrontendHostPort(), srv.GetDefaultNamespace(), admin, sandbox),
		"CONNECTFLOW_CODEC_KEYS="+deployKeys))
	eventually(t, "the worker is ready", func() bool {
		code, _ := getStatus("http://" + admin + "/readyz")
		return code == http.StatusOK
	})
	if code, body := getStatus("http://" + admin + "/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("admin /metrics: %d", code)
	}
	srv.Stop() // Temporal goes away: the worker cannot poll
	eventually(t, "the worker is not ready without Temporal", func() bool {
		code, body := getStatus("http://" + admin + "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not ready")
	})
}

// Finding 11: Temporal with mTLS (client certificates required). The worker, the bridge and the starter reach it
// with TEMPORAL_TLS_* settings each binary lists; without a client certificate the server refuses. Before: the
// settings were in no binary's -h, and nothing had tested them.
func TestAttackTemporalRequiresClientCertificates(t *testing.T) {
	pki := newTestPKI(t)
	srv := temporaltest.NewServer(temporaltest.WithT(t),
		temporaltest.WithBaseServerOptions(temporal.WithTLSConfigFactory(pki)),
		temporaltest.WithBaseClientOptions(client.Options{ConnectionOptions: client.ConnectionOptions{TLS: pki.clientTLS()}}))
	sandbox := connecttest.NewServer(t, connecttest.Options{})
	tlsEnv := []string{"TEMPORAL_TLS_CLIENT_CERT_PATH=" + pki.clientCert, "TEMPORAL_TLS_CLIENT_KEY_PATH=" + pki.clientKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH=" + pki.caCert, "TEMPORAL_TLS_SERVER_NAME=" + testServerName,
		"CONNECTFLOW_CODEC_KEYS=" + deployKeys}
	temporalEnv := []string{"TEMPORAL_ADDRESS=" + srv.GetFrontendHostPort(), "TEMPORAL_NAMESPACE=" + srv.GetDefaultNamespace(),
		"TEMPORAL_TASK_QUEUE=" + taskQueue}

	// The compose override that turns mTLS on sets, on our services, only settings the binaries read.
	mtls := readCompose(t, "../deploy/compose.mtls.yml")
	for _, err := range checkCompose(readCompose(t, composePath), map[string]composeDoc{"deploy/compose.mtls.yml": mtls},
		composeFactsFromBinaries(t)) {
		t.Error(err)
	}
	for _, name := range []string{"worker", "webhookbridge", "temporal-namespace"} {
		if got := mtls.Services[name].Environment["TEMPORAL_TLS_CLIENT_CERT_PATH"]; got == "" {
			t.Errorf("deploy/compose.mtls.yml: %s presents no client certificate", name)
		}
	}
	if mtls.Services["temporal"].Environment["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] != "true" {
		t.Error("deploy/compose.mtls.yml: Temporal does not require client certificates")
	}

	for _, bin := range []string{"worker", "webhookbridge"} {
		usage := binaryUsage(t, buildBinary(t, bin), "-h")
		for _, env := range []string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME"} {
			if !strings.Contains(usage, "env "+env) {
				t.Errorf("%s -h does not list %s", bin, env)
			}
		}
	}

	// The worker, with every secret given as a _FILE (Docker secrets, finding 12).
	secretDir := t.TempDir()
	var workerEnv []string
	for _, kv := range deployWorkerEnv(srv.GetFrontendHostPort(), srv.GetDefaultNamespace(), freeAddr(t), sandbox) {
		name, value, _ := strings.Cut(kv, "=")
		switch name {
		case "CONNECT_CLIENT_SECRET", "ZEROHASH_API_KEY", "ZEROHASH_API_SECRET", "ZEROHASH_PASSPHRASE":
			file := filepath.Join(secretDir, name)
			if err := os.WriteFile(file, []byte(value+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			kv = name + "_FILE=" + file
		}
		workerEnv = append(workerEnv, kv)
	}
	admin := ""
	for _, kv := range workerEnv {
		if v, ok := strings.CutPrefix(kv, "WORKER_ADMIN_ADDR="); ok {
			admin = v
		}
	}
	startProc(t, buildBinary(t, "worker"), append(workerEnv, tlsEnv...))
	eventually(t, "the worker polls over mTLS", func() bool {
		code, _ := getStatus("http://" + admin + "/readyz")
		return code == http.StatusOK
	})

	// The bridge: ready means it reaches Temporal. Its readiness is on the public port or, once it has one, its
	// admin listener.
	bridgeAddr, bridgeAdmin := freeAddr(t), freeAddr(t)
	startProc(t, buildBinary(t, "webhookbridge"), append(append(append([]string{"BRIDGE_ADDR=" + bridgeAddr,
		"BRIDGE_ADMIN_ADDR=" + bridgeAdmin, "BRIDGE_PUBLIC_URL=http://" + bridgeAddr}, sandbox.Env()...), temporalEnv...), tlsEnv...))
	eventually(t, "the bridge reaches Temporal over mTLS", func() bool {
		a, _ := getStatus("http://" + bridgeAddr + "/readyz")
		b, _ := getStatus("http://" + bridgeAdmin + "/readyz")
		return a == http.StatusOK || b == http.StatusOK
	})

	// The starter starts a deposit (the worker creates its session) and reads it back.
	starter := buildBinary(t, "starter")
	code, out := runProc(t, starter, append(append([]string{}, temporalEnv...), tlsEnv...),
		"deposit", "-transfer-id", "mtls-1", "-reference-id", "USER11")
	if code != 0 || !strings.Contains(out, `"session_id"`) {
		t.Fatalf("starter deposit over mTLS: exit %d\n%s", code, out)
	}
	// Without a client certificate, the server refuses the connection.
	code, out = runProc(t, starter, append(append([]string{}, temporalEnv...), "TEMPORAL_TLS_SERVER_CA_CERT_PATH="+pki.caCert,
		"TEMPORAL_TLS_SERVER_NAME="+testServerName, "CONNECTFLOW_CODEC_KEYS="+deployKeys),
		"status", "-kind", "deposit", "-transfer-id", "mtls-1", "-timeout", "5s")
	if code == 0 {
		t.Fatalf("starter without a client certificate was let in:\n%s", out)
	}
	// Nor does plaintext get through.
	code, out = runProc(t, starter, append(append([]string{}, temporalEnv...), "CONNECTFLOW_CODEC_KEYS="+deployKeys),
		"status", "-kind", "deposit", "-transfer-id", "mtls-1", "-timeout", "5s")
	if code == 0 {
		t.Fatalf("starter without TLS was let in:\n%s", out)
	}
}

// Finding 12: no deployment file leaks a secret. POSTGRES_PASSWORD has no default; published ports are loopback;
// .env and key files are ignored by git and by the Docker build context; every secret setting of every binary has
// a _FILE variant. Before: POSTGRES_PASSWORD defaulted to "temporal", ports listened on every interface, and only
// the codec keys had a file variant.
func TestAttackDeploymentFilesLeakNoSecrets(t *testing.T) {
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	compose := string(raw)
	for _, m := range regexp.MustCompile(`\$\{POSTGRES_PASSWORD[^}]*\}`).FindAllString(compose, -1) {
		if !strings.HasPrefix(m, "${POSTGRES_PASSWORD:?") {
			t.Errorf("compose: %s gives POSTGRES_PASSWORD a default; it must be required (${POSTGRES_PASSWORD:?...})", m)
		}
	}
	var doc struct {
		Services map[string]struct {
			Ports []string `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for name, svc := range doc.Services {
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("compose: service %s publishes %q on every interface; bind it to 127.0.0.1", name, p)
			}
		}
	}

	// git: ask git itself.
	for path, ignored := range map[string]bool{".env": true, "deploy/.env": true, "org-key.pem": true, "deploy/tls/client.key": true,
		"connect/testdata/keys/test_rsa_a.pem": false, "deploy/connectflow.env.example": false} {
		err := exec.Command("git", "-C", "..", "check-ignore", "-q", "--no-index", path).Run()
		if got := err == nil; got != ignored {
			t.Errorf(".gitignore: %s ignored = %v, want %v", path, got, ignored)
		}
	}
	// Docker: the build context excludes them at any depth.
	dockerignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**/.env", "**/*.pem", "**/*.key"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(dockerignore) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}

	// Every secret of every binary has its _FILE.
	for _, c := range []struct {
		bin  string
		args []string
	}{{"worker", []string{"-h"}}, {"webhookbridge", []string{"-h"}}, {"starter", []string{"deposit", "-h"}}, {"starter", []string{"serve", "-h"}}} {
		usage := binaryUsage(t, buildBinary(t, c.bin), c.args...)
		secrets := regexp.MustCompile(`env ([A-Z0-9_]+), secret`).FindAllStringSubmatch(usage, -1)
		if len(secrets) == 0 {
			t.Fatalf("%s %v lists no secret", c.bin, c.args)
		}
		for _, m := range secrets {
			if !strings.Contains(usage, "env "+m[1]+"_FILE") {
				t.Errorf("%s %v: secret %s has no %s_FILE", c.bin, c.args, m[1], m[1])
			}
		}
	}
}

// testServerName is the name in the test server's certificate, checked through TEMPORAL_TLS_SERVER_NAME.
const testServerName = "temporal.connectflow.test"

// testPKI is a throwaway CA, a server certificate for testServerName and a client certificate, as PEM files, and
// the server's TLS configuration: mTLS on the frontend, client certificates required.
type testPKI struct {
	caPool                        *x509.CertPool
	server, client                tls.Certificate
	caCert, clientCert, clientKey string
}

var _ encryption.TLSConfigProvider = (*testPKI)(nil)

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "connectflow test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) (tls.Certificate, []byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: dns,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return pair, certPEM, keyPEM
	}
	p := &testPKI{caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.server, _, _ = issue(2, testServerName, x509.ExtKeyUsageServerAuth, []string{testServerName, "localhost"})
	var certPEM, keyPEM []byte
	p.client, certPEM, keyPEM = issue(3, "connectflow", x509.ExtKeyUsageClientAuth, nil)
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.caCert = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	p.clientCert = write("client.pem", certPEM)
	p.clientKey = write("client.key", keyPEM)
	return p
}

// clientTLS is what a client presenting the client certificate uses (the server's own system components too).
func (p *testPKI) clientTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.client}, RootCAs: p.caPool, ServerName: testServerName,
		MinVersion: tls.VersionTLS12}
}

// GetFrontendServerConfig requires a client certificate signed by the CA.
func (p *testPKI) GetFrontendServerConfig() (*tls.Config, error) {
	return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: p.caPool, MinVersion: tls.VersionTLS12}, nil
}

func (p *testPKI) GetFrontendClientConfig() (*tls.Config, error) { return p.clientTLS(), nil }

// Internode traffic stays in one process here: plain.
func (p *testPKI) GetInternodeServerConfig() (*tls.Config, error) { return nil, nil }
func (p *testPKI) GetInternodeClientConfig() (*tls.Config, error) { return nil, nil }
func (p *testPKI) GetRemoteClusterClientConfig(string) (*tls.Config, error) {
	return nil, nil
}
func (p *testPKI) GetExpiringCerts(time.Duration) (encryption.CertExpirationMap, encryption.CertExpirationMap, error) {
	return nil, nil, nil
}
