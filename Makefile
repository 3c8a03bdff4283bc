# pi-im-appliance: `make demo` runs the appliance locally, `make test` proves it.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv engine base-image host-packages collections demo demo-down lint test image image-test clean

help:
	@echo "make demo       run the appliance in a local container standing in for a Pi"
	@echo "make demo-down  remove that container"
	@echo "make test       lint, unit tests, then converge/idempotence/verify with Molecule"
	@echo "make lint       yamllint, ansible-lint (production profile), ruff"
	@echo "make image      build the Pi 4 SD-card image from Debian's archive (root; ~45 min)"
	@echo "make image-test boot that image under qemu-system-aarch64 and check it (root; ~10 min)"

venv:
	@scripts/ensure-venv.sh $(VENV)

engine:
	@scripts/ensure-docker.sh

base-image: engine
	@scripts/build-base-image.sh

# Offline: the pinned `ansible` wheel bundles every collection requirements.yml asks for.
collections: venv
	@ansible-galaxy collection install -r requirements.yml

demo: venv collections base-image
	ansible-playbook -i inventory/demo/hosts.yml playbooks/demo.yml

demo-down: venv engine
	ansible-playbook playbooks/demo-down.yml

lint: venv collections
	yamllint --strict .
	ansible-lint --profile production
	ruff check molecule pi_im_admin tests image
	ruff format --check molecule pi_im_admin tests image

host-packages:
	@scripts/ensure-host-packages.sh chromium dosfstools mtools fdisk

test: lint base-image host-packages
	pytest -q tests
	molecule test --all

# Not part of `make test`: run before a release (see image/README.md).
image: venv collections
	python image/debian/build.py $(IMAGE_OPTIONS)

image-test: venv
	pytest -v -s image/debian/tests $(IMAGE_TEST_OPTIONS)

clean: demo-down
	rm -rf $(VENV)
