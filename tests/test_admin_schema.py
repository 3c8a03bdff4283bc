"""The console's database schema is versioned (PRAGMA user_version) and upgraded step by step:
a new database, one made by the last release before versioning (today's devices), and one from
the first release all end at the same schema, keeping what they hold."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from pi_im_admin.db import MIGRATIONS, Database

# The schema as the release before versioning made it: its CREATE TABLE IF NOT EXISTS block
# with the columns its ad-hoc migrations added, and user_version left at 0.
UNVERSIONED = """
CREATE TABLE operators (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE sessions (id_hash TEXT PRIMARY KEY,
    operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL, expires_at REAL NOT NULL, flash TEXT);
CREATE TABLE api_tokens (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
    token_hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL, created_by TEXT NOT NULL,
    created_at REAL NOT NULL, last_used_at REAL,
    operator_id INTEGER REFERENCES operators(id) ON DELETE CASCADE,
    expires_at REAL NOT NULL DEFAULT 0);
CREATE TABLE invites (id INTEGER PRIMARY KEY, token_hash TEXT UNIQUE NOT NULL,
    created_by TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    group_name TEXT, max_uses INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE bans (username TEXT PRIMARY KEY, reason TEXT NOT NULL, banned_by TEXT NOT NULL,
    banned_at REAL NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE samples (at REAL PRIMARY KEY, online INTEGER NOT NULL,
    registered INTEGER NOT NULL);
"""


def schema(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Every table's columns (name, type, not null), as SQLite reports them."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            table: [(c[1], c[2], c[3]) for c in conn.execute(f"PRAGMA table_info({table})")]
            for table in sorted(tables)
        }


def version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    path = tmp_path / "fresh.db"
    Database(path).close()
    return path


def test_a_new_database_gets_every_step(fresh: Path) -> None:
    assert version(fresh) == len(MIGRATIONS)
    assert [name for name, _, _ in schema(fresh)["api_tokens"]][-2:] == [
        "operator_id",
        "expires_at",
    ]


def test_a_database_of_the_release_before_versioning_is_upgraded_as_it_is(
    tmp_path: Path, fresh: Path
) -> None:
    path = tmp_path / "device.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(UNVERSIONED)
        conn.execute(
            "INSERT INTO operators VALUES (1, 'owner', 'hash', 'owner', ?)", (time.time(),)
        )
        conn.execute(
            "INSERT INTO api_tokens VALUES (1, 't', 'h', 'admin', 'owner', 0, NULL, 1, ?)",
            (time.time() + 3600,),
        )
    Database(path).close()
    assert version(path) == len(MIGRATIONS)
    assert schema(path) == schema(fresh)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT username FROM operators").fetchall() == [("owner",)]
        assert conn.execute("SELECT name, operator_id FROM api_tokens").fetchall() == [("t", 1)]


def test_a_first_release_database_loses_only_its_unowned_tokens(
    tmp_path: Path, fresh: Path
) -> None:
    """Finding 5: a token from before tokens had a maker is never accepted again."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO operators VALUES (1, 'owner', 'hash', 'owner', 0)")
        conn.execute("INSERT INTO api_tokens VALUES (1, 'old', 'h', 'owner', 'owner', 0, NULL)")
        conn.execute("INSERT INTO audit VALUES (1, 0, 'owner', 'create', 'alice', '')")
    Database(path).close()
    assert version(path) == len(MIGRATIONS)
    assert schema(path) == schema(fresh)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM operators").fetchone() == (1,)
        assert conn.execute("SELECT target FROM audit").fetchall() == [("alice",)]


def test_opening_again_changes_nothing(fresh: Path) -> None:
    before = schema(fresh)
    Database(fresh).close()
    assert (version(fresh), schema(fresh)) == (len(MIGRATIONS), before)


def test_a_database_from_a_newer_console_is_refused(fresh: Path) -> None:
    with sqlite3.connect(fresh) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this service"):
        Database(fresh)


def test_a_failing_step_leaves_the_database_at_the_step_before(tmp_path: Path) -> None:
    path = tmp_path / "clash.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        # Something else already made step 2's column under another type: step 2 fails.
        conn.execute("ALTER TABLE sessions ADD COLUMN flash BLOB")
    with pytest.raises(sqlite3.OperationalError, match="duplicate column"):
        Database(path)
    assert version(path) == 1
