"""Real XMPP exchanges with the appliance: STARTTLS + SCRAM on 5222 (slixmpp), WebSocket
and BOSH on 5280, XEP-0156 discovery, and refusals."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import ssl
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import slixmpp
import websockets

from conftest import (
    DOMAIN,
    Account,
    ejabberd_configured,
    ejabberd_log,
    ejabberd_log_size,
    erlang_binary,
    probe,
    secret,
)
from xmpp_framed import (
    AuthenticationFailed,
    BoshTransport,
    FramedClient,
    Transport,
    WebSocketTransport,
)


class Client(slixmpp.ClientXMPP):
    """A real client: requires STARTTLS, verifies the device certificate, logs in."""

    def __init__(self, account: Account, cert: Path) -> None:
        super().__init__(account.jid, account.password)
        self.ssl_context = ssl.create_default_context(cafile=str(cert))
        self.messages: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.outcome: asyncio.Future[str] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_all_auth", lambda _: self._settle("auth failed"))
        self.add_event_handler("message", self._message)
        self.register_plugin("xep_0313")

    def _settle(self, outcome: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)

    async def _started(self, _event: object) -> None:
        self.send_presence()
        # The server takes a session's stanzas in order: once the roster is here, the
        # presence is in, and a message to the bare address reaches this session instead of
        # the offline store (a sender logged in beside it could otherwise win the race).
        await self.get_roster()
        encrypted = isinstance(self.socket, ssl.SSLObject | ssl.SSLSocket)
        self._settle(
            f"session started, encrypted={encrypted}, "
            f"mechanism={self.plugin['feature_mechanisms'].mech.name}"
        )

    def _message(self, message: slixmpp.Message) -> None:
        if message["type"] in ("chat", "normal") and message["body"]:
            self.messages.put_nowait(message)


async def log_in(
    account: Account, cert: Path, address: str, plugins: tuple[str, ...] = ()
) -> Client:
    """A logged-in client; `plugins` are registered before it connects, as those that act on
    the stream's features (stream management, CSI) must be."""
    client = Client(account, cert)
    for plugin in plugins:
        client.register_plugin(plugin)
    client.connect(host=address, port=5222)
    await asyncio.wait_for(client.outcome, 30)
    return client


async def resumable(client: Client) -> None:
    """Wait until the server has enabled resumable stream management (XEP-0198) for a client
    logged in with the `xep_0198` plugin: its answer may follow the session's start."""
    for _ in range(100):
        if client.plugin["xep_0198"].sm_id:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("stream management was not enabled")


async def history_with(client: Client, peer: str) -> list[str]:
    """The bodies of `client`'s archive (XEP-0313) with `peer`, oldest first."""
    return [
        result["mam_result"]["forwarded"]["stanza"]["body"]
        async for result in client.plugin["xep_0313"].iterate(
            with_jid=slixmpp.JID(peer), rsm={"max": 25}
        )
    ]


def test_starttls_scram_login_and_message(accounts, device_cert: Path, address: str) -> None:
    async def exchange() -> tuple[str, str, str]:
        alice = await log_in(accounts[0], device_cert, address)
        bob = await log_in(accounts[1], device_cert, address)
        body = f"hello over c2s {secrets.token_hex(4)}"
        alice.send_message(mto=accounts[1].jid, mbody=body, mtype="chat")
        received = await asyncio.wait_for(bob.messages.get(), 15)
        outcomes = alice.outcome.result()
        for client in (alice, bob):
            client.disconnect()
        return outcomes, str(received["from"].bare), received["body"] + "|" + body

    outcome, sender, bodies = asyncio.run(exchange())
    assert outcome.startswith("session started, encrypted=True")
    assert "SCRAM-SHA" in outcome
    assert sender == accounts[0].jid
    received, sent = bodies.split("|")
    assert received == sent


def test_history_keeps_every_message_in_order(accounts, device_cert: Path, address: str) -> None:
    """A burst of messages, so the archive commits copies together: both sides' history (XEP-0313)
    holds each one, once, in the order sent."""
    burst = 60

    async def histories() -> tuple[list[str], list[str], list[str]]:
        alice = await log_in(accounts[0], device_cert, address)
        bob = await log_in(accounts[1], device_cert, address)
        tag = secrets.token_hex(4)
        sent = [f"history {tag} {n}" for n in range(burst)]
        for body in sent:
            alice.send_message(mto=accounts[1].jid, mbody=body, mtype="chat")
        for _ in sent:
            await asyncio.wait_for(bob.messages.get(), 15)
        kept = [
            await history_with(owner, peer)
            for owner, peer in ((alice, accounts[1].jid), (bob, accounts[0].jid))
        ]
        for client in (alice, bob):
            client.disconnect()
        return sent, kept[0], kept[1]

    sent, alice_history, bob_history = asyncio.run(histories())
    assert alice_history == sent
    assert bob_history == sent


def archive_writer(host, action: str) -> str:
    """Suspend or resume the archive's writer on the live node, or read its mailbox length
    or how many copies it committed without a caller waiting."""
    return probe(host, "archive_writer", action)


def archived_copies(host, body: str) -> int:
    """How many archive rows hold `body`."""
    return int(probe(host, "archived_copies", erlang_binary(body)))


def test_a_message_is_delivered_at_once_and_its_copies_reach_disk_after_it(
    host, accounts, device_cert: Path, address: str
) -> None:
    """As shipped (`wait_for_disk: false`): with the archive's writer held, a message is still
    delivered, its two copies waiting in the writer's queue and not yet on disk; a history
    read made then waits for them, and holds the message once the writer runs."""
    body = f"early {secrets.token_hex(6)}"

    async def exchange() -> tuple[str, str, int, bool, list[str]]:
        alice = await log_in(accounts[0], device_cert, address)
        bob = await log_in(accounts[1], device_cert, address)
        archive_writer(host, "suspend")
        try:
            alice.send_message(mto=accounts[1].jid, mbody=body, mtype="chat")
            received = await asyncio.wait_for(bob.messages.get(), 15)
            queued = archive_writer(host, "queued")
            on_disk = archived_copies(host, body)
            reading = asyncio.ensure_future(history_with(bob, accounts[0].jid))
            await asyncio.sleep(1)
            read_while_held = reading.done()
        finally:
            archive_writer(host, "resume")
        history = await asyncio.wait_for(reading, 15)
        for client in (alice, bob):
            client.disconnect()
        return received["body"], queued, on_disk, read_while_held, history

    unwaited = int(archive_writer(host, "unwaited"))
    received, queued, on_disk, read_while_held, history = asyncio.run(exchange())
    assert (received, queued, on_disk, read_while_held) == (body, "2", 0, False)
    assert history[-1:] == [body]
    assert archived_copies(host, body) == 2
    assert int(archive_writer(host, "unwaited")) == unwaited + 2


def test_copies_still_queued_when_ejabberd_stops_are_written(
    host, accounts, device_cert: Path, address: str
) -> None:
    """A clean stop (a reboot, an upgrade) writes the copies of messages already delivered
    before ejabberd exits: here they wait in the held writer's queue when ejabberd restarts."""
    body = f"stopping {secrets.token_hex(6)}"

    async def exchange() -> tuple[str, str, int]:
        alice = await log_in(accounts[0], device_cert, address)
        bob = await log_in(accounts[1], device_cert, address)
        archive_writer(host, "suspend")
        alice.send_message(mto=accounts[1].jid, mbody=body, mtype="chat")
        received = await asyncio.wait_for(bob.messages.get(), 15)
        queued = archive_writer(host, "queued")
        on_disk = archived_copies(host, body)
        for client in (alice, bob):
            client.disconnect()
        return received["body"], queued, on_disk

    try:
        received, queued, on_disk = asyncio.run(exchange())
    finally:
        host.check_output("systemctl restart ejabberd")  # also lets a held writer go
    assert (received, queued, on_disk) == (body, "2", 0)
    assert archived_copies(host, body) == 2


def sqlite_connection_settings(host) -> tuple[int, int]:
    """Page cache (negative: KiB) and checkpoint interval (pages) of ejabberd's live SQLite
    connection: settings of the connection, not of the file, so only the node can say."""
    answer = probe(host, "sqlite_connection_settings")
    cache, checkpoint = (int(v) for v in answer.strip("[]").split(","))
    return cache, checkpoint


def test_the_archive_sizes_ejabberds_sqlite_connection_and_a_reload_resizes_it(host) -> None:
    # Set when ejabberd starts (SQLite's own defaults are -2000 and 1000). Restarted here so
    # that a reload by an earlier test cannot be what set them.
    host.check_output("systemctl restart ejabberd")
    assert sqlite_connection_settings(host) == (-32 * 1024, 10000)

    smaller = {
        "    sqlite_cache_mb: .*": "    sqlite_cache_mb: 8",
        "    sqlite_checkpoint_pages: .*": "    sqlite_checkpoint_pages: 2000",
    }
    with ejabberd_configured(host, smaller):
        assert sqlite_connection_settings(host) == (-8 * 1024, 2000)
    assert sqlite_connection_settings(host) == (-32 * 1024, 10000)


@pytest.mark.usefixtures("archive_waits_for_disk")
def test_waiting_for_disk_a_message_is_delivered_after_both_copies_and_its_sender_goes_on(
    host, accounts, device_cert: Path, address: str
) -> None:
    """With `wait_for_disk: true` and the archive's writer held, a message is not delivered
    (the recipient's copy waits for its commit, behind the sender's copy in the same writer),
    while the sender's session goes on answering; once the writer runs, both copies are in
    the database when the message arrives, and the sender's copy was committed without anyone
    waiting on it."""
    body = f"held {secrets.token_hex(6)}"

    async def exchange() -> tuple[str, int, str, int]:
        alice = await log_in(accounts[0], device_cert, address)
        bob = await log_in(accounts[1], device_cert, address)
        archive_writer(host, "suspend")
        try:
            alice.send_message(mto=accounts[1].jid, mbody=body, mtype="chat")
            # Answered while the writer is held: the sender's session did not wait for it.
            await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=10)
            await asyncio.sleep(1)
            early = bob.messages.qsize()
            queued = archive_writer(host, "queued")
        finally:
            archive_writer(host, "resume")
        received = await asyncio.wait_for(bob.messages.get(), 15)
        copies = archived_copies(host, body)
        for client in (alice, bob):
            client.disconnect()
        return queued, early, received["body"], copies

    unwaited = int(archive_writer(host, "unwaited"))
    queued, early, received, copies = asyncio.run(exchange())
    assert (queued, early) == ("2", 0)
    assert received == body
    assert copies == 2
    assert int(archive_writer(host, "unwaited")) == unwaited + 1


def offline_set(host, user: str, action: str = "member") -> str:
    """Ask (or restart) the set of users with offline messages, on the live node; `pop`
    pops the user's spool through the backend and counts the SQL pops it made."""
    return probe(host, "offline_set", erlang_binary(user), action)


def test_offline_messages_wait_for_the_next_login(
    host, accounts, device_cert: Path, address: str
) -> None:
    """Messages to a user who is away are kept and delivered, in order, at their next login,
    also across a restart of the backend's in-memory set of users with offline messages (it
    reloads from the spool); a user without any is answered without an SQL pop, and one
    whose spool was emptied gets the next message too."""
    bob = accounts[1].jid.split("@")[0]
    tag = secrets.token_hex(4)

    async def send(bodies: list[str]) -> None:
        alice = await log_in(accounts[0], device_cert, address)
        for body in bodies:
            alice.send_message(mto=accounts[1].jid, mbody=body, mtype="chat")
        # A round trip after the messages: they have been routed (and spooled) when it returns.
        await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=15)
        alice.disconnect()

    async def come_back(count: int) -> list[str]:
        client = await log_in(accounts[1], device_cert, address)
        bodies = [(await asyncio.wait_for(client.messages.get(), 15))["body"] for _ in range(count)]
        client.disconnect()
        return bodies

    assert offline_set(host, bob) == "false"
    assert offline_set(host, bob, "pop").replace(" ", "") == "{{ok,[]},0}"  # no SQL
    first = [f"while away {tag} {n}" for n in range(3)]
    asyncio.run(send(first))
    assert offline_set(host, bob) == "true"
    assert offline_set(host, bob, "restart") == "restarted"
    assert offline_set(host, bob) == "true"
    assert asyncio.run(come_back(len(first))) == first
    assert offline_set(host, bob) == "false"

    again = [f"away again {tag}"]
    asyncio.run(send(again))
    assert asyncio.run(come_back(1)) == again
    assert offline_set(host, bob, "pop").replace(" ", "") == "{{ok,[]},0}"


def push_set(host, user: str, action: str = "member") -> str:
    """Ask (or restart) the set of users with push registrations, on the live node; `lookup`
    looks up the user's registrations through the backend: how many, and the SQL lookups made."""
    return probe(host, "push_set", erlang_binary(user), action)


def test_push_registrations_are_looked_up_only_for_members_who_have_one(
    host, accounts, device_cert: Path, address: str
) -> None:
    """mod_push looks up the recipient's push registrations for each message it archives: for
    a member without one the answer comes from the in-memory set, without SQL; an app that
    enables push (XEP-0357, as Conversations does at its push service) puts its user in the
    set, which a restart of its owner reloads from the database. A disabled registration
    leaves the user in the set (one lookup, as before), never the other way round."""
    bob = accounts[1].jid.split("@")[0]
    node = secrets.token_hex(8)

    async def push(action: str) -> None:
        client = await log_in(accounts[1], device_cert, address)
        iq = client.make_iq_set()
        iq.xml.append(ET.Element(f"{{urn:xmpp:push:0}}{action}", jid="push.example.net", node=node))
        await iq.send(timeout=15)
        client.disconnect()

    assert push_set(host, bob) == "false"
    assert push_set(host, bob, "lookup").replace(" ", "") == "{0,0}"  # no SQL
    asyncio.run(push("enable"))
    assert push_set(host, bob) == "true"
    assert push_set(host, bob, "lookup").replace(" ", "") == "{1,1}"
    assert push_set(host, bob, "restart") == "restarted"
    assert push_set(host, bob) == "true"
    assert push_set(host, bob, "lookup").replace(" ", "") == "{1,1}"
    asyncio.run(push("disable"))
    assert push_set(host, bob, "lookup").replace(" ", "") == "{0,1}"


def test_generated_admin_account_logs_in(host, device_cert: Path, address: str) -> None:
    admin = Account(f"admin@{DOMAIN}", secret(host, "ejabberd-admin-password"))

    async def attempt() -> str:
        client = await log_in(admin, device_cert, address)
        client.disconnect()
        return client.outcome.result()

    assert asyncio.run(attempt()).startswith("session started, encrypted=True")


def xmpp_login(account: Account, cert: Path, address: str) -> str:
    """Log in over STARTTLS on 5222 and out again: how it went."""

    async def attempt() -> str:
        client = Client(account, cert)
        client.connect(host=address, port=5222)
        outcome = await asyncio.wait_for(client.outcome, 30)
        client.disconnect()
        return outcome

    return asyncio.run(attempt())


def roster_of(account: Account, cert: Path, address: str) -> set[str]:
    """The JIDs in the account's roster, as its app gets it at login."""

    async def fetch() -> set[str]:
        client = Client(account, cert)
        client.connect(host=address, port=5222)
        await asyncio.wait_for(client.outcome, 30)
        await client.get_roster()
        jids = {str(jid) for jid in client.client_roster if str(jid) != account.jid}
        client.disconnect()
        return jids

    return asyncio.run(fetch())


def test_wrong_password_refused_on_c2s_and_logged(
    host, accounts, device_cert: Path, address: str
) -> None:
    """Refused, and in ejabberd's log for the operator; the good login just before it is
    not (the shipped level is `warning`: decision 0017)."""
    since = ejabberd_log_size(host)
    assert xmpp_login(accounts[0], device_cert, address).startswith("session started")
    wrong = Account(accounts[0].jid, accounts[0].password + "x")
    assert xmpp_login(wrong, device_cert, address) == "auth failed"

    logged = ejabberd_log(host, f"authentication for {accounts[0].jid} ", since=since)
    assert len(logged) == 1, logged
    assert re.search(r"\[warning\] .*Failed c2s \S+ authentication", logged[0]), logged
    # Read once the failure is written: the good login's lines would be before it.
    assert ejabberd_log(host, "Accepted", count=0, since=since) == []


def framed(address: str, transport: str, tls: ssl.SSLContext) -> Transport:
    """A web client's connection: WebSocket or BOSH, over TLS (the only way offered)."""
    if transport == "websocket":
        return WebSocketTransport(f"wss://{address}:5280/websocket", tls)
    return BoshTransport(f"https://{address}:5280/bosh", tls)


@pytest.mark.parametrize("transport", ["websocket", "bosh"])
def test_framed_login_and_message(
    accounts, address: str, transport: str, device_tls: ssl.SSLContext
) -> None:
    def connect(account: Account) -> FramedClient:
        client = FramedClient(framed(address, transport, device_tls), account.jid, account.password)
        client.login()
        return client

    alice, bob = connect(accounts[0]), connect(accounts[1])
    assert alice.jid.startswith(accounts[0].jid + "/")
    # SCRAM only: PLAIN against SCRAM-stored passwords is slow and memory-hungry.
    assert "PLAIN" not in alice.mechanisms
    assert "SCRAM-SHA-1" in alice.mechanisms
    body = f"hello over {transport} {secrets.token_hex(4)}"
    alice.send_message(accounts[1].jid, body)
    sender, received = bob.receive_message()
    assert sender.split("/")[0] == accounts[0].jid
    assert received == body
    alice.close()
    bob.close()


@pytest.mark.parametrize("transport", ["websocket", "bosh"])
def test_wrong_password_refused_on_framed(
    accounts, address: str, transport: str, device_tls: ssl.SSLContext
) -> None:
    channel = framed(address, transport, device_tls)
    client = FramedClient(channel, accounts[0].jid, "not-" + accounts[0].password)
    with pytest.raises(AuthenticationFailed, match="not-authorized"):
        client.login()


@pytest.mark.parametrize(
    ("url", "refused"),
    [("ws://{}:5280/websocket", Exception), ("http://{}:5280/bosh", httpx.HTTPError)],
    ids=["ws", "http"],
)
def test_web_clients_cannot_log_in_without_tls(address: str, url: str, refused: type) -> None:
    """Finding 6: SCRAM over plain ws:// or http:// would bypass the STARTTLS 5222 requires."""

    def open_plain(url: str) -> None:
        if url.startswith("ws"):
            WebSocketTransport(url).open_stream(DOMAIN, restart=False)
        else:
            httpx.post(url, content="<body/>", timeout=10).raise_for_status()

    with pytest.raises(refused):
        open_plain(url.format(address))


@pytest.mark.parametrize("port", [5280, 443])
@pytest.mark.parametrize("document", ["host-meta", "host-meta.json"])
@pytest.mark.parametrize("name", [DOMAIN, "address", "localhost"])
def test_host_meta_announces_only_tls_web_endpoints(
    address: str, device_tls: ssl.SSLContext, name: str, document: str, port: int
) -> None:
    """XEP-0156 discovery answers whichever name the device is asked by (mod_host_meta alone
    crashed on any but the domain) with the domain's links, TLS ones only; also on the
    standard HTTPS port, the only place Converse looks (https://DOMAIN/.well-known/host-meta)."""
    response = httpx.get(
        f"https://{address}:{port}/.well-known/{document}",
        headers={"Host": address if name == "address" else name},
        timeout=10,
        verify=device_tls,
    )
    assert response.status_code == 200
    if document.endswith(".json"):
        links = {link["rel"]: link["href"] for link in json.loads(response.text)["links"]}
    else:
        links = {
            link.get("rel"): link.get("href")
            for link in ET.fromstring(response.text)
            if link.tag.endswith("Link")
        }
    assert links == {
        "urn:xmpp:alt-connections:websocket": f"wss://{DOMAIN}:5280/websocket",
        "urn:xmpp:alt-connections:xbosh": f"https://{DOMAIN}:5280/bosh",
    }


@pytest.mark.parametrize(
    ("origin", "opens"),
    [
        (None, True),
        (f"https://{DOMAIN}:5280", True),
        ("https://{address}:5280", True),
        (f"https://{DOMAIN}", True),
        ("https://{address}", True),
        ("https://{host_name}:5280", True),
        ("https://{host_name}.local:5280", True),
        ("https://elsewhere.example", False),
        (f"https://{DOMAIN}:8443", False),
        ("https://192.0.2.1:5280", False),
    ],
    ids=[
        "an-app",
        "the-web-chat-by-domain",
        "the-web-chat-by-address",
        "the-web-chat-on-the-standard-port",
        "the-web-chat-by-address-on-the-standard-port",
        "the-web-chat-by-host-name",
        "the-web-chat-by-local-name",
        "another-site",
        "another-port",
        "another-address",
    ],
)
def test_only_the_devices_pages_open_the_websocket(
    host, address: str, device_tls: ssl.SSLContext, origin: str | None, opens: bool
) -> None:
    """A browser says which page opens a WebSocket; one on another site could otherwise use a
    member's browser to reach the device (on the LAN, where the site cannot). The device's own
    web chat is served by any of its names and its address, each its own origin."""
    if origin:
        origin = origin.format(address=address, host_name=host.check_output("hostname").lower())
    url = f"wss://{address}:5280/websocket"
    if opens:
        transport = WebSocketTransport(url, device_tls, origin)
        assert transport.open_stream(DOMAIN, restart=False)
        transport.close()
    else:
        with pytest.raises(websockets.InvalidStatus) as refused:
            WebSocketTransport(url, device_tls, origin)
        assert refused.value.response.status_code == 403


def test_in_band_registration_is_off(address: str, device_tls: ssl.SSLContext) -> None:
    client = FramedClient(
        framed(address, "websocket", device_tls), f"nobody@{DOMAIN}", "irrelevant"
    )
    with pytest.raises(AuthenticationFailed):
        client.login()
    assert "{http://jabber.org/features/iq-register}register" not in client.features
    assert client.features  # the features were read at all


def test_admin_api_not_public(address: str, device_tls: ssl.SSLContext) -> None:
    # Only loopback reaches the admin API; the public HTTP listener has no /api.
    response = httpx.post(
        f"https://{address}:5280/api/register",
        timeout=10,
        verify=device_tls,
        json={"user": "intruder", "host": DOMAIN, "password": "x" * 12},
    )
    assert response.status_code == 404
