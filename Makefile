# caio-licensing: `make run` serves the licensing API locally, `make test` runs every check.
SHELL := /bin/bash
GO ?= go
export CGO_ENABLED ?= 0
BIN := bin
GOFLAGS_BUILD := -trimpath

.PHONY: all build run test unit race fuzz fmt-check vet tidy-check lint-template bench clean

all: build

build:
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/manage-licenses ./scripts/manage-licenses

run: build
	@echo "make run: the local licensing API arrives with the Lambda functions issue; the CLI is at $(BIN)/manage-licenses"

test: fmt-check vet tidy-check lint-template unit race fuzz

unit:
	$(GO) test -count=1 ./...

# The race detector needs cgo; it runs on the packages where concurrency lives.
race:
	CGO_ENABLED=1 $(GO) test -count=1 -race -run 'Contention' ./shared/licensing/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime 10s ./shared/licensekey/

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

tidy-check:
	$(GO) mod tidy -diff

lint-template:
	cfn-lint template.yaml

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./shared/...

clean:
	rm -rf $(BIN)
