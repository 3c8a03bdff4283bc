"""The console's reachability page on a device with a public-looking name and federation,
against the name's real DNS (bind9 in the CA container, which the console is set to ask):
what it reads from the records as they are, from records as the internet would have them,
and from wrong ones, each with what the owner has to do. Only containers of this scenario
are asked anything."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from admin_console import findings
from conftest import CA, DOMAIN, address_of, owner_console

ZONE_FILE = "/var/lib/bind/db.pi-im.test"
ROOMS = f"conference.{DOMAIN}"


def zone(records: str) -> str:
    """The test zone with these records for the device's name (a serial that only grows, so
    bind9 takes the file over what its update journal holds)."""
    return (
        "$ORIGIN pi-im.test.\n$TTL 60\n"
        f"@ SOA ns1 hostmaster {int(time.time() * 10) % 2**31} 3600 600 86400 60\n"
        "@ NS ns1\nns1 A 127.0.0.1\n" + records
    )


def load_zone(records: str) -> None:
    """Replace the zone's records: frozen against dynamic updates while the file changes."""
    script = f"rndc freeze pi-im.test && cat > {ZONE_FILE} && rndc thaw pi-im.test"
    subprocess.run(
        ["docker", "exec", "-i", CA, "sh", "-c", script],
        input=zone(records), text=True, check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def records(device_address: str) -> Iterator[Callable[[str], None]]:
    """Records of the test's own; the scenario's (create.yml) come back after it."""
    yield load_zone
    load_zone(
        f"chat A {device_address}\nconference.chat A {device_address}\npush A {address_of(CA)}\n"
    )


def reachability(host, address: str, root: Path) -> tuple[dict[str, Any], str]:  # type: ignore[no-untyped-def]
    """The report after an owner asked for a fresh check (the API's, with an admin's token),
    and the page that shows it."""
    console = owner_console(host, address, root)
    assert console.post("/reachability")[1] == ""  # check again now
    page = console.get("/reachability").text
    token = console.create_token(f"reach-{time.time_ns()}", "admin")
    report = console.http.get(
        "/api/v1/reachability", headers={"Authorization": f"Bearer {token}"}
    ).json()
    return report, page


def test_a_device_on_the_lan_is_told_what_is_left(
    host, device_address: str, pebble_root: Path, records
) -> None:  # type: ignore[no-untyped-def]
    report, page = reachability(host, device_address, pebble_root)
    found = findings(report)
    assert report["public_name"] is True
    assert found["name"]["state"] == "ok"
    # The name leads to the device's address on its network: apps find it at home only.
    assert found["address"]["state"] == "todo"
    assert device_address in found["address"]["found"]
    assert "home network" in found["address"]["found"]
    # No SRV records: the standard ports need none.
    assert found["xmpp-client"]["state"] == "ok"
    assert found["xmpp-server"]["state"] == "ok"
    assert "xmpps-client" not in found
    assert found["rooms"]["state"] == "ok"
    # pebble's certificate names both, but no CA a phone trusts vouches for it.
    certificate = found["certificate"]
    assert certificate["state"] == "todo"
    assert "Pebble Intermediate" in certificate["found"]
    assert f"{DOMAIN}, {ROOMS}" in certificate["found"]
    assert "none of the certificate authorities phones trust" in certificate["found"]
    assert "acme_server" in certificate["todo"]
    assert found["listening"]["state"] == "ok"
    assert "TCP 5269" in found["listening"]["found"]
    assert found["federation"]["state"] == "ok"
    forwards = {(f["protocol"], f["ports"]) for f in report["forwards"]}
    assert forwards == {
        ("TCP", "5222"), ("TCP", "5269"), ("TCP", "443"), ("TCP", "5280"), ("UDP", "3478"),
        ("UDP", "61000-61999"), ("TCP", "80"),
    }  # fmt: skip
    assert report["lan_address"] == device_address
    assert f'id="lan-address">{device_address}<' in page
    assert "this console (TCP 8080) stays on your home network" in page


def test_records_as_the_internet_would_have_them_are_in_order(
    host, device_address: str, pebble_root: Path, records
) -> None:  # type: ignore[no-untyped-def]
    records(
        "chat A 203.0.113.10\nchat AAAA 2001:db8::10\n"
        "_xmpp-client._tcp.chat SRV 0 5 5222 chat\n"
        "_xmpp-server._tcp.chat SRV 0 5 5269 chat\n"
        "conference.chat CNAME chat\n"
    )
    found = findings(reachability(host, device_address, pebble_root)[0])
    assert found["address"]["state"] == "ok"
    assert "203.0.113.10, 2001:db8::10" in found["address"]["found"]
    assert found["xmpp-client"]["state"] == "ok"
    assert f"{DOMAIN}:5222" in found["xmpp-client"]["found"]
    assert found["xmpp-server"]["state"] == "ok"
    assert f"{DOMAIN}:5269" in found["xmpp-server"]["found"]
    assert found["rooms"]["state"] == "ok"
    assert "203.0.113.10" in found["rooms"]["found"]  # through the CNAME


def test_wrong_records_are_named_with_their_fix(
    host, device_address: str, pebble_root: Path, records
) -> None:  # type: ignore[no-untyped-def]
    records(
        "chat A 100.64.7.7\n"
        "_xmpp-client._tcp.chat SRV 0 5 5223 chat\n"
        "_xmpps-client._tcp.chat SRV 0 5 5223 chat\n"
        "_xmpp-server._tcp.chat SRV 0 5 5269 gone\n"
    )
    found = findings(reachability(host, device_address, pebble_root)[0])
    assert "carrier-grade NAT" in found["address"]["found"]
    assert "public IPv4 address" in found["address"]["todo"]
    assert "port 5223, where the device listens on 5222" in found["xmpp-client"]["found"]
    assert f"_xmpp-client._tcp.{DOMAIN} 0 5 5222 {DOMAIN}" in found["xmpp-client"]["todo"]
    assert found["xmpps-client"]["state"] == "todo"
    assert "Remove the record" in found["xmpps-client"]["todo"]
    assert "gone.pi-im.test has no address" in found["xmpp-server"]["found"]
    assert found["rooms"]["state"] == "todo"
    assert f"CNAME record {ROOMS} → {DOMAIN}" in found["rooms"]["todo"]
    for key in ("address", "xmpp-client", "xmpps-client", "xmpp-server", "rooms"):
        assert found[key]["state"] == "todo", found[key]


def test_a_silent_dns_is_said_so_without_guessing(
    host, device_address: str, pebble_root: Path
) -> None:  # type: ignore[no-untyped-def]
    subprocess.run(["docker", "exec", CA, "systemctl", "stop", "named"], check=True)
    try:
        found = findings(reachability(host, device_address, pebble_root)[0])
    finally:
        subprocess.run(["docker", "exec", CA, "systemctl", "start", "named"], check=True)
    assert found["address"]["state"] == "note"
    assert "DNS could not be asked" in found["address"]["found"]
    # One note for DNS, not one per record; what the device reads itself is still there.
    assert not {"xmpp-client", "xmpp-server", "rooms"} & found.keys()
    assert found["listening"]["state"] == "ok"
