"""Fixtures for the baked-image scenario: both booted devices, and the framed XMPP client
shared with the default scenario."""

from __future__ import annotations

from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]

DEVICES = ["pi-im-baked-1", "pi-im-baked-2"]
IMAGE = "pi-im-appliance/baked:test"


@pytest.fixture(scope="session")
def devices() -> dict[str, testinfra.host.Host]:
    inventory = str(SCENARIO / "inventory/hosts.yml")
    return {
        name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)
        for name in DEVICES
    }
