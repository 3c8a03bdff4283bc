"""The host firewall, tried from outside the device (this host's side of its network): only
the appliance's own services answer; anything else that listens is unreachable."""

from __future__ import annotations

import shlex
import socket
from collections.abc import Iterator

import pytest

STRAY_PORT = 9999


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture
def stray_listener(host) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """A service nobody meant to expose, on every address of the device."""
    host.check_output(
        f"systemd-run --unit pi-im-stray --property=Type=exec "
        f"python3 -m http.server --bind 0.0.0.0 {STRAY_PORT}"
    )
    host.check_output(
        f"timeout 20 sh -c 'until ss -Hltn | grep -q :{STRAY_PORT}; do sleep 0.2; done'"
    )
    yield
    host.run("systemctl stop pi-im-stray")


def test_the_firewall_is_up_and_drops_by_default(host) -> None:  # type: ignore[no-untyped-def]
    rules = host.check_output("nft list table inet pi_im_firewall")
    assert "policy drop" in rules
    assert host.service("pi-im-firewall").is_enabled


@pytest.mark.usefixtures("stray_listener")
def test_a_stray_listener_is_unreachable_from_the_lan(host, address: str) -> None:  # type: ignore[no-untyped-def]
    assert host.run(f"curl -sS -o /dev/null http://127.0.0.1:{STRAY_PORT}/").rc == 0
    assert not reachable(address, STRAY_PORT)


@pytest.mark.parametrize(
    ("port", "name"),
    [(5222, "xmpp"), (5280, "web clients"), (443, "web chat"), (8080, "console")],
)
def test_the_appliances_services_are_reachable(address: str, port: int, name: str) -> None:
    assert reachable(address, port), name


@pytest.mark.parametrize("port", [5269, 5281, 5672, 15672, 61613, 4369])
def test_private_and_federation_ports_are_closed(address: str, port: int) -> None:
    assert not reachable(address, port)


UDP_ECHO = (
    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "s.bind(('0.0.0.0', {port}));\n"
    "while True: data, peer = s.recvfrom(64); s.sendto(data, peer)"
)


def udp_answer(address: str, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(b"ping", (address, port))
        try:
            return sock.recv(64)
        except OSError:
            return b""


def test_udp_is_open_only_for_calls(host, address: str) -> None:  # type: ignore[no-untyped-def]
    """UDP comes in to STUN/TURN and the relay's range alone: an echo server outside them
    answers on the device but not from the LAN."""
    port = 62500
    host.check_output(
        f"systemd-run --unit pi-im-stray-udp --property=Type=exec "
        f"python3 -c {shlex.quote(UDP_ECHO.format(port=port))}"
    )
    try:
        host.check_output(
            f"timeout 20 sh -c 'until ss -Hlun | grep -q :{port}; do sleep 0.2; done'"
        )
        probe = (
            "import socket; s = socket.socket(2, 2); s.settimeout(3); "
            f"s.sendto(b'ping', ('127.0.0.1', {port})); print(s.recv(64))"
        )
        assert host.check_output(f"python3 -c {shlex.quote(probe)}") == "b'ping'"
        assert udp_answer(address, port) == b""
    finally:
        host.run("systemctl stop pi-im-stray-udp")
    rules = host.check_output("nft list table inet pi_im_firewall")
    assert "udp dport { 3478, 61000-61999 } accept" in rules
