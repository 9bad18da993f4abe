package embedded

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	v12 "go.temporal.io/server/schema/postgresql/v12"
)

func TestParsePostgresDSN(t *testing.T) {
	d, err := ParsePostgresDSN("postgres://temporal:pw@127.0.0.1:5433/admin?sslmode=disable")
	if err != nil || d != (PostgresDSN{Addr: "127.0.0.1:5433", User: "temporal", Password: "pw", AdminDatabase: "admin"}) {
		t.Fatalf("%+v, %v", d, err)
	}
	d, err = ParsePostgresDSN("postgresql://u@db.internal")
	if err != nil || d.Addr != "db.internal:5432" || d.AdminDatabase != "postgres" || d.Password != "" {
		t.Fatalf("defaults: %+v, %v", d, err)
	}
	for dsn, want := range map[string]string{
		"mysql://u:pw@h/db":                                    "scheme",
		"postgres://u:pw@:5432/db":                             "no host",
		"postgres://u:pw@h:99999/db":                           "not a port",
		"postgres://h/db":                                      "no user",
		"postgres://u:pw@h/db?sslmode=verify-full":             "only sslmode=disable",
		"postgres://u:pw@h/db?connect_timeout=3":               "connect_timeout",
		"postgres://u:pw@h/db?sslmode=disable&x=1":             "parameter x",
		"postgres://u:pw%zz@h/db":                              "not a URL",
		"postgres://u:pw@h/db?sslmode=disable&sslmode=disable": "sslmode",
	} {
		_, err := ParsePostgresDSN(dsn)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", dsn, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: error %q shows the password", dsn, err)
		}
	}
}

func TestReserveLowPortsStaysUnderSmallint(t *testing.T) {
	ports, err := reserveLowPorts(DefaultIP, []int{40000, 40001}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 9 || ports[0] != 40000 || ports[1] != 40001 {
		t.Fatalf("ports %v: want the fixed two first, then 7", ports)
	}
	seen := map[int]bool{}
	for _, p := range ports[2:] {
		if p < lowPortMin || p > lowPortMax || seen[p] {
			t.Fatalf("port %d of %v: want distinct ports in %d..%d (cluster_membership keeps a smallint)", p, ports, lowPortMin, lowPortMax)
		}
		seen[p] = true
	}
}

// throwawayPostgres starts deploy/postgres/throwaway.sh's cluster for the test (it installs PostgreSQL when
// missing, as root) and returns its DSN.
func throwawayPostgres(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../../deploy/postgres/throwaway.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "connectflow-embedded-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "remove", dir).CombinedOutput(); err != nil {
			t.Errorf("remove the PostgreSQL cluster: %v\n%s", err, out)
		}
	})
	cmd := exec.Command(script, "start", dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s start: %v\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func schemaVersion(t *testing.T, dsn, database string) string {
	t.Helper()
	db, err := sql.Open("postgres", strings.Replace(dsn, "/postgres?", "/"+database+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT curr_version FROM schema_version WHERE db_name = $1", database).Scan(&v); err != nil {
		t.Fatalf("schema version of %s: %v", database, err)
	}
	return v
}

// TestPostgresClusterNode sets the schema up twice at once (idempotent, serialised by the advisory lock), then
// runs one cluster node on it and checks it joined through the membership table and created the namespace.
func TestPostgresClusterNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a Temporal node")
	}
	dsn := throwawayPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = SetupPostgresSchema(ctx, dsn, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("schema setup: %v", err)
		}
	}
	if err := SetupPostgresSchema(ctx, dsn, nil); err != nil {
		t.Fatalf("schema setup again: %v", err)
	}
	if got := schemaVersion(t, dsn, PostgresDatabase); got != v12.Version {
		t.Fatalf("%s schema %s, want the server's %s", PostgresDatabase, got, v12.Version)
	}
	if got := schemaVersion(t, dsn, PostgresVisibilityDatabase); got != v12.VisibilityVersion {
		t.Fatalf("%s schema %s, want the server's %s", PostgresVisibilityDatabase, got, v12.VisibilityVersion)
	}

	s := start(t, Options{SearchAttributes: testAttrs, Postgres: &Postgres{DSN: dsn, HistoryShards: 4}})
	c := dial(t, s)
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: DefaultNamespace}); err != nil {
		t.Fatalf("namespace: %v", err)
	}
	if _, ok := customAttrs(t, c, DefaultNamespace)["TransferKind"]; !ok {
		t.Fatal("the node did not add the search attributes")
	}
	db, err := sql.Open("postgres", strings.Replace(dsn, "/postgres?", "/"+PostgresDatabase+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var roles, shards int
	if err := db.QueryRow("SELECT count(DISTINCT role) FROM cluster_membership").Scan(&roles); err != nil || roles != 4 {
		t.Fatalf("membership rows for %d roles (%v), want frontend, history, matching and worker", roles, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM shards").Scan(&shards); err != nil || shards != 4 {
		t.Fatalf("%d shards (%v), want 4", shards, err)
	}
}
