"""The console's own events (an invitation used), in the event bus's envelope (version 1,
events/pi_im_events/schema). Written to the outbox in the database; the webhook dispatcher
publishes them to RabbitMQ's events exchange and removes them once RabbitMQ confirms."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from ..context import Context

# Bounded: a device whose dispatcher cannot publish keeps the newest.
OUTBOX_KEPT = 10000


def envelope(kind: str, host: str, data: dict[str, object]) -> str:
    return json.dumps(
        {
            "version": 1,
            "id": secrets.token_hex(16),
            "type": kind,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "host": host,
            "data": data,
        },
        separators=(",", ":"),
    )


def emit(ctx: Context, kind: str, data: dict[str, object]) -> None:
    with ctx.db.transaction() as conn:
        conn.execute(
            "INSERT INTO outbox (type, body) VALUES (?, ?)",
            (kind, envelope(kind, ctx.ejabberd.domain, data)),
        )
        conn.execute(
            "DELETE FROM outbox WHERE id <= (SELECT MAX(id) FROM outbox) - ?", (OUTBOX_KEPT,)
        )
