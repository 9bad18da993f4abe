package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

var testAttrs = map[string]enumspb.IndexedValueType{"TransferKind": enumspb.INDEXED_VALUE_TYPE_KEYWORD}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: s.Namespace()})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddr(), err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func customAttrs(t *testing.T, c client.Client, ns string) map[string]enumspb.IndexedValueType {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(ctx(t), &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCustomAttributes()
}

func TestInMemoryServerAndUI(t *testing.T) {
	const codecEndpoint = "http://localhost:8234"
	s := start(t, Options{SearchAttributes: testAttrs, Namespace: "payments", UICodecEndpoint: codecEndpoint})
	c := dial(t, s)

	ns, err := c.WorkflowService().DescribeNamespace(ctx(t), &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != DefaultRetention {
		t.Fatalf("retention %v, want %v", got, DefaultRetention)
	}
	if got := customAttrs(t, c, "payments")["TransferKind"]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		t.Fatalf("TransferKind is %v, want Keyword", got)
	}
	if !strings.HasPrefix(s.UIURL(), "http://localhost:") {
		t.Fatalf("UI URL %q does not name localhost", s.UIURL())
	}
	for _, path := range []string{"/healthz", "/", "/api/v1/namespaces/payments/workflows"} {
		resp, err := http.Get(s.UIURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}

	resp, err := http.Get(s.UIURL() + "/api/v1/settings")
	if err != nil {
		t.Fatal(err)
	}
	var settings struct {
		DefaultNamespace string
		Codec            struct {
			Endpoint           string
			IncludeCredentials bool
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&settings)
	resp.Body.Close()
	if err != nil || settings.DefaultNamespace != "payments" || settings.Codec.Endpoint != codecEndpoint || !settings.Codec.IncludeCredentials {
		t.Fatalf("UI settings %+v (%v)", settings, err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", s.FrontendAddr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("the frontend still listens after Stop")
	}
}

func TestDatabaseFileSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "temporal.db")
	// What an earlier start cut short during the schema setup left behind: it must be made again, not trusted.
	if err := os.WriteFile(db+setupSuffix, []byte("half a schema"), 0o600); err != nil {
		t.Fatal(err)
	}

	first := start(t, Options{DatabaseFile: db, SearchAttributes: testAttrs})
	if _, err := os.Stat(db + setupSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the unfinished schema file is still there: %v", err)
	}
	c := dial(t, first)
	_, err := c.OperatorService().AddSearchAttributes(ctx(t), &operatorservice.AddSearchAttributesRequest{
		Namespace: first.Namespace(), SearchAttributes: map[string]enumspb.IndexedValueType{"AddedLater": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	// The same file, on other ports: the namespace and what was added to it are still there.
	second := start(t, Options{DatabaseFile: db, SearchAttributes: testAttrs})
	got := customAttrs(t, dial(t, second), second.Namespace())
	for _, name := range []string{"TransferKind", "AddedLater"} {
		if got[name] != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("after a restart %s is %v, want Keyword", name, got[name])
		}
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"not an IP", Options{IP: "localhost"}, `IP "localhost" is not an IP address`},
		{"port out of range", Options{UIPort: 70000}, "UIPort 70000 is outside 0..65535"},
		{"negative port", Options{FrontendPort: -1}, "FrontendPort -1 is outside"},
		{"same port twice", Options{FrontendPort: 7999, UIPort: 7999}, "FrontendPort and UIPort are both 7999"},
		{"short retention", Options{Retention: time.Minute}, "Retention 1m0s is under an hour"},
		{"busy frontend port", Options{FrontendPort: busyPort}, "port " + strconv.Itoa(busyPort) + " on 127.0.0.1 is not free"},
		{"busy UI port", Options{UIPort: busyPort}, "port " + strconv.Itoa(busyPort) + " on 127.0.0.1 is not free"},
		{"missing folder", Options{DatabaseFile: filepath.Join(t.TempDir(), "absent", "temporal.db")}, "database folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.opts)
			if err == nil {
				s.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestReservePortsPicksDistinctFreePorts(t *testing.T) {
	ports, err := reservePorts(DefaultIP, 0, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p == 0 || seen[p] {
			t.Fatalf("ports %v: want five distinct non-zero ports", ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort(DefaultIP, strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free again after reservePorts: %v", p, err)
		}
		ln.Close()
	}
}

func TestHosts(t *testing.T) {
	tests := []struct{ ip, dial, browser, ui string }{
		{"127.0.0.1", "127.0.0.1", "localhost", "127.0.0.1"},
		{"0.0.0.0", "127.0.0.1", "localhost", "0.0.0.0"},
		{"::1", "::1", "localhost", "[::1]"},
		{"192.0.2.7", "192.0.2.7", "192.0.2.7", "192.0.2.7"},
	}
	for _, tt := range tests {
		if got := dialHost(tt.ip); got != tt.dial {
			t.Errorf("dialHost(%s) = %s, want %s", tt.ip, got, tt.dial)
		}
		if got := BrowserHost(tt.ip); got != tt.browser {
			t.Errorf("BrowserHost(%s) = %s, want %s", tt.ip, got, tt.browser)
		}
		if got := uiHost(tt.ip); got != tt.ui {
			t.Errorf("uiHost(%s) = %s, want %s", tt.ip, got, tt.ui)
		}
	}
}
