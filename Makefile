# caio-licensing: `make run` serves the licensing API locally, `make test` runs every check.
SHELL := /bin/bash
GO ?= go
export CGO_ENABLED ?= 0
BIN := bin
GOFLAGS_BUILD := -trimpath

.PHONY: all build run test unit race fuzz fmt-check vet tidy-check lint-template bench clean test-tools

all: build

# The commit is stamped from git (a plain value: an unchanged tree links
# nothing, so `make build` takes well under a second). Only a release build
# (make build RELEASE=1) also stamps the date it was built.
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS_BUILD := -X main.commit=$(COMMIT)$(if $(RELEASE), -X main.buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ))
build:
	$(GO) build $(GOFLAGS_BUILD) -ldflags "$(LDFLAGS_BUILD)" -o $(BIN)/manage-licenses ./scripts/manage-licenses
	$(GO) build $(GOFLAGS_BUILD) -ldflags "$(LDFLAGS_BUILD)" -o $(BIN)/license-check ./scripts/license-check

# The main job: the licensing API on the local default database (created if missing).
ADDR ?= 127.0.0.1:3000
run: build
	$(BIN)/manage-licenses serve --addr $(ADDR)

# Lambda functions, for `sam build` (BuildMethod: makefile): one target per
# logical id, writing $(ARTIFACTS_DIR)/bootstrap. arm64 deploys; GOARCH=amd64
# builds what runs under the emulator here.
FUNCTIONS := Generate Distribute Activate Stats Reminders
ARTIFACTS_DIR ?= $(BIN)/lambda
LAMBDA_GOARCH := $(if $(filter command line environment,$(origin GOARCH)),$(GOARCH),arm64)
define lambda_target
.PHONY: build-$(1)Function
build-$(1)Function:
	CGO_ENABLED=0 GOOS=linux GOARCH=$$(LAMBDA_GOARCH) $$(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
		-o $$(ARTIFACTS_DIR)/bootstrap ./functions/$(2)
endef
$(foreach f,$(FUNCTIONS),$(eval $(call lambda_target,$(f),$(shell echo $(f) | tr A-Z a-z))))

build-lambdas:
	@for f in $(FUNCTIONS); do $(MAKE) --no-print-directory build-$${f}Function ARTIFACTS_DIR=$(BIN)/lambda/$$f || exit 1; done

# Test servers, built from pinned versions into a git-ignored cache.
# A stamp per version: changing a version here rebuilds that tool.
TOOLS := $(CURDIR)/.cache/bin
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
VERSITYGW_VERSION := v1.8.0
MAILPIT_VERSION := v1.33.1
SES_LOCAL_VERSION := 2.10.2
KUMO_VERSION := v0.33.1
test-tools: $(TOOLS)/.aws-lambda-rie-$(RIE_VERSION) $(TOOLS)/.versitygw-$(VERSITYGW_VERSION) \
	$(TOOLS)/.mailpit-$(MAILPIT_VERSION) $(TOOLS)/.aws-ses-v2-local-$(SES_LOCAL_VERSION) \
	$(TOOLS)/.kumo-secretsmanager-$(KUMO_VERSION) browser
# What the tests run that a package manager provides: installed with
# apt-get when this runs as root on Debian, else one line naming what to
# install. sqlite3 checks databases as the stock tool reads them; Node runs
# the SES emulator; gcc builds the race detector; Chromium renders the report;
# jq and shellcheck serve scripts/deploy.sh and its test; Python's
# cryptography checks the signed formats' test vectors independently.
.PHONY: browser deps
DEB_DEPS := sqlite3:sqlite3 node:nodejs npm:npm gcc:gcc chromium:chromium jq:jq shellcheck:shellcheck
deps:
	@missing=""; for d in $(DEB_DEPS); do command -v $${d%%:*} >/dev/null || missing="$$missing $${d#*:}"; done; \
	python3 -c 'import cryptography' 2>/dev/null || missing="$$missing python3-cryptography"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
		else echo "make test needs:$$missing (Debian: sudo apt-get install$$missing)"; exit 1; fi; \
	fi
	@command -v cfn-lint >/dev/null || { echo "make test needs cfn-lint (pip install cfn-lint)"; exit 1; }
browser: deps
$(TOOLS)/.aws-lambda-rie-$(RIE_VERSION):
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	touch $@
$(TOOLS)/.versitygw-$(VERSITYGW_VERSION):
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	touch $@
$(TOOLS)/.mailpit-$(MAILPIT_VERSION):
	GOBIN=$(TOOLS) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)
	touch $@
# Secrets Manager: kumo's own module at the pinned version, with a main that
# registers only its Secrets Manager service (shared/testtools/kumosecrets).
KUMO_SRC := $(CURDIR)/.cache/src/kumo-$(KUMO_VERSION)
$(TOOLS)/.kumo-secretsmanager-$(KUMO_VERSION): shared/testtools/kumosecrets/main.go
	rm -rf $(KUMO_SRC) && mkdir -p $(dir $(KUMO_SRC)) $(TOOLS)
	cp -r "$$(cd /tmp && $(GO) mod download -json github.com/sivchari/kumo@$(KUMO_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')" $(KUMO_SRC)
	chmod -R u+w $(KUMO_SRC) && mkdir -p $(KUMO_SRC)/cmd/caio-secretsmanager
	cp shared/testtools/kumosecrets/main.go $(KUMO_SRC)/cmd/caio-secretsmanager/main.go
	cd $(KUMO_SRC) && CGO_ENABLED=0 $(GO) build -o $(TOOLS)/kumo-secretsmanager ./cmd/caio-secretsmanager/main.go
	touch $@
$(TOOLS)/.aws-ses-v2-local-$(SES_LOCAL_VERSION):
	mkdir -p $(TOOLS) $(CURDIR)/.cache/npm
	npm install --no-audit --no-fund --silent --prefix $(CURDIR)/.cache/npm aws-ses-v2-local@$(SES_LOCAL_VERSION)
	touch $@
export CAIO_TEST_TOOLS := $(TOOLS)

# The AWS services the functions use, on this machine (docs/deployment.md):
# builds only what scripts/local-aws.sh runs (versitygw and kumo's Secrets
# Manager, pinned as above; about a minute of compiling the first time,
# cached after)
# and the CLI, then runs it until Ctrl-C.
.PHONY: local-aws
local-aws: $(TOOLS)/.versitygw-$(VERSITYGW_VERSION) $(TOOLS)/.kumo-secretsmanager-$(KUMO_VERSION) build
	./scripts/local-aws.sh

test: deps fmt-check vet tidy-check lint-template test-tools unit race fuzz

# CAIO_REQUIRE_TEST_TOOLS turns a missing test server into a failure, not a skip.
unit:
	CAIO_REQUIRE_TEST_TOOLS=1 $(GO) test -count=1 ./...

# The race detector needs cgo; it runs on the packages where concurrency lives.
race:
	CGO_ENABLED=1 $(GO) test -count=1 -race ./shared/licensing/ ./shared/httpapi/ ./shared/lambdaevent/ ./shared/s3log/ ./shared/s3store/ ./shared/ratelimit/

# A count, not a duration: Go 1.26's coordinator can fail a duration run at
# its deadline on a loaded machine with no input to blame (go.dev/issue/75804).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime 100000x ./shared/licensekey/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 50000x ./shared/pagelog/

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

tidy-check:
	$(GO) mod tidy -diff

lint-template:
	cfn-lint template.yaml

bench: test-tools
	$(GO) test -run '^$$' -bench . -benchmem ./shared/...
	$(GO) test -run '^$$' -bench ColdStart -benchtime 20x ./functions/

clean:
	rm -rf $(BIN)
