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
# The second engine of the e2e lab, Docker 29.8, built from the Go module
# proxy (moby's module versions are v2 betas; -X sets what dockerd reports)
# with the runc it needs; see `make engines`.
DOCKER29_VERSION    := 29.8.0
MOBY_MODULE_VERSION := v2.0.0-beta.24
RUNC_VERSION        := v1.5.3
ENGINE29_DIR        := $(BUILD)/engines/29.8
# The end-to-end tests that also run on Docker 29's nftables firewall
# backend: the bridge scenarios (e2e/bridge_test.go, with the leak check)
# and their recovery (plugin kill, dockerd restart, reboot). Swarm is left
# out: Docker 29 does not support it with nftables.
E2E_BRIDGE_TESTS := ^(TestBridge.*|TestICCOff|TestMasquerade|TestPublishedPorts|TestInternal|TestIsolationAndMultiTier|TestIPv6DualStack|TestNothingLeaks|TestPluginKilled|TestDockerdRestart|TestReboot)$$
# The engines e2e/vm runs inside the full-kernel VM, one VM each: Docker
# 29.8 and Debian's 20.10.
VM_ENGINES := $(abspath $(ENGINE29_DIR)) /usr/sbin
# golangci-lint, pinned; installed from the Go module proxy into build/tools.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BUILD)/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build plugin install demo uninstall engines test e2e e2e-vm unit bench fuzz lint clean

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

## engines: Docker 29.8 (dockerd, docker-proxy) and runc for the e2e lab,
## built from the Go module proxy into build/engines/29.8; kept while their
## build information matches the versions above
engines:
	GO=$(GO) scripts/engines.sh $(ENGINE29_DIR) $(DOCKER29_VERSION) $(MOBY_MODULE_VERSION) $(RUNC_VERSION)

## test: every test, as root: the packages' (unit, kernel, the VM) and, at
## the same time, the lab's own and the end-to-end suite on Docker 20.10 and
## 29.8 and its bridge scenarios on 29.8's nftables backend, one after the
## other (scripts/test.sh); every step runs even if one before it failed,
## and the last lines give each step's verdict and time
test: plugin engines
	$(GO) vet ./...
	GO=$(GO) scripts/test.sh '$(E2E_BRIDGE_TESTS)' '$(VM_ENGINES)'

## e2e: the end-to-end suite alone on one engine and backend, e.g.
## make e2e ENGINE=29.8 BACKEND=nftables RUN=TestBridge
ENGINE  ?= 20.10
BACKEND ?= iptables
RUN     ?= .
e2e: plugin
	scripts/e2e.sh $(ENGINE) $(BACKEND) -run '$(RUN)'

## e2e-vm: the end-to-end scenarios that need Debian's full kernel (ipvlan,
## 802.1q trunks, encrypted vxlan, swarm VIP and routing mesh, a host without
## br_netfilter), verbosely: a qemu VM per Docker engine (internal/vmlab),
## a lab of Docker hosts inside it. WEFT_VM_RUN=PATTERN runs some of them;
## VM_ENGINES="DIR ..." picks the engines (directories holding dockerd,
## docker-proxy and runc; default: Docker 29.8 and Debian's 20.10).
e2e-vm: plugin engines
	WEFT_VM_ENGINES='$(VM_ENGINES)' $(GO) test -v -count=1 -timeout 80m -run TestDockerInVM ./e2e/vm

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
