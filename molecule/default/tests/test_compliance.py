"""XEP-0479 (XMPP Compliance Suites 2023) as a server: IM Advanced, Mobile Advanced and Web
Advanced. What the server and an account advertise is read with disco#info and from the
stream; what clients rely on is exercised with real clients (slixmpp): carbons between two
resources, history caught up after being offline, a stream resumed after its connection
dropped, CSI, avatars through PEP and vCard, bookmarks, an OMEMO device list a stranger can
read. Debian bookworm's ejabberd 23.01 lacks XEP-0402's compatibility (it came in 23.10):
this suite runs on trixie (the `default` scenario)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import slixmpp

from conftest import DOMAIN, Account
from test_xmpp import history_with, log_in, resumable
from xmpp_framed import FramedClient, WebSocketTransport

DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
PUBSUB = "http://jabber.org/protocol/pubsub"
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def ask(client: slixmpp.ClientXMPP, to: str, kind: str, payload: str) -> ET.Element:
    """An IQ with a raw payload; the answer's XML (an error raises IqError)."""
    iq = client.Iq(sto=to, stype=kind)
    iq.append(ET.fromstring(payload))
    answer = await iq.send(timeout=15)
    return answer.xml


async def disco(client: slixmpp.ClientXMPP, to: str) -> tuple[set[str], set[str]]:
    """(features, identities as category/type) of `to`."""
    info = await ask(client, to, "get", f"<query xmlns='{DISCO_INFO}'/>")
    query = info.find(f"{{{DISCO_INFO}}}query")
    features = {f.get("var", "") for f in query.iter(f"{{{DISCO_INFO}}}feature")}
    identities = {
        f"{i.get('category')}/{i.get('type')}" for i in query.iter(f"{{{DISCO_INFO}}}identity")
    }
    return features, identities


async def items(client: slixmpp.ClientXMPP, to: str) -> set[str]:
    answer = await ask(client, to, "get", f"<query xmlns='{DISCO_ITEMS}'/>")
    return {i.get("jid", "") for i in answer.iter(f"{{{DISCO_ITEMS}}}item")}


def publish_options(**fields: str) -> str:
    values = "".join(
        f"<field var='pubsub#{k}'><value>{v}</value></field>" for k, v in fields.items()
    )
    return (
        "<publish-options><x xmlns='jabber:x:data' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
        f"{values}</x></publish-options>"
    )


async def publish(
    client: slixmpp.ClientXMPP, node: str, item: str, payload: str, **opts: str
) -> None:
    await ask(
        client,
        client.boundjid.bare,
        "set",
        f"<pubsub xmlns='{PUBSUB}'><publish node='{node}'><item id='{item}'>{payload}</item>"
        f"</publish>{publish_options(**opts) if opts else ''}</pubsub>",
    )


async def read_items(client: slixmpp.ClientXMPP, owner: str, node: str) -> list[ET.Element]:
    answer = await ask(
        client, owner, "get", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>"
    )
    return list(answer.iter(f"{{{PUBSUB}}}item"))


@pytest.fixture
def contacts(accounts: list[Account], owner_api: httpx.Client) -> Iterator[list[Account]]:
    """The two accounts in one group, made in the console: each is in the other's contacts."""
    group = f"cs{secrets.token_hex(3)}"
    assert owner_api.post("/groups", json={"name": group}).status_code == 201
    for account in accounts:
        user = account.jid.split("@")[0]
        assert owner_api.put(f"/groups/{group}/members/{user}").status_code == 204
    yield accounts
    assert owner_api.delete(f"/groups/{group}").status_code == 204


def test_the_server_and_an_account_advertise_what_the_suites_require(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    async def read() -> dict[str, tuple[set[str], set[str]]]:
        client = await log_in(accounts[0], device_cert, address)
        found = {
            "domain": await disco(client, DOMAIN),
            "account": await disco(client, accounts[0].jid),
            "conference": await disco(client, f"conference.{DOMAIN}"),
            "upload": await disco(client, f"upload.{DOMAIN}"),
            "items": (await items(client, DOMAIN), set()),
        }
        client.disconnect()
        return found

    found = asyncio.run(read())
    domain, server_identities = found["domain"]
    account, account_identities = found["account"]
    assert "server/im" in server_identities
    assert {
        DISCO_INFO,
        DISCO_ITEMS,
        "vcard-temp",  # XEP-0054
        "urn:xmpp:carbons:2",  # XEP-0280
        "urn:xmpp:blocking",  # XEP-0191
        "urn:xmpp:mam:2",  # XEP-0313
    } <= domain
    assert "pubsub/pep" in account_identities  # XEP-0163
    assert {
        "urn:xmpp:mam:2",  # XEP-0313
        "urn:xmpp:pep-vcard-conversion:0",  # XEP-0398
        "urn:xmpp:bookmarks:1#compat",  # XEP-0402 over XEP-0049
        f"{PUBSUB}#publish-options",  # XEP-0223
        "urn:xmpp:push:0",  # XEP-0357
    } <= account
    assert {f"conference.{DOMAIN}", f"upload.{DOMAIN}"} <= found["items"][0]
    conference, conference_identities = found["conference"]
    assert "conference/text" in conference_identities  # XEP-0045
    assert {"http://jabber.org/protocol/muc", "urn:xmpp:mam:2"} <= conference
    assert "urn:xmpp:http:upload:0" in found["upload"][0]  # XEP-0363


def test_the_stream_offers_what_mobile_clients_need(
    accounts: list[Account], address: str, device_tls: ssl.SSLContext
) -> None:
    """After login: stream management (XEP-0198), CSI (XEP-0352), caps (XEP-0115), roster
    versioning (RFC 6121)."""
    client = FramedClient(
        WebSocketTransport(f"wss://{address}:5280/websocket", device_tls),
        accounts[0].jid,
        accounts[0].password,
    )
    client.login()
    offered = set(client.bound_features)
    client.close()
    assert {
        "{urn:xmpp:sm:3}sm",
        "{urn:xmpp:csi:0}csi",
        "{http://jabber.org/protocol/caps}c",
        "{urn:xmpp:features:rosterver}ver",
    } <= offered


def test_carbons_reach_the_other_resource(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    member, friend = accounts
    body = f"sent from the phone {secrets.token_hex(3)}"

    async def exchange() -> str:
        phone = await log_in(member, device_cert, address)
        laptop = await log_in(member, device_cert, address)
        for device in (phone, laptop):
            device.register_plugin("xep_0280")
            await device.plugin["xep_0280"].enable()
        copied: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        laptop.add_event_handler(
            "carbon_sent", lambda m: copied.set_result(m["carbon_sent"]["body"])
        )
        buddy = await log_in(friend, device_cert, address)
        phone.send_message(mto=friend.jid, mbody=body, mtype="chat")
        seen = await asyncio.wait_for(copied, 15)
        for client in (phone, laptop, buddy):
            client.disconnect()
        return seen

    assert asyncio.run(exchange()) == body


def test_history_catches_up_after_being_offline(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    member, friend = accounts
    body = f"while you were away {secrets.token_hex(3)}"

    async def exchange() -> list[str]:
        buddy = await log_in(friend, device_cert, address)
        buddy.send_message(mto=member.jid, mbody=body, mtype="chat")
        await asyncio.sleep(1)
        back = await log_in(member, device_cert, address)
        history = await history_with(back, friend.jid)
        for client in (buddy, back):
            client.disconnect()
        return history

    assert asyncio.run(exchange())[-1:] == [body]


def test_a_dropped_connection_resumes_without_losing_a_message(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    member, friend = accounts
    body = f"sent during the tunnel {secrets.token_hex(3)}"

    async def exchange() -> tuple[bool, str]:
        phone = await log_in(member, device_cert, address, plugins=("xep_0198",))
        await resumable(phone)
        resumed = asyncio.get_running_loop().create_future()
        phone.add_event_handler("session_resumed", lambda _: resumed.set_result(True))
        buddy = await log_in(friend, device_cert, address)
        phone.abort()  # the network goes: no </stream>
        await asyncio.sleep(1)
        buddy.send_message(mto=member.jid, mbody=body, mtype="chat")
        await asyncio.sleep(1)
        phone.connect(host=address, port=5222)
        was_resumed = await asyncio.wait_for(resumed, 30)
        received = await asyncio.wait_for(phone.messages.get(), 15)
        for client in (phone, buddy):
            client.disconnect()
        return was_resumed, received["body"]

    assert asyncio.run(exchange()) == (True, body)


def test_an_inactive_client_gets_messages_at_once_and_presence_later(
    contacts: list[Account], device_cert: Path, address: str
) -> None:
    """CSI (XEP-0352): while a phone is in the pocket a contact's presence change waits; a
    message with a body is delivered at once, with what waited before it."""
    member, friend = contacts
    body = f"urgent {secrets.token_hex(3)}"
    status = f"at the shops {secrets.token_hex(3)}"

    async def exchange() -> tuple[str, bool, str]:
        phone = await log_in(member, device_cert, address, plugins=("xep_0352",))
        assert phone.plugin["xep_0352"].enabled  # the server offered CSI
        statuses: asyncio.Queue[str] = asyncio.Queue()
        phone.add_event_handler(
            "presence_available",
            lambda p: statuses.put_nowait(p["status"]) if p["from"].bare == friend.jid else None,
        )
        buddy = await log_in(friend, device_cert, address)
        await asyncio.sleep(1)
        while not statuses.empty():
            statuses.get_nowait()
        phone.plugin["xep_0352"].send_inactive()
        await asyncio.sleep(0.5)
        buddy.send_presence(pstatus=status)
        await asyncio.sleep(1.5)
        held = statuses.empty()
        # A message with a body is delivered at once, what was held just before it.
        buddy.send_message(mto=member.jid, mbody=body, mtype="chat")
        message = await asyncio.wait_for(phone.messages.get(), 10)
        shown = await asyncio.wait_for(statuses.get(), 10)
        phone.plugin["xep_0352"].send_active()
        for client in (phone, buddy):
            client.disconnect()
        return message["body"], held, shown

    assert asyncio.run(exchange()) == (body, True, status)


def test_an_avatar_published_with_pep_reaches_contacts_as_a_vcard_photo(
    contacts: list[Account], device_cert: Path, address: str
) -> None:
    """XEP-0084 through PEP, converted by the server (XEP-0398): a contact reads it from the
    vCard (XEP-0054) and sees its hash in presence (XEP-0153)."""
    member, friend = contacts
    digest = hashlib.sha1(TINY_PNG).hexdigest()

    async def exchange() -> tuple[bytes, set[str]]:
        phone = await log_in(member, device_cert, address)
        await publish(
            phone,
            "urn:xmpp:avatar:data",
            digest,
            f"<data xmlns='urn:xmpp:avatar:data'>{base64.b64encode(TINY_PNG).decode()}</data>",
        )
        await publish(
            phone,
            "urn:xmpp:avatar:metadata",
            digest,
            "<metadata xmlns='urn:xmpp:avatar:metadata'>"
            f"<info id='{digest}' bytes='{len(TINY_PNG)}' type='image/png' width='1' height='1'/>"
            "</metadata>",
        )
        hashes: set[str] = set()
        buddy = await log_in(friend, device_cert, address)
        buddy.add_event_handler(
            "presence_available",
            lambda p: hashes.update(e.text or "" for e in p.xml.iter("{vcard-temp:x:update}photo")),
        )
        phone.send_presence()
        await asyncio.sleep(1.5)
        card = await ask(buddy, member.jid, "get", "<vCard xmlns='vcard-temp'/>")
        photo = card.findtext("{vcard-temp}vCard/{vcard-temp}PHOTO/{vcard-temp}BINVAL") or ""
        for client in (phone, buddy):
            client.disconnect()
        return base64.b64decode("".join(photo.split())), hashes

    photo, hashes = asyncio.run(exchange())
    assert photo == TINY_PNG
    assert digest in hashes


def test_bookmarks_are_kept_and_read_both_ways(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    """XEP-0402 bookmarks in PEP, read back by another resource and, for older clients,
    through private XML storage (XEP-0049: the server's #compat)."""
    member = accounts[0]
    room = f"family{secrets.token_hex(3)}@conference.{DOMAIN}"

    async def exchange() -> tuple[list[str], str]:
        phone = await log_in(member, device_cert, address)
        await publish(
            phone,
            "urn:xmpp:bookmarks:1",
            room,
            "<conference xmlns='urn:xmpp:bookmarks:1' name='Family' autojoin='true'>"
            "<nick>mum</nick></conference>",
            persist_items="true",
            access_model="whitelist",
            max_items="max",
            send_last_published_item="never",
        )
        laptop = await log_in(member, device_cert, address)
        kept = [
            i.get("id", "") for i in await read_items(laptop, member.jid, "urn:xmpp:bookmarks:1")
        ]
        legacy = await ask(
            laptop,
            member.jid,
            "get",
            "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>",
        )
        conference = legacy.find(".//{storage:bookmarks}conference")
        for client in (phone, laptop):
            client.disconnect()
        return kept, conference.get("jid", "") if conference is not None else ""

    kept, legacy = asyncio.run(exchange())
    assert room in kept
    assert legacy == room


def test_an_omemo_device_list_is_readable_by_anyone(
    accounts: list[Account], device_cert: Path, address: str
) -> None:
    """OMEMO clients publish their device list with PEP, open to all: someone not (yet) in
    the member's contacts can read it and start an encrypted chat."""
    member, stranger = accounts
    device = str(secrets.randbelow(2**31 - 1) + 1)
    node = "eu.siacs.conversations.axolotl.devicelist"

    async def exchange() -> list[str]:
        phone = await log_in(member, device_cert, address)
        await publish(
            phone,
            node,
            "current",
            f"<list xmlns='eu.siacs.conversations.axolotl'><device id='{device}'/></list>",
            access_model="open",
        )
        other = await log_in(stranger, device_cert, address)
        found = await read_items(other, member.jid, node)
        ids = [
            d.get("id", "")
            for item in found
            for d in item.iter("{eu.siacs.conversations.axolotl}device")
        ]
        for client in (phone, other):
            client.disconnect()
        return ids

    assert asyncio.run(exchange()) == [device]
