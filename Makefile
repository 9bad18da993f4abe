# connectflow's checks. `make test` is what CI runs (.ci/run) and what the README names.
SHELL := /bin/bash
GO ?= go
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
# The modules (docs/modules.md): the root holds the product and links no Temporal server; dev/, bench/ and tests/
# link it and are modules of their own, joined to the root by go.work. In workspace mode `go list ./...` from the
# root lists the root module only, so the server modules are named explicitly.
SERVER_MODULES := dev bench tests
MODULES := . $(SERVER_MODULES)
# Packages that link the Temporal server build slowly and are too heavy for -race on 2 cores.
SERVER_PKGS = $$($(GO) list $(SERVER_MODULES:%=./%/...))
OTHER_PKGS = $$($(GO) list ./...)
FUZZTIME ?= 5s

.PHONY: test tidy tidy-check fmt vet workflowcheck unit integration fuzz bench chaos-smoke chaos-cluster-smoke

test: tidy-check fmt vet workflowcheck alerts unit integration bench-smoke chaos-smoke chaos-cluster-smoke fuzz

# Fails when a module's go.mod/go.sum is not what `go mod tidy` makes it (printing the diff), or when go.work does
# not join exactly the modules listed above. `make tidy` fixes the first.
tidy-check:
	@set -e; want=$$(for m in $(MODULES); do (cd $$m && pwd -P); done | sort); \
		have=$$($(GO) list -m -f '{{.Dir}}' | xargs -n1 realpath | sort); \
		found=$$(git ls-files --cached --others --exclude-standard -- go.mod '*/go.mod' | xargs -n1 dirname | xargs -n1 realpath | sort); \
		if [ "$$want" != "$$have" ] || [ "$$want" != "$$found" ]; then \
			echo "modules differ: Makefile MODULES:"; echo "$$want"; echo "go.work:"; echo "$$have"; echo "go.mod files:"; echo "$$found"; exit 1; fi
	@set -e; bad=; for m in $(MODULES); do \
		(cd $$m && GOWORK=off $(GO) mod tidy -diff) || { echo "^ $$m: go.mod/go.sum not tidy (run: make tidy)"; bad=1; }; \
		done; [ -z "$$bad" ]; echo "go mod tidy -diff: clean in $(MODULES)"

tidy:
	@set -e; for m in $(MODULES); do echo "go mod tidy in $$m"; (cd $$m && GOWORK=off $(GO) mod tidy); done

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./... $(SERVER_MODULES:%=./%/...)

workflowcheck:
	$(GO) run $(WORKFLOWCHECK) ./workflows/...

# Everything that does not link the Temporal server, under the race detector.
unit:
	$(GO) test -race -count=1 $(OTHER_PKGS)

# Real Temporal server in the test process (temporaltest), real sandbox, real worker.
integration:
	$(GO) test -count=1 -timeout 30m $(SERVER_PKGS)

# A short run of each fuzz target; crashers land in testdata/fuzz and become regression seeds.
FUZZ_TARGETS := connect:FuzzParseEvent connect:FuzzVerifyWebhook connect:FuzzDecodeSession connect:FuzzParseSessionJWT connect:FuzzStatusError \
	zerohash:FuzzParseBalanceEvent zerohash:FuzzConstructBalanceEvent zerohash:FuzzWebhookVerifier zerohash:FuzzVerifyRequest \
	zerohash:FuzzParseMovementsPage \
	bridge:FuzzParseSDKRelay bridge:FuzzConnectMessage bridge:FuzzConnectHeaderChecks \
	codec:FuzzDecode codec:FuzzParseKeys codec:FuzzKeysFileText internal/settings:FuzzParse internal/decimal:FuzzNormalize internal/bridgeapp:FuzzParseSize internal/bridgeapp:FuzzLoadSettings \
	platformhook:FuzzVerify transferapi:FuzzParseTokens transferapi:FuzzStartRequest workflows:FuzzWebhookID workflows:FuzzConnectIDQueries
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ./$$pkg/ for $(FUZZTIME)"; \
		GO=$(GO) .ci/fuzz-one.sh $$pkg $$name $(FUZZTIME) || exit 1; done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./connect/ ./zerohash/ ./codec/ ./bridge/

# The fault-injection suite at CI size: the real binaries as separate processes, every fault injected at least
# once, every outcome checked, the logs scanned; exits non-zero on any failure. docs/reliability.md has the full size.
chaos-smoke:
	$(GO) run ./tests/chaos -small -seed 20261122

# The same suite on the production topology at CI size: a throwaway PostgreSQL (deploy/postgres/throwaway.sh
# installs Debian's package when missing), 3 Temporal nodes with 16 history shards behind a balancer, one node
# SIGKILLed and one SIGTERMed mid-run (each restarted later), the shard handover timed. Whole-Temporal outages are
# left to chaos-smoke above.
chaos-cluster-smoke:
	$(GO) run ./tests/chaos -topology cluster -small -outages 0 -seed 20261122

# `go run ./bench` at a tiny size: proves the benchmark command runs end to end (every scenario, real server,
# bridge and worker); it asserts no speed. The numbers are in docs/performance.md.
.PHONY: bench-smoke
bench-smoke:
	$(GO) run ./bench -tiny -quiet -json /dev/null

# The Prometheus alert rules and their unit tests (deploy/prometheus). promtool comes from Debian's prometheus
# package; promtool.sh installs it when missing (root, as in CI).
.PHONY: alerts
alerts:
	deploy/prometheus/promtool.sh check config deploy/prometheus/prometheus.yml
	deploy/prometheus/promtool.sh check rules deploy/prometheus/alerts.yml
	deploy/prometheus/promtool.sh test rules deploy/prometheus/alerts_test.yml

# The product binaries into bin/, -trimpath, each answering -version with the commit (internal/buildinfo): the go
# tool stamps it in a plain git checkout; the -X below carries it where the stamp is off (GOFLAGS=-buildvcs=false,
# a git worktree, an export without .git).
VCS_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
VCS_TIME ?= $(shell git log -1 --format=%cI 2>/dev/null)
BUILDINFO := github.com/connectflow/connectflow/internal/buildinfo
.PHONY: build
build:
	$(GO) build -trimpath -ldflags "-X $(BUILDINFO).vcsRevision=$(VCS_REVISION) -X $(BUILDINFO).vcsTime=$(VCS_TIME)" \
		-o bin/ ./worker ./webhookbridge ./starter ./sandbox ./deploy/probe
