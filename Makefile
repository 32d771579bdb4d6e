# Tend — run `make help` for the targets.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin/tend
DEMO_DURATION ?= 150s
BENCH_DB ?= tend_bench
LOAD_DURATION ?= 20s
export GOFLAGS ?= -buildvcs=false
# -buildvcs=false leaves the commit out of the build info: `tend version` reads it from here.
COMMIT := $(shell c=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null || c=$$c+dirty; echo $$c; })

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

build: ## Build the tend binary into bin/
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o $(BIN) ./cmd/tend

demo: build ## Run the whole system locally with simulated patients (DEMO_DURATION=0 runs until Ctrl-C)
	./$(BIN) demo --duration $(DEMO_DURATION)

VALIDATOR := fhir/testdata/validator

$(VALIDATOR)/node_modules: $(VALIDATOR)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(VALIDATOR) --no-audit --no-fund; else echo "npm not found: FHIR validation tests will skip (fail under CI=true)"; fi

CONSOLE_TEST := api/console/test

$(CONSOLE_TEST)/node_modules: $(CONSOLE_TEST)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(CONSOLE_TEST) --no-audit --no-fund; else echo "npm not found: the console's browser test will skip (fail under CI=true)"; fi

# Progress package by package (cmd/tend/internal/testrun); PostgreSQL found or
# started by .ci/postgres; template databases the run created dropped at the end.
test: $(VALIDATOR)/node_modules $(CONSOLE_TEST)/node_modules ## Vet and run every test with the race detector against a real PostgreSQL (started if none answers; FHIR validation and the console's browser test through Node)
	$(GO) vet ./...
	@url=$$(bash .ci/postgres) && \
		TEST_DATABASE_URL="$$url" $(GO) run ./cmd/tend/internal/testrun -- -race -count=1 -timeout 20m ./...

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

console-screenshot: $(CONSOLE_TEST)/node_modules ## Refresh docs/console.png (desktop) and docs/console-phone.png by running the console's browser test
	TEND_CONSOLE_SCREENSHOT=docs/console.png $(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./api/

bench: ## Go benchmarks (rules evaluation, ingest, FHIR Bundle vs JSON batch)
	$(GO) test -run '^$$' -bench . -benchmem ./rules/ ./engine/...
	$(GO) test -run '^$$' -bench BenchmarkBundleIngest -benchmem ./api/

bench-load: build ## Start a server on database $(BENCH_DB) and drive it with `tend load` (single readings, then batches of 500)
	@BENCH_DB=$(BENCH_DB) LOAD_DURATION=$(LOAD_DURATION) BIN=$(BIN) bash docs/bench-load.sh

FUZZTIME ?= 30s
fuzz: ## Fuzz the parsers and the API's JSON decoders for FUZZTIME (30s) each
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime $(FUZZTIME) ./rpm/
	$(GO) test -run '^$$' -fuzz FuzzLoadRules -fuzztime $(FUZZTIME) ./rules/
	for t in FuzzDecodeReadings FuzzDecodeSymptomReport FuzzDecodeParams FuzzCheckRuleTypes; do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./api/ || exit 1; done

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## Remove build output
	rm -rf bin

.PHONY: help build demo test console-screenshot lint bench bench-load fuzz tidy clean
