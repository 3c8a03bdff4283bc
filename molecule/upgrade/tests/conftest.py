"""Fixtures for the upgrade scenario: the device (the default scenario's container, inventory
and options, started from bookworm), its address, TLS trusting its certificate, and the
console's owner. The helpers shared with the default scenario (playbook_run, admin_console,
device_api) read REPO and SCENARIO from here."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml

from containers import address_of
from device_api import device_tls as trusting_device

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
GROUP_VARS = yaml.safe_load((SCENARIO / "inventory/group_vars/im_servers.yml").read_text())
DOMAIN: str = GROUP_VARS["ejabberd_domain"]


@pytest.fixture(scope="module")
def container(host) -> str:
    return host.backend.host


@pytest.fixture(scope="module")
def address(container: str) -> str:
    return address_of(container)


@pytest.fixture(scope="module")
def device_tls(host) -> ssl.SSLContext:
    """Read once, on bookworm: the certificate must stay the same across the upgrade."""
    return trusting_device(host)
