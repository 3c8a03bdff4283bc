"""The console's own defences, run in-process against its real SQLite database (no ejabberd
needed for these: what needs ejabberd is proven against the device by Molecule)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pi_im_admin.app import create_app
from pi_im_admin.security import AttemptLimiter, hash_password
from pi_im_admin.settings import Settings

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NOTICE = re.compile(r'<p class="(notice|error)"[^>]*>([^<]*)</p>')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database=tmp_path / "admin.db",
        ejabberd_api="http://127.0.0.1:9/api",  # nothing answers: these tests never need it
        allowed_hosts=("testserver", "pi-im.local"),
        max_body_bytes=4096,
        tls_pem=None,
    )


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    db = app.state.context.db
    for name, role in [("owner", "owner"), ("second", "owner"), ("ada", "admin")]:
        db.run(
            "INSERT INTO operators (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
            name,
            hash_password(PASSWORD),
            role,
            time.time(),
        )
    return app


def browser(app, address: str = "192.0.2.10") -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, client=(address, 40000), follow_redirects=False)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    form = client.get("/signin")
    csrf = CSRF.search(form.text).group(1)
    return client.post(
        "/signin", data={"username": name, "password": password, "csrf": csrf}
    ).status_code


def signed_in(app, name: str = "owner") -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    client = browser(app)
    assert sign_in(client, name) == 303
    return client, CSRF.search(client.get("/operators").text).group(1)


def messages(html: str) -> dict[str, str]:
    return {kind: unescape(text) for kind, text in NOTICE.findall(html)}


def new_token(client: TestClient, csrf: str, role: str, days: int = 30) -> str:
    made = client.post("/tokens", data={"csrf": csrf, "name": "t", "role": role, "days": days})
    assert made.status_code == 200, made.text
    return re.search(r"Token (pia_\S+)", made.text).group(1)


def bearer(app, token: str) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


# Finding 4: a name guessed at from one address does not lock its operator out elsewhere.


def test_guessing_from_one_address_does_not_lock_the_operator_out_of_another(app) -> None:
    attacker = browser(app, "192.0.2.66")
    assert [sign_in(attacker, "owner", "wrong-guess") for _ in range(6)] == [401] * 5 + [429]
    # The right password from the guessing address is refused too, for now...
    assert sign_in(attacker, "owner") == 429
    # ...but the operator at their own desk signs in.
    assert sign_in(browser(app, "192.0.2.10"), "owner") == 303


def test_one_address_guessing_many_names_is_stopped(app) -> None:
    attacker = browser(app, "192.0.2.67")
    statuses = [sign_in(attacker, f"name{i}", "wrong-guess") for i in range(21)]
    assert statuses == [401] * 20 + [429]


# Finding 3: bounded bodies and a bounded limiter.


def test_an_oversized_body_is_refused_before_it_is_read(app) -> None:
    client = browser(app)
    response = client.post("/signin", content=b"username=" + b"a" * 10_000)
    assert response.status_code == 413
    big_json = b'{"name": "' + b"x" * 10_000 + b'"}'
    response = client.post(
        "/api/v1/tokens", content=big_json, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_a_body_without_a_length_is_cut_off_at_the_limit(app) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"a" * 1000

    response = browser(app).post("/signin", content=chunks())
    assert response.status_code == 413


def test_a_bad_length_header_is_refused(app) -> None:
    response = browser(app).post("/signin", headers={"Content-Length": "many"}, content=b"")
    assert response.status_code == 400


def test_the_limiter_forgets_old_failures_and_holds_a_bounded_number_of_keys() -> None:
    limiter = AttemptLimiter(limit=5, window=0.2, max_keys=100)
    for i in range(1000):
        limiter.failed("x" * 1000 + str(i))
    assert len(limiter) == 100
    time.sleep(0.3)
    limiter.failed("fresh")
    assert len(limiter) == 1


# Finding 5: tokens act for their maker, within their maker's role, until they expire.


def test_a_token_dies_with_the_operator_who_made_it(app) -> None:
    client, csrf = signed_in(app, "ada")
    token = new_token(client, csrf, "admin")
    assert bearer(app, token).get("/api/v1/operators").status_code == 200
    # An owner removes ada; ada's token is gone with her.
    owner_api = bearer(app, new_token(*signed_in(app, "second"), role="owner"))
    ada = next(o for o in owner_api.get("/api/v1/operators").json() if o["username"] == "ada")
    assert owner_api.delete(f"/api/v1/operators/{ada['id']}").status_code == 204
    assert bearer(app, token).get("/api/v1/operators").status_code == 401
    assert (
        bearer(app, token).post("/api/v1/tokens", json={"name": "x", "role": "admin"}).status_code
        == 401
    )


def test_a_token_never_has_more_than_its_makers_role_today(app) -> None:
    client, csrf = signed_in(app, "ada")
    token = new_token(client, csrf, "admin")
    owner_api = bearer(app, new_token(*signed_in(app), role="owner"))
    ada = next(o for o in owner_api.get("/api/v1/operators").json() if o["username"] == "ada")
    assert (
        owner_api.patch(f"/api/v1/operators/{ada['id']}", json={"role": "viewer"}).status_code
        == 204
    )
    demoted = bearer(app, token)
    assert demoted.get("/api/v1/operators").status_code == 403
    assert demoted.post("/api/v1/tokens", json={"name": "x", "role": "admin"}).status_code == 403


def test_a_token_expires_and_cannot_make_one_that_outlives_it(app) -> None:
    client, csrf = signed_in(app)
    short = bearer(app, new_token(client, csrf, "owner", days=1))
    made = short.post("/api/v1/tokens", json={"name": "child", "role": "owner", "days": 365})
    assert made.status_code == 201
    tokens = {t["name"]: t for t in short.get("/api/v1/tokens").json()}
    assert tokens["child"]["expires_at"] <= time.time() + 86400 + 5
    assert (
        client.post(
            "/tokens", data={"csrf": csrf, "name": "x", "role": "owner", "days": 400}
        ).status_code
        == 303
    )
    # Let the day pass: the token is refused.
    app.state.context.db.run("UPDATE api_tokens SET expires_at = ?", time.time() - 1)
    assert short.get("/api/v1/tokens").status_code == 401


# Findings 2 and 12: no secret and no message in a URL; only the device's names.


def test_a_new_token_is_shown_once_in_the_response_and_never_in_a_url(app, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pi_im_admin.access")
    client, csrf = signed_in(app)
    made = client.post("/tokens", data={"csrf": csrf, "name": "ci", "role": "viewer"})
    token = re.search(r"Token (pia_\S+)", made.text).group(1)
    assert "location" not in made.headers
    assert token not in client.get("/operators").text
    assert token not in caplog.text


def test_notices_come_from_the_session_not_the_url(app) -> None:
    client, csrf = signed_in(app)
    done = client.post(
        "/operators",
        data={"csrf": csrf, "username": "grace", "password": "a-strong-pass-1", "role": "viewer"},
    )
    assert done.headers["location"] == "/operators"
    assert messages(client.get("/operators").text) == {"notice": "Created operator grace."}
    assert messages(client.get("/operators").text) == {}  # shown once
    spoofed = client.get("/operators", params={"notice": "Call 555-0100", "error": "Pay up"})
    assert "555-0100" not in spoofed.text
    assert "Pay up" not in spoofed.text


def test_an_invitation_token_never_reaches_the_log(app, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pi_im_admin.access")
    secret = "i_" + "s3cret" * 7
    browser(app).get(f"/invite/{secret}")
    browser(app).post(f"/invite/{secret}", data={"username": "x", "password": "y"})
    lines = [r.getMessage() for r in caplog.records if r.name == "pi_im_admin.access"]
    assert len(lines) == 2
    assert all("/invite/…" in line for line in lines)
    assert secret not in caplog.text


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("testserver", 200),
        ("pi-im.local:8080", 200),
        ("PI-IM.LOCAL.", 200),
        ("192.0.2.10:8080", 200),
        ("[2001:db8::1]:8080", 200),
        ("evil.example", 400),
        ("pi-im.local.evil.example", 400),
        ("", 400),
    ],
)
def test_only_the_devices_names_are_answered(app, host: str, status: int) -> None:
    assert browser(app).get("/signin", headers={"Host": host}).status_code == status


def test_an_audit_offset_beyond_any_log_is_refused_not_a_server_error(app) -> None:
    """Found by the API fuzzer: an offset past SQLite's 64-bit integers was a 500."""
    client, csrf = signed_in(app)
    api = bearer(app, new_token(client, csrf, "owner"))
    assert api.get("/api/v1/audit", params={"offset": 2**31 - 1}).json() == []
    assert api.get("/api/v1/audit", params={"offset": 2**128}).status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/users/alice/ban", {"reason": "spam\u0099"}, "reason"),
        ("/api/v1/groups", {"name": "family", "label": "Fam\x1bily"}, "label"),
        ("/api/v1/groups", {"name": "family", "description": "two\nlines \ufffe"}, "description"),
        ("/api/v1/rooms", {"name": "kitchen", "title": "Kitchen\x00"}, "title"),
    ],
)
def test_free_text_ejabberd_cannot_carry_is_refused_before_ejabberd_is_asked(
    app, path: str, body: dict[str, str], field: str
) -> None:
    """Every free text the console hands to ejabberd goes through validation.text first:
    ejabberd is unreachable here, so anything that asked it first would be a 503."""
    client, csrf = signed_in(app)
    refused = bearer(app, new_token(client, csrf, "owner")).post(path, json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"].startswith(f"The {field} may not contain")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/v1/invites/{}"),
        ("DELETE", "/api/v1/operators/{}"),
        ("PATCH", "/api/v1/operators/{}"),
        ("DELETE", "/api/v1/tokens/{}"),
    ],
)
def test_an_id_no_row_can_have_is_refused_not_a_server_error(app, method: str, path: str) -> None:
    """Found by the API fuzzer: DELETE /invites/3982955456446866657834912710656 was a 500
    (a number SQLite cannot hold). Ids are bounded; one in bounds that names nothing is 404."""
    client, csrf = signed_in(app)
    api = bearer(app, new_token(client, csrf, "owner"))
    body = {"role": "viewer"} if method == "PATCH" else None
    assert api.request(method, path.format(2**101), json=body).status_code == 422
    assert api.request(method, path.format(0), json=body).status_code == 422
    assert api.request(method, path.format(2**31 - 1), json=body).status_code == 404


def test_as_a_rate_the_limiter_counts_what_it_lets_through() -> None:
    rate = AttemptLimiter(limit=2, window=0.2)
    assert [rate.spend("bot"), rate.spend("bot"), rate.spend("bot")] == [True, True, False]
    assert rate.spend("other")
    time.sleep(0.25)
    assert rate.spend("bot")
