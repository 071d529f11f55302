# Shoal: the two commands a new machine needs are `make run` and `make test`.
# Everything the tests need (Go modules, a pinned MinIO, kcat, systemd-analyze)
# is installed here.

GO        ?= go
BIN       := $(CURDIR)/bin
TOOLS     := $(CURDIR)/.tools
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO     := $(TOOLS)/minio
TEST_TIMEOUT ?= 25m
FUZZTIME  ?= 10s
BENCH_SECONDS ?= 10

export SHOAL_MINIO_BIN := $(MINIO)

.PHONY: all build run test unit integration bench fuzz lint deps tools clean

all: build

## build: compile shoald (and shoalctl, once cmd/shoalctl exists) into ./bin
build:
	$(GO) build -o $(BIN)/shoald ./cmd/shoald
	if [ -d cmd/shoalctl ]; then $(GO) build -o $(BIN)/shoalctl ./cmd/shoalctl; fi

## run: one broker on the embedded default (127.0.0.1:9092, data and objects under ./data)
run: build
	$(BIN)/shoald

## test: vet, then every test with the race detector, after installing what the tests need.
## Packages run one at a time (-p 1): the integration package's multi-process
## cluster tests measure failover and must not starve for CPU on a 2-core machine.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./...

## unit: the fast tests only (no integration package)
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /integration)

## bench: WAL append ceiling and the end-to-end produce/consume load (figures go to docs/benchmarks.md)
bench: deps
	$(GO) test ./wal -run '^$$' -bench . -benchtime 3s
	SHOAL_BENCH_SECONDS=$(BENCH_SECONDS) $(GO) test ./integration -run '^$$' -bench . -benchtime 1x -timeout 30m

## fuzz: run every fuzz target for FUZZTIME
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  dir=$$(dirname $$f); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
	    echo "== $$dir $$t"; \
	    $(GO) test $$dir -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

## lint: formatting, vet and the architecture rules
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./internal/archtest

## deps: Go modules, the pinned MinIO server, kcat and systemd-analyze
deps: tools
	$(GO) mod download

tools: $(MINIO) kcat systemd-analyze

$(MINIO):
	GOBIN=$(TOOLS) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

.PHONY: kcat
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
	  echo "installing kcat (Debian package)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kcat >/dev/null; }

# systemd-analyze verifies docs/systemd/shoald.service (integration/systemd_test.go).
.PHONY: systemd-analyze
systemd-analyze:
	@command -v systemd-analyze >/dev/null 2>&1 || { \
	  echo "installing systemd-analyze (Debian package systemd)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq systemd >/dev/null; }

clean:
	rm -rf $(BIN)
