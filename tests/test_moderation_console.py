"""Moderation in the console, against its real SQLite database: what the list takes and
refuses (and why), who may see and change what, that nothing changes when ejabberd cannot
take a change, and the records the dispatcher writes from the bus. ejabberd applying the
list to real messages is tested on a device (molecule/default/tests/test_moderation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from console_app import api_client, console_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pi_im_admin import ejabberd
from pi_im_admin.errors import Problem
from pi_im_admin.permissions import Role
from pi_im_admin.services import moderation
from pi_im_admin.services.events import envelope


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return console_app(tmp_path)


def client(app: FastAPI, role: Role) -> TestClient:
    return api_client(app, role, "moderation")


def stored(app) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    return [
        tuple(row)
        for row in app.state.context.db.all("SELECT kind, text, action FROM moderation_rules")
    ]


def seed(app, words: int, patterns: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Rows as if earlier changes had been taken."""
    db = app.state.context.db
    for n in range(words):
        db.run(
            "INSERT INTO moderation_rules (kind, text, action, created_by, created_at) "
            "VALUES ('word', ?, 'mask', 'seed', 0)",
            f"word{n}",
        )
    for n in range(patterns):
        db.run(
            "INSERT INTO moderation_rules (kind, text, action, created_by, created_at) "
            "VALUES ('pattern', ?, 'block', 'seed', 0)",
            f"pat{n}x+",
        )


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        ({"kind": "word", "text": "two words", "action": "block"}, "is not a word"),
        ({"kind": "word", "text": "sp@m", "action": "block"}, "is not a word"),
        ({"kind": "word", "text": "w" * 65, "action": "block"}, "1 to 64 characters"),
        ({"kind": "pattern", "text": "   ", "action": "block"}, "1 to 200 printable"),
        ({"kind": "pattern", "text": "a\nb", "action": "mask"}, "1 to 200 printable"),
    ],
)
def test_a_rule_that_cannot_be_one_is_refused_saying_why(app, rule, said) -> None:  # type: ignore[no-untyped-def]
    refused = client(app, Role.ADMIN).post("/api/v1/moderation/rules", json=rule)

    assert refused.status_code == 400, refused.text
    assert said in refused.json()["detail"]
    assert stored(app) == []


def test_unknown_kinds_actions_and_oversized_input_are_refused_before_a_look(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    for body in (
        {"kind": "phrase", "text": "x", "action": "block"},
        {"kind": "word", "text": "x", "action": "delete"},
        {"kind": "pattern", "text": "x" * 201, "action": "block"},
    ):
        assert admin.post("/api/v1/moderation/rules", json=body).status_code == 422
    words = {"words": "a " * 30001, "action": "mask"}
    assert admin.post("/api/v1/moderation/words", json=words).status_code == 422
    # Past the console's bound on any request's body, before it is even read.
    words = {"words": "a " * 40000, "action": "mask"}
    assert admin.post("/api/v1/moderation/words", json=words).status_code == 413
    assert stored(app) == []


def test_the_list_is_bounded_and_patterns_more_so(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    seed(app, moderation.MAX_RULES - moderation.MAX_PATTERNS, moderation.MAX_PATTERNS)

    full = admin.post("/api/v1/moderation/words", json={"words": "one more", "action": "mask"})
    assert full.status_code == 400
    assert "at most 1000 entries (1000 now)" in full.json()["detail"]

    app.state.context.db.run("DELETE FROM moderation_rules WHERE text = 'word0'")
    pattern = {"kind": "pattern", "text": "buy\\s+now", "action": "block"}
    refused = admin.post("/api/v1/moderation/rules", json=pattern)
    assert refused.status_code == 400
    assert "at most 50 patterns" in refused.json()["detail"]
    assert len(stored(app)) == moderation.MAX_RULES - 1


def test_nothing_changes_when_ejabberd_cannot_take_the_list(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    seed(app, 1)

    added = admin.post(
        "/api/v1/moderation/rules", json={"kind": "word", "text": "Darn", "action": "mask"}
    )
    many = admin.post("/api/v1/moderation/words", json={"words": "a, b\nc", "action": "block"})
    (rule,) = admin.get("/api/v1/moderation").json()["rules"]
    removed = admin.delete(f"/api/v1/moderation/rules/{rule['id']}")
    kept = client(app, Role.OWNER).put("/api/v1/moderation/keep-text", json={"keep_text": True})

    assert [r.status_code for r in (added, many, removed, kept)] == [503] * 4
    assert "ejabberd did not answer" in added.json()["detail"]
    assert stored(app) == [("word", "word0", "mask")]
    assert not moderation.keeps_text(app.state.context)
    audit = app.state.context.db.all("SELECT * FROM audit WHERE action LIKE 'moderation.%'")
    assert audit == []


def test_the_document_ejabberd_gets_names_every_rule_words_folded(app) -> None:  # type: ignore[no-untyped-def]
    ctx = app.state.context
    seed(app, 2, 1)
    document = json.loads(moderation.document(ctx))
    assert document == {
        "keep_text": False,
        "rules": [
            {"id": 1, "kind": "word", "text": "word0", "action": "mask"},
            {"id": 2, "kind": "word", "text": "word1", "action": "mask"},
            {"id": 3, "kind": "pattern", "text": "pat0x+", "action": "block"},
        ],
    }
    assert moderation._word("  STRASSE ") == "strasse"
    assert moderation._word("Straße") == "strasse"
    with pytest.raises(Problem, match="block or mask"):
        moderation._action("drop")


def test_viewers_see_no_moderation_operators_see_it_only_admins_change_it(app) -> None:  # type: ignore[no-untyped-def]
    rule = {"kind": "word", "text": "darn", "action": "mask"}
    viewer, operator = client(app, Role.VIEWER), client(app, Role.OPERATOR)
    assert viewer.get("/api/v1/moderation").status_code == 403
    assert viewer.get("/api/v1/moderation/records").status_code == 403
    assert operator.get("/api/v1/moderation").status_code == 200
    assert operator.get("/api/v1/moderation/records?kind=report").json() == []
    assert operator.post("/api/v1/moderation/rules", json=rule).status_code == 403
    assert operator.delete("/api/v1/moderation/rules/1").status_code == 403
    keep = {"keep_text": True}
    assert client(app, Role.ADMIN).put("/api/v1/moderation/keep-text", json=keep).status_code == 403
    assert stored(app) == []


def event(kind: str, data: dict[str, object]) -> dict[str, object]:
    # In the bus's envelope as the console writes its own events.
    return json.loads(envelope(f"moderation.{kind}", "chat.test", data))


def test_records_from_the_bus_are_written_once_and_read_latest_first(app) -> None:  # type: ignore[no-untyped-def]
    ctx = app.state.context
    blocked = event(
        "blocked", {"from": "ann@chat.test", "to": "bob@chat.test", "kind": "chat", "rules": [4]}
    )
    report = event(
        "report",
        {"from": "bob@chat.test", "jid": "spam@x.example", "reason": "urn:xmpp:reporting:spam",
         "text": "pills"},
    )  # fmt: skip
    rows = [moderation.record_row(blocked), moderation.record_row(report)]

    moderation.record(ctx.db, rows)
    moderation.record(ctx.db, rows[:1])  # RabbitMQ brought it again

    records = client(app, Role.OPERATOR).get("/api/v1/moderation/records").json()
    assert [(r["kind"], r["sender"], r["target"], r["rules"]) for r in records] == [
        ("report", "bob@chat.test", "spam@x.example", []),
        ("blocked", "ann@chat.test", "bob@chat.test", [4]),
    ]
    assert records[1]["text"] is None
    assert moderation.recent_reports(ctx) == 1
    with pytest.raises(ValueError, match="not a moderation event"):
        moderation.record_row(json.loads(envelope("user.login", "chat.test", {"jid": "a@b"})))
    with pytest.raises(ValueError, match="not a moderation event"):
        moderation.record_row({"type": "moderation.blocked"})


def test_records_are_bounded_the_oldest_go(app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(moderation, "RECORDS_KEPT", 3)
    ctx = app.state.context
    data = {"from": "ann@chat.test", "to": "bob@chat.test", "kind": "chat", "rules": [1]}
    rows = [moderation.record_row(event("masked", data)) for _ in range(5)]
    for row in rows:
        moderation.record(ctx.db, [row])
    kept = ctx.db.all("SELECT event_id FROM moderation_log ORDER BY id")
    assert [r["event_id"] for r in kept] == [row[0] for row in rows[-3:]]


def test_ejabberds_answer_is_read_bare_or_wrapped() -> None:
    # 24.12 answers a text result bare, 23.01 in a one-key object (the bookworm scenario).
    assert ejabberd._text("ok") == "ok"
    assert ejabberd._text({"result": "ok"}) == "ok"
    assert ejabberd._text({"rules": '{"keep_text":false,"rules":[]}'}).startswith("{")
