package tests

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/connectflow/connectflow/internal/cmdtest"
)

// The deployment files, relative to this package.
const (
	composePath     = "../docker-compose.yml"
	composeDemoPath = "../deploy/compose.demo.yml"
	dockerfilePath  = "../Dockerfile"
	envExamplePath  = "../deploy/connectflow.env.example"
)

// composeDoc is the part of a compose file the checks read.
type composeDoc struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string              `yaml:"image"`
	Build       *composeBuild       `yaml:"build"`
	Environment map[string]string   `yaml:"environment"` // the map form only: the list form is refused below
	Command     []string            `yaml:"command"`
	Healthcheck *composeHealth      `yaml:"healthcheck"`
	Restart     string              `yaml:"restart"`
	Profiles    []string            `yaml:"profiles"`
	DependsOn   map[string]dependOn `yaml:"depends_on"`
	NetworkMode string              `yaml:"network_mode"`
}

type composeBuild struct {
	Context string `yaml:"context"`
	Target  string `yaml:"target"`
}

type composeHealth struct {
	Test    []string `yaml:"test"`
	Disable bool     `yaml:"disable"`
}

type dependOn struct {
	Condition string `yaml:"condition"`
}

// composeFacts is what the compose files are checked against: the binaries' own usage and the Dockerfile.
type composeFacts struct {
	env      map[string]map[string]bool // image target -> variables its binary reads
	required map[string]map[string]bool // image target -> variables its binary requires and has no default for
	flags    map[string]map[string]bool // image target -> its binary's flags
	stages   map[string]bool            // Dockerfile stages
	example  map[string]bool            // variables the env example file names
}

// interpolation is a ${NAME}, ${NAME:-default} or ${NAME:?message} in a compose value.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// checkCompose returns every way the base file (and the overrides on top of it) breaks the deployment's rules.
func checkCompose(base composeDoc, overrides map[string]composeDoc, facts composeFacts) []error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	jobs := map[string]bool{} // services others wait on to complete: one-shot jobs
	for _, svc := range base.Services {
		for dep, on := range svc.DependsOn {
			if on.Condition == "service_completed_successfully" {
				jobs[dep] = true
			}
		}
	}
	for _, name := range sortedKeys(base.Services) {
		svc := base.Services[name]
		if svc.Restart == "" {
			bad("service %s: no restart policy", name)
		}
		switch h := svc.Healthcheck; {
		case h == nil:
			bad("service %s: no healthcheck", name)
		case h.Disable && !jobs[name]:
			bad("service %s: healthcheck disabled, yet nothing waits for it to complete as a job", name)
		case !h.Disable && len(h.Test) == 0:
			bad("service %s: healthcheck has no test", name)
		}
		for dep := range svc.DependsOn {
			if _, ok := base.Services[dep]; !ok {
				bad("service %s: depends on %s, which is not a service", name, dep)
			}
		}
		if svc.Build == nil {
			if svc.Image == "" {
				bad("service %s: neither an image nor a build", name)
			}
			continue
		}
		problems = append(problems, checkOurs("", name, svc, facts, true)...)
		for _, v := range interpolated(svc) {
			if !facts.example[v] {
				bad("service %s: ${%s} is not in %s", name, v, envExamplePath)
			}
		}
	}
	for _, file := range sortedKeys(overrides) {
		for _, name := range sortedKeys(overrides[file].Services) {
			over := overrides[file].Services[name]
			svc, ok := base.Services[name]
			if !ok {
				bad("%s: service %s is not in the base file", file, name)
				continue
			}
			if mode, ok := strings.CutPrefix(over.NetworkMode, "service:"); ok {
				if _, exists := base.Services[mode]; !exists {
					bad("%s: service %s joins the network of %s, which is not a service", file, name, mode)
				}
			}
			if svc.Build != nil {
				over.Build = svc.Build
				problems = append(problems, checkOurs(file+": ", name, over, facts, false)...)
			}
		}
	}
	return problems
}

// checkOurs checks a service built from the Dockerfile: its target, its variables and its flags. complete asks
// that every setting its binary requires without a default is set.
func checkOurs(where, name string, svc composeService, facts composeFacts, complete bool) []error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(where+format, args...)) }
	target := svc.Build.Target
	if !facts.stages[target] {
		bad("service %s: build target %q is not a Dockerfile stage", name, target)
		return problems
	}
	reads, known := facts.env[target]
	if !known {
		bad("service %s: no binary known for build target %q", name, target)
		return problems
	}
	for _, v := range sortedKeys(svc.Environment) {
		if !reads[v] {
			bad("service %s: sets %s, which %s does not read", name, v, target)
		}
	}
	if complete {
		for _, v := range sortedKeys(facts.required[target]) {
			if _, set := svc.Environment[v]; !set {
				bad("service %s: %s requires %s, which is not set", name, target, v)
			}
		}
	}
	for _, arg := range svc.Command {
		flagName, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if strings.HasPrefix(arg, "-") && !facts.flags[target][flagName] {
			bad("service %s: command flag %s is not a flag of %s", name, arg, target)
		}
	}
	return problems
}

// interpolated lists the ${NAME}s in a service's environment.
func interpolated(svc composeService) []string {
	var names []string
	for _, v := range svc.Environment {
		for _, m := range interpolation.FindAllStringSubmatch(v, -1) {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return slices.Compact(names)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func readCompose(t *testing.T, path string) composeDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCompose(t, path, string(data))
}

func parseCompose(t *testing.T, what, text string) composeDoc {
	t.Helper()
	var doc composeDoc
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(doc.Services) == 0 {
		t.Fatalf("%s: no services", what)
	}
	return doc
}

// dockerStages lists the Dockerfile's "FROM ... AS name" stages.
func dockerStages(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		stages[m[1]] = true
	}
	return stages
}

// exampleVars lists the NAME= lines of the env example.
func exampleVars(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(envExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]bool{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if m := envLine.FindStringSubmatch(scanner.Text()); m != nil {
			vars[m[1]] = true
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// requiredEnv lists the variables a usage marks required and gives no default.
func requiredEnv(usage string) map[string]bool {
	req := map[string]bool{}
	for _, line := range strings.Split(usage, "\n") {
		m := usageEnv.FindStringSubmatch(line)
		if m != nil && strings.Contains(line, ", required") && !strings.Contains(line, ", default") {
			req[m[1]] = true
		}
	}
	return req
}

func composeFactsFromBinaries(t *testing.T) composeFacts {
	t.Helper()
	worker := binaryUsage(t, cmdtest.Build(t, "../worker"), "-h")
	bridge := binaryUsage(t, cmdtest.Build(t, "../webhookbridge"), "-h")
	sandbox := binaryUsage(t, cmdtest.Build(t, "../sandbox"), "-h")
	return composeFacts{
		env: map[string]map[string]bool{
			"worker":        usageSet(t, usageEnv, worker),
			"webhookbridge": usageSet(t, usageEnv, bridge),
			"sandbox":       {}, // every sandbox setting is a flag
		},
		required: map[string]map[string]bool{"worker": requiredEnv(worker), "webhookbridge": requiredEnv(bridge)},
		flags: map[string]map[string]bool{
			"worker":        usageSet(t, usageFlag, worker),
			"webhookbridge": usageSet(t, usageFlag, bridge),
			"sandbox":       usageSet(t, usageFlag, sandbox),
		},
		stages:  dockerStages(t),
		example: exampleVars(t),
	}
}

func TestComposeSetsOnlyWhatTheBinariesRead(t *testing.T) {
	facts := composeFactsFromBinaries(t)
	base := readCompose(t, composePath)
	demo := readCompose(t, composeDemoPath)
	for _, err := range checkCompose(base, map[string]composeDoc{composeDemoPath: demo}, facts) {
		t.Error(err)
	}

	// Every variable the example offers is one the compose file uses.
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range interpolation.FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
	}
	for _, v := range sortedKeys(facts.example) {
		if !used[v] {
			t.Errorf("%s offers %s, which %s never uses", envExamplePath, v, composePath)
		}
	}

	// The shape the issue asks for, beyond the rules above.
	for name, target := range map[string]string{"worker": "worker", "webhookbridge": "webhookbridge", "sandbox": "sandbox"} {
		svc, ok := base.Services[name]
		if !ok || svc.Build == nil || svc.Build.Target != target {
			t.Errorf("service %s is not built from the Dockerfile's %s stage", name, target)
		}
	}
	if got := base.Services["sandbox"].Profiles; !slices.Equal(got, []string{"demo"}) {
		t.Errorf("sandbox profiles %v, want [demo]", got)
	}
	for _, name := range []string{"postgresql", "temporal", "temporal-ui", "worker", "webhookbridge"} {
		if svc, ok := base.Services[name]; !ok || len(svc.Profiles) > 0 {
			t.Errorf("service %s must run without a profile", name)
		}
	}
	if on := base.Services["temporal"].DependsOn["temporal-schema"].Condition; on != "service_completed_successfully" {
		t.Errorf("temporal starts before its schema job completes (condition %q)", on)
	}
	for _, name := range []string{"worker", "webhookbridge"} {
		if demo.Services[name].NetworkMode != "service:sandbox" {
			t.Errorf("demo: %s does not share the sandbox's loopback", name)
		}
	}
	for _, v := range []string{"CONNECT_CLIENT_SECRET", "ZEROHASH_API_SECRET", "ZEROHASH_PASSPHRASE"} {
		if got := base.Services["worker"].Environment[v]; got != "${"+v+":-}" {
			t.Errorf("worker %s = %q: a secret comes from the operator's environment, never the file", v, got)
		}
	}
}

// TestComposeCheckCatches feeds the checker broken files: a checker that passes them would prove nothing.
func TestComposeCheckCatches(t *testing.T) {
	facts := composeFacts{
		env:      map[string]map[string]bool{"worker": {"TEMPORAL_ADDRESS": true, "CONNECT_CLIENT_ID": true}, "sandbox": {}},
		required: map[string]map[string]bool{"worker": {"CONNECT_CLIENT_ID": true}},
		flags:    map[string]map[string]bool{"worker": {"h": true}, "sandbox": {"addr": true, "autoplay": true}},
		stages:   map[string]bool{"worker": true, "sandbox": true},
		example:  map[string]bool{"CONNECT_CLIENT_ID": true},
	}
	const good = `
services:
  job:
    image: tools
    healthcheck: {disable: true}
    restart: on-failure
  worker:
    build: {context: ., target: worker}
    depends_on: {job: {condition: service_completed_successfully}}
    environment:
      TEMPORAL_ADDRESS: temporal:7233
      CONNECT_CLIENT_ID: ${CONNECT_CLIENT_ID:-}
    healthcheck: {test: [CMD, probe, "http://127.0.0.1:9090/metrics"]}
    restart: unless-stopped
  sandbox:
    build: {context: ., target: sandbox}
    command: [-addr=0.0.0.0:8090, -autoplay=confirmed]
    healthcheck: {test: [CMD, probe, "http://127.0.0.1:8090/api/v1/jwks"]}
    restart: unless-stopped
`
	if errs := checkCompose(parseCompose(t, "good", good), nil, facts); len(errs) > 0 {
		t.Fatalf("a valid file is refused: %v", errs)
	}
	tests := []struct {
		name     string
		from, to string // one edit of the good file
		override string // an override file, when set
		want     string
	}{
		{"unknown variable", "TEMPORAL_ADDRESS: temporal:7233", "TEMPORAL_HOSTPORT: temporal:7233",
			"", "sets TEMPORAL_HOSTPORT, which worker does not read"},
		{"required variable missing", "      CONNECT_CLIENT_ID: ${CONNECT_CLIENT_ID:-}\n", "",
			"", "worker requires CONNECT_CLIENT_ID, which is not set"},
		{"variable without an example", "${CONNECT_CLIENT_ID:-}", "${CLIENT_ID:-}",
			"", "${CLIENT_ID} is not in"},
		{"sandbox given a variable", "    command: [-addr", "    environment: {DEBUG: \"1\"}\n    command: [-addr",
			"", "sets DEBUG, which sandbox does not read"},
		{"unknown flag", "-autoplay=confirmed", "-auto-play=confirmed",
			"", "command flag -auto-play=confirmed is not a flag of sandbox"},
		{"no healthcheck", "    healthcheck: {test: [CMD, probe, \"http://127.0.0.1:9090/metrics\"]}\n", "",
			"", "service worker: no healthcheck"},
		{"no restart", "    restart: on-failure\n", "",
			"", "service job: no restart policy"},
		{"healthcheck disabled on a server", "service_completed_successfully", "service_started",
			"", "service job: healthcheck disabled"},
		{"unknown target", "target: worker", "target: workers",
			"", `build target "workers" is not a Dockerfile stage`},
		{"unknown dependency", "depends_on: {job:", "depends_on: {jobs:",
			"", "depends on jobs, which is not a service"},
		{"override sets an unknown variable", "", "",
			"services:\n  worker:\n    environment: {CONNECT_SECRET: x}\n", "demo.yml: service worker: sets CONNECT_SECRET"},
		{"override joins a missing network", "", "",
			"services:\n  worker:\n    network_mode: service:sandboxes\n", "joins the network of sandboxes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := good
			if tt.from != "" {
				if !strings.Contains(text, tt.from) {
					t.Fatalf("the good file lacks %q", tt.from)
				}
				text = strings.Replace(text, tt.from, tt.to, 1)
			}
			overrides := map[string]composeDoc{}
			if tt.override != "" {
				overrides["demo.yml"] = parseCompose(t, "override", tt.override)
			}
			var got []string
			for _, err := range checkCompose(parseCompose(t, tt.name, text), overrides, facts) {
				got = append(got, err.Error())
			}
			if !strings.Contains(strings.Join(got, "\n"), tt.want) {
				t.Fatalf("problems %q lack %q", got, tt.want)
			}
		})
	}
}

// promConfig is the part of deploy/prometheus/prometheus.yml the checks read.
type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// scrapeTargets lists a Prometheus config's targets per job as host:port.
func (c promConfig) scrapeTargets() map[string][]string {
	out := map[string][]string{}
	for _, sc := range c.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			out[sc.JobName] = append(out[sc.JobName], s.Targets...)
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				out[sc.JobName] = append(out[sc.JobName], fmt.Sprintf("%s:%d", n, d.Port))
			}
		}
	}
	return out
}

// portOf is the port of a listen address such as ":9090" or "0.0.0.0:8000".
func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

// checkMonitoring returns every way the compose file and the Prometheus config disagree: the Temporal server
// exports its metrics, and Prometheus scrapes the worker, the bridge and Temporal where they listen, on addresses
// the compose network reaches, and loads the alert rules.
func checkMonitoring(base composeDoc, prom promConfig) []error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	want := map[string]struct{ service, addr, setting string }{
		"temporal":           {"temporal", base.Services["temporal"].Environment["PROMETHEUS_ENDPOINT"], "PROMETHEUS_ENDPOINT"},
		"connectflow-worker": {"worker", base.Services["worker"].Environment["WORKER_METRICS_ADDR"], "WORKER_METRICS_ADDR"},
		"connectflow-bridge": {"webhookbridge", base.Services["webhookbridge"].Environment["BRIDGE_ADMIN_ADDR"], "BRIDGE_ADMIN_ADDR"},
	}
	targets := prom.scrapeTargets()
	for _, job := range sortedKeys(want) {
		w := want[job]
		switch {
		case w.addr == "":
			bad("service %s: %s is not set, so nothing serves its metrics", w.service, w.setting)
			continue
		case strings.HasPrefix(w.addr, "127.") || strings.HasPrefix(w.addr, "localhost"):
			bad("service %s: %s=%s listens on loopback only: Prometheus cannot reach it", w.service, w.setting, w.addr)
		}
		if got := targets[job]; !slices.Equal(got, []string{w.service + ":" + portOf(w.addr)}) {
			bad("prometheus.yml: job %s scrapes %v, want [%s:%s] (%s of service %s)", job, got, w.service, portOf(w.addr), w.setting, w.service)
		}
	}
	if !slices.Contains(prom.RuleFiles, "alerts.yml") {
		bad("prometheus.yml does not load alerts.yml")
	}
	if svc, ok := base.Services["prometheus"]; !ok || !slices.Equal(svc.Profiles, []string{"monitoring"}) {
		bad("service prometheus: missing, or not under the profile monitoring")
	}
	return problems
}

func readPromConfig(t *testing.T, text string) promConfig {
	t.Helper()
	var c promConfig
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("prometheus config: %v", err)
	}
	return c
}

func TestComposeMonitoring(t *testing.T) {
	base := readCompose(t, composePath)
	data, err := os.ReadFile(prometheusPath)
	if err != nil {
		t.Fatal(err)
	}
	prom := readPromConfig(t, string(data))
	for _, err := range checkMonitoring(base, prom) {
		t.Error(err)
	}

	// The checker catches a broken pair: a checker that passes them would prove nothing.
	broken := func(edit func(*composeDoc, *promConfig)) []error {
		b := readCompose(t, composePath)
		p := readPromConfig(t, string(data))
		temporal := b.Services["temporal"]
		temporal.Environment = maps.Clone(temporal.Environment)
		b.Services["temporal"] = temporal
		edit(&b, &p)
		return checkMonitoring(b, p)
	}
	for name, c := range map[string]struct {
		edit func(*composeDoc, *promConfig)
		want string
	}{
		"Temporal's metrics off": {func(b *composeDoc, _ *promConfig) { delete(b.Services["temporal"].Environment, "PROMETHEUS_ENDPOINT") },
			"service temporal: PROMETHEUS_ENDPOINT is not set"},
		"Temporal's metrics on loopback": {func(b *composeDoc, _ *promConfig) {
			b.Services["temporal"].Environment["PROMETHEUS_ENDPOINT"] = "127.0.0.1:8000"
		}, "listens on loopback only"},
		"scrape the wrong port": {func(_ *composeDoc, p *promConfig) { p.ScrapeConfigs[0].DNSSDConfigs[0].Port = 9999 },
			"job connectflow-worker scrapes [worker:9999]"},
		"no rules": {func(_ *composeDoc, p *promConfig) { p.RuleFiles = nil }, "does not load alerts.yml"},
	} {
		errs := broken(c.edit)
		if !strings.Contains(fmt.Sprint(errs), c.want) {
			t.Errorf("%s: errors %v, want one saying %q", name, errs, c.want)
		}
	}
}

// listenSettings are the settings and flags that make connectflow's services listen.
var listenSettings = []string{"WORKER_METRICS_ADDR", "WORKER_ADMIN_ADDR", "BRIDGE_ADDR", "BRIDGE_ADMIN_ADDR"}

// TestComposeDemoPortsDoNotCollide: the demo runs the worker and the bridge in the sandbox's network namespace,
// so no two of them may listen on one port (the bridge's admin port once was the worker's).
func TestComposeDemoPortsDoNotCollide(t *testing.T) {
	base := readCompose(t, composePath)
	demo := readCompose(t, composeDemoPath)
	owner := map[string]string{} // port -> who listens on it
	listen := func(who, addr string) {
		port := portOf(addr)
		if port == "" {
			return
		}
		if other, taken := owner[port]; taken {
			t.Errorf("demo: %s and %s both listen on port %s in the sandbox's network namespace", other, who, port)
		}
		owner[port] = who
	}
	for _, arg := range base.Services["sandbox"].Command {
		if v, ok := strings.CutPrefix(arg, "-addr="); ok {
			listen("sandbox -addr", v)
		}
	}
	for _, name := range sortedKeys(demo.Services) {
		if demo.Services[name].NetworkMode != "service:sandbox" {
			continue
		}
		env := maps.Clone(base.Services[name].Environment)
		maps.Copy(env, demo.Services[name].Environment)
		for _, v := range listenSettings {
			if addr, ok := env[v]; ok {
				listen(name+" "+v, addr)
			} else if name == "webhookbridge" && v == "BRIDGE_ADMIN_ADDR" {
				listen(name+" "+v+" (default)", "127.0.0.1:9091")
			}
		}
	}
	if len(owner) < 4 {
		t.Fatalf("found only %v: the check reads nothing", owner)
	}
}
