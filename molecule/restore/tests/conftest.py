"""Fixtures for the restore scenario: device B (the host under test), device A (the one that
was used and backed up), their addresses and TLS trusting A's certificate. The helpers shared
with the default scenario (family, admin_console) read DOMAIN from here."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import testinfra
import yaml

from admin_console import Console
from containers import address_of
from device_api import device_tls as trusting_device

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
GROUP_VARS = yaml.safe_load((SCENARIO / "inventory/group_vars/im_servers.yml").read_text())
DOMAIN: str = GROUP_VARS["ejabberd_domain"]
DEVICE_A = "pi-im-restore-a"


@pytest.fixture(scope="session")
def device_a():  # type: ignore[no-untyped-def]
    inventory = SCENARIO / "inventory/hosts.yml"
    return testinfra.get_host(f"ansible://{DEVICE_A}?ansible_inventory={inventory}")


@pytest.fixture(scope="session")
def address_a() -> str:
    return address_of(DEVICE_A)


@pytest.fixture(scope="module")
def address_b(host) -> str:
    return address_of(host.backend.host)


@pytest.fixture(scope="session")
def tls_a(device_a) -> ssl.SSLContext:  # type: ignore[no-untyped-def]
    """A's certificate: after the restore, B must present the same one."""
    return trusting_device(device_a)


@pytest.fixture(scope="session")
def story(device_a, address_a: str, tls_a: ssl.SSLContext):  # type: ignore[no-untyped-def]
    """What A's family made on it (family.Story), once for the whole scenario. Imported here:
    family reads DOMAIN from this module."""
    import family

    return family.use(device_a, address_a, tls_a)


@pytest.fixture(scope="session")
def owner_a(address_a: str, tls_a: ssl.SSLContext, story) -> Console:  # type: ignore[no-untyped-def]
    """A's owner, signed in to its console."""
    owner = Console(f"https://{address_a}:8080", tls_a)
    assert owner.sign_in("owner", story.secrets["admin-owner-password"]).status_code == 303
    return owner
