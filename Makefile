# weft: build, package, install and test the managed plugin.
PLUGIN_NAME ?= weft
PLUGIN_TAG  ?= latest
PLUGIN      := $(PLUGIN_NAME):$(PLUGIN_TAG)
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BUILD       := build
BINARY      := $(BUILD)/weft
PLUGIN_DIR  := $(BUILD)/plugin
GO          ?= go
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -extldflags -static -X main.version=$(VERSION)"
# golangci-lint, pinned; installed from the Go module proxy into build/tools.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BUILD)/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build plugin install demo uninstall test unit bench fuzz lint clean

all: plugin

## build: static weft binary
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BINARY) ./cmd/weft

## plugin: build/plugin/{config.json,rootfs/} for `docker plugin create`
plugin: build
	scripts/rootfs.sh $(BINARY) $(PLUGIN_DIR)/rootfs
	cp config.json $(PLUGIN_DIR)/config.json

## install: create and enable weft:latest on the local engine
install: plugin
	-docker plugin disable -f $(PLUGIN) >/dev/null 2>&1
	-docker plugin rm -f $(PLUGIN) >/dev/null 2>&1
	docker plugin create $(PLUGIN) $(PLUGIN_DIR)
	docker plugin enable $(PLUGIN)

## demo: two containers on a weft bridge reach each other by name
demo:
	scripts/demo.sh $(PLUGIN)

uninstall:
	-docker plugin disable -f $(PLUGIN)
	-docker plugin rm -f $(PLUGIN)

## test: every test, as root: unit, kernel (namespaces), end-to-end (private dockerd lab)
test: plugin
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...

## unit: the tests that need neither root nor Docker
unit:
	$(GO) test -count=1 ./...

## fuzz: run every fuzz target in the repository for FUZZTIME each (plain
## `go test` runs only their seeds); a failing input lands in the package's
## testdata/fuzz/ and fails the run
FUZZTIME ?= 60s
# Go 1.26's fuzz coordinator can fail a run at the end of -fuzztime with
# "context deadline exceeded" and no failing input (go.dev/issue/75804,
# fixed in Go 1.27), so the fuzzing runs on that toolchain, fetched through
# the module proxy once; FUZZ_TOOLCHAIN=local uses the installed Go.
FUZZ_TOOLCHAIN ?= go1.27.3
fuzz:
	@grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | \
	sed -E 's|^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*).*|\1 \2|' | sort | \
	while read pkg fn; do \
		echo "== $$fn (./$$pkg) for $(FUZZTIME)"; \
		GOTOOLCHAIN=$(FUZZ_TOOLCHAIN) $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

## lint: golangci-lint with .golangci.yml (netlink calls only through internal/nl)
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	mkdir -p $(BUILD)/tools
	GOBIN=$(abspath $(BUILD)/tools) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BUILD)/tools/golangci-lint $@

## bench: measure weft against Docker's built-in drivers in the lab
bench: plugin
	$(GO) run ./cmd/weft-bench -plugin $(PLUGIN_DIR)

clean:
	rm -rf $(BUILD)
