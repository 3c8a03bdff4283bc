"""Bots in the console, against its real SQLite database: what making one refuses (and why),
who may make and delete them, that nothing is left when ejabberd cannot make the account, a
bot's token speaking for that bot alone and for nothing else, and what its replies may be.
A bot answering real XMPP clients through its webhook is tested on a device
(molecule/default/tests/test_bots.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from console_app import api_client, console_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pi_im_admin import models
from pi_im_admin.permissions import Role
from pi_im_admin.security import digest, new_token
from pi_im_admin.services import bots

URL = "https://bots.example.org/helpdesk"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return console_app(tmp_path)


def client(app: FastAPI, role: Role) -> TestClient:
    return api_client(app, role, "bots")


def seed_bot(app: FastAPI, name: str) -> str:
    """A bot as if made earlier (ejabberd is down here): its token."""
    db = app.state.context.db
    webhook_id = db.run(
        "INSERT INTO webhooks (name, url, events, secret, created_by, created_at) "
        "VALUES (?, ?, ?, 'secret', 'seed', 0)",
        f"bot {name}",
        URL,
        f'["bot.message.{name}"]',
    )
    token = new_token("pib")
    db.run(
        "INSERT INTO bots (name, webhook_id, token_hash, created_by, created_at, bound_at) "
        "VALUES (?, ?, ?, 'seed', 0, 0)",
        name,
        webhook_id,
        digest(token),
    )
    return token


def rows(app: FastAPI) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    db = app.state.context.db
    return (
        [tuple(r) for r in db.all("SELECT name FROM bots")],
        [tuple(r) for r in db.all("SELECT name FROM webhooks WHERE deleted_at IS NULL")],
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"name": "Help.Desk", "url": URL}, "1 to 32 lower-case letters"),
        ({"name": "", "url": URL}, "1 to 32 lower-case letters"),
        ({"name": "x" * 33, "url": URL}, "1 to 32 lower-case letters"),
        ({"name": "helpdesk", "url": "ftp://bots.example.org/"}, "is not an http"),
        ({"name": "helpdesk", "url": "http://bots.example.org/x"}, "local network only"),
        ({"name": "helpdesk", "url": "https://127.0.0.1/x"}, "the device itself"),
    ],
)
def test_a_bad_bot_is_refused_saying_why_and_nothing_is_made(
    app: FastAPI, body: dict[str, str], said: str
) -> None:
    answer = client(app, Role.ADMIN).post("/api/v1/bots", json=body)
    assert answer.status_code == 400, answer.text
    assert said in answer.json()["detail"]
    assert rows(app) == ([], [])
    assert app.state.context.db.all("SELECT * FROM audit WHERE action LIKE 'bot.%'") == []


def test_a_taken_name_is_refused(app: FastAPI) -> None:
    seed_bot(app, "helpdesk")
    answer = client(app, Role.ADMIN).post("/api/v1/bots", json={"name": "helpdesk", "url": URL})
    assert answer.status_code == 400
    assert "There is a bot named helpdesk already" in answer.json()["detail"]


def test_nothing_is_left_when_ejabberd_cannot_make_the_account(app: FastAPI) -> None:
    answer = client(app, Role.ADMIN).post("/api/v1/bots", json={"name": "helpdesk", "url": URL})
    assert answer.status_code == 503, answer.text
    assert rows(app) == ([], [])
    assert app.state.context.db.all("SELECT * FROM audit WHERE action LIKE 'bot.%'") == []


def test_a_bot_stays_whole_when_ejabberd_cannot_be_told_it_goes(app: FastAPI) -> None:
    seed_bot(app, "helpdesk")
    answer = client(app, Role.ADMIN).delete("/api/v1/bots/helpdesk")
    assert answer.status_code == 503
    assert rows(app) == ([("helpdesk",)], [("bot helpdesk",)])
    assert client(app, Role.ADMIN).delete("/api/v1/bots/nobody").status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_only_admins_make_and_delete_bots_and_everyone_sees_them(app: FastAPI, role: Role) -> None:
    token = seed_bot(app, "helpdesk")
    api = client(app, role)
    assert api.post("/api/v1/bots", json={"name": "other", "url": URL}).status_code == 403
    assert api.delete("/api/v1/bots/helpdesk").status_code == 403
    listed = api.get("/api/v1/bots")
    assert listed.status_code == 200
    assert [(b["name"], b["url"], b["bound"]) for b in listed.json()] == [("helpdesk", URL, True)]
    assert token not in listed.text
    assert set(listed.json()[0]) == set(models.Bot.model_fields)


def test_a_bots_webhook_is_the_bots_alone(app: FastAPI) -> None:
    seed_bot(app, "helpdesk")
    api = client(app, Role.ADMIN)
    webhook_id = app.state.context.db.one("SELECT webhook_id FROM bots")["webhook_id"]
    changed = api.patch(f"/api/v1/webhooks/{webhook_id}", json={"events": ["message.chat"]})
    assert changed.status_code == 400
    assert "bot helpdesk's" in changed.json()["detail"]
    deleted = api.delete(f"/api/v1/webhooks/{webhook_id}")
    assert deleted.status_code == 400
    assert "delete the bot" in deleted.json()["detail"]
    # Another URL is the bot's to have.
    assert (
        api.patch(
            f"/api/v1/webhooks/{webhook_id}", json={"url": "https://other.example.org/h"}
        ).status_code
        == 204
    )
    assert rows(app) == ([("helpdesk",)], [("bot helpdesk",)])


def send(app: FastAPI, bot: str, token: str | None, body: dict[str, str]):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app).post(f"/api/v1/bots/{bot}/messages", json=body, headers=headers)


def test_a_bots_token_speaks_for_that_bot_alone(app: FastAPI) -> None:
    helpdesk = seed_bot(app, "helpdesk")
    seed_bot(app, "weather")
    message = {"to": "ann@chat.test", "text": "hello"}
    # No token, another bot's token, an operator's token: not this bot.
    assert send(app, "helpdesk", None, message).status_code == 401
    assert send(app, "weather", helpdesk, message).status_code == 401
    admin = client(app, Role.OWNER)
    assert admin.post("/api/v1/bots/helpdesk/messages", json=message).status_code == 401
    # And a bot's token is no operator's: the rest of the API refuses it.
    bot_api = TestClient(app, headers={"Authorization": f"Bearer {helpdesk}"})
    for path in ("/api/v1/users", "/api/v1/bots", "/api/v1/webhooks", "/api/v1/dashboard"):
        assert bot_api.get(path).status_code == 401, path
    # Its own: past the token, to ejabberd, which is down here.
    assert send(app, "helpdesk", helpdesk, message).status_code == 503


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"to": "ann", "text": "hi"}, 400, "is not a chat address"),
        ({"to": "ann@chat test", "text": "hi"}, 400, "is not a chat address"),
        ({"to": "ann@chat.test/phone", "text": "hi"}, 400, "is not a chat address"),
        ({"to": "a:b@chat.test", "text": "hi"}, 400, "may not contain"),
        ({"to": "ann@chat.test", "text": "   "}, 400, "The message is empty"),
        ({"to": "ann@chat.test", "text": "bell \a"}, 400, "message"),
        ({"to": "ann@chat.test", "text": "x" * 10_001}, 422, ""),
    ],
)
def test_a_bad_reply_is_refused_saying_why(
    app: FastAPI, body: dict[str, str], status: int, said: str
) -> None:
    token = seed_bot(app, "helpdesk")
    answer = send(app, "helpdesk", token, body)
    assert answer.status_code == status, answer.text
    assert said in str(answer.json()["detail"])


def test_a_bot_sending_too_much_is_told_to_wait(app: FastAPI) -> None:
    token = seed_bot(app, "helpdesk")
    limiter = app.state.context.bot_sends
    for _ in range(limiter.limit):
        limiter.failed("helpdesk")
    answer = send(app, "helpdesk", token, {"to": "ann@chat.test", "text": "again"})
    assert answer.status_code == 429
    assert "in the last minute" in answer.json()["detail"]


def test_the_list_ejabberd_gets_has_the_bound_bots_only(app: FastAPI) -> None:
    seed_bot(app, "helpdesk")
    seed_bot(app, "weather")
    db = app.state.context.db
    db.run("UPDATE bots SET bound_at = NULL WHERE name = 'weather'")
    assert bots.document(app.state.context) == '{"bots":["helpdesk"]}'
    db.run("UPDATE bots SET bound_at = ? WHERE name = 'weather'", time.time())
    assert bots.document(app.state.context) == '{"bots":["helpdesk","weather"]}'
