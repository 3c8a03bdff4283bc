"""Push notifications (XEP-0357) over federation, for real. The apps' push services are XMPP
servers of their own; here Prosody stands in for one (push.pi-im.test, in the CA container,
found through the test domain's DNS) and this test is its component, as Conversations' and
Monal's push services are components. An app on the device enables push there; when it is
away, ejabberd sends the service a notification over s2s (dialback, as with a real service)
that says something arrived, never what nor from whom. A service that says a registration is
gone stops getting notifications for it; federation limited to the push services still
carries them, and limited to other servers does not."""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import CA, DEVICE, DOMAIN, address_of
from playbook_run import converge as site

PUSH = "push.pi-im.test"
PUBSUB = "http://jabber.org/protocol/pubsub"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
DATA = "jabber:x:data"
# How long a notification may take: the first one opens the s2s connection (dialback both
# ways) before it is sent.
DELIVERY_SECONDS = 30


@dataclass(frozen=True)
class Notification:
    sender: str
    node: str
    options: dict[str, str]
    summary: dict[str, str]
    xml: str


def _fields(form: ET.Element | None) -> dict[str, str]:
    if form is None:
        return {}
    return {
        field.get("var", ""): field.findtext(f"{{{DATA}}}value", "")
        for field in form.iter(f"{{{DATA}}}field")
    }


class PushService(slixmpp.ComponentXMPP):
    """The push service's component: it takes each notification (a pubsub publish) and answers
    as a push service does, with a result, or with item-not-found for a registration it no
    longer has."""

    def __init__(self, secret: str, address: str) -> None:
        super().__init__(PUSH, secret, address, 5347)
        self.notifications: asyncio.Queue[Notification] = asyncio.Queue()
        self.gone: set[str] = set()
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.ready.set_result(True))
        self.register_handler(
            Callback(
                "publish",
                MatchXPath(f"{{jabber:component:accept}}iq/{{{PUBSUB}}}pubsub"),
                self._publish,
            )
        )

    def _publish(self, iq: slixmpp.Iq) -> None:
        publish = iq.xml.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
        node = publish.get("node", "") if publish is not None else ""
        options = iq.xml.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish-options/{{{DATA}}}x")
        summary = iq.xml.find(f".//{{urn:xmpp:push:0}}notification/{{{DATA}}}x")
        self.notifications.put_nowait(
            Notification(str(iq["from"]), node, _fields(options), _fields(summary), str(iq))
        )
        reply = iq.reply()
        if node in self.gone:
            reply["error"]["type"] = "cancel"
            reply["error"]["condition"] = "item-not-found"
        reply.send()

    async def collect(self, quiet: float = 3.0) -> list[Notification]:
        """What comes: the first within DELIVERY_SECONDS, then each until `quiet` passes
        without one."""
        got = [await asyncio.wait_for(self.notifications.get(), DELIVERY_SECONDS)]
        while True:
            try:
                got.append(await asyncio.wait_for(self.notifications.get(), quiet))
            except TimeoutError:
                return got

    async def none_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.notifications.get(), seconds)
        except TimeoutError:
            return True
        return False


class App(slixmpp.ClientXMPP):
    """A member's app on the device: STARTTLS against the CA's certificate, stream
    management, push through the push service."""

    def __init__(self, name: str, password: str, root: Path) -> None:
        super().__init__(f"{name}@{DOMAIN}", password)
        self.ssl_context = ssl.create_default_context(cafile=str(root))
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._started)
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0198")

    def _started(self, _event: object) -> None:
        self.send_presence()
        self.started.set_result(True)

    async def enable_push(self, node: str, secret: str) -> None:
        """What Conversations sends: its node at the service, and a secret the service checks
        in each notification's publish-options."""
        form = self.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=PUBLISH_OPTIONS)
        form.add_field(var="secret", value=secret)
        enable = ET.Element("{urn:xmpp:push:0}enable", jid=PUSH, node=node)
        enable.append(form.xml)
        iq = self.make_iq_set()
        iq.xml.append(enable)
        await iq.send(timeout=15)

    async def resumable(self) -> None:
        for _ in range(100):
            if self.plugin["xep_0198"].sm_id:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError("stream management was not enabled")


@pytest.fixture
def members(host) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """Two new members for each test: registrations and a session waiting to be resumed
    (kept 72 hours for an app with push) go with the account."""
    made = {f"{role}-{secrets.token_hex(3)}": secrets.token_urlsafe(12) for role in ("a", "b")}
    for name, password in made.items():
        host.run_test(f"ejabberdctl register {name} {DOMAIN} {password}")
    yield made
    for name in made:
        host.run(f"ejabberdctl unregister {name} {DOMAIN}")


async def connected(name: str, password: str, address: str, root: Path) -> App:
    app = App(name, password, root)
    app.connect(host=address, port=5222)
    await asyncio.wait_for(app.started, 30)
    return app


async def push_service() -> PushService:
    secret = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "push-secret").read_text().strip()
    service = PushService(secret, address_of(CA))
    service.connect()
    await asyncio.wait_for(service.ready, 30)
    return service


def test_an_away_app_is_woken_with_nothing_of_the_message(
    members: dict[str, str], device_address: str, pebble_root: Path
) -> None:
    (away, away_password), (writer, writer_password) = members.items()
    node, secret, words = secrets.token_hex(8), secrets.token_hex(8), secrets.token_hex(6)

    async def scenario() -> list[Notification]:
        service = await push_service()
        app = await connected(away, away_password, device_address, pebble_root)
        await app.resumable()
        await app.enable_push(node, secret)
        app.abort()  # the phone's connection drops: the session waits to be resumed
        other = await connected(writer, writer_password, device_address, pebble_root)
        await asyncio.sleep(1)
        other.send_message(mto=f"{away}@{DOMAIN}", mbody=f"meet at {words}", mtype="chat")
        got = await service.collect()
        other.disconnect()
        service.disconnect()
        return got

    notifications = asyncio.run(scenario())
    assert notifications
    for notification in notifications:
        assert notification.sender == DOMAIN
        assert notification.node == node
        assert notification.options == {"FORM_TYPE": PUBLISH_OPTIONS, "secret": secret}
        assert words not in notification.xml
        assert writer not in notification.xml
    assert any(n.summary.get("last-message-body") == "New message" for n in notifications)


async def registered_then_signed_out(
    name: str, password: str, address: str, root: Path, node: str, secret: str
) -> None:
    """An app that enabled push and then closed its session (as an app the phone stopped):
    the registration stays on the device."""
    app = await connected(name, password, address, root)
    await app.enable_push(node, secret)
    await app.disconnect()


async def sent(name: str, password: str, address: str, root: Path, to: str, body: str) -> None:
    other = await connected(name, password, address, root)
    other.send_message(mto=f"{to}@{DOMAIN}", mbody=body, mtype="chat")
    await other.disconnect()


def test_a_signed_out_app_is_woken_and_a_gone_registration_dropped(
    members: dict[str, str], device_address: str, pebble_root: Path
) -> None:
    (away, away_password), (writer, writer_password) = members.items()
    node, secret = secrets.token_hex(8), secrets.token_hex(8)
    where = (device_address, pebble_root)

    async def scenario() -> tuple[list[Notification], bool]:
        service = await push_service()
        await registered_then_signed_out(away, away_password, *where, node, secret)
        await sent(writer, writer_password, *where, away, "one")
        woken = await service.collect()
        # The app was removed from the phone: the service no longer knows the node.
        service.gone.add(node)
        await sent(writer, writer_password, *where, away, "two")
        await service.collect()
        await sent(writer, writer_password, *where, away, "three")
        quiet = await service.none_within(10)
        service.disconnect()
        return woken, quiet

    woken, quiet = asyncio.run(scenario())
    assert {(n.node, n.options.get("secret")) for n in woken} == {(node, secret)}
    assert quiet, "a registration the push service called gone still got notifications"


def converge(extra_vars: dict[str, object]):  # type: ignore[no-untyped-def]
    run = site(extra_vars, host=DEVICE, tags="ejabberd")
    assert run.returncode == 0, run.messages
    return run


@pytest.fixture
def federation_as_converged() -> Iterator[None]:
    yield
    converge({})


@pytest.mark.usefixtures("federation_as_converged")
def test_federation_with_the_push_services_alone_carries_push(
    members: dict[str, str], device_address: str, pebble_root: Path
) -> None:
    (away, away_password), (writer, writer_password) = members.items()
    where = (device_address, pebble_root)

    async def woken(node: str) -> bool:
        service = await push_service()
        await registered_then_signed_out(away, away_password, *where, node, "s")
        await sent(writer, writer_password, *where, away, "hello")
        quiet = await service.none_within(DELIVERY_SECONDS)
        service.disconnect()
        return not quiet

    converge({"ejabberd_federation_with": ["elsewhere.pi-im.test"]})
    assert not asyncio.run(woken(secrets.token_hex(8))), "pushed to a server not named"
    converge({"ejabberd_federation_with": [PUSH]})
    assert asyncio.run(woken(secrets.token_hex(8))), "no push through the push service named"
