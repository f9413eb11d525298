# Nimbus — build, run and test. Meant for root on a fresh Debian 12 box with Go
# installed; every target is idempotent and quiet when there is nothing to do.
#
#   make run    install what the all-in-one needs, build, start it on :8080
#   make test   install test tools, build, vet, Go tests, browser tests, openstack CLI

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
GOBIN   := $(shell $(GO) env GOBIN)
GOBIN   := $(or $(GOBIN),$(shell $(GO) env GOPATH)/bin)
export PATH := $(PATH):/usr/local/go/bin:$(GOBIN)

# Debian packages for running the all-in-one (`make run`) and for `make test`.
# IMAGE_PKGS build the tiny guest image (tinyimage.HostPackages).
IMAGE_PKGS ?= extlinux syslinux-common e2fsprogs qemu-utils
# The node agent runs guests with libvirt and QEMU; config drives are ISOs.
VIRT_PKGS  ?= libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils genisoimage
# The network data plane: bridges, namespaces, iptables (nf_tables), dnsmasq.
NET_PKGS   ?= iproute2 iptables dnsmasq-base conntrack busybox-static
# openssh-client: to log in to guests over their floating IPs.
RUN_PKGS   ?= $(IMAGE_PKGS) $(VIRT_PKGS) $(NET_PKGS) openssh-client
# The tests also boot the guest under TCG and build config drives; cpio and
# fdisk check the initramfs and partition table the builder writes.
TEST_PKGS  ?= $(IMAGE_PKGS) $(VIRT_PKGS) $(NET_PKGS) chromium chromium-driver python3-openstackclient \
	cpio fdisk

DATA   ?= ./data
LISTEN ?=

# npm rewrites this file on every install: it tells make when node_modules was made.
NPM_STAMP := node_modules/.package-lock.json

.PHONY: deps-run deps-test assets generate build image run test bench clean

deps-run:
	@scripts/apt-ensure $(RUN_PKGS)
	@scripts/libvirt-ensure

deps-test: $(NPM_STAMP)
	@scripts/apt-ensure $(TEST_PKGS)
	@scripts/libvirt-ensure

# npm ci only when node_modules is missing or older than the manifests.
$(NPM_STAMP): package.json package-lock.json
	@echo "npm ci"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# static/vendor/ is committed, so `go build` never needs npm; this refreshes it.
# noVNC's core/ and vendor/ ES-module trees are mirrored as they are: the
# console page (novnc/) imports core/rfb.js straight from /static/vendor/novnc/.
assets: $(NPM_STAMP)
	@mkdir -p static/vendor/novnc/docs
	@scripts/vendor-copy node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	@scripts/vendor-copy node_modules/htmx-ext-ws/dist/ws.min.js static/vendor/htmx-ext-ws.min.js
	@scripts/vendor-tree node_modules/@novnc/novnc/core static/vendor/novnc/core
	@scripts/vendor-tree node_modules/@novnc/novnc/vendor static/vendor/novnc/vendor
	@for f in package.json LICENSE.txt AUTHORS docs/LICENSE.MPL-2.0 docs/LICENSE.BSD-3-Clause; do \
		scripts/vendor-copy node_modules/@novnc/novnc/$$f static/vendor/novnc/$$f; \
	done

# templ must be the version go.mod pins (generated code calls its runtime).
generate:
	@templ=$$(scripts/templ-ensure) && "$$templ" generate -log-level warn

build: generate
	@$(GO) build -o bin/nimbus ./cmd/nimbus

# The tiny guest image, built once from Debian packages; `nimbus up`
# registers it as the public image "tiny".
image: deps-run build
	@mkdir -p $(DATA)
	@test -f $(DATA)/tiny.qcow2 || ./bin/nimbus image build --output $(DATA)/tiny.qcow2

run: deps-run build image
	./bin/nimbus up --data $(DATA) $(if $(LISTEN),--listen $(LISTEN))

# Building is a step of the recipe, not a prerequisite, so that even a
# compile error ends the output with a RESULT line.
test: deps-test
	@$(MAKE) build || { echo; echo "RESULT: FAIL (build failed)"; exit 1; }
	@scripts/run-tests

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@$(MAKE) build
	@scripts/bench-compute

# Never removes $(DATA): it holds the cloud's state and the admin password.
clean:
	rm -rf bin/ e2e/artifacts/ node_modules/
