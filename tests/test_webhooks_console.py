"""Webhooks in the console: where they may point, the signature a receiver checks, the
REST API's answers and permissions, and the rows the dispatcher reads and writes, against
the console's real SQLite database. Deliveries themselves are tested on a device
(molecule/default/tests/test_webhooks.py): RabbitMQ and a receiver are real there."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from console_app import api_client, console_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pi_im_events import SignatureError, verify

from pi_im_admin.auth import SESSION_COOKIE
from pi_im_admin.errors import Problem
from pi_im_admin.permissions import Role
from pi_im_admin.webhooks import signing, store, targets


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/pi-im?team=7",
        "https://203.0.113.9:8443/in",
        "http://192.168.1.20:8000/hook",
        "http://10.0.0.5/hook",
        "http://[fd00::5]/hook",
        "http://nas.local/hook",
        "http://nas.home.arpa/hook",
        "http://nas/hook",
    ],
)
def test_https_anywhere_and_http_on_the_local_network_are_taken(url: str) -> None:
    assert targets.check_url(url) == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("not a url", "not an http:// or https:// URL"),
        ("ftp://files.example.org/x", "not an http:// or https:// URL"),
        ("https://", "not an http:// or https:// URL"),
        ("https://hooks.example.org:99999/", "is not a URL"),
        ("http://hooks.example.org/hook", "Plain http:// is for the local network only"),
        ("http://198.51.100.7/hook", "Plain http:// is for the local network only"),
        ("http://100.64.0.9/hook", "Plain http:// is for the local network only"),
        ("https://user:secret@hooks.example.org/", "Leave the name and password out"),
        ("https://127.0.0.1:15672/api", "is the device itself"),
        ("https://localhost:8080/", "is the device itself"),
        ("http://[::1]/", "is the device itself"),
        ("https://0.0.0.0/", "is the device itself"),
        ("https://example.org/" + "a" * 2100, "at most 2048"),
    ],
)
def test_a_url_it_cannot_or_may_not_send_to_is_refused_saying_why(url: str, said: str) -> None:
    with pytest.raises(Problem, match=said):
        targets.check_url(url)


def test_event_types_are_known_ones_in_a_stable_order() -> None:
    assert targets.event_types(["user.login", "message.chat"]) == ["message.chat", "user.login"]
    with pytest.raises(Problem, match=r"Unknown event type message\.all"):
        targets.event_types(["message.chat", "message.all"])
    with pytest.raises(Problem, match="at least one"):
        targets.event_types([])


def test_at_delivery_a_name_that_resolves_to_loopback_is_refused() -> None:
    # Names from /etc/hosts and address literals: nothing here asks a DNS server.
    assert targets.refusal("https://localhost/hook") == "localhost resolves to the device itself"
    assert targets.refusal("https://0/hook") == "0 resolves to the device itself"
    assert targets.refusal("http://192.168.1.20/hook") is None
    assert targets.refusal("https://203.0.113.9/hook") is None
    assert targets.refusal("http://203.0.113.9/hook") == (
        "203.0.113.9 resolves outside the local network, and plain http:// stays on it"
    )


def test_a_receiver_checks_the_signature_with_the_integrators_package() -> None:
    secret, body, now = signing.new_secret(), b'{"id": "e1", "type": "message.chat"}', 1_700_000_000
    headers = {
        signing.TIMESTAMP: str(now),
        signing.SIGNATURE: signing.signature(secret, now, body),
    }

    verify(secret, headers, body, now=now + 10)
    verify(secret, {k.lower(): v for k, v in headers.items()}, body, now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, headers, body.replace(b"e1", b"e2"), now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify(signing.new_secret(), headers, body, now=now)
    with pytest.raises(SignatureError, match="more than 300 s"):
        verify(secret, headers, body, now=now + 301)
    with pytest.raises(SignatureError, match="no X-Pi-Im-Timestamp"):
        verify(secret, {}, body, now=now)


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return console_app(tmp_path)


def client(app: FastAPI, role: Role) -> TestClient:
    return api_client(app, role, "webhooks")


NEW = {"name": "archive", "url": "https://hooks.example.org/in", "events": ["message.chat"]}


def test_an_admin_registers_a_webhook_and_its_secret_is_shown_once(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)

    made = admin.post("/api/v1/webhooks", json=NEW)

    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    listed = admin.get("/api/v1/webhooks")
    assert [w["name"] for w in listed.json()] == ["archive"]
    assert secret not in listed.text
    assert secret not in admin.get(f"/api/v1/webhooks/{made.json()['id']}").text
    audit = app.state.context.db.all(
        "SELECT actor, action, target, detail FROM audit WHERE action LIKE 'webhook.%'"
    )
    assert [tuple(row) for row in audit] == [
        (
            "token:webhooks",
            "webhook.create",
            "archive",
            "https://hooks.example.org/in events=message.chat",
        )
    ]
    assert secret not in str([tuple(row) for row in audit])


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"url": "hooks.example.org"}, "not an http:// or https:// URL"),
        ({"url": "http://hooks.example.org/in"}, "local network only"),
        ({"events": ["message.chat", "message.everything"]}, "Unknown event type"),
        ({"events": []}, "at least one"),
        ({"name": ""}, "a name of 1 to 64"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_nothing_is_made(app, change, said) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)

    refused = admin.post("/api/v1/webhooks", json=NEW | change)

    assert refused.status_code == 400
    assert said in refused.json()["detail"]
    assert admin.get("/api/v1/webhooks").json() == []
    assert app.state.context.db.all("SELECT * FROM audit WHERE action LIKE 'webhook.%'") == []


def test_oversized_input_is_refused_before_it_is_looked_at(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    assert (
        admin.post("/api/v1/webhooks", json=NEW | {"events": ["user.login"] * 17}).status_code
        == 422
    )
    assert admin.post("/api/v1/webhooks", json=NEW | {"name": "n" * 65}).status_code == 422
    assert admin.get("/api/v1/webhooks").json() == []


def test_viewers_see_webhooks_and_deliveries_only_admins_change_them(app) -> None:  # type: ignore[no-untyped-def]
    made = client(app, Role.OWNER).post("/api/v1/webhooks", json=NEW).json()
    path = f"/api/v1/webhooks/{made['id']}"
    for role in (Role.VIEWER, Role.OPERATOR):
        someone = client(app, role)
        assert someone.get("/api/v1/webhooks").status_code == 200
        assert someone.get(f"{path}/deliveries").json() == []
        assert someone.post("/api/v1/webhooks", json=NEW).status_code == 403
        assert someone.patch(path, json={"paused": True}).status_code == 403
        assert someone.post(f"{path}/secret").status_code == 403
        assert someone.delete(path).status_code == 403
    assert len(client(app, Role.VIEWER).get("/api/v1/webhooks").json()) == 1


def test_pause_resume_new_secret_and_delete_are_audited(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    made = admin.post("/api/v1/webhooks", json=NEW).json()
    path = f"/api/v1/webhooks/{made['id']}"
    db = app.state.context.db

    assert admin.patch(path, json={"paused": True}).status_code == 204
    assert admin.get(path).json()["paused"] is True
    assert admin.patch(path, json={"paused": False, "events": ["user.login"]}).status_code == 204
    resumed = admin.get(path).json()
    assert (resumed["paused"], resumed["events"]) == (False, ["user.login"])
    renewed = admin.post(f"{path}/secret").json()["secret"]
    assert renewed != made["secret"]
    assert store.endpoints(db)[0].secret == renewed
    assert admin.delete(path).status_code == 204

    assert admin.get("/api/v1/webhooks").json() == []
    assert admin.get(path).status_code == 404
    # Kept for the dispatcher, marked, until its queues are gone.
    assert [e.deleted for e in store.endpoints(db)] == [True]
    actions = [
        row["action"]
        for row in db.all("SELECT action FROM audit WHERE action LIKE 'webhook.%' ORDER BY id")
    ]
    assert actions == [
        "webhook.create",
        "webhook.change",
        "webhook.change",
        "webhook.secret",
        "webhook.delete",
    ]
    store.forget(db, made["id"])
    assert store.endpoints(db) == []


def test_deliveries_are_recorded_in_place_and_only_the_last_are_kept(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    webhook_id = admin.post("/api/v1/webhooks", json=NEW).json()["id"]
    db = app.state.context.db

    def attempt(event: int, status: str, attempts: int) -> store.Attempt:
        return store.Attempt(
            webhook_id, f"e{event}", "message.chat", status, attempts, 500, "HTTP 500", time.time()
        )

    store.record(db, [attempt(1, "retrying", 1), attempt(2, "retrying", 1)], kept=3)
    store.record(db, [attempt(1, "delivered", 2), attempt(3, "delivered", 1)], kept=3)
    store.record(
        db, [attempt(4, "failed", 8), store.Attempt(999, "x", "t", "failed", 1, None, "", 0)], 3
    )

    shown = admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()
    assert [(d["event_id"], d["status"], d["attempts"]) for d in shown] == [
        ("e4", "failed", 8),
        ("e3", "delivered", 1),
        ("e2", "retrying", 1),
    ]


def test_failed_events_in_a_row_pause_the_webhook_and_say_why(app) -> None:  # type: ignore[no-untyped-def]
    admin = client(app, Role.ADMIN)
    webhook_id = admin.post("/api/v1/webhooks", json=NEW).json()["id"]
    db = app.state.context.db

    assert not store.failed(db, webhook_id, "archive", "HTTP 500", pause_after=2)
    store.succeeded(db, webhook_id)
    assert not store.failed(db, webhook_id, "archive", "HTTP 500", pause_after=2)
    assert store.failed(db, webhook_id, "archive", "HTTP 503", pause_after=2)
    assert not store.failed(db, webhook_id, "archive", "HTTP 503", pause_after=2)

    shown = admin.get(f"/api/v1/webhooks/{webhook_id}").json()
    assert shown["paused"] is True
    assert shown["pause_reason"] == "2 events in a row not delivered; the last: HTTP 503"
    pauses = db.all("SELECT actor, target FROM audit WHERE action = 'webhook.pause'")
    assert [tuple(row) for row in pauses] == [("webhooks", "archive")]
    # Resumed: a full run of attempts again.
    assert admin.patch(f"/api/v1/webhooks/{webhook_id}", json={"paused": False}).status_code == 204
    assert admin.get(f"/api/v1/webhooks/{webhook_id}").json()["failed_in_a_row"] == 0


def test_the_page_registers_one_shows_its_secret_once_and_lists_it(app) -> None:  # type: ignore[no-untyped-def]
    ctx = app.state.context
    session = ctx.sessions.start(app.state.ids[Role.ADMIN])
    browser = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: session})
    csrf = ctx.sessions.lookup(session).csrf
    form = {"csrf": csrf, "name": "archive", "url": "http://nas.local/in"}

    made = browser.post("/webhooks", data=form | {"events": ["user.login", "message.chat"]})

    assert made.status_code == 200
    secret = re.search(r"secret, (whsec_\S+),", made.text).group(1)
    listed = browser.get("/webhooks").text
    assert "http://nas.local/in" in listed
    assert "message.chat, user.login" in listed
    assert secret not in listed
    refused = browser.post("/webhooks", data=form | {"events": ["message.all"]})
    assert refused.status_code == 303
    assert "Unknown event type message.all" in browser.get("/webhooks").text
    assert len(webhooks_of(app)) == 1


def webhooks_of(app) -> list[store.Endpoint]:  # type: ignore[no-untyped-def]
    return store.endpoints(app.state.context.db)
