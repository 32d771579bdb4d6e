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

# The MQTT tests drive Debian's mosquitto-clients, and the broker-cluster
# tests a Mosquitto broker; installed when missing and possible (root with
# apt-get), else those tests skip (and fail under CI=true).
mqtt-clients:
	@command -v mosquitto_pub >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients >/dev/null; }; \
		else echo "mosquitto_pub not found: the MQTT client tests will skip (fail under CI=true)"; fi; }
	@command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; }; \
		else echo "mosquitto not found: the broker-cluster tests will skip (fail under CI=true)"; fi; }

APP_TEST := api/app/test

$(APP_TEST)/node_modules: $(APP_TEST)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(APP_TEST) --no-audit --no-fund; else echo "npm not found: the patient app's browser test will skip (fail under CI=true)"; fi

E2EE_TEST := e2ee/testdata/node

$(E2EE_TEST)/node_modules: $(E2EE_TEST)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(E2EE_TEST) --no-audit --no-fund; else echo "npm not found: the e2ee interoperability test will skip (fail under CI=true)"; fi

# The console's and the patient app's one copy of the @hpke packages
# (api/console/vendor/hpke.js, with hpke.LICENSE), built from the versions
# e2ee/testdata/node/package-lock.json pins; e2ee's TestHPKEBundle fails when
# the committed files are not what this builds.
hpke-bundle: $(E2EE_TEST)/node_modules ## Rebuild api/console/vendor/hpke.js from the pinned @hpke npm packages (after changing their versions)
	node $(E2EE_TEST)/bundle.mjs

OPENAPI_TEST := api/openapi/test

$(OPENAPI_TEST)/node_modules: $(OPENAPI_TEST)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(OPENAPI_TEST) --no-audit --no-fund; else echo "npm not found: the OpenAPI client and lint tests will skip (fail under CI=true)"; fi

# Progress package by package (cmd/tend/internal/testrun); PostgreSQL found or
# started by .ci/postgres; template databases the run created dropped at the end.
test: $(VALIDATOR)/node_modules $(CONSOLE_TEST)/node_modules $(APP_TEST)/node_modules $(OPENAPI_TEST)/node_modules $(E2EE_TEST)/node_modules mqtt-clients ## Vet and run every test with the race detector against a real PostgreSQL (started if none answers; FHIR validation, the browser tests of the console and the patient app, the generated TypeScript client, the OpenAPI lint and the e2ee interoperability check through Node)
	$(GO) vet ./...
	@url=$$(bash .ci/postgres) && \
		TEST_DATABASE_URL="$$url" $(GO) run ./cmd/tend/internal/testrun -- -race -count=1 -timeout 20m ./...

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

console-screenshot: $(CONSOLE_TEST)/node_modules ## Refresh docs/console.png (desktop) and docs/console-phone.png by running the console's browser test
	TEND_CONSOLE_SCREENSHOT=docs/console.png $(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./api/

app-screenshot: $(APP_TEST)/node_modules ## Refresh docs/patient-app.png by running the patient app's browser test
	TEND_APP_SCREENSHOT=docs/patient-app.png $(GO) test -count=1 -run '^TestPatientAppInBrowser$$' ./api/

bench: ## Go benchmarks (rules evaluation, ingest, FHIR Bundle vs JSON batch)
	$(GO) test -run '^$$' -bench . -benchmem ./rules/ ./engine/...
	$(GO) test -run '^$$' -bench BenchmarkBundleIngest -benchmem ./api/

bench-mqtt: ## MQTT: 1,000 devices over HTTP vs MQTT QoS 1 (and PUBACK latency at half the peak); memory of 10,000 idle connections
	$(GO) test -run '^$$' -bench BenchmarkDevices -benchtime 20000x ./api/mqtt/
	$(GO) test -run '^$$' -bench BenchmarkMQTTIdleConnections -benchtime 1x ./cmd/tend/

bench-load: build ## Start a server on database $(BENCH_DB) and drive it with `tend load` (single readings, then batches of 500)
	@BENCH_DB=$(BENCH_DB) LOAD_DURATION=$(LOAD_DURATION) BIN=$(BIN) bash docs/bench-load.sh

ROUNDS ?= 5
bench-compare: ## Compare BASE=<rev> with the working tree: raw-database baselines and `tend load`, interleaved for ROUNDS (5) rounds, with medians
	@BASE=$(BASE) ROUNDS=$(ROUNDS) BENCH_DB=$(BENCH_DB) LOAD_DURATION=$(LOAD_DURATION) bash docs/bench-compare.sh

FUZZTIME ?= 30s
fuzz: ## Fuzz the parsers and the API's JSON decoders for FUZZTIME (30s) each
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime $(FUZZTIME) ./rpm/
	$(GO) test -run '^$$' -fuzz FuzzLoadRules -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz FuzzEnvelope -fuzztime $(FUZZTIME) ./e2ee/
	for t in FuzzSniff FuzzMediaDuration; do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./engine/messaging/ || exit 1; done
	for t in FuzzDecodeReadings FuzzDecodeSymptomReport FuzzDecodeParams FuzzCheckRuleTypes; do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./api/ || exit 1; done

# A private PostgreSQL cluster (run as the postgres user), tend serve and tend
# worker under load with critical readings: kill -9 of each five times,
# pg_terminate_backend five times, one pg_ctl restart -m immediate. Fails on any
# lost or duplicated reading, answer other than 2xx/503 + Retry-After, alert
# without delivery jobs, or push in flight at a kill not re-sent within 20 s.
chaos: build ## Break a running Tend on purpose (kill -9, pg_terminate_backend, immediate restart) and check nothing was lost (~2 min)
	$(GO) run ./cmd/tend/internal/chaos -scenario chaos -tend $(BIN)

# Three tend serve and two tend worker on one private cluster: tend load against
# one process and against three, then escalation steps, medication reminders and
# a broadcast's copies, each done exactly once across the processes.
scale: build ## Several processes on one database: throughput, and work done exactly once across them (~2.5 min)
	$(GO) run ./cmd/tend/internal/chaos -scenario scale -tend $(BIN)

# pg_auto_failover (Debian postgresql-15-auto-failover, installed with apt-get
# when missing): a monitor and two nodes with synchronous replication, two tend
# serve and one tend worker on a multi-host URL; kill -9 of the primary's postmaster.
ha-test: build ## Fail a pg_auto_failover primary over under load and report what the clients saw (~3 min; not in CI)
	@command -v pg_autoctl >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing postgresql-15-auto-failover with apt-get"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-auto-failover pg-auto-failover-cli >/dev/null; \
		else echo "pg_autoctl is missing: apt-get install postgresql-15-auto-failover" >&2; exit 1; fi; }
	$(GO) run ./cmd/tend/internal/chaos -scenario ha -tend $(BIN)

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## Remove build output
	rm -rf bin

.PHONY: help build demo test mqtt-clients bench-mqtt console-screenshot app-screenshot lint bench bench-load bench-compare fuzz chaos scale ha-test tidy clean
