"""The assistant's settings in the console and its memory and limits in the dispatcher,
against the console's real SQLite database: what the settings refuse and why, the key kept
as a device secret (a file for the console's user alone, never shown or audited), and what
the dispatcher says without asking the service (an encrypted message, a person past their
questions for the hour). The assistant answering real XMPP clients with a real service is
tested on a device (molecule/default/tests/test_bots.py)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import httpx
import pytest
from console_app import api_client, console_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pi_im_admin.permissions import Role
from pi_im_admin.services import assistant
from pi_im_admin.webhooks.assistant import ENCRYPTED, MAX_PEOPLE, Assistant, Memory

URL = "https://ai.example.org/v1"
KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return console_app(tmp_path)


def admin(app: FastAPI) -> TestClient:
    return api_client(app, Role.ADMIN, "assistant")


def seed(app: FastAPI, name: str = "assistant") -> None:
    """An assistant as if made earlier (ejabberd is down here)."""
    db = app.state.context.db
    db.run(
        "INSERT INTO bots (name, webhook_id, token_hash, created_by, created_at, bound_at) "
        "VALUES (?, NULL, 'x', 'seed', 0, 0)",
        name,
    )
    for setting, value in {"bot": name, "url": URL, "model": "tiny", "prompt": "",
                           "per_hour": 20, "turns": 10}.items():  # fmt: skip
        db.run(
            "INSERT INTO console_settings (name, value) VALUES (?, ?)",
            f"assistant.{setting}",
            json.dumps(value),
        )


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({"url": "http://ai.example.org/v1"}, 400, "local network only"),
        ({"url": "http://192.168.1.20:11434/v1", "key": KEY}, 400, "must be https://"),
        ({"url": "https://127.0.0.1/v1"}, 400, "the device itself"),
        ({"model": "  "}, 400, "Name the model"),
        ({"key": "two words"}, 400, "one word"),
        ({"per_hour": 0}, 422, ""),
        ({"turns": 51}, 422, ""),
        ({"prompt": "x" * 2001}, 422, ""),
    ],
)
def test_bad_settings_are_refused_saying_why_and_nothing_changes(
    app: FastAPI, change: dict[str, object], status: int, said: str
) -> None:
    seed(app)
    before = app.state.context.db.all("SELECT name, value FROM console_settings")
    body = {"url": URL, "model": "tiny"} | change
    answer = admin(app).put("/api/v1/assistant", json=body)
    assert answer.status_code == status, answer.text
    assert said in str(answer.json()["detail"])
    assert app.state.context.db.all("SELECT name, value FROM console_settings") == before
    assert not assistant.key_file(app.state.context).exists()


def test_making_one_without_ejabberd_leaves_nothing(app: FastAPI) -> None:
    answer = admin(app).put("/api/v1/assistant", json={"url": URL, "model": "tiny", "key": KEY})
    assert answer.status_code == 503
    assert admin(app).get("/api/v1/assistant").status_code == 404
    assert app.state.context.db.all("SELECT * FROM bots") == []
    assert not assistant.key_file(app.state.context).exists()


def test_the_key_is_kept_for_the_console_alone_and_never_shown(app: FastAPI) -> None:
    seed(app)
    api = admin(app)
    changed = api.put(
        "/api/v1/assistant", json={"url": URL, "model": "bigger", "per_hour": 5, "key": KEY}
    )
    assert changed.status_code == 200, changed.text
    kept = assistant.key_file(app.state.context)
    assert kept.read_text() == KEY
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    shown = api.get("/api/v1/assistant")
    assert shown.json()["key_set"] is True
    assert shown.json()["model"] == "bigger"
    assert KEY not in shown.text
    audit = app.state.context.db.all("SELECT action, detail FROM audit")
    assert ("assistant.configure", True) in {
        (a["action"], "key=changed" in a["detail"]) for a in audit
    }
    assert KEY not in json.dumps([dict(a) for a in audit])
    # Left out: kept. Empty: forgotten (a service on the local network may need none).
    api.put("/api/v1/assistant", json={"url": URL, "model": "bigger"})
    assert kept.read_text() == KEY
    api.put("/api/v1/assistant", json={"url": URL, "model": "bigger", "key": ""})
    assert not kept.exists()
    assert (
        api.put(
            "/api/v1/assistant", json={"url": "http://192.168.1.20:11434/v1", "model": "local"}
        ).status_code
        == 200
    )


def test_only_admins_change_it_and_it_is_no_ordinary_bot(app: FastAPI) -> None:
    seed(app)
    for role in (Role.VIEWER, Role.OPERATOR):
        api = api_client(app, role, "assistant")
        assert api.get("/api/v1/assistant").status_code == 200
        assert api.put("/api/v1/assistant", json={"url": URL, "model": "x"}).status_code == 403
        assert api.delete("/api/v1/assistant").status_code == 403
    refused = admin(app).delete("/api/v1/bots/assistant")
    assert refused.status_code == 400
    assert "is the assistant" in refused.json()["detail"]
    renamed = admin(app).put("/api/v1/assistant", json={"name": "other", "url": URL, "model": "x"})
    assert renamed.status_code == 400
    assert "remove it to give it another name" in renamed.json()["detail"]


def test_memory_keeps_the_last_exchanges_of_the_most_recent_people() -> None:
    memory = Memory()
    for n in range(5):
        memory.add("ann@chat.test", 2, f"q{n}", f"a{n}")
    assert memory.of("ann@chat.test", 2) == [
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
        {"role": "user", "content": "q4"},
        {"role": "assistant", "content": "a4"},
    ]
    assert memory.of("ann@chat.test", 0) == []
    memory.add("ann@chat.test", 1, "long " * 2000, "a5")
    assert len(memory.of("ann@chat.test", 1)[0]["content"]) == 4000
    for n in range(MAX_PEOPLE):
        memory.add(f"p{n}@chat.test", 1, "q", "a")
    assert memory.of("ann@chat.test", 1) == []  # the longest silent goes first
    assert len(memory.people) == MAX_PEOPLE


def test_the_service_is_not_asked_for_an_encrypted_message_or_past_the_hours_questions(
    app: FastAPI, tmp_path: Path
) -> None:
    seed(app)
    db = app.state.context.db
    db.run("UPDATE console_settings SET value = '2' WHERE name = 'assistant.per_hour'")
    # The device itself: refused before anything is sent (no traffic leaves this machine).
    db.run("UPDATE console_settings SET value = ? WHERE name = 'assistant.url'",
           json.dumps("https://127.0.0.1:9/v1"))  # fmt: skip

    def event(text: str | None) -> dict[str, object]:
        return {"data": {"bot": "assistant", "from": "ann@chat.test", "text": text}}

    async def answers() -> list[tuple[str, str, str] | None]:
        async with httpx.AsyncClient(timeout=2) as http:
            helper = Assistant(db, tmp_path / "no-key", http)
            return [
                await helper.answer(event(None)),
                await helper.answer(event("one")),
                await helper.answer(event("two")),
                await helper.answer(event("three")),
                await helper.answer({"data": {"bot": "someone-else", "from": "x", "text": "hi"}}),
            ]

    encrypted, one, two, three, other = asyncio.run(answers())
    assert encrypted == ("assistant", "ann@chat.test", ENCRYPTED)
    # Asked, and the refusal said (as a service that does not answer would be).
    assert one is not None
    assert one[2] == (
        "I could not answer just now: 127.0.0.1 resolves to the device itself. Try again later."
    )
    assert two is not None
    assert two[2].startswith("I could not answer just now:")
    assert three == (
        "assistant",
        "ann@chat.test",
        "You have asked 2 questions in the last hour, as many as this server allows: "
        "ask again later.",
    )
    assert other is None
