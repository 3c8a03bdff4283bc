"""What members do from their apps, with a real client (slixmpp): change their own password
(XEP-0077) while nobody can register in-band, and keep a group chat they made."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError

from conftest import DOMAIN, Account
from test_xmpp import Client, log_in
from xmpp_framed import NS_STREAMS, WebSocketTransport


async def change_password(client: Client, password: str) -> str:
    """The server's answer to a password change: "ok" or the error's condition."""
    client.register_plugin("xep_0077")
    try:
        await client.plugin["xep_0077"].change_password(password, jid=DOMAIN, timeout=15)
    except IqError as error:
        return str(error.iq["error"]["condition"])
    return "ok"


def test_a_member_changes_their_password_from_their_app(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    member = accounts[0]
    new = secrets.token_urlsafe(16)

    async def change() -> tuple[str, str]:
        client = await log_in(member, device_cert, address)
        weak = await change_password(client, "abc123")
        changed = await change_password(client, new)
        client.disconnect()
        return weak, changed

    async def outcome(password: str) -> str:
        client = Client(Account(member.jid, password), device_cert)
        client.connect(host=address, port=5222)
        result = await asyncio.wait_for(client.outcome, 30)
        client.disconnect()
        return result

    weak, changed = asyncio.run(change())

    assert weak == "not-acceptable"  # too weak: the old password stays
    assert changed == "ok"
    assert asyncio.run(outcome(new)).startswith("session started")
    assert asyncio.run(outcome(member.password)) == "auth failed"


def test_nobody_registers_in_band(host, address: str, device_tls: ssl.SSLContext) -> None:
    """Accounts come from the console and invitations: a registration over an unauthenticated
    stream is refused, and no account appears."""
    user = f"walkin{secrets.token_hex(3)}"
    transport = WebSocketTransport(f"wss://{address}:5280/websocket", device_tls)
    features = transport.open_stream(DOMAIN, restart=False)
    transport.send(
        f"<iq xmlns='jabber:client' type='set' id='reg1' to='{DOMAIN}'>"
        f"<query xmlns='jabber:iq:register'><username>{user}</username>"
        f"<password>{secrets.token_urlsafe(16)}</password></query></iq>"
    )
    [answer] = transport.receive()
    transport.close()

    assert not any("iq-register" in child.tag for child in features[-1])
    assert features[-1].tag == f"{{{NS_STREAMS}}}features"
    assert answer.get("type") == "error"
    stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
    assert answer.find(f"{{jabber:client}}error/{{{stanzas}}}forbidden") is not None
    assert host.run(f"ejabberdctl check_account {user} {DOMAIN}").rc != 0


def test_a_group_chat_stays_when_everyone_leaves(
    host, accounts: list[Account], device_cert: Path, address: str
) -> None:
    room = f"family{secrets.token_hex(3)}@conference.{DOMAIN}"

    async def make_and_leave() -> None:
        client = await log_in(accounts[0], device_cert, address)
        client.register_plugin("xep_0045")
        await client.plugin["xep_0045"].join_muc_wait(slixmpp.JID(room), "mum", timeout=15)
        client.plugin["xep_0045"].leave_muc(slixmpp.JID(room), "mum")
        await asyncio.sleep(1)
        client.disconnect()

    asyncio.run(make_and_leave())
    name, service = room.split("@")
    try:
        listed = host.check_output(f"ejabberdctl get_room_options {name} {service}")
        options = dict(line.split("\t", 1) for line in listed.splitlines())
        assert options["persistent"] == "true"
        assert options["mam"] == "true"
        assert room in host.check_output(f"ejabberdctl muc_online_rooms {service}").split()
    finally:
        host.run(f"ejabberdctl destroy_room {name} {service}")
