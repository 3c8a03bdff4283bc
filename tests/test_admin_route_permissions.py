"""Every route of the console against the role matrix, in-process: each route checks exactly one
permission (or is one of the few public ones), and every role is refused (403) where the matrix
says no and let through where it says yes, for the REST API with bearer tokens and for the pages
with a session and its CSRF token. ejabberd is not needed: the check comes before any call to
it, and where a role is let through, whatever follows (ejabberd unreachable, a missing name, a
form without its fields) is anything but a 403."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pi_im_admin.app import create_app
from pi_im_admin.auth import SESSION_COOKIE, required_permission
from pi_im_admin.permissions import Permission, Role, allows
from pi_im_admin.security import Principal, hash_password
from pi_im_admin.services import operators
from pi_im_admin.settings import Settings

PUBLIC = {
    ("GET", "/signin"), ("POST", "/signin"), ("GET", "/invite/{token}"),
    ("POST", "/invite/{token}"), ("GET", "/api/v1/health"),
}  # fmt: skip
# Routes for a bot's own token, which no operator holds (tests/test_bots_console.py).
BOT_TOKEN = {("POST", "/api/v1/bots/{name}/messages")}
# Ids and names no row has: an allowed change then fails on "not found", changing nothing.
PATH_VALUES = {"name": "nobody-here", "token": "none", "invite_id": "999999"}


def permission_of(route: APIRoute) -> set[Permission]:
    """The permissions the route's dependencies check, however deep (a form action checks
    its page's permission and then the CSRF token)."""
    found, todo = [], list(route.dependant.dependencies)
    while todo:
        dependant = todo.pop()
        if dependant.call and (permission := required_permission(dependant.call)):
            found.append(permission)
        todo.extend(dependant.dependencies)
    return set(found)


def api_routes(routes: list[object], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, also inside included routers (FastAPI keeps those
    as routers of their own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes, prefix + route.include_context.prefix)


def routes(app) -> Iterator[tuple[str, str, Permission | None]]:  # type: ignore[no-untyped-def]
    for path, route in api_routes(app.routes):
        permissions = permission_of(route)
        for method in sorted(route.methods):
            if (method, path) in PUBLIC | BOT_TOKEN:
                assert permissions == set(), (method, path)
                yield method, path, None
            else:
                assert len(permissions) == 1, (method, path, permissions)
                yield method, path, next(iter(permissions))


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "999999"), path)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    settings = Settings(
        database=Path(tmp_path_factory.mktemp("console")) / "admin.db",
        ejabberd_api="http://127.0.0.1:9/api",  # nothing answers
        allowed_hosts=("testserver",),
        tls_pem=None,
    )
    app = create_app(settings)
    ctx = app.state.context
    app.state.role_ids = {}
    for role in Role:
        app.state.role_ids[role] = ctx.db.run(
            "INSERT INTO operators (username, password_hash, role, created_at) "
            "VALUES (?, ?, ?, ?)",
            f"op-{role}", hash_password("correct horse battery"), role, time.time(),
        )  # fmt: skip
    return app


def api_client(app, role: Role) -> TestClient:  # type: ignore[no-untyped-def]
    actor = Principal(name=f"op-{role}", role=role, operator_id=app.state.role_ids[role])
    _, token = operators.create_token(app.state.context, actor, "matrix", role)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def page_client(app, role: Role) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    """A fresh session each time: a route may end the one it is given (sign out)."""
    ctx = app.state.context
    session = ctx.sessions.start(app.state.role_ids[role])
    client = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: session})
    return client, ctx.sessions.lookup(session).csrf


def expected(method: str, path: str) -> Permission:
    """The matrix as a reader states it: who may see what, and change what."""
    section = path.removeprefix("/api/v1")
    for prefix, permission in [
        ("/operators", Permission.MANAGE_OPERATORS),
        ("/tokens", Permission.MANAGE_TOKENS),
        ("/audit", Permission.VIEW_AUDIT),
        ("/reachability", Permission.VIEW_REACHABILITY),
        ("/broadcast", Permission.BROADCAST),
        # Where backups go, the passphrase and a download of everything: the owner's.
        ("/backups/target", Permission.MANAGE_BACKUPS),
        ("/backups/passphrase", Permission.MANAGE_BACKUPS),
        ("/backups/download", Permission.MANAGE_BACKUPS),
        ("/backups", Permission.RUN_BACKUPS),
        # Whether moderation's records keep what was said: the owner's.
        ("/moderation/keep-text", Permission.KEEP_MESSAGE_TEXT),
    ]:
        if section.startswith(prefix):
            return permission
    if section.startswith("/moderation"):
        # Its records name people: not for viewers; the list is the admins'.
        return Permission.VIEW_MODERATION if method == "GET" else Permission.MANAGE_MODERATION
    if method == "GET" or section == "/signout":
        return Permission.VIEW
    for prefix, permission in [
        ("/users", Permission.MANAGE_USERS),
        ("/groups", Permission.MANAGE_GROUPS),
        ("/rooms", Permission.MANAGE_GROUPS),
        ("/invites", Permission.MANAGE_INVITES),
        # Seen by all (deliveries too); registered, changed and deleted by admins.
        ("/webhooks", Permission.MANAGE_INTEGRATIONS),
        ("/bots", Permission.MANAGE_INTEGRATIONS),
        ("/assistant", Permission.MANAGE_INTEGRATIONS),
    ]:
        if section.startswith(prefix):
            return permission
    raise AssertionError(f"no rule for {method} {path}")


def test_each_route_checks_the_permission_the_matrix_gives_it(app) -> None:  # type: ignore[no-untyped-def]
    different = [
        f"{method} {path}: {permission}, expected {expected(method, path)}"
        for method, path, permission in routes(app)
        if permission is not None and permission != expected(method, path)
    ]
    assert not different, different


def test_every_route_is_public_or_checks_one_permission(app) -> None:  # type: ignore[no-untyped-def]
    checked = [r for r in routes(app) if r[2] is not None]
    public = {(method, path) for method, path, p in routes(app) if p is None}
    assert public == PUBLIC | BOT_TOKEN
    assert len(checked) > 50
    assert {p for _, _, p in checked} == set(Permission)


@pytest.mark.parametrize("role", list(Role))
def test_the_api_answers_each_role_as_the_matrix_says(app, role: Role) -> None:  # type: ignore[no-untyped-def]
    client = api_client(app, role)
    wrong = []
    for method, path, permission in routes(app):
        if permission is None or not path.startswith("/api/"):
            continue
        body = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
        status = client.request(method, concrete(path), **body).status_code
        if (status == 403) == allows(role, permission) or status == 401:
            wrong.append(f"{method} {path} ({permission}): {status}")
    assert not wrong, wrong


@pytest.mark.parametrize("role", list(Role))
def test_the_pages_answer_each_role_as_the_matrix_says(app, role: Role) -> None:  # type: ignore[no-untyped-def]
    wrong = []
    for method, path, permission in routes(app):
        if permission is None or path.startswith("/api/"):
            continue
        client, csrf = page_client(app, role)
        form = {"data": {"csrf": csrf}} if method == "POST" else {}
        response = client.request(method, concrete(path), **form)
        if (response.status_code == 403) == allows(role, permission):
            wrong.append(f"{method} {path} ({permission}): {response.status_code}")
        # Only signing out may send a signed-in operator back to the sign-in page.
        if path != "/signout" and response.headers.get("location", "").startswith("/signin"):
            wrong.append(f"{method} {path}: sent to sign in")
    assert not wrong, wrong


@pytest.mark.parametrize("role", list(Role))
def test_no_operators_token_speaks_for_a_bot(app, role: Role) -> None:  # type: ignore[no-untyped-def]
    client = api_client(app, role)
    for method, path in BOT_TOKEN:
        body = {"to": "ann@chat.test", "text": "hello"}
        assert client.request(method, concrete(path), json=body).status_code == 401
