# tenantmesh developer entry points. `make run` and `make test` need nothing
# but Go: every other dependency is installed by the targets themselves.

GO           ?= go
PKGS         ?= ./...
TEST_TIMEOUT ?= 30m
BIN          ?= bin/tenantmesh
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: run test test-deps build lint fmt-check vet tidy-check layering bench

## run: start the control plane on an embedded etcd (data in ./tenantmesh-data) with the example tenants
run:
	$(GO) run ./cmd/tenantmesh serve --preload examples/tenants

## test: install test dependencies, check formatting and vet, run every test with the race detector
test: test-deps lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

test-deps:
	./scripts/test-deps.sh

## build: build bin/tenantmesh
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/tenantmesh

## lint: gofmt, go vet, a tidy go.mod/go.sum and the package layering (internal/layering)
lint: fmt-check vet tidy-check layering

fmt-check:
	@unformatted="$$(gofmt -l $$($(GO) list -f '{{.Dir}}' $(PKGS)) | sort -u)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# go mod tidy -diff prints the changes tidy would make and exits non-zero
# when there are any; it only needs the module proxy (or the module cache).
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# The allowed-import table is in internal/layering/layering_test.go.
layering:
	$(GO) test -count=1 ./internal/layering/

## bench: run every benchmark once (no tests)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)
