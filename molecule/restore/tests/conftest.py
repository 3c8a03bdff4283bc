"""Fixtures for the restore scenario: device B (the host under test), device A (the one that
was used and backed up), their addresses and TLS trusting A's certificate. The helpers shared
with the default scenario (family, admin_console) read DOMAIN from here."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import testinfra
import yaml

from containers import address_of
from device_api import device_tls as trusting_device

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
GROUP_VARS = yaml.safe_load((SCENARIO / "inventory/group_vars/im_servers.yml").read_text())
DOMAIN: str = GROUP_VARS["ejabberd_domain"]
DEVICE_A = "pi-im-restore-a"


@pytest.fixture(scope="module")
def device_a():  # type: ignore[no-untyped-def]
    inventory = SCENARIO / "inventory/hosts.yml"
    return testinfra.get_host(f"ansible://{DEVICE_A}?ansible_inventory={inventory}")


@pytest.fixture(scope="module")
def address_a() -> str:
    return address_of(DEVICE_A)


@pytest.fixture(scope="module")
def address_b(host) -> str:
    return address_of(host.backend.host)


@pytest.fixture(scope="module")
def tls_a(device_a) -> ssl.SSLContext:  # type: ignore[no-untyped-def]
    """A's certificate: after the restore, B must present the same one."""
    return trusting_device(device_a)
