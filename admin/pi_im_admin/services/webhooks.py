"""Webhooks as operators manage them: registered with the event types they want, a secret
shown once, paused and resumed, deleted; their deliveries read back. The dispatcher
(pi_im_admin.webhooks) picks changes up from the database within seconds."""

from __future__ import annotations

import json
import time

from ..context import Context
from ..errors import NotFound, Problem
from ..security import Principal
from ..webhooks import signing, targets

MAX_WEBHOOKS = 20
MAX_NAME = 64


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise Problem(f"Give the webhook a name of 1 to {MAX_NAME} printable characters.")
    return name


def _listed(row: dict[str, object]) -> dict[str, object]:
    row["events"] = json.loads(str(row["events"]))
    row["paused"] = row.pop("paused_at") is not None
    return row


def listing(ctx: Context) -> list[dict[str, object]]:
    """Every webhook but deleted ones, without its secret."""
    return [
        _listed(dict(row))
        for row in ctx.db.all(
            "SELECT id, name, url, events, created_by, created_at, paused_at, pause_reason, "
            "failed_in_a_row FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
        )
    ]


def detail(ctx: Context, webhook_id: int) -> dict[str, object]:
    for webhook in listing(ctx):
        if webhook["id"] == webhook_id:
            return webhook
    raise NotFound(f"There is no webhook #{webhook_id}.")


def create(
    ctx: Context, actor: Principal, raw_name: str, raw_url: str, raw_events: list[str]
) -> tuple[int, str]:
    """The new webhook's id and its secret (which the console never shows again)."""
    name, url = _name(raw_name), targets.check_url(raw_url)
    return _insert(ctx, actor, name, url, targets.event_types(raw_events))


def create_for_bot(ctx: Context, actor: Principal, bot: str, url: str) -> tuple[int, str]:
    """A bot's webhook (its URL checked by the caller): the bot's messages alone, under its
    routing key, bot.message.<bot>."""
    return _insert(ctx, actor, f"bot {bot}", url, [targets.bot_key(bot)])


def _bot_of(ctx: Context, webhook_id: int) -> str | None:
    row = ctx.db.one("SELECT name FROM bots WHERE webhook_id = ?", webhook_id)
    return str(row["name"]) if row else None


def _insert(
    ctx: Context, actor: Principal, name: str, url: str, events: list[str]
) -> tuple[int, str]:
    if len(listing(ctx)) >= MAX_WEBHOOKS:
        raise Problem(f"A device has at most {MAX_WEBHOOKS} webhooks: delete one first.")
    secret = signing.new_secret()
    webhook_id = ctx.db.run(
        "INSERT INTO webhooks (name, url, events, secret, created_by, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        name,
        url,
        json.dumps(events),
        secret,
        actor.name,
        time.time(),
    )
    ctx.db.audit(actor.name, "webhook.create", name, f"{url} events={','.join(events)}")
    return webhook_id, secret


def change(
    ctx: Context,
    actor: Principal,
    webhook_id: int,
    raw_url: str | None = None,
    raw_events: list[str] | None = None,
    paused: bool | None = None,
) -> None:
    """Whatever is given: another URL, other event types, paused or resumed (which clears
    the count of failed events, so the webhook gets a full run of attempts again)."""
    webhook = detail(ctx, webhook_id)
    changes: list[str] = []
    url = targets.check_url(raw_url) if raw_url is not None else None
    events = targets.event_types(raw_events) if raw_events is not None else None
    bot = _bot_of(ctx, webhook_id)
    if bot is not None and events is not None:
        raise Problem(f"This webhook is bot {bot}'s: it takes the bot's messages and no other.")
    with ctx.db.transaction() as conn:
        if url is not None and url != webhook["url"]:
            conn.execute("UPDATE webhooks SET url = ? WHERE id = ?", (url, webhook_id))
            changes.append(f"url={url}")
        if events is not None and events != webhook["events"]:
            conn.execute(
                "UPDATE webhooks SET events = ? WHERE id = ?", (json.dumps(events), webhook_id)
            )
            changes.append(f"events={','.join(events)}")
        if paused is True and not webhook["paused"]:
            conn.execute(
                "UPDATE webhooks SET paused_at = ?, pause_reason = ? WHERE id = ?",
                (time.time(), f"paused by {actor.name}", webhook_id),
            )
            changes.append("paused")
        if paused is False and webhook["paused"]:
            conn.execute(
                "UPDATE webhooks SET paused_at = NULL, pause_reason = '', failed_in_a_row = 0 "
                "WHERE id = ?",
                (webhook_id,),
            )
            changes.append("resumed")
    if changes:
        ctx.db.audit(actor.name, "webhook.change", str(webhook["name"]), " ".join(changes))


def new_secret(ctx: Context, actor: Principal, webhook_id: int) -> str:
    """Another secret, from the next delivery on; the old one is no longer used."""
    webhook = detail(ctx, webhook_id)
    secret = signing.new_secret()
    ctx.db.run("UPDATE webhooks SET secret = ? WHERE id = ?", secret, webhook_id)
    ctx.db.audit(actor.name, "webhook.secret", str(webhook["name"]))
    return secret


def delete(ctx: Context, actor: Principal, webhook_id: int) -> None:
    """Gone from the console at once; the dispatcher then removes its queues and its row."""
    webhook = detail(ctx, webhook_id)
    bot = _bot_of(ctx, webhook_id)
    if bot is not None:
        raise Problem(f"This webhook is bot {bot}'s: delete the bot (Bots) to delete it.")
    ctx.db.run("UPDATE webhooks SET deleted_at = ? WHERE id = ?", time.time(), webhook_id)
    ctx.db.audit(actor.name, "webhook.delete", str(webhook["name"]))


def deliveries(ctx: Context, webhook_id: int, limit: int = 200) -> list[dict[str, object]]:
    """The latest first."""
    detail(ctx, webhook_id)
    return [
        dict(row)
        for row in ctx.db.all(
            "SELECT event_id, event_type, first_at, last_at, status, attempts, http_status, "
            "error FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
            webhook_id,
            limit,
        )
    ]
