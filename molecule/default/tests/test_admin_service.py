"""The admin service, deployed: how it runs, and what operators can and cannot do with it
against the real ejabberd behind it."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from admin_console import Console, api, findings, messages
from conftest import (
    DOMAIN,
    REPO,
    Account,
    api_call,
    create_user,
    new_name,
    run_in_netns,
    secret,
    strong,
)
from test_xmpp import Client, log_in, xmpp_login


@pytest.fixture(scope="module")
def web(base_url: str, device_tls: ssl.SSLContext) -> httpx.Client:
    """A visitor without a session (the public pages), trusting the device's certificate."""
    return httpx.Client(base_url=base_url, verify=device_tls, timeout=30)


# How it runs


def test_runs_as_its_own_user(host) -> None:
    service = host.service("pi-im-admin")
    assert service.is_enabled
    assert service.is_running
    user = host.check_output("systemctl show -P MainPID pi-im-admin")
    assert host.check_output(f"ps -o user= -p {user}") == "pi-im-admin"
    assert host.user("pi-im-admin").shell == "/usr/sbin/nologin"


def test_unit_is_hardened(host) -> None:
    show = host.check_output(
        "systemctl show -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p CapabilityBoundingSet"
        " -p User pi-im-admin"
    )
    props = dict(line.split("=", 1) for line in show.splitlines())
    assert props == {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "User": "pi-im-admin",
    }


def test_database_is_private(host) -> None:
    data = host.file("/var/lib/pi-im-admin")
    assert data.user == "pi-im-admin"
    assert data.mode == 0o750


def test_no_default_credentials(base_url: str, device_tls: ssl.SSLContext) -> None:
    for username, password in [("admin", "admin"), ("owner", "owner"), ("admin", "password")]:
        console = Console(base_url, device_tls)
        assert console.sign_in(username, password).status_code == 401


def test_openapi_schema_is_served(web: httpx.Client) -> None:
    schema = web.get("/openapi.json").json()
    assert "/api/v1/users" in schema["paths"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# Users, end to end with a real XMPP client


def test_user_lifecycle_through_the_pages(owner: Console, device_cert: Path, address: str) -> None:
    name, password = new_name(), strong()
    notice, error = owner.post("/users", username=name, password=password)
    assert error == ""
    assert notice == f"Created {name}@{DOMAIN}."
    assert f"{name}@{DOMAIN}" in owner.get(f"/users?q={name}").text
    account = Account(f"{name}@{DOMAIN}", password)
    assert xmpp_login(account, device_cert, address).startswith("session started")

    notice, _ = owner.post(f"/users/{name}/delete")
    assert notice == f"Deleted {name}."
    assert xmpp_login(account, device_cert, address) == "auth failed"


def test_reset_password_and_ban(owner_api: httpx.Client, device_cert: Path, address: str) -> None:
    name, first, second = new_name(), strong(), strong()
    assert owner_api.post("/users", json={"username": name, "password": first}).status_code == 201
    assert owner_api.post(f"/users/{name}/password", json={"password": second}).status_code == 204
    assert xmpp_login(Account(f"{name}@{DOMAIN}", first), device_cert, address) == "auth failed"
    assert xmpp_login(Account(f"{name}@{DOMAIN}", second), device_cert, address).startswith(
        "session started"
    )
    assert owner_api.post(f"/users/{name}/ban", json={"reason": "spam"}).status_code == 204
    assert xmpp_login(Account(f"{name}@{DOMAIN}", second), device_cert, address) == "auth failed"
    detail = owner_api.get(f"/users/{name}").json()
    assert detail["banned"]["reason"] == "spam"
    assert owner_api.delete(f"/users/{name}").status_code == 204


def test_a_ban_reason_ejabberd_cannot_carry_is_refused_and_bans_nobody(
    owner_api: httpx.Client, device_cert: Path, address: str
) -> None:
    """Found by the API fuzzer: a C1 control character in the reason made ejabberd fail
    the whole ban (503). Now refused before ejabberd is asked, the account untouched."""
    name, password = new_name(), strong()
    assert (
        owner_api.post("/users", json={"username": name, "password": password}).status_code == 201
    )
    for reason in ("\u0099", "spam\nand more", "\x00"):
        refused = owner_api.post(f"/users/{name}/ban", json={"reason": reason})
        assert refused.status_code == 400, refused.text
        assert "control characters" in refused.json()["detail"]
    assert owner_api.get(f"/users/{name}").json()["banned"] is None
    assert xmpp_login(Account(f"{name}@{DOMAIN}", password), device_cert, address).startswith(
        "session started"
    )
    assert owner_api.delete(f"/users/{name}").status_code == 204


def test_listing_searches_and_pages(owner_api: httpx.Client) -> None:
    prefix = new_name("p")
    names = [f"{prefix}{i:02d}" for i in range(55)]
    for name in names:
        assert (
            owner_api.post("/users", json={"username": name, "password": strong()}).status_code
            == 201
        )
    first = owner_api.get("/users", params={"q": prefix}).json()
    second = owner_api.get("/users", params={"q": prefix, "page": 2}).json()
    assert first["total"] == 55
    assert first["pages"] == 2
    assert [u["name"] for u in first["users"] + second["users"]] == names
    for name in names:
        owner_api.delete(f"/users/{name}")


@pytest.mark.parametrize(
    ("username", "password", "status", "message"),
    [
        ("bad@name", "a-strong-pass-1", 400, "may not contain @"),
        ("with space", "a-strong-pass-1", 400, "spaces"),
        ("x" * 1024, "a-strong-pass-1", 422, "username: String should have at most 1023"),
        ("weakling", "short", 400, "too short"),
        ("weakling", "weakling-2024", 400, "too easy to guess"),
        ("admin", "a-strong-pass-1", 409, "already exists"),
    ],
    ids=["at-sign", "space", "too-long", "short-password", "name-in-password", "duplicate"],
)
def test_bad_user_input_is_refused_clearly(
    owner_api: httpx.Client, username: str, password: str, status: int, message: str
) -> None:
    before = owner_api.get("/users").json()["total"]
    response = owner_api.post("/users", json={"username": username, "password": password})
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert owner_api.get("/users").json()["total"] == before


def test_unknown_group_changes_nothing(owner_api: httpx.Client) -> None:
    name = new_name()
    response = owner_api.post(
        "/users", json={"username": name, "password": strong(), "group": "no-such-group"}
    )
    assert response.status_code == 404
    assert "There is no group no-such-group" in response.json()["detail"]
    assert owner_api.get(f"/users/{name}").status_code == 404


# Roles and permissions


@pytest.fixture(scope="module")
def operators(
    owner_api: httpx.Client, base_url: str, device_tls: ssl.SSLContext
) -> dict[str, Console]:
    consoles = {}
    for role in ("viewer", "operator", "admin"):
        name, password = new_name(role[:3]), strong()
        created = owner_api.post(
            "/operators", json={"username": name, "password": password, "role": role}
        )
        assert created.status_code == 201
        console = Console(base_url, device_tls)
        assert console.sign_in(name, password).status_code == 303
        consoles[role] = console
    return consoles


MUTATIONS = [
    ("/users", {"username": "viewer-made", "password": "a-strong-pass-1"}),
    ("/users/admin/kick", {}),
    ("/groups", {"name": "viewer-group"}),
    ("/rooms", {"name": "viewer-room"}),
    ("/invites", {"hours": "1"}),
    ("/broadcast", {"audience": "all", "body": "from a viewer"}),
    ("/operators", {"username": "viewer-op", "password": "a-strong-pass-1", "role": "owner"}),
    ("/tokens", {"name": "viewer-token", "role": "owner"}),
]


@pytest.mark.parametrize(("path", "fields"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_viewer_cannot_change_anything(
    operators: dict[str, Console], path: str, fields: dict[str, str]
) -> None:
    viewer = operators["viewer"]
    response = viewer.http.post(path, data={"csrf": viewer.csrf, **fields})
    assert response.status_code == 403


def test_viewer_can_read(operators: dict[str, Console]) -> None:
    viewer = operators["viewer"]
    for path in ("/", "/users", "/groups", "/invites"):
        assert viewer.get(path).status_code == 200
    assert viewer.get("/operators").status_code == 403
    assert viewer.get("/audit").status_code == 403


def test_viewer_token_cannot_change_anything(
    owner: Console, base_url: str, device_tls: ssl.SSLContext
) -> None:
    viewer_api = api(base_url, owner.create_token(new_name("v"), "viewer"), device_tls)
    assert viewer_api.get("/users").status_code == 200
    assert (
        viewer_api.post("/users", json={"username": new_name(), "password": strong()}).status_code
        == 403
    )
    assert viewer_api.delete("/users/admin").status_code == 403
    assert viewer_api.post("/broadcast", json={"audience": "all", "body": "x"}).status_code == 403
    assert viewer_api.get("/operators").status_code == 403


def test_operator_manages_users_but_not_operators(operators: dict[str, Console]) -> None:
    operator = operators["operator"]
    name = new_name()
    _notice, error = operator.post("/users", username=name, password=strong())
    assert not error, error
    assert operator.post(f"/users/{name}/delete")[0] == f"Deleted {name}."
    response = operator.http.post(
        "/operators",
        data={
            "csrf": operator.csrf,
            "username": new_name(),
            "password": strong(),
            "role": "viewer",
        },
    )
    assert response.status_code == 403
    assert operator.get("/operators").status_code == 403


def test_admin_cannot_create_owners(operators: dict[str, Console]) -> None:
    admin = operators["admin"]
    _, error = admin.post("/operators", username=new_name(), password=strong(), role="owner")
    assert error == "A admin cannot create a owner."


def test_forms_need_the_csrf_token(owner: Console) -> None:
    response = owner.http.post("/users", data={"username": new_name(), "password": strong()})
    assert response.status_code == 403
    response = owner.http.post(
        "/users", data={"username": new_name(), "password": strong(), "csrf": "forged"}
    )
    assert response.status_code == 403


def test_guessing_locks_the_guesser_out_not_the_operator(
    owner_api: httpx.Client,
    base_url: str,
    device_tls: ssl.SSLContext,
    netns: list[str],
    device_cert: Path,
) -> None:
    name, password = new_name("op"), strong()
    made = owner_api.post(
        "/operators", json={"username": name, "password": password, "role": "viewer"}
    )
    assert made.status_code == 201
    guesser = Console(base_url, device_tls)
    statuses = [guesser.sign_in(name, "wrong-password").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # The guessing address waits, whatever it sends...
    assert guesser.sign_in(name, password).status_code == 429
    # ...another name from it is still judged on its own...
    assert guesser.sign_in(new_name("other"), "wrong-password").status_code == 401
    # ...and the operator, from another address (the device itself), signs in.
    assert run_in_netns(netns, password, "signin", name, str(device_cert)) == {"status": 303}


def test_session_cookie_is_protected(host, base_url: str, device_tls: ssl.SSLContext) -> None:
    console = Console(base_url, device_tls)
    response = console.sign_in("owner", secret(host, "admin-owner-password"))
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" in cookie


# Groups, group chats, invitations, broadcast, audit


def test_shared_roster_group(owner_api: httpx.Client) -> None:
    group = new_name("g")
    assert owner_api.post("/groups", json={"name": group, "label": "Family"}).status_code == 201
    alice, bob = (create_user(owner_api, group).jid.split("@")[0] for _ in range(2))
    listed = {g["name"]: g for g in owner_api.get("/groups").json()}
    assert listed[group]["members"] == sorted([alice, bob])
    assert owner_api.delete(f"/groups/{group}/members/{bob}").status_code == 204
    assert owner_api.delete(f"/groups/{group}/members/{bob}").status_code == 404
    assert owner_api.delete(f"/groups/{group}").status_code == 204
    assert group not in {g["name"] for g in owner_api.get("/groups").json()}


def test_group_chat(owner_api: httpx.Client) -> None:
    room, user = new_name("r"), create_user(owner_api).jid.split("@")[0]
    assert owner_api.post("/rooms", json={"name": room, "title": "Kitchen"}).status_code == 201
    assert owner_api.post("/rooms", json={"name": room}).status_code == 409
    assert owner_api.put(f"/rooms/{room}/members/{user}").status_code == 204
    rooms = {r["name"]: r for r in owner_api.get("/rooms").json()}
    assert rooms[room]["members"] == [user]
    assert owner_api.delete(f"/rooms/{room}").status_code == 204


def test_invitation_link_signs_up_once(
    owner_api: httpx.Client, web: httpx.Client, device_cert: Path, address: str
) -> None:
    group = new_name("g")
    owner_api.post("/groups", json={"name": group})
    invite = owner_api.post("/invites", json={"hours": 1, "group": group}).json()
    assert invite["url"].endswith(f"/invite/{invite['token']}")
    assert web.get(f"/invite/{invite['token']}").status_code == 200
    name, password = new_name(), strong()
    redeemed = web.post(f"/invite/{invite['token']}", data={"username": name, "password": password})
    assert redeemed.status_code == 201
    assert f"{name}@{DOMAIN}" in redeemed.text
    assert xmpp_login(Account(f"{name}@{DOMAIN}", password), device_cert, address).startswith(
        "session started"
    )
    assert name in {g["name"]: g for g in owner_api.get("/groups").json()}[group]["members"]
    again = web.get(f"/invite/{invite['token']}")
    assert again.status_code == 403
    assert "already been used" in again.text


def test_revoked_invitation_is_refused(owner_api: httpx.Client, web: httpx.Client) -> None:
    invite = owner_api.post("/invites", json={"hours": 1}).json()
    assert owner_api.delete(f"/invites/{invite['id']}").status_code == 204
    response = web.post(
        f"/invite/{invite['token']}", data={"username": new_name(), "password": strong()}
    )
    assert response.status_code == 403
    assert messages(response.text) == {
        "error": "This invitation is not valid (unknown or revoked)."
    }
    assert 'name="password"' not in response.text  # no form to fill in


def test_an_invitation_is_no_oracle_for_which_names_exist(
    owner_api: httpx.Client, web: httpx.Client
) -> None:
    """Finding 11: probes for taken names stop after a few, without using the link up."""
    invite = owner_api.post("/invites", json={"hours": 1}).json()
    taken = create_user(owner_api).jid.split("@")[0]
    probe = {"username": taken, "password": strong()}
    statuses = [web.post(f"/invite/{invite['token']}", data=probe).status_code for _ in range(11)]
    assert statuses == [409] * 10 + [429]
    # The invitation itself was not used up by the probes.
    listed = {i["id"]: i for i in owner_api.get("/invites").json()}[invite["id"]]
    assert listed["uses"] == 0


# The security review's findings, each against the device


def test_no_spelling_of_a_protected_account_can_be_changed(
    owner_api: httpx.Client, host, device_cert: Path, address: str
) -> None:
    """Finding 1: the console compares names as ejabberd does (nodeprep) and refuses every
    account of ejabberd's admin ACL and its own API account."""
    admin_password = secret(host, "ejabberd-admin-password")
    spellings = ["admin", "ADMIN", "\uff41\uff44\uff4d\uff49\uff4e", "ad\u00admin", "pi-im-console"]
    for spelling in spellings:
        for call in (
            lambda n: owner_api.post(f"/users/{n}/password", json={"password": strong()}),
            lambda n: owner_api.post(f"/users/{n}/ban", json={"reason": "takeover"}),
            lambda n: owner_api.post(f"/users/{n}/kick"),
            lambda n: owner_api.delete(f"/users/{n}"),
        ):
            response = call(spelling)
            assert response.status_code == 403, (spelling, response.text)
    admin = Account(f"admin@{DOMAIN}", admin_password)
    assert xmpp_login(admin, device_cert, address).startswith("session started")


def test_the_console_and_ejabberd_agree_on_canonical_names(owner_api: httpx.Client) -> None:
    """What nodeprep makes of a name is what ejabberd stores: created through the console,
    listed by ejabberd under the canonical name."""
    suffix = secrets.token_hex(3)
    spelled = f"\uff33tra\u00dfe{suffix}"  # fullwidth S, sharp s
    created = owner_api.post("/users", json={"username": spelled, "password": strong()})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == f"strasse{suffix}"
    assert (
        f"strasse{suffix}"
        in owner_api.get("/users", params={"q": suffix}).json()["users"][0]["name"]
    )
    assert owner_api.delete(f"/users/STRASSE{suffix}").status_code == 204


def test_new_secrets_never_reach_a_url_or_the_journal(
    host, owner: Console, owner_api: httpx.Client, web: httpx.Client
) -> None:
    """Finding 2: a token and an invitation link are shown once in a response body; the
    access log has every request but never a secret."""
    since = host.check_output("date +%s")
    token = owner.create_token(new_name("t"), "viewer")
    made = owner.http.post("/invites", data={"csrf": owner.csrf, "hours": "1"})
    link = re.search(r"(https://\S+/invite/(i_\S+)) \(shown once", messages(made.text)["notice"])
    web.get(f"/invite/{link.group(2)}")
    invite = owner_api.post("/invites", json={"hours": 1}).json()
    web.get(f"/invite/{invite['token']}")
    journal = host.check_output(f"journalctl -u pi-im-admin --since @{since} --no-pager")
    assert "GET /invite/… 200" in journal
    for leaked in (token, link.group(2), invite["token"]):
        assert leaked not in journal


def test_bodies_are_bounded_before_anyone_is_asked_who_they_are(host, web: httpx.Client) -> None:
    """Finding 3: an unauthenticated 50 MB body is refused by its length and costs nothing."""
    pid = host.check_output("systemctl show -P MainPID pi-im-admin")

    def rss_kb() -> int:
        return int(host.check_output(f"ps -o rss= -p {pid}"))

    before = rss_kb()
    big = b'{"username": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    response = web.post("/api/v1/users", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert rss_kb() - before < 10 * 1024
    limit = host.check_output("systemctl show -P MemoryMax pi-im-admin")
    assert limit.isdigit()
    assert int(limit) <= 256 * 1024 * 1024


def test_a_deleted_operators_tokens_die_with_them(
    owner_api: httpx.Client, base_url: str, device_tls: ssl.SSLContext
) -> None:
    """Finding 5: a token acts for its maker, capped at the maker's role, and expires."""
    name, password = new_name("adm"), strong()
    made = owner_api.post(
        "/operators", json={"username": name, "password": password, "role": "admin"}
    )
    admin = Console(base_url, device_tls)
    assert admin.sign_in(name, password).status_code == 303
    token = api(base_url, admin.create_token(new_name("t"), "admin"), device_tls)
    listed = {t["name"]: t for t in token.get("/tokens").json()}
    assert all(t["expires_at"] > 0 for t in listed.values())
    assert (
        owner_api.patch(f"/operators/{made.json()['id']}", json={"role": "viewer"}).status_code
        == 204
    )
    assert token.post("/tokens", json={"name": "more", "role": "admin"}).status_code == 403
    assert owner_api.delete(f"/operators/{made.json()['id']}").status_code == 204
    assert token.get("/users").status_code == 401


def test_only_the_devices_names_reach_the_console(
    base_url: str, device_tls: ssl.SSLContext
) -> None:
    """Finding 12: another name (DNS rebinding) gets nothing; messages are not taken from
    the URL."""
    with httpx.Client(base_url=base_url, verify=device_tls, timeout=30) as client:
        assert client.get("/signin", headers={"Host": "rebind.example"}).status_code == 400
        assert client.get("/signin", headers={"Host": DOMAIN}).status_code == 200
        spoofed = client.get("/signin", params={"error": "Call 555-0100 now"})
        assert "555-0100" not in spoofed.text


def test_the_console_speaks_only_https(address: str) -> None:
    """Finding 6: no password crosses the network in clear."""
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{address}:8080/signin", timeout=10)


def test_the_admin_api_answers_only_the_consoles_account(host) -> None:
    """Finding 7: no credentials, or another account, get nothing; the console's account
    gets only the commands the console uses."""
    anonymous = host.run(
        "curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/ejabberd/tls/device.pem "
        f"--resolve {DOMAIN}:5281:127.0.0.1 -H 'Content-Type: application/json' "
        f'-d \'{{"host": "{DOMAIN}"}}\' https://{DOMAIN}:5281/api/registered_users'
    )
    assert anonymous.stdout in {"401", "403"}, anonymous.stdout
    as_admin = api_call(host, "registered_users", {"host": DOMAIN}, user="admin")
    assert as_admin.stdout.rpartition("\n")[2] == "403"
    beyond = {
        "backup": {"file": "/tmp/stolen"},
        "set_master": {"nodename": "self"},
        "stop": {},
        "restart": {},
    }
    for command, body in beyond.items():
        refused = api_call(host, command, body)
        assert refused.stdout.rpartition("\n")[2] in {"403", "404"}, (command, refused.stdout)
    allowed = api_call(host, "registered_users", {"host": DOMAIN})
    assert allowed.stdout.rpartition("\n")[2] == "200"


def test_broadcast_reaches_online_users(
    owner_api: httpx.Client, device_cert: Path, address: str
) -> None:
    account = create_user(owner_api)
    body = f"maintenance at noon {secrets.token_hex(3)}"

    async def listen() -> str:
        client = await log_in(account, device_cert, address)
        got: asyncio.Queue[str] = asyncio.Queue()
        client.add_event_handler("message", lambda m: got.put_nowait(m["body"]))
        sent = await asyncio.to_thread(
            owner_api.post, "/broadcast", json={"audience": "online", "subject": "hi", "body": body}
        )
        assert sent.status_code == 204
        received = await asyncio.wait_for(got.get(), 15)
        client.disconnect()
        return received

    assert asyncio.run(listen()) == body


def test_broadcast_to_all_reaches_offline_users_later(
    owner_api: httpx.Client, device_cert: Path, address: str
) -> None:
    account = create_user(owner_api)
    body = f"read this when you are back {secrets.token_hex(3)}"
    sent = owner_api.post("/broadcast", json={"audience": "all", "subject": "news", "body": body})
    assert sent.status_code == 204

    async def come_back() -> str:
        client = Client(account, device_cert)
        client.connect(host=address, port=5222)
        await asyncio.wait_for(client.outcome, 30)
        received = await asyncio.wait_for(client.messages.get(), 15)
        client.disconnect()
        return received["body"]

    assert asyncio.run(come_back()) == body


def test_dashboard_shows_the_services(owner_api: httpx.Client, owner: Console) -> None:
    board = owner_api.get("/dashboard").json()
    assert board["registered"] >= 1
    names = {p["name"]: p for p in board["processes"]}
    assert names["ejabberd"]["pid"]
    assert names["ejabberd"]["rss_mb"] > 10
    assert names["rabbitmq"]["pid"]
    assert names["rabbitmq"]["rss_mb"] > 10
    assert 0 < board["disk"]["used_percent"] < 100
    assert len(board["history"]) >= 2
    # Samples are taken every 2 s here; users come and go between them.
    assert all(sample["registered"] >= 1 for sample in board["history"])
    page = owner.get("/")
    assert 'http-equiv="refresh"' in page.text
    # Federation is off by default, and the console says so (finding 14).
    assert board["federation"] is False
    assert "Federation is off" in page.text
    assert str(board["registered"]) in page.text
    assert "<polyline" in page.text  # the chart of online users
    # Which domain is in use: what people type after their name.
    assert board["domain"] == DOMAIN
    assert f"end in <strong>@{DOMAIN}</strong>" in page.text
    # Backups are on, and no place for them is set: said at once, not after the first night.
    assert board["backup"]["result"] == "unset"
    assert "No backups are made: no place for them is set." in " ".join(page.text.split())


def test_the_dashboard_shows_the_release_the_device_runs(
    host, owner_api: httpx.Client, owner: Console
) -> None:
    """The release is this checkout's last commit, as the run that converged the device read
    it (the day, the commit, and whether the tree had changes not committed)."""
    commit, day = git("log", "-1", "--format=%H %cs").split()
    changed = "+changed" if git("status", "--porcelain", "--untracked-files=no") else ""
    recorded = json.loads(host.file("/etc/pi-im/release.json").content_string)
    assert recorded == {
        "version": f"{day.replace('-', '.')}+{commit[:7]}{changed}",
        "commit": commit,
        "date": day,
    }
    assert host.file("/etc/pi-im/release.json").mode == 0o644
    assert owner_api.get("/dashboard").json()["release"] == recorded
    shown = " ".join(owner.get("/").text.split())
    assert f"The device runs pi-im-appliance {recorded['version']}." in shown


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_reachability_reads_the_device_and_asks_only_the_dns_it_is_given(
    owner_api: httpx.Client, owner: Console, address: str
) -> None:
    """The test domain looks public; the DNS server it is given (loopback, where nothing
    answers) does not answer, which the page says once, skipping the records' checks; the
    certificate, the listening ports and the relay it reads from the device itself."""
    report = owner_api.get("/reachability", params={"fresh": "true"}).json()
    found = findings(report)
    assert report["domain"] == DOMAIN
    assert report["public_name"] is True
    assert report["lan_address"] == address
    assert found["name"]["state"] == "ok"
    assert found["address"]["state"] == "note"
    assert "DNS could not be asked" in found["address"]["found"]
    assert not {"xmpp-client", "xmpp-server", "rooms"} & found.keys()
    assert found["certificate"]["state"] == "todo"
    assert "self-signed" in found["certificate"]["found"]
    assert "acme_enabled" in found["certificate"]["todo"]
    assert found["listening"]["state"] == "ok", found["listening"]
    for port in ("TCP 5222", "TCP 5280", "TCP 443", "UDP 3478"):
        assert port in found["listening"]["found"]
    assert found["calls"]["state"] == "note"
    assert f"announces {address}" in found["calls"]["found"]
    assert found["federation"]["state"] == "todo"
    assert "add s2s to ejabberd_listeners" in found["federation"]["todo"]
    forwards = {(f["protocol"], f["ports"]) for f in report["forwards"]}
    assert forwards == {
        ("TCP", "5222"), ("TCP", "443"), ("TCP", "5280"), ("UDP", "3478"), ("UDP", "61000-61999"),
    }  # fmt: skip
    page = owner.get("/reachability").text
    assert 'id="finding-address" data-state="note"' in page
    assert f'id="lan-address">{address}<' in page


def test_only_admins_see_how_the_device_is_reached(
    operators: dict[str, Console], owner: Console, base_url: str, device_tls: ssl.SSLContext
) -> None:
    for role in ("viewer", "operator"):
        assert operators[role].get("/reachability").status_code == 403
        assert 'href="/reachability"' not in operators[role].get("/").text
        token = owner.create_token(new_name(role[:1]), role)
        assert api(base_url, token, device_tls).get("/reachability").status_code == 403
    admin = operators["admin"]
    assert 'href="/reachability"' in admin.get("/").text
    assert admin.get("/reachability").status_code == 200
    # Checking again is a form: it needs the session's CSRF token.
    assert admin.http.post("/reachability", data={"csrf": "forged"}).status_code == 403
    again = admin.http.post("/reachability", data={"csrf": admin.csrf})
    assert (again.status_code, again.headers["location"]) == (303, "/reachability")


def test_audit_log_records_who_did_what(owner_api: httpx.Client) -> None:
    name = create_user(owner_api).jid.split("@")[0]
    owner_api.delete(f"/users/{name}")
    entries = owner_api.get("/audit", params={"limit": 50}).json()
    actions = [(e["action"], e["target"]) for e in entries if e["target"] == name]
    assert actions == [("user.delete", name), ("user.create", name)]
    assert all(e["actor"].startswith("token:tests-") for e in entries if e["target"] == name)
