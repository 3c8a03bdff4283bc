"""A device used as a family uses it, and the check that all of it is still there: for the
scenarios that move a device's state (upgrade in place, backup and restore). `use` makes the
accounts, a shared group, a group chat, an operator, an API token, an invitation, a chat with
history, a room message and an offline message through the console's API and real XMPP
clients; `check_*` read each back the same way."""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import slixmpp

from admin_console import Console, api
from conftest import DOMAIN

SECRETS = [
    "ejabberd-admin-password",
    "ejabberd-api-password",
    "rabbitmq-admin-password",
    "admin-owner-password",
]
# What identifies the device to its clients and to SSH.
IDENTITY = (
    "openssl x509 -in /etc/ejabberd/tls/device.pem -noout -fingerprint -sha256; "
    "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"
)


@dataclass
class Story:
    """What a family made on the device."""

    users: dict[str, str] = field(default_factory=dict)  # name -> password
    group: str = ""
    room: str = ""
    operator: tuple[str, str] = ("", "")
    token: str = ""
    invite: str = ""
    chat: list[str] = field(default_factory=list)  # alice -> bob, in order
    room_text: str = ""
    offline_text: str = ""  # alice -> carol, who was away
    secrets: dict[str, str] = field(default_factory=dict)
    identity: str = ""
    assistant_key: str = ""  # the key the owner gave the console for its assistant


class Client(slixmpp.ClientXMPP):
    """A real client: STARTTLS, the device's certificate checked, SCRAM, roster, history."""

    def __init__(self, user: str, password: str, tls: ssl.SSLContext) -> None:
        super().__init__(f"{user}@{DOMAIN}", password)
        self.ssl_context = tls
        self.messages: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.started: asyncio.Future[str] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_all_auth", lambda _: self._settle("auth failed"))
        self.add_event_handler("message", self._message)
        for plugin in ("xep_0045", "xep_0313"):
            self.register_plugin(plugin)

    def _settle(self, outcome: str) -> None:
        if not self.started.done():
            self.started.set_result(outcome)

    async def _started(self, _event: object) -> None:
        await self.get_roster()
        self.send_presence()
        self._settle("started")

    def _message(self, message: slixmpp.Message) -> None:
        if message["type"] in ("chat", "normal") and message["body"]:
            self.messages.put_nowait(message)

    async def history(self, with_jid: str | None = None, archive: str | None = None) -> list[str]:
        return [
            result["mam_result"]["forwarded"]["stanza"]["body"]
            async for result in self.plugin["xep_0313"].iterate(
                jid=slixmpp.JID(archive) if archive else None,
                with_jid=slixmpp.JID(with_jid) if with_jid else None,
                rsm={"max": 50},
            )
        ]


async def online(user: str, password: str, tls: ssl.SSLContext, address: str) -> Client:
    client = Client(user, password, tls)
    client.connect(host=address, port=5222)
    outcome = await asyncio.wait_for(client.started, 30)
    assert outcome == "started", f"{user}: {outcome}"
    return client


def jid(user: str) -> str:
    return f"{user}@{DOMAIN}"


def device_secrets(host) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: host.check_output(f"pi-im-secret show {name}") for name in SECRETS}


def use(host, address: str, tls: ssl.SSLContext) -> Story:  # type: ignore[no-untyped-def]
    """The device, used: through the console's API and with real XMPP clients."""
    base_url = f"https://{address}:8080"
    made = Story(
        group=f"family{secrets.token_hex(2)}",
        room=f"kitchen{secrets.token_hex(2)}",
        operator=(f"helper{secrets.token_hex(2)}", secrets.token_urlsafe(16)),
    )
    made.secrets, made.identity = device_secrets(host), host.check_output(IDENTITY)
    owner = Console(base_url, tls)
    assert owner.sign_in("owner", made.secrets["admin-owner-password"]).status_code == 303
    made.token = owner.create_token("family", "owner")
    with api(base_url, made.token, tls) as console:
        assert console.post("/groups", json={"name": made.group, "label": "Family"}).is_success
        for name in ("alice", "bob", "carol"):
            made.users[name] = secrets.token_urlsafe(16)
            body = {"username": name, "password": made.users[name], "group": made.group}
            assert console.post("/users", json=body).status_code == 201
        assert console.post("/rooms", json={"name": made.room, "title": "Kitchen"}).is_success
        for name in ("alice", "bob"):
            assert console.put(f"/rooms/{made.room}/members/{name}").status_code == 204
        operator = {"username": made.operator[0], "password": made.operator[1], "role": "operator"}
        assert console.post("/operators", json=operator).status_code == 201
        made.invite = console.post("/invites", json={"hours": 72}).json()["token"]
        # An assistant with a key: a device secret the owner gave, not one the device made.
        made.assistant_key = f"sk-family-{secrets.token_hex(12)}"
        assistant = {
            "url": "https://ai.family.test/v1",
            "model": "small",
            "key": made.assistant_key,
        }
        assert console.put("/assistant", json=assistant).status_code == 200

    async def chat() -> None:
        alice = await online("alice", made.users["alice"], tls, address)
        bob = await online("bob", made.users["bob"], tls, address)
        await alice.update_roster(jid("bob"), name="Bob the builder")
        for n in range(3):
            text = f"family message {n} {secrets.token_hex(3)}"
            alice.send_message(mto=jid("bob"), mbody=text, mtype="chat")
            received = await asyncio.wait_for(bob.messages.get(), 15)
            assert received["body"] == text
            made.chat.append(text)
        room = f"{made.room}@conference.{DOMAIN}"
        await alice.plugin["xep_0045"].join_muc_wait(slixmpp.JID(room), "alice", maxstanzas=0)
        made.room_text = f"to the kitchen {secrets.token_hex(3)}"
        alice.send_message(mto=room, mbody=made.room_text, mtype="groupchat")
        made.offline_text = f"while you were away {secrets.token_hex(3)}"
        alice.send_message(mto=jid("carol"), mbody=made.offline_text, mtype="chat")
        assert made.room_text in await alice.history(archive=room)
        assert await alice.history(with_jid=jid("bob")) == made.chat
        for client in (alice, bob):
            client.disconnect()
            await client.disconnected

    asyncio.run(chat())
    return made


def check_clients(story: Story, address: str, tls: ssl.SSLContext, waiting: bool = True) -> None:
    """Everyone logs in with the old password and finds roster, group, history, room and the
    message that waited for them (unless it was delivered before: waiting=False)."""

    async def check() -> None:
        alice = await online("alice", story.users["alice"], tls, address)
        bob = await online("bob", story.users["bob"], tls, address)
        carol = await online("carol", story.users["carol"], tls, address)
        roster = alice.client_roster
        assert roster[jid("bob")]["name"] == "Bob the builder"
        # The shared group puts every member in every member's roster.
        assert {jid("alice"), jid("bob")} <= set(carol.client_roster.keys())
        assert await alice.history(with_jid=jid("bob")) == story.chat
        assert await bob.history(with_jid=jid("alice")) == story.chat
        room = f"{story.room}@conference.{DOMAIN}"
        assert story.room_text in await alice.history(archive=room)
        if waiting:
            kept = await asyncio.wait_for(carol.messages.get(), 15)
            assert kept["body"] == story.offline_text
            assert kept["from"].bare == jid("alice")
        for client in (alice, bob, carol):
            client.disconnect()
            await client.disconnected

    asyncio.run(check())


def check_console(story: Story, address: str, tls: ssl.SSLContext) -> None:
    """The operator signs in; the token, the group, the room and the invitation still work."""
    base_url = f"https://{address}:8080"
    helper = Console(base_url, tls)
    assert helper.sign_in(*story.operator).status_code == 303
    with api(base_url, story.token, tls) as console:
        users = console.get("/users").json()["users"]
        assert {"alice", "bob", "carol"} <= {user["name"] for user in users}
        groups = {group["name"]: group for group in console.get("/groups").json()}
        assert sorted(groups[story.group]["members"]) == ["alice", "bob", "carol"]
        rooms = {room["name"]: room for room in console.get("/rooms").json()}
        assert sorted(rooms[story.room]["members"]) == ["alice", "bob"]
        assistant = console.get("/assistant").json()
        assert (assistant["url"], assistant["key_set"]) == ("https://ai.family.test/v1", True)
    with httpx.Client(base_url=base_url, verify=tls, timeout=30) as web:
        assert web.get(f"/invite/{story.invite}").status_code == 200


def broker_get_command(password: str, path: str, write_out: str, body: bool = True) -> str:
    """A shell command that GETs RabbitMQ's management API as its administrator (the password
    on curl's standard input, never its command line), then prints curl's `write_out`."""
    keep = "" if body else " -o /dev/null"
    return (
        "printf 'user = \"admin:%s\"\\n' " + f"'{password}'"
        f" | curl -s{keep} -w '{write_out}' -K - http://127.0.0.1:15672/api/{path}"
    )


def broker_api(host, password: str, path: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The status and the body of a GET of the management API as its administrator."""
    answer = host.check_output(broker_get_command(password, path, "\\n%{http_code}"))
    body, _, status = answer.rpartition("\n")
    return int(status), body


def broker_whoami_command(password: str) -> str:
    """A shell command that succeeds when the administrator signs in with this password."""
    return broker_get_command(password, "whoami", "%{http_code}", body=False) + " | grep -qx 200"


def broker_takes(host, password: str) -> bool:  # type: ignore[no-untyped-def]
    """RabbitMQ's administrator signs in to the management API with this password."""
    return broker_api(host, password, "whoami")[0] == 200


def broker_alarms(host, password: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The resources RabbitMQ has raised an alarm for ("disk space", "memory")."""
    body = json.loads(broker_api(host, password, "health/checks/alarms")[1])
    return [alarm["resource"] for alarm in body.get("alarms", [])]


# The device's SQLite databases: ejabberd's and the console's.
DATABASES = ["/var/lib/ejabberd/pi-im.db", "/var/lib/pi-im-admin/admin.db"]


def integrity(host) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """SQLite's integrity_check of each database, as it answers ("ok" when intact)."""
    check = (
        "python3 -c 'import sqlite3, sys; "
        'print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])\' '
    )
    return {database: host.check_output(check + database) for database in DATABASES}


def seconds_until(ready: Callable[[], bool], limit: float = 60.0) -> float:
    """How long until `ready()` holds, polled; fails after `limit`."""
    start = time.monotonic()
    while not ready():
        assert time.monotonic() - start < limit, "not so in time"
        time.sleep(0.1)
    return time.monotonic() - start


def console_answers(address: str, tls: ssl.SSLContext) -> bool:
    try:
        return httpx.get(f"https://{address}:8080/signin", verify=tls, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
