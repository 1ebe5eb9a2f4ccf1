# The developer's entry points. The README's two commands are `make run` and `make test`;
# .ci/run calls `make test`. Every target installs what it needs first (scripts/install-deps).
BUILD_DIR      ?= build
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
JOBS           ?= $(shell nproc)
PYTEST         ?= python3 -m pytest -ra -p no:cacheprovider

# Debian's interpreter and tools first: the tests use Debian's python3-pytest, -requests and
# -bcrypt, which another python3 earlier in PATH (pyenv, a virtualenv) would not see.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin:$(PATH)

# Google's Compute discovery document for the GCP suites: shared/gcp/compute.v1.json next to
# the repository, or next to the local repository this one was cloned from (CI's fresh clone),
# when it exists; else tests/gcp/discovery.py finds it (cache, or one download from Google's
# discovery service). Never a copy in the repository.
HASHD_ORIGIN := $(patsubst file://%,%,$(shell git -C $(CURDIR) config --get remote.origin.url 2>/dev/null))
HASHD_DISCOVERY_FOUND := $(firstword $(wildcard \
    $(CURDIR)/../shared/gcp/compute.v1.json \
    $(if $(HASHD_ORIGIN),$(HASHD_ORIGIN)/../shared/gcp/compute.v1.json \
                         $(HASHD_ORIGIN)/../../shared/gcp/compute.v1.json)))
ifneq ($(HASHD_DISCOVERY_FOUND),)
export HASHD_GCP_DISCOVERY ?= $(abspath $(HASHD_DISCOVERY_FOUND))
endif

.PHONY: all deps build build-asan run test unit-test integration-test multivac-test monitoring-test vm-test bench-smoke bench deb format clean nomad-test fuzz-build fuzz-smoke fuzz security-test admission-test fault-test fault-soak gcp-test cluster-test gce-test openapi-test lint

all: build

deps:
	@scripts/install-deps

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The sanitized build (ASan + UBSan, clang, Debug) is also the fuzz-smoke build: one compile
# gives the unit tests, the app for the sanitized integration run and the libFuzzer targets.
build-asan: deps
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
	      -DHASHD_SANITIZE=ON -DHASHD_FUZZ=ON >/dev/null
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)

# Starts nginx + P FastCGI processes in the foreground on https://localhost:$${HASHD_HTTPS_PORT:-8443}.
run: build
	scripts/run-local

# The whole suite: lint, unit tests (plain and sanitized builds), integration tests against the
# real local stack (plain and sanitized app), the VM suite, and a smoke run of the benchmarks;
# last the group of VMs (cluster-test). Not gce-test: its autoscaler scenario failed in a
# fresh-clone run (docs/gce-in-a-box.md).
test: lint unit-test integration-test monitoring-test openapi-test vm-test bench-smoke nomad-test fuzz-smoke security-test admission-test fault-test gcp-test cluster-test

# shellcheck on every shell file and flake8 on every Python file (scripts/lint finds them by
# name and shebang; settings in .shellcheckrc and .flake8). A few seconds.
lint: deps
	scripts/lint

unit-test: build build-asan
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)
	ctest --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j $(JOBS)

# Every test once: the sanitized app runs all but the `slow` ones (load and long waits, which
# ASan would make slower still), the release app runs those. The release binary's behaviour
# is also what the VM, cluster, fault and security suites exercise end to end.
integration-test: build build-asan
	HASHD_FCGI_BIN=$(CURDIR)/$(ASAN_BUILD_DIR)/fcgi-app/hashd-fcgi $(PYTEST) tests/integration -m "not slow"
	$(PYTEST) tests/integration -m slow

# The MultiVAC API and queue alone (they also run within integration-test).
multivac-test: build
	$(PYTEST) tests/integration/test_multivac.py

# promtool checks of the Prometheus configuration and unit tests of the alerting rules.
monitoring-test: deps
	tests/monitoring/run

# Redocly's lint of docs/openapi.yaml (npm, pinned by tests/openapi/package-lock.json); the
# integration suite validates every response against the same document.
openapi-test: deps
	tests/openapi/run

# testssl.sh against the local stack (no MEDIUM+ finding), and the lint gates: ansible-lint
# --profile production, lintian on the .deb, systemd-analyze security of the units. ~3 min.
security-test: deb
	$(PYTEST) tests/security
# Admission by expected wait alone (fcgi-app/src/hashing/admission.cc): its unit tests and the
# real-stack tests (a burst served whole, a larger one refused at once, probes never queued).
# Both are also part of unit-test and integration-test; this target runs just them (~30 s).
admission-test: build
	$(BUILD_DIR)/fcgi-app/hashd_unit_tests --gtest_filter='Admission*:HashTimeModel*:OverloadResponse*'
	$(PYTEST) tests/integration/test_admission.py
# Faults under load and durability order, against the real local stack: each
# scenario prints its figures (requests, errors by kind, acknowledged, lost). About 6 min.
fault-test: build
	$(PYTEST) tests/faults

# The kill -9 loop for minutes and over every backend, outside `make test`.
fault-soak: build
	HASHD_FAULT_KILL_SECONDS=$${HASHD_FAULT_KILL_SECONDS:-240} \
	HASHD_FAULT_KILL_BACKENDS=$${HASHD_FAULT_KILL_BACKENDS:-lmdb,redis,postgresql} \
	$(PYTEST) tests/faults/test_kill_workers.py

vm-test: deb
	tests/vm/run

# The GCP playbooks run for real against a Compute API stand-in checked against Google's
# discovery document (docs/gcp.md), and ansible-lint on them.
gcp-test: deps
	tests/gcp/run
# Compute Engine in a box (docs/gce-in-a-box.md): the GCP playbooks against the stand-in with
# real parts: image.yml bakes on a builder VM over IAP, site.yml boots the group from the
# image with a shared Redis, the front end, autohealing, the store down (tests/gce/run).
# Outside `make test`: it takes ~15 minutes here, beyond what the 50-minute budget has left.
gce-test: deb
	tests/gce/run
# Three hashd VMs, a store VM and a load-balancer VM under load (tests/cluster/run).
cluster-test: deb
	tests/cluster/run

# The Nomad job files: HashiCorp's HCL parser (npm, pinned by tests/nomad/package-lock.json),
# a check of what Nomad rejects, and the job's tasks run in a local allocation directory.
# npm ci runs again only when the lockfile changed since the last install.
nomad-test: build
	cd tests/nomad && { cmp -s package-lock.json node_modules/.hashd-installed-lock || \
	    { npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.hashd-installed-lock; }; }
	$(PYTEST) tests/nomad
# libFuzzer targets (fcgi-app/fuzz) built with clang, ASan and UBSan; tests/fuzz/run says how
# a finding is reported and kept. fuzz-smoke: 10 s per target (in `make test`), from the
# sanitized build; fuzz: 5 min per target, from an optimised build of its own (more inputs).
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DHASHD_FUZZ=ON -DHASHD_BUILD_TESTS=OFF >/dev/null
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target hashd_fuzz_targets

fuzz-smoke: build-asan
	FUZZ_BUILD_DIR=$(CURDIR)/$(ASAN_BUILD_DIR) tests/fuzz/run --seconds 10

fuzz: fuzz-build
	FUZZ_BUILD_DIR=$(CURDIR)/$(FUZZ_BUILD_DIR) tests/fuzz/run --seconds 300

bench-smoke: build
	bench/run --smoke

bench: build
	bench/run

deb: build
	cd $(BUILD_DIR) && cpack -G DEB >/dev/null && ls -1 $(CURDIR)/$(BUILD_DIR)/*.deb

format:
	find fcgi-app bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
