# redis-ha-ocf: build, install, test, bench.
PREFIX  ?= /usr
DESTDIR ?=
CARGO   ?= cargo

BIN     ?= target/release/redis-ha
LIBDIR  := $(DESTDIR)$(PREFIX)/lib/redis-ha
OCFDIR  := $(DESTDIR)$(PREFIX)/lib/ocf/resource.d/redis-ha
SBINDIR := $(DESTDIR)$(PREFIX)/sbin
AGENTS  := RedisLBReadBlock RedisLBWriteBlock
# Sentinel's scripts: under /usr/lib, the only place Debian's sandboxed Sentinel may run.
SCRIPTS := sentinel-reconfig sentinel-notify

.PHONY: all build install install-files uninstall deb test test-hosts lint fuzz bench bench-failover bench-switchover chaos demo clean

all: build

build:
	$(CARGO) build --release --locked

install: build install-files

# Directories are 0755 whatever the umask: ocf-tester and Pacemaker run meta-data as nobody.
install-files:
	install -d -m 0755 $(LIBDIR) $(OCFDIR) $(SBINDIR)
	install -m 0755 $(BIN) $(LIBDIR)/redis-ha
	ln -sfn ../lib/redis-ha/redis-ha $(SBINDIR)/redis-ha
	for a in $(AGENTS); do ln -sfn ../../../redis-ha/redis-ha $(OCFDIR)/$$a; done
	for s in $(SCRIPTS); do ln -sfn redis-ha $(LIBDIR)/$$s; done

uninstall:
	for a in $(AGENTS); do rm -f $(OCFDIR)/$$a; done
	for s in $(SCRIPTS); do rm -f $(LIBDIR)/$$s; done
	rm -f $(SBINDIR)/redis-ha $(LIBDIR)/redis-ha
	-rmdir $(OCFDIR) $(LIBDIR) 2>/dev/null

# The Debian package (cargo-deb, installed on first use): the links come from
# install-files into a staging tree, the man pages from packaging/manpages.rs.
DEB_STAGE := target/deb-stage
CARGO_DEB_VERSION ?= 3.8.0

deb: build
	@command -v cargo-deb >/dev/null || $(CARGO) install cargo-deb --locked --version $(CARGO_DEB_VERSION)
	rm -rf $(DEB_STAGE)
	$(MAKE) --no-print-directory install-files DESTDIR=$(CURDIR)/$(DEB_STAGE) PREFIX=/usr
	$(CARGO) run --release --locked --example manpages -- $(DEB_STAGE)/man
	gzip -9n $(DEB_STAGE)/man/*
	$(CARGO) deb --no-build

# The fuzz entry points (src/fuzz_api.rs) only build with the feature `fuzzing`: linted
# here too, so they cannot rot between `make fuzz` runs (the fuzz crate's own files are
# a few lines each; rustfmt alone, so CI never builds libFuzzer).
lint:
	$(CARGO) fmt --all -- --check
	rustfmt --edition 2024 --check fuzz/fuzz_targets/*.rs
	$(CARGO) clippy --release --locked --all-targets -- -D warnings
	$(CARGO) clippy --release --locked --lib --features fuzzing -- -D warnings

# The fuzz targets (fuzz/, libFuzzer on the stable toolchain, see fuzz/run.sh): builds
# them, runs each for FUZZ_SECONDS (60 by default; FUZZ_TARGETS= picks), prints runs,
# seconds, coverage and corpus size per target; exits 1 on any finding, kept in
# fuzz/artifacts/TARGET/. Not part of `make test` or CI: six targets take minutes.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO=$(CARGO) bash fuzz/run.sh

# Needs root (network namespaces, iptables) and the packages .ci/deps installs.
# Installs into $(PREFIX) first: crm_resource only finds agents under /usr/lib/ocf.
# Runs the failover drills too (tests/drills, all twelve by default: DRILLS=1,2,3 picks);
# --no-fail-fast: a failed drill does not hide the other test crates' results, and
# tests/failures.sh repeats what failed at the end, where CI's tail shows it.
# Then the Debian package: built, installed with dpkg, checked, removed and purged
# (tests/package/test.sh undoes `make install` first and redoes it at the end).
test: lint install
	bash tests/failures.sh $(CARGO) test --release --locked --no-fail-fast -- --test-threads=4
	$(MAKE) --no-print-directory deb
	bash tests/package/test.sh

# Real Debian 12 hosts with systemd (systemd-nspawn containers rha-h1..3 and rha-lb on
# bridge rha-hbr0, 10.213.50.0/24), deployed from bare by the Ansible role in
# deploy/ansible with the package built here, then drilled: the role's second run changes
# nothing, a killed primary's Redis, reboots, `redis-ha status`, dpkg -r/-P. As root;
# installs debootstrap, systemd-container, tinyproxy-bin and ansible-core if missing; the
# rootfs tarball is cached in /var/cache/rha-hosts. Torn down at the end, also on failure.
test-hosts: deb
	bash tests/hosts/hosts.sh test

# The README's first command, on a fresh Debian 12 machine as root (rustup's cargo on
# PATH): packages, build, install, then a 3-node cluster, `redis-ha status` and drill 1
# with its timeline, torn down at the end (KEEP=1 leaves it running).
KEEP ?=
demo:
	bash .ci/deps
	$(MAKE) install
	DEMO=1 KEEP=$(KEEP) $(CARGO) test --release --locked --test drills -- --nocapture

bench: install
	bash tests/bench/agents.sh
	bash tests/bench/sync.sh
	bash tests/bench/sync-live.sh

# The failover benchmark (as root; installs first): on one tests/cluster cluster, ROUNDS
# kills and restarts of the primary's Redis with our setup, then as many with HAProxy's
# checks alone (cluster.sh strip); prints p50/p95/max of each figure side by side.
# VERBOSE=1 prints every round's timeline. 20-30 s a round, about 9 min with ROUNDS=10.
ROUNDS ?= 10
bench-failover: install
	BENCH=failover ROUNDS=$(ROUNDS) $(CARGO) test --release --locked --test drills

# The switchover benchmark (as root; installs first): on one tests/cluster cluster, ROUNDS
# rounds each of a plain SENTINEL FAILOVER and of `redis-ha switchover`, in turn, with a
# client writing through HAProxy every 10 ms and reading every 50 ms (drill 2's rounds);
# prints p50/p95/max of each figure side by side. VERBOSE=1 prints every timeline.
bench-switchover: install
	BENCH=switchover ROUNDS=$(ROUNDS) $(CARGO) test --release --locked --test drills

# The chaos run (as root; installs first): on one tests/cluster cluster, a random schedule
# of faults (kills of a Redis, a Sentinel, a whole node; SENTINEL FAILOVER; partitions of
# a node, both ways and one-way; a Pacemaker restart; standby; a stalled Sentinel), one
# node at a time, for CHAOS_SECONDS, while a client writes and reads through HAProxy; the
# invariants are checked after every step and at the end, and a summary table printed.
# SEED (random when empty) is printed at the start: the same seed draws the same faults.
# Exits 1 on a broken invariant, naming the step and the seed. CHAOS_STEPS=N runs N steps
# instead, whatever they take (a seed's first N faults); VERBOSE=1 prints every step's
# timeline.
CHAOS_SECONDS ?= 600
CHAOS_STEPS ?=
SEED ?=
chaos: install
	BENCH=chaos CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_STEPS=$(CHAOS_STEPS) SEED=$(SEED) VERBOSE=$(VERBOSE) $(CARGO) test --release --locked --test drills

clean:
	$(CARGO) clean
