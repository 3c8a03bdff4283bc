"""The event bus: what ejabberd publishes to RabbitMQ's pi-im.events exchange, read by a real
AMQP consumer on the device's loopback from real XMPP clients' doings, checked against the
schema; at least once across a RabbitMQ restart; a full buffer dropping and saying so; the
publisher's rights and password kept to itself."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import httpx
import jsonschema
import slixmpp
from pi_im_events import schema

from admin_console import Console
from conftest import DOMAIN, Account, create_user, ejabberd_configured, run_in_netns, secret
from test_xmpp import log_in

VALIDATOR = jsonschema.Draft202012Validator(
    schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
# Logins and logouts would share the buffer with the messages counted.
ONLY_CHAT = {"    events: .*": '    events: ["message.chat"]'}


def bus(host, netns: list[str], *args: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return run_in_netns(netns, secret(host, "rabbitmq-admin-password"), args[0], "admin", *args[1:])


def subscribed(host, netns: list[str], *keys: str) -> str:  # type: ignore[no-untyped-def]
    """A fresh durable queue bound to the exchange for `keys`: what it gets from now on."""
    queue = f"test-{secrets.token_hex(4)}"
    bus(host, netns, "bind", queue, *keys)
    return queue


def taken(host, netns: list[str], queue: str, count: int, seconds: float = 15) -> list[dict]:  # type: ignore[no-untyped-def]
    got = bus(host, netns, "take", queue, str(count), str(seconds))["events"]
    for delivery in got:
        VALIDATOR.validate(delivery["event"])
    return got


def status(host) -> list[str]:  # type: ignore[no-untyped-def]
    """ejabberdctl event_bus_status: connected, buffered, in flight, confirmed, dropped, error."""
    return host.check_output(f"ejabberdctl event_bus_status {DOMAIN}").split("\t")


def drained(host, seconds: float = 60) -> bool:  # type: ignore[no-untyped-def]
    """Connected, and every event confirmed (the publisher retries every 10 s at most)."""
    deadline = time.monotonic() + seconds
    while status(host)[:3] != ["true", "0", "0"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


async def chat(
    sender: Account, recipient: Account, bodies: list[str], cert: Path, address: str
) -> None:
    alice = await log_in(sender, cert, address)
    bob = await log_in(recipient, cert, address)
    for body in bodies:
        alice.send_message(mto=recipient.jid, mbody=body, mtype="chat")
    for _ in bodies:
        await asyncio.wait_for(bob.messages.get(), 30)
    for client in (alice, bob):
        client.disconnect()


def test_a_chat_message_is_published_once_as_metadata(
    host, netns: list[str], accounts: list[Account], device_cert: Path, address: str
) -> None:
    queue = subscribed(host, netns, "message.chat")
    text = f"not for the bus {secrets.token_hex(4)}"
    asyncio.run(chat(accounts[0], accounts[1], [text], device_cert, address))
    (delivery,) = taken(host, netns, queue, 10, seconds=5)
    assert delivery["routing_key"] == "message.chat"
    assert delivery["persistent"]
    assert delivery["content_type"] == "application/json"
    event = delivery["event"]
    assert event["type"] == "message.chat"
    assert event["host"] == DOMAIN
    data = event["data"]
    assert data["from"].startswith(accounts[0].jid + "/")
    assert data["to"] == accounts[1].jid
    # The sender's archive id, as their app sees it in its history.
    assert data["stanza_id"]
    assert data["stanza_id"].isdigit()
    assert data["file"] is False
    assert data["encryption"] is None
    assert "body" not in data
    assert text not in json.dumps(event)


def test_with_bodies_on_the_text_goes_too_but_never_an_encrypted_ones(
    host, netns: list[str], accounts: list[Account], device_cert: Path, address: str
) -> None:
    queue = subscribed(host, netns, "message.*")
    text = f"for the bus {secrets.token_hex(4)}"

    async def plain_and_omemo() -> None:
        alice = await log_in(accounts[0], device_cert, address)
        bob = await log_in(accounts[1], device_cert, address)
        alice.send_message(mto=accounts[1].jid, mbody=text, mtype="chat")
        omemo = alice.make_message(
            mto=accounts[1].jid, mbody="I sent you an OMEMO encrypted message", mtype="chat"
        )
        encrypted = slixmpp.xmlstream.ET.Element("{eu.siacs.conversations.axolotl}encrypted")
        omemo.append(encrypted)
        omemo.send()
        for _ in range(2):
            await asyncio.wait_for(bob.messages.get(), 30)
        for client in (alice, bob):
            client.disconnect()

    with ejabberd_configured(host, {"    bodies: false": "    bodies: true"}):
        asyncio.run(plain_and_omemo())
        plain, encrypted = (d["event"]["data"] for d in taken(host, netns, queue, 2))
    assert plain["body"] == text
    assert encrypted["encryption"] == "omemo"
    assert "body" not in encrypted


def test_a_room_message_logins_accounts_and_rooms_are_events(
    host, netns: list[str], owner_api: httpx.Client, device_cert: Path, address: str
) -> None:
    """Made as an operator makes them: the console's API."""
    queue = subscribed(host, netns, "user.*", "room.*", "message.groupchat")
    member = create_user(owner_api)
    user = member.jid.split("@")[0]
    room = f"r{secrets.token_hex(4)}"
    conference = f"conference.{DOMAIN}"
    assert owner_api.post("/rooms", json={"name": room, "title": "Events"}).status_code == 201
    assert owner_api.put(f"/rooms/{room}/members/{user}").status_code == 204

    async def speak() -> None:
        client = await log_in(member, device_cert, address)
        client.register_plugin("xep_0045")
        await client.plugin["xep_0045"].join_muc_wait(
            slixmpp.JID(f"{room}@{conference}"), "nick1", maxstanzas=0
        )
        client.send_message(mto=f"{room}@{conference}", mbody="hello room", mtype="groupchat")
        await asyncio.sleep(1)
        client.disconnect()
        await asyncio.sleep(1)

    asyncio.run(speak())
    assert owner_api.delete(f"/rooms/{room}").status_code == 204
    assert owner_api.delete(f"/users/{user}").status_code == 204
    events = [d["event"] for d in taken(host, netns, queue, 7)]
    assert [e["type"] for e in events] == [
        "user.created",
        "room.created",
        "user.login",
        "message.groupchat",
        "user.logout",
        "room.destroyed",
        "user.deleted",
    ]
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["user.created"] == {"jid": member.jid}
    assert by_type["room.created"] == {"room": f"{room}@{conference}"}
    assert by_type["user.login"]["jid"].startswith(member.jid + "/")
    assert by_type["user.login"]["connection"] == "c2s_tls"
    said = by_type["message.groupchat"]
    assert said["room"] == f"{room}@{conference}"
    assert said["nick"] == "nick1"
    assert said["from"].startswith(member.jid + "/")
    assert said["stanza_id"]


def test_events_wait_for_rabbitmq_to_come_back_and_none_is_lost(
    host,
    netns: list[str],
    accounts: list[Account],
    device_cert: Path,
    address: str,
    owner: Console,
    owner_api: httpx.Client,
) -> None:
    """The owner sees it on the dashboard while it happens."""
    queue = subscribed(host, netns, "message.chat")
    bodies = [f"while away {n}" for n in range(300)]
    with ejabberd_configured(host, {**ONLY_CHAT, "    bodies: false": "    bodies: true"}):
        host.check_output("systemctl stop rabbitmq-server")
        try:
            asyncio.run(chat(accounts[0], accounts[1], bodies, device_cert, address))
            connected, buffered, *_ = status(host)
            assert connected == "false"
            assert int(buffered) == 300
            shown = owner_api.get("/dashboard").json()["event_bus"]
            assert shown["connected"] is False
            assert shown["buffered"] == 300
            assert shown["last_error"]
            page = owner.get("/").text
            assert 'id="event-bus" class="error" role="alert"' in page
            assert "300 wait in ejabberd's memory" in page
        finally:
            host.check_output("systemctl start rabbitmq-server")
        # An integrator's service (pi_im_events.consume), which skips an event seen again.
        events = bus(host, netns, "consume", queue, "300", "30", "message.chat")["events"]
    assert [e["data"]["body"] for e in events] == bodies
    assert drained(host)
    shown = owner_api.get("/dashboard").json()["event_bus"]
    assert shown["connected"] is True
    assert shown["confirmed"] >= 300
    assert 'id="event-bus"' in owner.get("/").text


def test_a_full_buffer_drops_new_events_and_says_how_many(
    host, netns: list[str], accounts: list[Account], device_cert: Path, address: str
) -> None:
    queue = subscribed(host, netns, "message.chat", "events.dropped")
    with ejabberd_configured(host, {**ONLY_CHAT, "    buffer: [0-9]*": "    buffer: 50"}):
        host.check_output("systemctl stop rabbitmq-server")
        try:
            asyncio.run(
                chat(accounts[0], accounts[1], [f"m{n}" for n in range(80)], device_cert, address)
            )
            _connected, buffered, _in_flight, _confirmed, dropped, _error = status(host)
            assert (int(buffered), int(dropped)) == (50, 30)
        finally:
            host.check_output("systemctl start rabbitmq-server")
        # Once RabbitMQ took the 50, the next event fits: the notice comes before it.
        assert drained(host)
        asyncio.run(chat(accounts[0], accounts[1], ["after"], device_cert, address))
        events = [d["event"] for d in taken(host, netns, queue, 100, seconds=20)]
    types = [e["type"] for e in events]
    assert types.count("message.chat") == 51
    (notice,) = [e for e in events if e["type"] == "events.dropped"]
    assert notice["data"]["count"] == 30
    assert types.index("events.dropped") == 50


def test_the_publisher_may_publish_and_nothing_else(host, netns: list[str]) -> None:
    password = host.check_output("cat /etc/ejabberd/event-bus.password")
    assert password == secret(host, "rabbitmq-ejabberd-password")
    refused = run_in_netns(netns, password, "declare", "ejabberd")
    assert refused["declared"] is False
    assert "ACCESS_REFUSED" in str(refused["error"])
    kept = host.file("/etc/ejabberd/event-bus.password")
    assert (kept.user, kept.group, kept.mode) == ("root", "ejabberd", 0o640)
    assert password not in host.file("/etc/ejabberd/ejabberd.yml").content_string
    assert password not in host.check_output("journalctl -u ejabberd -u rabbitmq-server --no-pager")
