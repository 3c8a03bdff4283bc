# pi-im-appliance: `make demo` runs the appliance locally, `make test` proves it.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv engine base-image host-packages collections demo demo-down lint test clean

help:
	@echo "make demo       run the appliance in a local container standing in for a Pi"
	@echo "make demo-down  remove that container"
	@echo "make test       lint, unit tests, then converge/idempotence/verify with Molecule"
	@echo "make lint       yamllint, ansible-lint (production profile), ruff"

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
	@scripts/ensure-host-packages.sh chromium

test: lint base-image host-packages
	pytest -q tests
	molecule test --all

clean: demo-down
	rm -rf $(VENV)
