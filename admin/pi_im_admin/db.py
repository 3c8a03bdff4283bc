"""The admin service's own small SQLite database: operators, sessions, API tokens,
invitations, bans, the audit log and dashboard samples. XMPP accounts live in ejabberd only."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    id INTEGER PRIMARY KEY,
    username TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at REAL NOT NULL,
    flash TEXT
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT UNIQUE NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    operator_id INTEGER REFERENCES operators(id) ON DELETE CASCADE,
    expires_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS invites (
    id INTEGER PRIMARY KEY,
    token_hash TEXT UNIQUE NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    group_name TEXT,
    max_uses INTEGER NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bans (
    username TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    banned_by TEXT NOT NULL,
    banned_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS samples (
    at REAL PRIMARY KEY,
    online INTEGER NOT NULL,
    registered INTEGER NOT NULL
);
"""

# Columns added since the first release, for databases made before them (SQLite has no
# ADD COLUMN IF NOT EXISTS). Tokens made before they were tied to an operator and an expiry
# have neither and are never accepted again; they are removed.
MIGRATIONS = (
    ("sessions", "flash", "ALTER TABLE sessions ADD COLUMN flash TEXT"),
    (
        "api_tokens",
        "operator_id",
        "ALTER TABLE api_tokens ADD COLUMN operator_id INTEGER "
        "REFERENCES operators(id) ON DELETE CASCADE",
    ),
    (
        "api_tokens",
        "expires_at",
        "ALTER TABLE api_tokens ADD COLUMN expires_at REAL NOT NULL DEFAULT 0",
    ),
)


class Database:
    """One connection shared by the process, serialised by a lock (SQLite, one writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(SCHEMA)
            for table, column, statement in MIGRATIONS:
                columns = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._conn.execute(statement)
            self._conn.execute("DELETE FROM api_tokens WHERE operator_id IS NULL")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def run(self, sql: str, *args: Any) -> int:
        """Execute one statement; the new row id (for inserts)."""
        with self._lock:
            return self._conn.execute(sql, args).lastrowid or 0

    def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self.run(
            "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            time.time(),
            actor,
            action,
            target,
            detail,
        )

    def close(self) -> None:
        self._conn.close()
