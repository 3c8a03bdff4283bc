"""Calls: an app logged in gets STUN/TURN services and short-lived credentials (XEP-0215,
mod_stun_disco); with them a real TURN client (aioice, aiortc's ICE and TURN) allocates relays
on the device and data flows between two clients through them. Without credentials nothing is
relayed; STUN answers anyone."""

from __future__ import annotations

import asyncio
import datetime
import re
import socket
import subprocess
from pathlib import Path

import pytest
import slixmpp
from aioice import stun
from aioice.stun import TransactionFailed
from aioice.turn import TurnTransport, create_turn_endpoint
from slixmpp.xmlstream import ET

from conftest import DOMAIN
from test_xmpp import log_in

EXTDISCO = "urn:xmpp:extdisco:2"
TURN_PORT = 3478
# The role's default relay range (ejabberd_turn_relay_ports).
RELAY_PORTS = range(61000, 62000)


async def services(client: slixmpp.ClientXMPP, kind: str) -> list[dict[str, str]]:
    """The server's answer to a XEP-0215 request for services of one type, as attributes."""
    iq = client.make_iq_get(ito=DOMAIN)
    iq.append(ET.Element(f"{{{EXTDISCO}}}services", {"type": kind}))
    answer = await iq.send(timeout=20)
    return [dict(s.attrib) for s in answer.xml.iter(f"{{{EXTDISCO}}}service")]


def turn_service(accounts, device_cert: Path, address: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    async def ask() -> list[dict[str, str]]:
        client = await log_in(accounts[0], device_cert, address)
        try:
            return await services(client, "turn")
        finally:
            client.disconnect()

    found = asyncio.run(ask())
    assert len(found) == 1, found
    return found[0]


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr))


async def relayed(
    service: dict[str, str], password: str | None = None
) -> tuple[TurnTransport, Inbox]:
    transport, inbox = await create_turn_endpoint(
        Inbox,
        (service["host"], int(service["port"])),
        service["username"],
        service["password"] if password is None else password,
    )
    return transport, inbox


def test_a_member_gets_the_relay_with_credentials_that_expire(
    accounts, device_cert: Path, address: str
) -> None:
    turn = turn_service(accounts, device_cert, address)
    # The relay is announced at the device's own address (ejabberd_turn_address empty).
    assert (turn["host"], turn["port"], turn["transport"]) == (address, str(TURN_PORT), "udp")
    assert turn["restricted"] in ("true", "1")
    assert turn["username"]
    assert turn["password"]
    expires = datetime.datetime.fromisoformat(turn["expires"])
    left = expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=1) < left <= datetime.timedelta(hours=12, minutes=5)


def test_data_flows_between_two_clients_through_the_relay(
    accounts, device_cert: Path, address: str
) -> None:
    turn = turn_service(accounts, device_cert, address)

    async def call() -> tuple[list[tuple[str, int]], list[bytes], list[bytes]]:
        (alice, to_alice), (bob, to_bob) = await relayed(turn), await relayed(turn)
        at_alice, at_bob = alice.get_extra_info("sockname"), bob.get_extra_info("sockname")
        try:
            # Both send, as two apps do once ICE has paired their relayed candidates: each
            # side's sending is what lets the other's packets through (a TURN permission).
            for n in range(50):
                alice.sendto(b"alice %02d" % n, at_bob)
                bob.sendto(b"bob %02d" % n, at_alice)
                await asyncio.sleep(0.02)
            for _ in range(50):
                if len(to_alice.received) >= 50 and len(to_bob.received) >= 50:
                    break
                await asyncio.sleep(0.1)
        finally:
            alice.close()
            bob.close()
        assert {addr for _, addr in to_bob.received} == {at_alice}
        assert {addr for _, addr in to_alice.received} == {at_bob}
        return (
            [at_alice, at_bob],
            [d for d, _ in to_bob.received],
            [d for d, _ in to_alice.received],
        )

    relays, at_bob, at_alice = asyncio.run(call())
    for host, port in relays:
        assert host == address
        assert port in RELAY_PORTS
    # Packets after the first few: the very first of each side may reach the relay before
    # the other side's permission does (as in any TURN call).
    assert {b"alice %02d" % n for n in range(5, 50)} <= set(at_bob)
    assert {b"bob %02d" % n for n in range(5, 50)} <= set(at_alice)


def test_no_relay_without_the_credentials(accounts, device_cert: Path, address: str) -> None:
    turn = turn_service(accounts, device_cert, address)

    async def allocate(service: dict[str, str], password: str) -> None:
        transport, _ = await relayed(service, password)
        transport.close()

    with pytest.raises(TransactionFailed, match="401"):
        asyncio.run(allocate(turn, "not-the-password"))
    with pytest.raises(TransactionFailed, match="401"):
        asyncio.run(allocate({**turn, "username": "alice"}, turn["password"]))


def test_stun_tells_anyone_their_address(address: str) -> None:
    """STUN needs no account: an app learns the address it is seen from (here, this
    machine's own address on the containers' network)."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(bytes(request), (address, TURN_PORT))
        answer = stun.parse_message(sock.recv(2048))
        local_port = sock.getsockname()[1]
    assert answer.message_class == stun.Class.RESPONSE
    assert answer.transaction_id == request.transaction_id
    seen, port = answer.attributes["XOR-MAPPED-ADDRESS"]
    assert port == local_port
    own = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    assert f" {seen}/" in own.stdout


def test_the_relays_listener_holds_a_burst(host) -> None:
    """mod_turn_buffer: the listener's receive buffer is the appliance's (212992 bytes asked,
    doubled by the kernel), not Erlang's 16 KB that dropped calls past six at once."""
    sockets = host.check_output(f"ss -Huanm 'sport = :{TURN_PORT}'")
    buffer = re.search(r"rb(\d+)", sockets)
    assert buffer, sockets
    assert int(buffer.group(1)) >= 2 * 212992


def test_twenty_calls_in_step_lose_nothing(accounts, device_cert: Path, address: str) -> None:
    """Twenty calls whose apps send at the same instants, every 20 ms: each burst of forty
    packets reaches the relay whole (with Erlang's buffer, fourteen calls went silent)."""
    turn = turn_service(accounts, device_cert, address)

    async def in_step() -> list[int]:
        sides = [await relayed(turn) for _ in range(40)]
        names = [transport.get_extra_info("sockname") for transport, _ in sides]
        try:
            for n in range(60):
                for i in range(0, 40, 2):
                    sides[i][0].sendto(b"%02d" % n, names[i + 1])
                    sides[i + 1][0].sendto(b"%02d" % n, names[i])
                await asyncio.sleep(0.02)
            await asyncio.sleep(1)
        finally:
            for transport, _ in sides:
                transport.close()
        return [len({data for data, _ in inbox.received if int(data) >= 5}) for _, inbox in sides]

    heard = asyncio.run(in_step())
    # Every side heard every packet after the first few (the permissions' warm-up).
    assert heard == [55] * 40
