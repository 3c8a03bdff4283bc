"""The reachability page's readings, each against the real thing here: addresses classified
as a router would route them, the kernel's socket tables with sockets this test opens, and
certificates made by a CA of the test's own, checked by the same verifier the console uses.
Its DNS side runs against a real bind9 in the acme Molecule scenario."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pi_im_admin.app import build_context
from pi_im_admin.reach import certificate, names, ports
from pi_im_admin.reach.names import Answer
from pi_im_admin.services import reachability
from pi_im_admin.settings import Settings

import certs


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("203.0.113.10", "public"),  # documentation addresses stand for a router's
        ("2001:db8::10", "public"),
        ("81.2.69.160", "public"),
        ("192.168.1.20", "lan"),
        ("10.0.0.5", "lan"),
        ("172.20.0.2", "lan"),
        ("fd12:3456::2", "lan"),
        ("fe80::1", "lan"),
        ("::ffff:192.168.1.20", "lan"),
        ("100.64.12.1", "shared"),  # a provider's carrier-grade NAT
        ("127.0.1.1", "loopback"),
        ("::1", "loopback"),
    ],
)
def test_addresses_are_told_apart_as_a_router_routes_them(address: str, scope: str) -> None:
    assert names.scope(address) == scope


@pytest.mark.parametrize(
    ("domain", "public"),
    [("chat.example.org", True), ("kitchen.local", False), ("pi.home.arpa", False),
     ("router.lan", False), ("localhost", False), ("example.org", True)],
)  # fmt: skip
def test_names_only_a_home_network_knows_are_named_so(domain: str, public: bool) -> None:
    assert reachability.is_public_name(domain) is public
    finding = reachability._name(domain)
    assert finding.state == ("ok" if public else "todo")
    assert bool(finding.todo) is not public


def test_an_address_finding_says_what_to_put_in_dns() -> None:
    domain = "chat.example.org"
    missing = reachability._addresses(domain, Answer(problem="no such name"))
    assert missing.state == "todo"
    assert "add an A record" in missing.todo
    home = reachability._addresses(domain, Answer(("192.168.1.20",)))
    assert home.state == "todo"
    assert "home network" in home.found
    assert "admin_service_dns_servers" in home.todo
    shared = reachability._addresses(domain, Answer(("100.70.1.2",)))
    assert shared.state == "todo"
    assert "carrier-grade NAT" in shared.found
    public = reachability._addresses(domain, Answer(("192.168.1.20", "203.0.113.10")))
    assert public.state == "ok"
    assert "203.0.113.10" in public.found
    timed_out = Answer[str](problem="no answer from DNS (timed out)", unanswered=True)
    silent = reachability._addresses(domain, timed_out)
    assert silent.state == "note"
    assert not silent.todo


@pytest.fixture
def sockets() -> Iterator[dict[str, tuple[str, int]]]:
    """A TCP listener on every address, one on loopback only, and a bound UDP socket."""
    opened = {
        "tcp-all": socket.create_server(("0.0.0.0", 0)),
        "tcp-loopback": socket.create_server(("127.0.0.1", 0)),
        "tcp6-all": socket.create_server(("::", 0), family=socket.AF_INET6),
        "udp-all": socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    }
    opened["udp-all"].bind(("0.0.0.0", 0))
    try:
        yield {name: ("udp" if name.startswith("udp") else "tcp", s.getsockname()[1])
               for name, s in opened.items()}  # fmt: skip
    finally:
        for s in opened.values():
            s.close()


def test_listening_ports_are_read_from_the_kernel(sockets) -> None:  # type: ignore[no-untyped-def]
    found = ports.listening()
    assert ports.best(found, *sockets["tcp-all"]) == "all"
    assert ports.best(found, *sockets["tcp6-all"]) == "all"
    assert ports.best(found, *sockets["tcp-loopback"]) == "loopback"
    assert ports.best(found, *sockets["udp-all"]) == "all"
    assert ports.best(found, "udp", sockets["tcp-all"][1]) is None


@pytest.fixture
def issued(tmp_path: Path) -> dict[str, Path]:
    """A CA, a certificate it issued for chat.example.org (with the key beside it, as on the
    device), a self-signed one, and a bundle of roots that holds the CA and one without it."""
    ca_key, leaf_key, own_key, other_key = certs.key(), certs.key(), certs.key(), certs.key()
    ca = certs.issue("Test Root", ca_key)
    leaf = certs.issue("chat.example.org", leaf_key, ["chat.example.org", "*.chat.example.org"],
                       issuer=("Test Root", ca_key))  # fmt: skip
    own = certs.issue("chat.example.org", own_key, ["chat.example.org"])
    files = {
        "issued": certs.key_pem(leaf_key) + certs.pem(leaf),
        "own": certs.pem(own),
        "roots": certs.pem(ca),
        "other-roots": certs.pem(certs.issue("Other", other_key)),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in files}


def test_a_certificate_from_a_trusted_ca_is_trusted_for_its_names(issued) -> None:  # type: ignore[no-untyped-def]
    cert = certificate.read(issued["issued"], "chat.example.org", issued["roots"])
    assert cert.untrusted == ""
    assert not cert.self_signed
    assert cert.issuer == "Test Root"
    assert cert.names == ("chat.example.org", "*.chat.example.org")
    assert certificate.covers(cert.names, "conference.chat.example.org")
    assert not certificate.covers(cert.names, "a.b.chat.example.org")
    wrong_name = certificate.read(issued["issued"], "other.example.org", issued["roots"])
    assert wrong_name.untrusted


def test_a_certificate_no_trusted_ca_vouches_for_is_said_so(issued) -> None:  # type: ignore[no-untyped-def]
    assert certificate.read(issued["issued"], "chat.example.org", issued["other-roots"]).untrusted
    own = certificate.read(issued["own"], "chat.example.org", issued["roots"])
    assert own.self_signed
    assert own.untrusted
    unreadable = certificate.read(issued["own"], "chat.example.org", issued["own"].parent / "x")
    assert "cannot be read" in unreadable.untrusted


def test_the_systems_roots_load(issued) -> None:  # type: ignore[no-untyped-def]
    """Debian's bundle, as on the device: read whole, and none of it vouches for a test CA."""
    if not certificate.SYSTEM_ROOTS.exists():
        pytest.skip("no ca-certificates bundle on this machine")
    cert = certificate.read(issued["issued"], "chat.example.org")
    assert cert.untrusted
    assert "cannot be read" not in cert.untrusted


def test_a_home_name_asks_no_dns_and_says_what_comes_first(tmp_path: Path) -> None:
    """The whole check for a .local device, as the console runs it (its settings, the real
    socket tables): the name is the first thing to change, DNS is not asked (the server it is
    given would not answer, and no finding says it was asked), and nothing is to forward."""
    settings = Settings(
        database=tmp_path / "admin.db",
        xmpp_domain="kitchen.local",
        tls_pem=None,
        dns_servers=("127.0.0.1",),
        ports={"c2s": "5222", "web": "5280"},
        federation=False,
    )
    report = asyncio.run(reachability.check(build_context(settings)))
    found = {f.key: f for f in report.findings}
    assert report.public_name is False
    assert found["name"].state == "todo"
    assert "Accounts made on kitchen.local stay there" in found["name"].todo
    assert not {"address", "xmpp-client", "xmpps-client", "xmpp-server", "rooms"} & found.keys()
    assert found["federation"].state == "note"
    assert report.forwards == ()
