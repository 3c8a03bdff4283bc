"""A full disk, as the console meets it: a write SQLite refuses for want of room is a
refusal the user can act on (507, nothing saved, the database usable again once there is
room), and the dashboard says how much room the device's state has left."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pi_im_admin.app import create_app
from pi_im_admin.db import Database
from pi_im_admin.errors import StorageFull
from pi_im_admin.permissions import Role
from pi_im_admin.security import Principal, hash_password
from pi_im_admin.services.dashboard import storage
from pi_im_admin.services.operators import create_token
from pi_im_admin.settings import Settings


@pytest.fixture
def cramped(tmp_path: Path) -> Database:
    """The console's database with no page to grow into, which SQLite answers as a full
    disk (SQLITE_FULL), exactly as when the card has no room left."""
    db = Database(tmp_path / "admin.db")
    pages = db.one("PRAGMA page_count")[0]  # type: ignore[index]
    db.all(f"PRAGMA max_page_count = {pages}")
    return db


def audited(db: Database) -> int:
    return db.one("SELECT count(*) FROM audit")[0]  # type: ignore[index]


def ban_many(db: Database) -> None:
    for _ in range(1000):
        db.run("INSERT INTO bans VALUES (hex(randomblob(8)), ?, 'owner', 0)", "x" * 4000)


def audit_many_at_once(db: Database) -> None:
    with db.transaction() as conn:
        for _ in range(1000):
            conn.execute(
                "INSERT INTO audit (at, actor, action, target, detail) "
                "VALUES (0, 'a', 'b', 'c', ?)",
                ("y" * 4000,),
            )


def test_a_write_refused_for_room_is_storage_full(cramped: Database) -> None:
    with pytest.raises(StorageFull) as refused:
        ban_many(cramped)
    assert refused.value.status == 507
    assert "storage is full" in refused.value.message


def test_a_transaction_refused_for_room_saves_nothing_and_leaves_the_database_usable(
    cramped: Database,
) -> None:
    before = audited(cramped)
    with pytest.raises(StorageFull):
        audit_many_at_once(cramped)
    assert audited(cramped) == before
    # Room again: the next transaction commits.
    cramped.all("PRAGMA max_page_count = 1073741823")
    with cramped.transaction() as conn:
        conn.execute("INSERT INTO audit (at, actor, action, target) VALUES (0, 'a', 'b', 'c')")
    assert audited(cramped) == before + 1


def test_other_database_errors_are_not_taken_for_a_full_disk(tmp_path: Path) -> None:
    db = Database(tmp_path / "admin.db")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.run("INSERT INTO no_such_table VALUES (1)")


def free_mb(path: Path) -> int:
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize // 2**20


@pytest.mark.parametrize(
    ("low_above", "full_above", "state"),
    [(-1, -1, "ok"), (1, -1, "low"), (1, 1, "full")],
)
def test_the_dashboard_says_how_much_room_the_state_has(
    tmp_path: Path, low_above: int, full_above: int, state: str
) -> None:
    """Thresholds put just above or below what this machine's file system has free now."""
    free = free_mb(tmp_path)
    settings = replace(
        Settings(),
        storage_paths=(str(tmp_path), str(tmp_path / "not-installed")),
        storage_low_mb=free + 100 * low_above,
        storage_full_mb=free + 100 * full_above,
    )
    disk = storage(settings)
    assert disk["state"] == state
    assert abs(int(disk["free_mb"]) - free) < 100  # type: ignore[call-overload]
    assert 0 <= float(disk["used_percent"]) <= 100  # type: ignore[arg-type]


def test_the_file_system_with_the_least_room_is_the_one_shown(tmp_path: Path) -> None:
    """/dev/shm and the test's directory are different file systems here; the smaller free
    figure is reported."""
    other = Path("/dev/shm")
    if os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("one file system here")
    settings = replace(Settings(), storage_paths=(str(tmp_path), str(other)))
    assert storage(settings)["free_mb"] == min(free_mb(tmp_path), free_mb(other))


def test_an_owner_still_reads_the_console_through_a_full_disk(tmp_path: Path) -> None:
    """Signing in needs a row (refused as full, cleanly); a session or token that exists
    keeps working: what a read writes on the side (a token's last use, a page's message)
    gives way."""
    app = create_app(
        Settings(
            database=tmp_path / "admin.db",
            ejabberd_api="http://127.0.0.1:9/api",
            allowed_hosts=("testserver",),
            tls_pem=None,
        )
    )
    ctx = app.state.context
    operator = ctx.db.run(
        "INSERT INTO operators (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
        "owner",
        hash_password("correct horse battery"),
        "owner",
        time.time(),
    )
    actor = Principal("owner", Role.OWNER, operator, "")
    _, token = create_token(ctx, actor, "reader", "owner")
    session = ctx.sessions.start(operator)
    ctx.sessions.flash(session, "notice", "Saved.")
    pages = ctx.db.one("PRAGMA page_count")[0]
    ctx.db.all(f"PRAGMA max_page_count = {pages}")
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        # Invitations until one needs a page the database cannot have: refused as full, and
        # each one answered 201 is there.
        answers = [client.post("/api/v1/invites", json={"hours": 1}, headers=bearer)]
        while answers[-1].status_code == 201 and len(answers) < 500:
            answers.append(client.post("/api/v1/invites", json={"hours": 1}, headers=bearer))
        assert answers[-1].status_code == 507, answers[-1].text
        assert "storage is full" in answers[-1].json()["detail"]
        made = ctx.db.one("SELECT count(*) FROM invites")[0]
        assert made == len(answers) - 1
        operators = client.get("/api/v1/operators", headers=bearer)
        assert operators.status_code == 200, operators.text
        assert ctx.sessions.take_flash(session) == {"notice": "Saved."}
        assert ctx.sessions.lookup(session) is not None


def test_an_audit_entry_without_room_goes_to_the_journal(
    cramped: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The change it records stands; its entry is not lost from sight."""
    before = audited(cramped)
    for n in range(200):
        cramped.audit("owner", "invite.create", f"#{n}", "x" * 3000)
    assert audited(cramped) < before + 200
    assert "audit entry not saved (storage full): owner invite.create #199" in caplog.text
