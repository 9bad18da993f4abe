package tests

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	_ "github.com/lib/pq" // the "postgres" database/sql driver
	"gopkg.in/yaml.v3"

	"github.com/connectflow/connectflow/dev/embedded"
)

// Files of compose's Temporal server and schema job, relative to this package.
const (
	composeDynamicConfigPath = "../deploy/temporal/dynamicconfig/connectflow.yaml"
	composeSchemaScriptPath  = "../deploy/temporal/scripts/setup-schema.sh"
	goModPath                = "../dev/go.mod" // the dev command runs the tested cluster
)

// clusterFacts is what the tested cluster (dev -postgres, as chaos -topology cluster runs it) uses.
type clusterFacts struct {
	plugin, database, visibility string
	shards                       int
	dynamic                      map[string]any
	serverVersion                string // go.temporal.io/server in dev/go.mod
}

func testedCluster(t *testing.T) clusterFacts {
	t.Helper()
	mod, err := os.ReadFile(goModPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?go\.temporal\.io/server v(\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("%s does not require go.temporal.io/server", goModPath)
	}
	return clusterFacts{plugin: embedded.PostgresPlugin, database: embedded.PostgresDatabase,
		visibility: embedded.PostgresVisibilityDatabase, shards: embedded.ClusterHistoryShards,
		dynamic: embedded.ClusterDynamicConfig(), serverVersion: string(m[1])}
}

// checkComposeServer returns every way compose's Temporal server, its schema job and its dynamic config differ from
// the tested cluster's settings.
func checkComposeServer(compose composeDoc, schemaScript, dynamicYAML string, want clusterFacts) []error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	server, ok := compose.Services["temporal"]
	if !ok {
		return []error{fmt.Errorf("compose has no temporal service")}
	}
	env := server.Environment
	for name, value := range map[string]string{"DB": want.plugin, "DBNAME": want.database,
		"VISIBILITY_DBNAME": want.visibility, "NUM_HISTORY_SHARDS": strconv.Itoa(want.shards),
		"DYNAMIC_CONFIG_FILE_PATH": "config/dynamicconfig/connectflow.yaml"} {
		if env[name] != value {
			bad("temporal service: %s is %q; the tested cluster runs %q", name, env[name], value)
		}
	}
	for _, svc := range []string{"temporal", "temporal-schema", "temporal-namespace"} {
		image := compose.Services[svc].Image
		if !strings.Contains(image, ":${TEMPORAL_VERSION:-"+want.serverVersion+"}") {
			bad("%s service: image %q is not the tested server version %s", svc, image, want.serverVersion)
		}
	}
	// The schema job creates the same two databases, from the same PostgreSQL schema, as the Go setup does.
	for _, db := range []string{want.database + ":temporal", want.visibility + ":visibility"} {
		if !regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(db) + `(\s|;|$)`).MatchString(schemaScript) {
			bad("setup-schema.sh does not set up %s (database:schema)", db)
		}
	}
	if !strings.Contains(schemaScript, "SQL_PLUGIN="+want.plugin) {
		bad("setup-schema.sh does not use the %s plugin", want.plugin)
	}
	if !strings.Contains(schemaScript, "schema/postgresql/v12") {
		bad("setup-schema.sh does not use the postgresql/v12 schema the Go setup uses")
	}
	var dyn map[string][]struct {
		Value       any            `yaml:"value"`
		Constraints map[string]any `yaml:"constraints"`
	}
	if err := yaml.Unmarshal([]byte(dynamicYAML), &dyn); err != nil {
		return append(problems, fmt.Errorf("dynamic config: %w", err))
	}
	got := map[string]any{}
	for key, values := range dyn {
		if len(values) != 1 || len(values[0].Constraints) != 0 {
			bad("dynamic config %s: the tested cluster takes one value without constraints", key)
			continue
		}
		got[key] = values[0].Value
	}
	if !reflect.DeepEqual(got, want.dynamic) {
		bad("dynamic config is %v; the tested cluster runs %v", got, want.dynamic)
	}
	return problems
}

// TestComposeServerMatchesTestedCluster keeps docker-compose.yml's Temporal server (plugin, databases, history
// shards, dynamic config, version) and schema job the same as the cluster chaos -topology cluster tests.
func TestComposeServerMatchesTestedCluster(t *testing.T) {
	script, err := os.ReadFile(composeSchemaScriptPath)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := os.ReadFile(composeDynamicConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkComposeServer(readCompose(t, composePath), string(script), string(dyn), testedCluster(t)) {
		t.Error(p)
	}
}

// TestComposeServerCheckCatches proves the check above fails on each kind of drift.
func TestComposeServerCheckCatches(t *testing.T) {
	base := readCompose(t, composePath)
	script, err := os.ReadFile(composeSchemaScriptPath)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := os.ReadFile(composeDynamicConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	want := testedCluster(t)
	if p := checkComposeServer(base, string(script), string(dyn), want); len(p) != 0 {
		t.Fatalf("the repository's files already drift: %v", p)
	}
	withEnv := func(name, value string) composeDoc {
		out := composeDoc{Services: map[string]composeService{}}
		for k, v := range base.Services {
			env := map[string]string{}
			for ek, ev := range v.Environment {
				env[ek] = ev
			}
			v.Environment = env
			out.Services[k] = v
		}
		svc := out.Services["temporal"]
		if value == "" {
			delete(svc.Environment, name)
		} else {
			svc.Environment[name] = value
		}
		return out
	}
	otherShards := want
	otherShards.shards = 4
	otherVersion := want
	otherVersion.serverVersion = "1.99.0"
	for _, c := range []struct {
		name          string
		compose       composeDoc
		script, dyn   string
		facts         clusterFacts
		wantSubstring string
	}{
		{"shards differ", withEnv("NUM_HISTORY_SHARDS", "4"), string(script), string(dyn), want, "NUM_HISTORY_SHARDS"},
		{"shards unset (image default 4)", withEnv("NUM_HISTORY_SHARDS", ""), string(script), string(dyn), want, "NUM_HISTORY_SHARDS"},
		{"tested cluster changed its shards", base, string(script), string(dyn), otherShards, "NUM_HISTORY_SHARDS"},
		{"plugin differs", withEnv("DB", "mysql8"), string(script), string(dyn), want, "DB is"},
		{"visibility database differs", withEnv("VISIBILITY_DBNAME", "vis"), string(script), string(dyn), want, "VISIBILITY_DBNAME"},
		{"server version differs", base, string(script), string(dyn), otherVersion, "version"},
		{"schema job skips visibility", base, strings.ReplaceAll(string(script), " temporal_visibility:visibility", ""), string(dyn), want, "visibility"},
		{"dynamic config drops a key", base, string(script), "# empty\n{}\n", want, "dynamic config"},
		{"dynamic config adds a key", base, string(script), string(dyn) + "\nhistory.x:\n  - value: 1\n    constraints: {}\n", want, "dynamic config"},
	} {
		problems := checkComposeServer(c.compose, c.script, c.dyn, c.facts)
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p.Error(), c.wantSubstring)
		}
		if !found {
			t.Errorf("%s: no problem naming %q in %v", c.name, c.wantSubstring, problems)
		}
	}
}

// throwaway runs deploy/postgres/throwaway.sh with a command and folder and returns its stdout's last line.
func throwaway(t *testing.T, cmd, dir string) string {
	t.Helper()
	c := exec.Command("../deploy/postgres/throwaway.sh", cmd, dir)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("throwaway.sh %s: %v\n%s", cmd, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// TestThrowawayPostgresIsIdempotent runs the deploy script's every command twice: a second start prints the same
// DSN, a restart keeps the port, stop and remove on a stopped or removed cluster succeed, and the DSN connects.
func TestThrowawayPostgresIsIdempotent(t *testing.T) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("connectflow-throwaway-test-%d", os.Getpid()))
	t.Cleanup(func() { throwaway(t, "remove", dir) })
	dsn := throwaway(t, "start", dir)
	if !strings.HasPrefix(dsn, "postgres://temporal:") || !strings.HasSuffix(dsn, "/postgres?sslmode=disable") {
		t.Fatalf("DSN %q", dsn)
	}
	if again := throwaway(t, "start", dir); again != dsn {
		t.Fatalf("a second start printed %q, want %q", again, dsn)
	}
	if got := throwaway(t, "dsn", dir); got != dsn {
		t.Fatalf("dsn printed %q, want %q", got, dsn)
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query over the DSN: %v", err)
	}
	throwaway(t, "stop", dir)
	throwaway(t, "stop", dir)
	if err := db.Ping(); err == nil {
		t.Fatal("the cluster still answers after stop")
	}
	if restarted := throwaway(t, "start", dir); restarted != dsn {
		t.Fatalf("a restart printed %q, want the same DSN %q (same password, same port while free)", restarted, dsn)
	}
	throwaway(t, "remove", dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("remove left %s: %v", dir, err)
	}
}
