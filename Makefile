# Aerie. `make test` and `make demo` work as the first command on a fresh
# Debian/Ubuntu machine: they install what is missing first.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Node 24 from the npm registry (package "node") runs the tools, tests and the
# cloud bundle; tools with a "#!/usr/bin/env node" line must find it first.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE := $(CURDIR)/node_modules/.bin/node

# What the lab needs from Debian (network namespaces, nftables, WireGuard in
# user space, curl for the probes, openssl for TLS checks), the real DNS
# servers and tools the resolver is tested and measured against (unbound,
# dnsmasq, dig, dnsperf), and radvd, which announces the home's IPv6 on a
# Linux router.
DEB_PACKAGES := iproute2 nftables wireguard-tools wireguard-go curl iputils-ping procps openssl \
	unbound dnsmasq-base bind9-dnsutils dnsperf radvd
# Only `make bench` needs these: the MQTT broker bench/mqtt.ts compares with.
BENCH_DEB_PACKAGES := mosquitto
# What deps-debian installs; `make bench` adds its own (the prerequisites inherit it).
DEBS = $(DEB_PACKAGES)
bench: DEBS = $(DEB_PACKAGES) $(BENCH_DEB_PACKAGES)

.PHONY: all deps deps-node deps-debian build typecheck test test-unit demo bench ipk clean distclean

all: build

deps: deps-node deps-debian

deps-node: node_modules/.package-lock.json

# npm writes node_modules/.package-lock.json on every install: older than the
# lock file (or missing) means node_modules is out of date.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# As root only, and only for packages dpkg does not already list as installed,
# so a repeated run is quick and prints nothing.
deps-debian:
	@if [ "$$(id -u)" != 0 ]; then exit 0; fi; \
	if ! command -v dpkg-query >/dev/null; then echo "deps: not a Debian system; install: $(DEBS)" >&2; exit 0; fi; \
	missing=""; \
	for p in $(DEBS); do \
	  dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null | grep -qx installed || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps-node
	tsup

typecheck: deps-node
	tsc --noEmit -p tsconfig.json

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory typecheck
	$(NODE) test/run.ts

test-unit: deps-node
	$(NODE) test/run.ts unit

demo: deps
	@$(MAKE) --no-print-directory build
	$(NODE) test/lab/demo.ts

bench: deps
	@$(MAKE) --no-print-directory build
	@shopt -s nullglob; scripts=(bench/*.ts); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "bench: no benchmark scripts yet"; exit 0; fi; \
	for s in "$${scripts[@]}"; do echo "== $$s"; $(NODE) "$$s"; done

# The OpenWrt 24.10 packages (aerie, luci-app-aerie) in dist/ipk, without the
# OpenWrt SDK (see openwrt-feed/README.md).
ipk: build
	$(NODE) openwrt-feed/build-ipk.ts

clean:
	rm -rf dist tmp .tmp *.log

distclean: clean
	rm -rf node_modules
