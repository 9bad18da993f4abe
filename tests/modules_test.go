package tests

import (
	"os"
	"regexp"
	"testing"
)

// TestModulesAgreeOnTemporalVersions keeps the modules (docs/modules.md) on one Temporal server and one SDK: go.work
// builds with the highest version any of them requires, so a module that drifted would be tested with a version
// its own go.mod does not name (and the compose check reads the server version from dev/go.mod).
func TestModulesAgreeOnTemporalVersions(t *testing.T) {
	mods := []string{"../go.mod", "../dev/go.mod", "../bench/go.mod", "go.mod"}
	for _, module := range []string{"go.temporal.io/server", "go.temporal.io/sdk"} {
		re := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + ` (v\S+)`)
		versions := map[string]string{}
		for _, path := range mods {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if m := re.FindSubmatch(data); m != nil {
				versions[path] = string(m[1])
			}
		}
		if versions["../dev/go.mod"] == "" {
			t.Fatalf("dev/go.mod does not require %s: the check proves nothing", module)
		}
		for path, v := range versions {
			if v != versions["../dev/go.mod"] {
				t.Errorf("%s requires %s %s; dev/go.mod requires %s", path, module, v, versions["../dev/go.mod"])
			}
		}
	}
}
