"""Bots: an admin makes one through the console's API in one step (its token and its
webhook's secret shown once). What a real XMPP client writes to it reaches a real HTTP
receiver on the device's network as a signed bot.message event, and the bot's reply, sent
with its token through the API, reaches the client from the bot's address. The message is
taken, not left in the bot's offline store; an encrypted one carries no text; a server that
lost its list of bots gets it back from the console; a deleted bot takes its account, its
webhook and its queue with it. The assistant answers with an OpenAI-compatible service the
test starts on the device's network, remembers a bounded part of each conversation, limits
each person's questions, and keeps its key on the device alone."""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
import slixmpp
from pi_im_events import schema, verify
from slixmpp.xmlstream import ET
from test_webhooks import TRUSTED_CA, Receiver, event_of, queues

from admin_console import api as console_api
from conftest import DOMAIN, Account, create_user, eventually
from test_xmpp import log_in

VALIDATOR = jsonschema.Draft202012Validator(schema())
OMEMO = "eu.siacs.conversations.axolotl"


@pytest.fixture
def receiver(netns: list[str], address: str) -> Iterator[Receiver]:
    made = Receiver(netns, address, None)
    yield made
    made.close()


def bots(owner_api: httpx.Client) -> dict[str, dict[str, object]]:
    return {b["name"]: b for b in owner_api.get("/bots").json()}


@pytest.fixture
def bot(owner_api: httpx.Client, receiver: Receiver) -> Iterator[dict[str, object]]:
    """A bot made through the API, answering (its queue bound); deleted afterwards."""
    name = f"bot-{secrets.token_hex(3)}"
    made = owner_api.post("/bots", json={"name": name, "url": receiver.url})
    assert made.status_code == 201, made.text
    eventually(lambda: bots(owner_api)[name]["bound"])
    yield made.json()
    owner_api.delete(f"/bots/{name}")


def offline_count(host, user: str) -> int:  # type: ignore[no-untyped-def]
    return int(host.check_output(f"ejabberdctl get_offline_count {user} {DOMAIN}"))


async def write_to(
    account: Account, bot: dict[str, object], cert: Path, address: str, omemo: bool = False
) -> slixmpp.ClientXMPP:
    client = await log_in(account, cert, address)
    message = client.make_message(mto=str(bot["jid"]), mbody="is the gym open today?", mtype="chat")
    if omemo:
        # What an OMEMO app sends: the payload, and a fallback body for apps without it.
        message.append(ET.Element(f"{{{OMEMO}}}encrypted"))
    message.send()
    return client


def test_a_bot_gets_what_it_is_sent_signed_and_its_reply_reaches_the_sender(
    host,  # type: ignore[no-untyped-def]
    owner_api: httpx.Client,
    bot: dict[str, object],
    receiver: Receiver,
    device_cert: Path,
    device_tls: ssl.SSLContext,
    base_url: str,
    address: str,
) -> None:
    person = create_user(owner_api)
    bot_api = console_api(base_url, str(bot["token"]), device_tls)

    async def converse() -> tuple[dict[str, object], str]:
        client = await write_to(person, bot, device_cert, address)
        try:
            (request,) = await asyncio.to_thread(receiver.take, 1, 30)
            asked = event_of(request)["data"]
            answered = await asyncio.to_thread(
                bot_api.post,
                f"/bots/{bot['name']}/messages",
                json={"to": asked["from"], "text": "Yes, until 21:00."},  # type: ignore[index]
            )
            assert answered.status_code == 204, answered.text
            reply = await asyncio.wait_for(client.messages.get(), 30)
            assert reply["from"].bare == bot["jid"]
            return request, str(reply["body"])
        finally:
            client.disconnect()

    request, reply = asyncio.run(converse())
    headers = request["headers"]
    verify(str(bot["webhook_secret"]), headers, str(request["body"]).encode())  # type: ignore[arg-type]
    event = event_of(request)
    VALIDATOR.validate(event)
    assert headers["x-pi-im-event"] == event["type"] == "bot.message"  # type: ignore[index]
    data = event["data"]
    assert data == {  # type: ignore[comparison-overlap]
        "bot": bot["name"],
        "from": person.jid,
        "to": bot["jid"],
        "message_id": data["message_id"],  # type: ignore[index]
        "text": "is the gym open today?",
        "encryption": None,
    }
    assert reply == "Yes, until 21:00."
    # Taken for the webhook, not also kept for the bot's account; the reply is recorded.
    assert offline_count(host, str(bot["name"])) == 0
    assert bots(owner_api)[str(bot["name"])]["last_used_at"] is not None
    # The token is the bot's alone: it is no operator's token.
    assert bot_api.get("/users").status_code == 401


def test_an_encrypted_message_reaches_the_bot_without_text(
    owner_api: httpx.Client,
    bot: dict[str, object],
    receiver: Receiver,
    device_cert: Path,
    address: str,
) -> None:
    person = create_user(owner_api)

    async def write() -> None:
        client = await write_to(person, bot, device_cert, address, omemo=True)
        await asyncio.sleep(1)
        client.disconnect()

    asyncio.run(write())
    (request,) = receiver.take(1, 30)
    data = event_of(request)["data"]
    assert (data["text"], data["encryption"]) == (None, "omemo")  # type: ignore[index]


def test_a_server_that_lost_its_bots_gets_them_back(
    host,  # type: ignore[no-untyped-def]
    owner_api: httpx.Client,
    bot: dict[str, object],
) -> None:
    host.run_expect(
        [0], "rm /var/lib/ejabberd/bots.json && systemctl restart ejabberd && ejabberdctl started"
    )
    # No one opens the Bots page: the console's sampler (every 2 s in this scenario, a minute
    # as shipped) finds the server without the bot and sends the list again.
    eventually(lambda: str(bot["name"]) in host.check_output(f"ejabberdctl bots_list {DOMAIN}"))
    assert host.file("/var/lib/ejabberd/bots.json").user == "ejabberd"


def test_a_deleted_bot_takes_its_account_webhook_and_queue(
    host,  # type: ignore[no-untyped-def]
    owner_api: httpx.Client,
    receiver: Receiver,
) -> None:
    name = f"bot-{secrets.token_hex(3)}"
    made = owner_api.post("/bots", json={"name": name, "url": receiver.url}).json()
    eventually(lambda: bots(owner_api)[name]["bound"])
    queue = f"pi-im.webhook.{made['webhook_id']}"
    assert queue in queues(host)
    assert owner_api.delete(f"/bots/{name}").status_code == 204
    assert name not in bots(owner_api)
    assert name not in host.check_output(f"ejabberdctl bots_list {DOMAIN}")
    assert host.run(f"ejabberdctl check_account {name} {DOMAIN}").rc != 0
    eventually(lambda: queue not in queues(host))
    entries = owner_api.get("/audit").json()
    assert {("bot.create", name), ("bot.delete", name)} <= {
        (e["action"], e["target"]) for e in entries
    }


@pytest.fixture
def chat_service(
    host,  # type: ignore[no-untyped-def]
    netns: list[str],
    address: str,
    receiver_tls: dict[str, Path],
) -> Iterator[Receiver]:
    """An OpenAI-compatible chat-completions service on the device's network, over HTTPS
    with a CA the device was told to trust (as an owner would add their own)."""
    service = Receiver(netns, address, (receiver_tls["cert"], receiver_tls["key"]))
    service.tell("complete 1")
    host.check_output(
        f"cat > {TRUSTED_CA} <<'EOF'\n{receiver_tls['ca'].read_text()}EOF\n"
        "update-ca-certificates && systemctl restart pi-im-webhooks"
    )
    yield service
    service.close()
    host.run(f"rm -f {TRUSTED_CA} && update-ca-certificates --fresh")
    host.run("systemctl restart pi-im-webhooks")


def test_the_assistant_answers_remembers_a_little_limits_each_person_and_keeps_its_key(
    host,  # type: ignore[no-untyped-def]
    owner_api: httpx.Client,
    chat_service: Receiver,
    device_cert: Path,
    address: str,
) -> None:
    name, key = f"ai-{secrets.token_hex(3)}", f"sk-test-{secrets.token_hex(16)}"
    url = chat_service.url.removesuffix("/hook") + "/v1"
    settings = {"name": name, "url": url, "model": "tiny", "prompt": "Be brief."}
    # A key only travels over HTTPS.
    plain = owner_api.put(
        "/assistant", json=settings | {"url": url.replace("https", "http"), "key": key}
    )
    assert plain.status_code == 400
    assert "must be https://" in plain.json()["detail"]
    made = owner_api.put("/assistant", json=settings | {"per_hour": 3, "turns": 1, "key": key})
    assert made.status_code == 200, made.text
    assert key not in made.text
    assert made.json()["key_set"] is True
    try:
        eventually(lambda: owner_api.get("/assistant").json()["answering"])
        person = create_user(owner_api)

        async def ask(questions: list[str]) -> list[str]:
            client = await log_in(person, device_cert, address)
            answers = []
            try:
                for question in questions:
                    client.send_message(mto=f"{name}@{DOMAIN}", mbody=question, mtype="chat")
                    reply = await asyncio.wait_for(client.messages.get(), 60)
                    assert reply["from"].bare == f"{name}@{DOMAIN}"
                    answers.append(str(reply["body"]))
            finally:
                client.disconnect()
            return answers

        answers = asyncio.run(ask(["first?", "second?", "third?", "fourth?"]))
        # The instructions and the question; then one exchange remembered, never more.
        assert answers[:3] == [
            "You asked: first? (2 messages)",
            "You asked: second? (4 messages)",
            "You asked: third? (4 messages)",
        ]
        assert answers[3].startswith("You have asked 3 questions in the last hour")
        asked = chat_service.take(4, 5)
        assert len(asked) == 3  # the fourth never reached the service
        for request in asked:
            assert request["path"] == "/v1/chat/completions"
            assert request["headers"]["authorization"] == f"Bearer {key}"
        sent = json.loads(str(asked[2]["body"]))
        assert sent["model"] == "tiny"
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "second?"},
            {"role": "assistant", "content": "You asked: second? (4 messages)"},
            {"role": "user", "content": "third?"},
        ]
        # The key: on the device for the console's user alone, and nowhere else to be read.
        kept = host.file("/var/lib/pi-im-admin/assistant-api-key")
        assert (kept.user, kept.mode) == ("pi-im-admin", 0o600)
        assert key not in owner_api.get("/assistant").text
        assert key not in owner_api.get("/audit").text
        journal = host.check_output("journalctl -u pi-im-admin -u pi-im-webhooks --no-pager -q")
        assert key not in journal
    finally:
        assert owner_api.delete("/assistant").status_code == 204
    assert owner_api.get("/assistant").status_code == 404
    assert not host.file("/var/lib/pi-im-admin/assistant-api-key").exists
    assert host.run(f"ejabberdctl check_account {name} {DOMAIN}").rc != 0
