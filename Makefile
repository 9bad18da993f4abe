# connectflow's checks. `make test` is what CI runs (.ci/run) and what the README names.
SHELL := /bin/bash
GO ?= go
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
# Packages that link the Temporal server build slowly and are too heavy for -race on 2 cores.
SERVER_PKGS = $$($(GO) list ./... | grep -E '/(tests|dev|bench)(/|$$)')
OTHER_PKGS = $$($(GO) list ./... | grep -vE '/(tests|dev|bench)(/|$$)')
FUZZTIME ?= 10s

.PHONY: test fmt vet workflowcheck unit integration fuzz bench

test: fmt vet workflowcheck unit integration fuzz

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

workflowcheck:
	$(GO) run $(WORKFLOWCHECK) ./workflows/...

# Everything that does not link the Temporal server, under the race detector.
unit:
	$(GO) test -race -count=1 $(OTHER_PKGS)

# Real Temporal server in the test process (temporaltest), real sandbox, real worker.
integration:
	$(GO) test -count=1 -timeout 30m $(SERVER_PKGS)

# A short run of each fuzz target; crashers land in testdata/fuzz and become regression seeds.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME) ./connect/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyWebhook$$' -fuzztime $(FUZZTIME) ./connect/
	$(GO) test -run '^$$' -fuzz '^FuzzParseBalanceEvent$$' -fuzztime $(FUZZTIME) ./zerohash/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./connect/ ./zerohash/ ./codec/ ./bridge/
