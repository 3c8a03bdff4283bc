"""The webhooks' rows in the console's database, as the dispatcher reads and writes them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..db import Database

AUDIT_ACTOR = "webhooks"


@dataclass(frozen=True)
class Endpoint:
    id: int
    name: str
    url: str
    events: tuple[str, ...]
    secret: str
    paused: bool
    deleted: bool


@dataclass(frozen=True)
class Attempt:
    """What became of one event at one endpoint, as far as it has gone."""

    webhook_id: int
    event_id: str
    event_type: str
    status: str  # delivered, retrying, failed
    attempts: int
    http_status: int | None
    error: str
    at: float


def endpoints(db: Database) -> list[Endpoint]:
    """Every webhook, deleted ones too (their queues are still to go)."""
    return [
        Endpoint(
            id=row["id"],
            name=row["name"],
            url=row["url"],
            events=tuple(json.loads(row["events"])),
            secret=row["secret"],
            paused=row["paused_at"] is not None,
            deleted=row["deleted_at"] is not None,
        )
        for row in db.all(
            "SELECT id, name, url, events, secret, paused_at, deleted_at FROM webhooks"
        )
    ]


def bound(db: Database, webhook_id: int) -> None:
    """The webhook's queue takes its events: a bot it belongs to may now be given to
    ejabberd (services.bots)."""
    db.run(
        "UPDATE bots SET bound_at = ? WHERE webhook_id = ? AND bound_at IS NULL",
        time.time(),
        webhook_id,
    )


def forget(db: Database, webhook_id: int) -> None:
    """A deleted webhook whose queues are gone: its row and deliveries go too."""
    db.run("DELETE FROM webhooks WHERE id = ? AND deleted_at IS NOT NULL", webhook_id)


def record(db: Database, attempts: list[Attempt], kept: int) -> None:
    """Attempts in one transaction (one write to the card for many deliveries); each
    webhook keeps its last `kept` deliveries."""
    with db.transaction() as conn:
        conn.executemany(
            """
            INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, first_at,
                last_at, status, attempts, http_status, error)
            SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)
            ON CONFLICT (webhook_id, event_id) DO UPDATE SET last_at = excluded.last_at,
                status = excluded.status, attempts = excluded.attempts,
                http_status = excluded.http_status, error = excluded.error
            """,
            [
                (
                    a.webhook_id,
                    a.event_id,
                    a.event_type,
                    a.at,
                    a.at,
                    a.status,
                    a.attempts,
                    a.http_status,
                    a.error,
                    a.webhook_id,
                )
                for a in attempts
            ],
        )
        for webhook_id in {a.webhook_id for a in attempts}:
            conn.execute(
                """
                DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= (
                    SELECT id FROM webhook_deliveries WHERE webhook_id = ?
                    ORDER BY id DESC LIMIT 1 OFFSET ?)
                """,
                (webhook_id, webhook_id, kept),
            )


def succeeded(db: Database, webhook_id: int) -> None:
    db.run("UPDATE webhooks SET failed_in_a_row = 0 WHERE id = ?", webhook_id)


def failed(db: Database, webhook_id: int, name: str, reason: str, pause_after: int) -> bool:
    """One more event that could not be delivered; True when that paused the webhook (told
    in the audit log, and on the dashboard and the webhooks page by its pause reason)."""
    with db.transaction() as conn:
        row = conn.execute(
            """
            UPDATE webhooks SET failed_in_a_row = failed_in_a_row + 1
            WHERE id = ? AND deleted_at IS NULL RETURNING failed_in_a_row, paused_at
            """,
            (webhook_id,),
        ).fetchone()
        if row is None or row["paused_at"] is not None or row["failed_in_a_row"] < pause_after:
            return False
        why = f"{row['failed_in_a_row']} events in a row not delivered; the last: {reason}"
        conn.execute(
            "UPDATE webhooks SET paused_at = ?, pause_reason = ? WHERE id = ?",
            (time.time(), why, webhook_id),
        )
    db.audit(AUDIT_ACTOR, "webhook.pause", name, why)
    return True


def outbox(db: Database, limit: int = 100) -> list[tuple[int, str, bytes]]:
    """The console's events not yet published, oldest first: (id, type, body)."""
    rows = db.all("SELECT id, type, body FROM outbox ORDER BY id LIMIT ?", limit)
    return [(row["id"], row["type"], row["body"].encode()) for row in rows]


def published(db: Database, ids: list[int]) -> None:
    with db.transaction() as conn:
        conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
