# pi-im-appliance: `make demo` runs the appliance locally, `make test` proves it.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv engine release base-image base-image-bookworm host-packages collections demo demo-down lint test test-host upgrade-test bench bench-faults bench-disk-full bench-wear bench-peers bench-compare bench-tuning bench-logins bench-events bench-moderation bench-accounts-remove image image-test clean

help:
	@echo "make demo       run the appliance in a local container standing in for a Pi"
	@echo "make demo-down  remove that container (its data stays on volumes; DEMO_FORGET=1 removes them)"
	@echo "make test       lint, then unit tests and converge/idempotence/verify with Molecule"
	@echo "make lint       yamllint, ansible-lint (production profile), ruff, the docs built strictly"
	@echo "make upgrade-test  a bookworm appliance, used, upgraded to trixie: nothing lost (~10 min)"
	@echo "make bench      load-test the demo (SCENARIO=seed-4000; see bench/README.md)"
	@echo "make bench-faults  kill each service under that load: how soon it answers again"
	@echo "make bench-disk-full  fill the state's own file system under that load, then free it"
	@echo "make bench-wear    what the device writes to its card per hour: idle, then under that load"
	@echo "make bench-peers / bench-compare   the same against stock ejabberd, Prosody and the appliance on bookworm"
	@echo "make bench-logins  what a login costs: SCRAM through SASL and SASL2, FAST tokens"
	@echo "make bench-events  what the event bus costs: events on, with message text, and off"
	@echo "make bench-moderation  what the moderation list costs a message: none, 1,000 words, 950 words + 50 patterns"
	@echo "make release    one archive a device applies to itself: pi-im-update --from FILE (build/release/)"
	@echo "make image      build the Pi 4 SD-card image from Debian's archive (root; ~50 min, ~15 with its caches)"
	@echo "make image-test boot that image under qemu-system-aarch64 and check it (root; ~15 min)"

venv:
	@scripts/ensure-venv.sh $(VENV)

engine:
	@scripts/ensure-docker.sh

# Debian trixie, the primary target; bookworm for the Molecule scenario that keeps it working.
base-image: engine
	@scripts/build-base-image.sh trixie

base-image-bookworm: engine
	@scripts/build-base-image.sh bookworm

# Offline: the pinned `ansible` wheel bundles every collection requirements.yml asks for.
collections: venv
	@ansible-galaxy collection install -r requirements.yml

# The device's state is on volumes; an existing container is recreated (from a newer base
# image, say) only with DEMO_RECREATE=1, and demo-down removes those volumes only with DEMO_FORGET=1.
demo: venv collections base-image
	ansible-playbook -i inventory/demo/hosts.yml playbooks/demo.yml \
	  -e '{"demo_container_recreate": $(if $(filter 1 true yes,$(DEMO_RECREATE)),true,false)}'

demo-down: venv engine
	ansible-playbook playbooks/demo-down.yml -e '{"demo_container_forget": $(if $(filter 1 true yes,$(DEMO_FORGET)),true,false)}'

# What `pi-im-update --from FILE` applies on a device: playbooks, roles, the console's wheels for
# both CPUs and Converse, nothing to fetch there (scripts/make_release.py).
release: venv
	python scripts/make_release.py $(if $(VERSION),--version $(VERSION))

lint: venv collections
	yamllint --strict .
	ansible-lint --profile production
	ruff check molecule admin bench events tests image scripts roles dev plugins
	ruff format --check molecule admin bench events tests image scripts roles dev plugins
# Regular files only: awk stops at the first symlinked directory it is given.
	shellcheck -x $$(git ls-files -s | awk '$$1 != 120000 {print $$4}' | xargs awk 'FNR == 1 && FILENAME !~ /\.j2$$/ && /^#!.*(\/|env )(ba|da)?sh/ {print FILENAME} {nextfile}')
	python scripts/options_reference.py --check
	mkdocs build --strict --quiet

HOST_PACKAGES := chromium dosfstools mtools fdisk restic
host-packages:
	@scripts/ensure-host-packages.sh $(HOST_PACKAGES)

# Lint beside the host's side of the tests; then the unit tests and every scenario but upgrade
# in three lanes at once (scripts/run_scenarios.py).
test:
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint test-host
	rm -rf build/test-results
	python scripts/run_scenarios.py || { python scripts/failed_tests.py build/test-results; exit 1; }

# What the scenarios need of the host: apt one run at a time (the engine, then the packages and
# mmdebstrap), then both base images at once, each build mostly waiting on Debian's archive.
test-host: engine
	@scripts/ensure-host-packages.sh $(HOST_PACKAGES) mmdebstrap
	@scripts/build-base-image.sh bookworm & bookworm=$$!; \
	  scripts/build-base-image.sh trixie; trixie=$$?; wait $$bookworm && exit $$trixie

# Bookworm to trixie in place with nothing lost (molecule/upgrade): minutes of packages from
# Debian's archive, so not part of `make test`; run before a release.
upgrade-test: venv collections base-image-bookworm host-packages
	rm -rf build/test-results
	molecule test -s upgrade || { python scripts/failed_tests.py build/test-results; exit 1; }

# The benchmark (bench/README.md): a separate command, minutes long, never part of `make test`.
SCENARIO ?= seed-4000
BENCH_TARGET ?= docker:pi-im-demo
bench: venv
	python -m pi_im_bench run $(SCENARIO) --target $(BENCH_TARGET) $(BENCH_OPTIONS)

# Each service killed outright under load (SCENARIO, seed-4000): how soon it answers again.
bench-faults: venv
	python -m pi_im_bench faults --scenario $(SCENARIO) --target $(BENCH_TARGET) $(BENCH_OPTIONS)

# The state's own file system (a Pi's card; never a container's root) filled under SCENARIO.
bench-disk-full: venv
	python -m pi_im_bench disk-full --scenario $(SCENARIO) --target $(BENCH_TARGET) $(BENCH_OPTIONS)

# SD-card wear: bytes written per hour by each service, 10 min idle, then under SCENARIO.
bench-wear: venv
	python -m pi_im_bench wear --scenario $(SCENARIO) --target $(BENCH_TARGET) $(BENCH_OPTIONS)

# Stock Debian ejabberd and Prosody in containers of their own, under the same budget.
bench-peers: venv collections base-image base-image-bookworm
	ansible-playbook -i inventory/demo/hosts.yml playbooks/bench-peers.yml

# The appliance (as shipped, and with history off as the peers ship) and both peers in one
# run of the same generator, alternating rounds (bench/compare.toml).
bench-compare: venv collections
	python -m pi_im_bench variants bench/compare.toml --target docker:pi-im-demo $(BENCH_OPTIONS)

# Each shipped ejabberd setting against the appliance without it (bench/tuning.toml).
bench-tuning: venv collections
	python -m pi_im_bench variants bench/tuning.toml --target docker:pi-im-demo $(BENCH_OPTIONS)

# SCRAM through SASL, through SASL2, and FAST token logins (bench/logins.toml).
bench-logins: venv collections
	python -m pi_im_bench variants bench/logins.toml --target docker:pi-im-demo $(BENCH_OPTIONS)

# The event bus on, with message text, and off (bench/events.toml): p99, lost messages and
# events, and the server's and RabbitMQ's CPU per message.
bench-events: venv collections
	python -m pi_im_bench variants bench/events.toml --target docker:pi-im-demo $(BENCH_OPTIONS)

# What moderation and the event bus add to a message, timed inside ejabberd; then no list,
# 1,000 words, and 950 words with 50 patterns under the seed claim (bench/moderation.toml).
bench-moderation: venv collections
	python -m pi_im_bench hook-cost --target docker:pi-im-demo
	python -m pi_im_bench variants bench/moderation.toml --target docker:pi-im-demo $(BENCH_OPTIONS)

bench-accounts-remove: venv
	python -m pi_im_bench accounts remove --target $(BENCH_TARGET)

# Not part of `make test`: run before a release (see image/README.md).
image: venv collections
	python image/debian/build.py $(IMAGE_OPTIONS)

image-test: venv
	pytest -v -s image/debian/tests $(IMAGE_TEST_OPTIONS)

clean: demo-down
	rm -rf $(VENV)
