"""Webhooks: the device's dispatcher delivering real XMPP clients' events to a real HTTP(S)
receiver on the device's network (webhook_receiver.py in its namespace, on its address:
a service on the local network). Signed, in order per conversation; a 500 retried after a
back-off while the event waits in RabbitMQ, a dispatcher restart in between losing nothing;
a receiver too slow, then paused, told and resumed; an untrusted certificate refused and a
trusted one used; viewers see deliveries; the console's own event (an invitation used)
published through its outbox; a deleted webhook leaves no queue; the
dispatcher's RabbitMQ rights kept to its own queues. (The scenario's group_vars make retries
seconds apart: first after 1 s, 3 attempts, 2 failed events pause, 3 s to answer.)"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import pytest
from pi_im_events import schema, verify

from admin_console import Console
from admin_console import api as console_api
from conftest import DOMAIN, Account, create_user, eventually, run_in_netns, secret
from test_xmpp import log_in

RECEIVER = Path(__file__).with_name("webhook_receiver.py")
SETTINGS = "/etc/pi-im/webhooks.env"
TRUSTED_CA = "/usr/local/share/ca-certificates/pi-im-webhook-test.crt"
VALIDATOR = jsonschema.Draft202012Validator(
    schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


class Receiver:
    """webhook_receiver.py in the device's network namespace; its requests as they come."""

    def __init__(self, netns: list[str], address: str, tls: tuple[Path, Path] | None) -> None:
        self.port = 20000 + secrets.randbelow(10000)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{address}:{self.port}/hook"
        self.process = subprocess.Popen(
            [*netns, sys.executable, str(RECEIVER), address, str(self.port)]
            + ([str(path) for path in tls] if tls else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "listening"
        self.requests: queue.Queue[dict[str, object]] = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            request = json.loads(line)
            request["headers"] = {k.lower(): v for k, v in request["headers"].items()}
            self.requests.put(request)

    def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def take(self, count: int, seconds: float) -> list[dict[str, object]]:
        """Up to `count` requests, waiting at most `seconds` in all."""
        got: list[dict[str, object]] = []
        deadline = time.monotonic() + seconds
        while len(got) < count and (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.requests.get(timeout=left))
            except queue.Empty:
                break
        return got

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass(frozen=True)
class Webhook:
    id: int
    secret: str


def event_of(request: dict[str, object]) -> dict[str, object]:
    return json.loads(str(request["body"]))


def queues(host) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The dispatcher's queues and the events in each (ready or not)."""
    listed = host.check_output("rabbitmqctl --quiet list_queues -p pi-im name messages")
    pairs = (line.split("\t") for line in listed.splitlines() if line.startswith("pi-im.webhook."))
    return {name: int(count) for name, count in pairs}


@pytest.fixture(scope="module")
def people(owner_api: httpx.Client) -> list[Account]:
    return [create_user(owner_api) for _ in range(4)]


@pytest.fixture
def receiver(netns: list[str], address: str) -> Iterator[Receiver]:
    made = Receiver(netns, address, None)
    yield made
    made.close()


@pytest.fixture
def register(host, owner_api: httpx.Client) -> Iterator[Callable[..., Webhook]]:  # type: ignore[no-untyped-def]
    """Register a webhook and wait until the dispatcher has its queue; deleted afterwards."""
    made: list[int] = []

    def registered(url: str, events: list[str]) -> Webhook:
        name = f"test-{secrets.token_hex(3)}"
        response = owner_api.post("/webhooks", json={"name": name, "url": url, "events": events})
        assert response.status_code == 201, response.text
        webhook = Webhook(**response.json())
        made.append(webhook.id)
        eventually(lambda: f"pi-im.webhook.{webhook.id}" in queues(host))
        return webhook

    yield registered
    for webhook_id in made:
        owner_api.delete(f"/webhooks/{webhook_id}")


async def converse(
    pairs: list[tuple[Account, Account]], count: int, cert: Path, address: str, tag: str
) -> None:
    """`count` messages on each conversation, the conversations interleaved, each with the
    id "<tag>-<n>"; every one received before it returns."""
    clients = {a.jid: await log_in(a, cert, address) for pair in pairs for a in pair}
    for n in range(count):
        for sender, recipient in pairs:
            message = clients[sender.jid].make_message(
                mto=recipient.jid, mbody=f"{n}", mtype="chat"
            )
            message["id"] = f"{tag}-{n}"
            message.send()
    for _, recipient in pairs:
        for _ in range(count):
            await asyncio.wait_for(clients[recipient.jid].messages.get(), 30)
    for client in clients.values():
        client.disconnect()


def deliveries(owner_api: httpx.Client, webhook: Webhook, count: int) -> list[dict[str, object]]:
    """The deliveries page's rows once `count` are settled (written within a second)."""

    def settled() -> list[dict[str, object]]:
        rows = owner_api.get(f"/webhooks/{webhook.id}/deliveries").json()
        done = [row for row in rows if row["status"] != "retrying"]
        return rows if len(done) >= count else []

    return eventually(settled)  # type: ignore[return-value]


def test_deliveries_are_signed_and_in_order_per_conversation(
    host,
    owner: Console,
    owner_api: httpx.Client,
    base_url: str,
    device_tls: ssl.SSLContext,
    people: list[Account],
    receiver: Receiver,
    register: Callable[..., Webhook],
    device_cert: Path,
    address: str,
) -> None:
    webhook = register(receiver.url, ["message.chat"])
    pairs = [(people[0], people[1]), (people[2], people[3])]

    asyncio.run(converse(pairs, 5, device_cert, address, "order"))

    got = receiver.take(10, 60)
    assert len(got) == 10
    for request in got:
        headers = request["headers"]
        verify(webhook.secret, headers, str(request["body"]).encode())
        event = event_of(request)
        assert headers["x-pi-im-event"] == event["type"] == "message.chat"
        assert headers["x-pi-im-event-id"] == event["id"]
        assert headers["x-pi-im-attempt"] == "1"
        assert headers["user-agent"] == "pi-im-webhooks/1"
        assert "body" not in event["data"]  # message text stays on the device by default
    for sender, recipient in pairs:
        ids = [
            event_of(r)["data"]["message_id"]
            for r in got
            if event_of(r)["data"]["to"] == recipient.jid
        ]
        assert ids == [f"order-{n}" for n in range(5)], sender
    # A viewer sees the deliveries, and cannot register a webhook.
    viewer = console_api(
        base_url, owner.create_token(f"v-{secrets.token_hex(3)}", "viewer"), device_tls
    )
    rows = deliveries(viewer, webhook, 10)
    assert {(row["status"], row["attempts"], row["http_status"]) for row in rows} == {
        ("delivered", 1, 200)
    }
    assert {row["event_id"] for row in rows} == {event_of(r)["id"] for r in got}
    refused = viewer.post(
        "/webhooks", json={"name": "x", "url": receiver.url, "events": ["user.login"]}
    )
    assert refused.status_code == 403


@pytest.fixture
def slow_retries(host) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The first retry after 8 s instead of 1: time to look at RabbitMQ in between."""
    original = host.file(SETTINGS).content_string
    setting = "PI_IM_WEBHOOKS_FIRST_RETRY_SECONDS"
    host.check_output(
        f"sed -i 's/^{setting}=.*/{setting}=8/' {SETTINGS} && systemctl restart pi-im-webhooks"
    )
    yield 8
    host.check_output(f"cat > {SETTINGS} <<'EOF'\n{original}EOF\nsystemctl restart pi-im-webhooks")


def test_a_500_waits_in_rabbitmq_through_a_restart_and_later_events_wait_behind_it(
    host,
    owner_api: httpx.Client,
    people: list[Account],
    receiver: Receiver,
    register: Callable[..., Webhook],
    slow_retries: int,
    device_cert: Path,
    address: str,
) -> None:
    receiver.tell("answer 500")
    webhook = register(receiver.url, ["message.chat"])
    main, parked = f"pi-im.webhook.{webhook.id}", f"pi-im.webhook.{webhook.id}.wait"

    asyncio.run(converse([(people[0], people[1])], 2, device_cert, address, "retry"))
    (first,) = receiver.take(1, 30)
    assert event_of(first)["data"]["message_id"] == "retry-0"
    # The event waits for its next attempt in RabbitMQ, the next one behind it, not sent.
    eventually(lambda: queues(host).get(parked) == 1)
    host.check_output("systemctl stop pi-im-webhooks")
    assert queues(host)[parked] + queues(host)[f"{parked[:-5]}.retry"] == 1
    assert queues(host)[main] == 1
    receiver.tell("answer 200")
    host.check_output("systemctl start pi-im-webhooks")

    second, third = receiver.take(2, 60)

    assert [
        (event_of(r)["data"]["message_id"], r["headers"]["x-pi-im-attempt"])
        for r in (second, third)
    ] == [("retry-0", "2"), ("retry-1", "1")]
    assert float(second["at"]) - float(first["at"]) >= slow_retries
    rows = {row["event_id"]: row for row in deliveries(owner_api, webhook, 2)}
    assert rows[event_of(second)["id"]]["attempts"] == 2
    assert rows[event_of(second)["id"]]["status"] == "delivered"
    assert rows[event_of(third)["id"]]["attempts"] == 1


def test_a_receiver_too_slow_fails_is_paused_and_resumed_gets_what_waited(
    host,
    owner_api: httpx.Client,
    people: list[Account],
    receiver: Receiver,
    register: Callable[..., Webhook],
    device_cert: Path,
    address: str,
) -> None:
    receiver.tell("slow 5")  # the dispatcher waits 3 s
    webhook = register(receiver.url, ["message.chat"])
    path = f"/webhooks/{webhook.id}"

    asyncio.run(converse([(people[2], people[3])], 2, device_cert, address, "slow"))
    shown = eventually(lambda: (w := owner_api.get(path).json())["paused"] and w, 120)

    assert "2 events in a row not delivered; the last: no answer in time" in shown["pause_reason"]
    rows = deliveries(owner_api, webhook, 2)
    assert {(row["status"], row["attempts"]) for row in rows} == {("failed", 3)}
    assert all(row["error"].startswith("no answer in time") for row in rows)
    assert len(receiver.take(6, 5)) == 6  # three attempts at each
    dashboard = owner_api.get("/dashboard").json()
    assert {"id": webhook.id, "name": shown["name"], "reason": shown["pause_reason"]} in dashboard[
        "paused_webhooks"
    ]
    audit = owner_api.get("/audit").json()
    assert any(e["action"] == "webhook.pause" and e["target"] == shown["name"] for e in audit)
    # Paused: events wait in its queue, none is sent.
    receiver.tell("slow 0")
    asyncio.run(converse([(people[2], people[3])], 1, device_cert, address, "paused"))
    eventually(lambda: queues(host).get(f"pi-im.webhook.{webhook.id}") == 1)
    assert receiver.take(1, 3) == []

    assert owner_api.patch(path, json={"paused": False}).status_code == 204

    (resumed,) = receiver.take(1, 30)
    assert event_of(resumed)["data"]["message_id"] == "paused-0"
    assert owner_api.get(path).json()["failed_in_a_row"] == 0
    assert webhook.id not in [
        w["id"] for w in owner_api.get("/dashboard").json()["paused_webhooks"]
    ]


def test_an_untrusted_certificate_is_never_sent_to_and_a_trusted_one_is(
    host,
    netns: list[str],
    owner_api: httpx.Client,
    people: list[Account],
    receiver_tls: dict[str, Path],
    register: Callable[..., Webhook],
    device_cert: Path,
    address: str,
) -> None:
    receiver = Receiver(netns, address, (receiver_tls["cert"], receiver_tls["key"]))
    try:
        webhook = register(receiver.url, ["message.chat"])
        asyncio.run(converse([(people[1], people[0])], 1, device_cert, address, "untrusted"))
        (row,) = deliveries(owner_api, webhook, 1)
        assert (row["status"], row["attempts"]) == ("failed", 3)
        assert row["error"].startswith("TLS certificate not trusted: unable to get local issuer")
        assert receiver.take(1, 1) == []  # not one byte of the event went out

        # The owner adds the receiver's CA to the device's trust store.
        host.check_output(
            f"cat > {TRUSTED_CA} <<'EOF'\n{receiver_tls['ca'].read_text()}EOF\n"
            "update-ca-certificates && systemctl restart pi-im-webhooks"
        )
        eventually(lambda: host.service("pi-im-webhooks").is_running)
        asyncio.run(converse([(people[1], people[0])], 1, device_cert, address, "trusted"))
        (request,) = receiver.take(1, 30)
        verify(webhook.secret, request["headers"], str(request["body"]).encode())
        assert event_of(request)["data"]["message_id"] == "trusted-0"
    finally:
        receiver.close()
        host.run(f"rm -f {TRUSTED_CA} && update-ca-certificates --fresh")
        host.run("systemctl restart pi-im-webhooks")


def test_a_deleted_webhook_leaves_no_queue_and_the_dispatcher_has_no_other(
    host, netns: list[str], owner_api: httpx.Client, receiver: Receiver, register
) -> None:  # type: ignore[no-untyped-def]
    webhook = register(receiver.url, ["user.login", "room.created"])
    assert owner_api.delete(f"/webhooks/{webhook.id}").status_code == 204
    assert owner_api.get(f"/webhooks/{webhook.id}").status_code == 404

    eventually(
        lambda: not any(name.startswith(f"pi-im.webhook.{webhook.id}") for name in queues(host))
    )
    # Its RabbitMQ user declares no queue but its webhooks' (and reads no other).
    answer = run_in_netns(netns, secret(host, "rabbitmq-webhooks-password"), "declare", "webhooks")
    assert answer["declared"] is False


def test_an_invitation_used_goes_out_from_the_consoles_outbox(
    owner_api: httpx.Client,
    base_url: str,
    device_tls: ssl.SSLContext,
    receiver: Receiver,
    register: Callable[..., Webhook],
) -> None:
    webhook = register(receiver.url, ["invitation.used", "user.created"])
    invite = owner_api.post("/invites", json={"hours": 1}).json()
    name = f"inv{secrets.token_hex(4)}"
    with httpx.Client(base_url=base_url, verify=device_tls, timeout=30) as web:
        redeemed = web.post(
            f"/invite/{invite['token']}",
            data={"username": name, "password": secrets.token_urlsafe(16)},
        )
    assert redeemed.status_code == 201

    got = {event_of(r)["type"]: r for r in receiver.take(2, 30)}

    assert set(got) == {"invitation.used", "user.created"}
    used = event_of(got["invitation.used"])
    VALIDATOR.validate(used)
    assert used["data"]["invitation"] == invite["id"]
    assert used["data"]["jid"] == f"{name}@{DOMAIN}"
    assert used["data"]["created_by"].startswith("token:")
    assert event_of(got["user.created"])["data"]["jid"] == f"{name}@{DOMAIN}"
    verify(
        webhook.secret,
        got["invitation.used"]["headers"],
        str(got["invitation.used"]["body"]).encode(),
    )
