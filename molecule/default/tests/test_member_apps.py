"""What members do from their apps, with a real client (slixmpp): change their own password
(XEP-0077) while nobody can register or delete an account in-band, keep a group chat they
made, and close browser tabs without a trace."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from conftest import DOMAIN, Account, ejabberd_configured
from test_xmpp import Client, archived_copies, history_with, log_in, resumable, xmpp_login
from xmpp_framed import NS_STREAMS, FramedClient, WebSocketTransport


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

    weak, changed = asyncio.run(change())

    assert weak == "not-acceptable"  # too weak: the old password stays
    assert changed == "ok"
    renewed = Account(member.jid, new)
    assert xmpp_login(renewed, device_cert, address).startswith("session started")
    assert xmpp_login(member, device_cert, address) == "auth failed"


def test_an_account_is_not_deleted_from_an_app(
    host, accounts: list[Account], device_cert: Path, address: str
) -> None:
    """Accounts go through the console: a member's app asking to delete the account (XEP-0077
    <remove/>) is refused and the account, with its history, stays."""
    member = accounts[0]

    async def remove() -> str:
        client = await log_in(member, device_cert, address)
        client.register_plugin("xep_0077")
        try:
            await client.plugin["xep_0077"].cancel_registration(jid=DOMAIN, timeout=15)
        except IqError as error:
            return str(error.iq["error"]["condition"])
        finally:
            client.disconnect()
        return "removed"

    assert asyncio.run(remove()) in ("forbidden", "not-allowed")
    assert host.run(f"ejabberdctl check_account {member.jid.split('@')[0]} {DOMAIN}").rc == 0


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


@pytest.fixture
def short_web_resumption(host) -> Iterator[int]:
    """Browsers' sessions wait 2 s, not 30, to be resumed (ejabberd_web_resume_seconds);
    apps' keep their 300."""
    with ejabberd_configured(host, {"    resume_timeout: 30": "    resume_timeout: 2"}):
        yield 2


def open_tab(address: str, tls: ssl.SSLContext, account: Account, resource: str) -> FramedClient:
    """A browser tab's session: WebSocket, stream management on with resumption."""
    tab = FramedClient(
        WebSocketTransport(f"wss://{address}:5280/websocket", tls), account.jid, account.password
    )
    tab.login(resource)
    tab.pending.extend(tab.transport.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"))
    assert tab._next("{urn:xmpp:sm:3}enabled") is not None
    tab.pending.extend(
        tab.transport.send(
            "<iq xmlns='jabber:client' type='set' id='carbons'>"
            "<enable xmlns='urn:xmpp:carbons:2'/></iq>"
        )
    )
    assert tab._next("{jabber:client}iq").get("type") == "result"
    return tab


@pytest.mark.parametrize("phone_online", [True, False], ids=["phone-online", "nobody-online"])
def test_closed_browser_tabs_duplicate_nothing(
    host,
    short_web_resumption: int,
    phone_online: bool,
    accounts: list[Account],
    device_cert: Path,
    device_tls: ssl.SSLContext,
    address: str,
) -> None:
    """Two browser tabs of a member (WebSocket, stream management on) are closed: their
    sessions wait for a resumption that never comes, then end. A message sent meanwhile
    reaches the member's phone once (live, or kept offline until it comes back, as for any
    member who is away), is archived once, and the closed tabs are not left online."""
    sender, member = accounts
    user = member.jid.split("@")[0]
    body = f"dinner at seven {secrets.token_hex(3)}"
    tabs = [open_tab(address, device_tls, member, f"tab{n}") for n in (1, 2)]

    async def exchange() -> tuple[list[str], list[str], list[str]]:
        phone = await log_in(member, device_cert, address) if phone_online else None
        mum = await log_in(sender, device_cert, address)
        for tab in tabs:  # no close frame, no </close>: the connection just ends
            await asyncio.to_thread(tab.transport.drop)  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)
        mum.send_message(mto=member.jid, mbody=body, mtype="chat")
        await asyncio.sleep(short_web_resumption + 4)  # past the tabs' window, and what follows
        resources = host.check_output(f"ejabberdctl user_resources {user} {DOMAIN}").split()
        if phone is None:
            phone = await log_in(member, device_cert, address)
            await asyncio.sleep(2)  # what waited offline arrives at once
        received = []
        while not phone.messages.empty():
            received.append(phone.messages.get_nowait()["body"])
        history = await history_with(phone, sender.jid)
        for client in (phone, mum):
            client.disconnect()
        return received, resources, history

    received, resources, history = asyncio.run(exchange())

    assert received == [body]
    assert history == [body]
    assert not {"tab1", "tab2"} & set(resources)
    assert int(host.check_output(f"ejabberdctl get_offline_count {user} {DOMAIN}")) == 0
    assert archived_copies(host, body) == 2  # the sender's copy and the member's


def test_an_app_that_loses_its_connection_can_still_resume(
    host, short_web_resumption: int, accounts: list[Account], device_cert: Path, address: str
) -> None:
    """An app's connection drops (a phone changing network): its session waits its five
    minutes to be resumed, well past a browser's wait."""
    member = accounts[0]
    user = member.jid.split("@")[0]

    async def drop() -> tuple[list[str], list[str]]:
        app = await log_in(member, device_cert, address, plugins=("xep_0198",))
        await resumable(app)
        before = host.check_output(f"ejabberdctl user_resources {user} {DOMAIN}").split()
        app.abort()  # TLS closed, the TCP connection ended: no </stream>
        await asyncio.sleep(short_web_resumption + 4)
        after = host.check_output(f"ejabberdctl user_resources {user} {DOMAIN}").split()
        return before, after

    before, after = asyncio.run(drop())

    assert len(before) == 1
    assert after == before
