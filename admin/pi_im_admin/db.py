"""The admin service's own small SQLite database: operators, sessions, API tokens,
invitations, bans, the audit log, dashboard samples, webhooks and their deliveries,
moderation's list and records. XMPP
accounts live in ejabberd only."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import StorageFull

log = logging.getLogger(__name__)

# The schema as a list of steps; PRAGMA user_version says how many a database has had. A
# change to the schema is a new step at the end, never an edit of one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    # 1: the first release.
    """
    CREATE TABLE operators (
        id INTEGER PRIMARY KEY,
        username TEXT UNIQUE NOT NULL,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT UNIQUE NOT NULL,
        role TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL
    );
    CREATE TABLE invites (
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
    CREATE TABLE bans (
        username TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        banned_by TEXT NOT NULL,
        banned_at REAL NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE samples (
        at REAL PRIMARY KEY,
        online INTEGER NOT NULL,
        registered INTEGER NOT NULL
    );
    """,
    # 2: messages for the next page kept in the session, not in the URL.
    "ALTER TABLE sessions ADD COLUMN flash TEXT;",
    # 3: a token acts for the operator who made it and expires. Tokens made before have
    # neither and are never accepted again: they go.
    """
    ALTER TABLE api_tokens ADD COLUMN operator_id INTEGER
        REFERENCES operators(id) ON DELETE CASCADE;
    ALTER TABLE api_tokens ADD COLUMN expires_at REAL NOT NULL DEFAULT 0;
    DELETE FROM api_tokens WHERE operator_id IS NULL;
    """,
    # 4: webhooks and what became of each delivery (the dispatcher, pi_im_admin.webhooks,
    # reads the first and writes the second). A deleted webhook stays, marked, until the
    # dispatcher has removed its queues. The outbox holds the console's own events (an
    # invitation used) until the dispatcher has published them.
    """
    CREATE TABLE webhooks (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        paused_at REAL,
        pause_reason TEXT NOT NULL DEFAULT '',
        failed_in_a_row INTEGER NOT NULL DEFAULT 0,
        deleted_at REAL
    );
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        http_status INTEGER,
        error TEXT NOT NULL DEFAULT '',
        UNIQUE (webhook_id, event_id)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
    # 5: moderation: the list ejabberd applies (ids never reused, so a record's rule is never
    # another's), what it blocked and masked and the spam reports (the dispatcher writes
    # them), and the console's own settings (whether those records keep the text).
    """
    CREATE TABLE moderation_rules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        action TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (kind, text)
    );
    CREATE TABLE moderation_log (
        id INTEGER PRIMARY KEY,
        event_id TEXT UNIQUE NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        sender TEXT NOT NULL,
        target TEXT NOT NULL,
        room TEXT,
        rules TEXT NOT NULL,
        reason TEXT NOT NULL,
        text TEXT
    );
    CREATE INDEX moderation_log_at ON moderation_log (kind, at);
    CREATE TABLE console_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 6: bots: accounts whose messages go to a webhook (or, without one, to the assistant),
    # each with a token of its own for its replies (kept as a digest). The dispatcher marks a
    # bot bound once its queue takes the bot's messages; only then does the console give
    # ejabberd the bot (bots_set). The assistant's answers wait in bot_replies until the
    # console has sent them.
    """
    CREATE TABLE bots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        webhook_id INTEGER REFERENCES webhooks(id),
        token_hash TEXT UNIQUE,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        bound_at REAL,
        last_used_at REAL
    );
    CREATE TABLE bot_replies (
        id INTEGER PRIMARY KEY,
        bot TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        made_at REAL NOT NULL
    );
    """,
)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _unversioned(conn: sqlite3.Connection) -> int:
    """How many steps a database made before versioning (user_version 0) has had: read from
    the columns those steps added. 0 for an empty database."""
    if not _columns(conn, "operators"):
        return 0
    if "operator_id" in _columns(conn, "api_tokens"):
        return 3
    return 2 if "flash" in _columns(conn, "sessions") else 1


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to the last step, each step in its own transaction. A database
    already there is only read."""
    stored = conn.execute("PRAGMA user_version").fetchone()[0]
    version = stored or _unversioned(conn)
    if version != stored:  # made before versioning: record what its columns say it had
        conn.execute(f"PRAGMA user_version = {version}")
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the database is at schema {version}, newer than this service's "
            f"{len(MIGRATIONS)}: refusing to run an older console on it"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number}; COMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


@contextmanager
def _room_needed() -> Iterator[None]:
    """A write refused for a full disk is the user's to act on (StorageFull, a 507 with what
    to do), not an internal error."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL:
            raise StorageFull() from error
        raise


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
            migrate(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        with self._lock, _room_needed():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                # A COMMIT refused (a full disk) leaves the transaction open: rolled back too.
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def run(self, sql: str, *args: Any) -> int:
        """Execute one statement; the new row id (for inserts)."""
        with self._lock, _room_needed():
            return self._conn.execute(sql, args).lastrowid or 0

    def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        """Recorded after the change it describes, which stands: without room for the row the
        entry goes to the journal instead of turning a done change into an error."""
        try:
            self.run(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                time.time(),
                actor,
                action,
                target,
                detail,
            )
        except StorageFull:
            log.warning(
                "audit entry not saved (storage full): %s %s %s %s", actor, action, target, detail
            )

    def close(self) -> None:
        self._conn.close()
