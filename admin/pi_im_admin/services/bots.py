"""Bots as admins manage them: an account of the chat server whose messages (while no app is
signed in as it) go to a webhook, and whose replies come back through the API with a token
of its own. Made in one step, its token and its webhook's secret shown once.

ejabberd learns a bot (bots_set, mod_bots) only once the dispatcher has bound the bot's
queue: a message to a bot is then never published to nobody. Until then it waits offline
like any account's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass

from ..context import Context
from ..db import Database
from ..errors import NotFound, Problem, StorageFull, TooMany, Unavailable
from ..security import Principal, digest, new_token
from ..validation import localpart, text
from ..webhooks import targets
from . import webhooks

# The same rule as mod_bots: the name is one word of the bot's routing key.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_BOTS = 20
MAX_TEXT = 10_000
# How long creating a bot waits for the dispatcher to bind its queue (it looks every 2 s).
BIND_SECONDS = 10.0
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_changing = asyncio.Lock()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Created:
    name: str
    jid: str
    token: str
    webhook_id: int
    webhook_secret: str


def checked_name(raw: str) -> str:
    name = raw.strip()
    if not NAME.match(name):
        raise Problem(
            "A bot's name is 1 to 32 lower-case letters, digits, '_' or '-', starting with a "
            "letter or digit."
        )
    return name


def listing(ctx: Context) -> list[dict[str, object]]:
    return [
        dict(row) | {"jid": f"{row['name']}@{ctx.ejabberd.domain}", "bound": bool(row["bound"])}
        for row in ctx.db.all(
            "SELECT b.name, b.webhook_id, w.url, b.created_by, b.created_at, "
            "b.bound_at IS NOT NULL AS bound, b.last_used_at FROM bots b "
            "LEFT JOIN webhooks w ON w.id = b.webhook_id ORDER BY b.name"
        )
    ]


def document(ctx: Context, without: str = "") -> str:
    """The list ejabberd takes: the bots whose queue is bound (but `without`)."""
    names = [
        row["name"]
        for row in ctx.db.all("SELECT name FROM bots WHERE bound_at IS NOT NULL ORDER BY name")
        if row["name"] != without
    ]
    return json.dumps({"bots": names}, separators=(",", ":"))


async def _push(ctx: Context, without: str = "") -> None:
    answer = await ctx.ejabberd.set_bots(document(ctx, without))
    if answer != "ok":
        raise Problem(f"The chat server did not take the list of bots: {answer}.")


async def _activate(ctx: Context, name: str) -> None:
    """ejabberd told of a new bot as soon as the dispatcher has bound its queue (it looks
    every 2 s); if that takes longer than BIND_SECONDS, the sampler tells it later."""
    deadline = time.monotonic() + BIND_SECONDS
    while time.monotonic() < deadline:
        if ctx.db.one("SELECT 1 FROM bots WHERE name = ? AND bound_at IS NOT NULL", name):
            with contextlib.suppress(Problem):
                await _push(ctx)
            return
        await asyncio.sleep(0.2)


async def activate(ctx: Context, name: str) -> None:
    async with _changing:
        await _activate(ctx, name)


async def make_account(ctx: Context, name: str) -> None:
    """A new bot's account on the chat server, once nothing stands in its way."""
    if ctx.db.one("SELECT 1 FROM bots WHERE name = ?", name):
        raise Problem(f"There is a bot named {name} already.")
    if ctx.db.one("SELECT COUNT(*) AS n FROM bots")["n"] >= MAX_BOTS:
        raise Problem(f"A device has at most {MAX_BOTS} bots: delete one first.")
    try:
        await ctx.ejabberd.bots()
    except NotFound:
        raise Problem("Bots are off on this device (ejabberd_bots: false).") from None
    if await ctx.ejabberd.exists(name):
        raise Problem(f"{name}@{ctx.ejabberd.domain} is a user's account: choose another name.")
    # A password no one is told: a bot answers through the API, not from an app.
    await ctx.ejabberd.register(name, secrets.token_urlsafe(32))


async def create(ctx: Context, actor: Principal, raw_name: str, raw_url: str) -> Created:
    name, url = checked_name(raw_name), targets.check_url(raw_url)
    async with _changing:
        await make_account(ctx, name)
        token = new_token("pib")
        try:
            webhook_id, secret = webhooks.create_for_bot(ctx, actor, name, url)
            ctx.db.run(
                "INSERT INTO bots (name, webhook_id, token_hash, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                name,
                webhook_id,
                digest(token),
                actor.name,
                time.time(),
            )
        except BaseException:
            with contextlib.suppress(Problem):
                await ctx.ejabberd.unregister(name)
            raise
        ctx.db.audit(actor.name, "bot.create", name, f"webhook #{webhook_id} {url}")
        await _activate(ctx, name)
    return Created(name, f"{name}@{ctx.ejabberd.domain}", token, webhook_id, secret)


async def delete(ctx: Context, actor: Principal, name: str) -> None:
    """ejabberd forgets the bot first (messages to it then wait offline), then its account,
    webhook and token go. Nothing changes if ejabberd cannot be told."""
    async with _changing:
        row = ctx.db.one("SELECT webhook_id FROM bots WHERE name = ?", name)
        if row is None:
            raise NotFound(f"There is no bot named {name[:40]!r}.")
        if row["webhook_id"] is None:
            raise Problem(f"{name} is the assistant: remove it on the Bots page's Assistant part.")
        await _forget(ctx, name)
    ctx.db.audit(actor.name, "bot.delete", name)


async def forget(ctx: Context, name: str) -> None:
    """The bot gone, whatever kind (the assistant's own removal)."""
    async with _changing:
        await _forget(ctx, name)


async def _forget(ctx: Context, name: str) -> None:
    await _push(ctx, without=name)
    with contextlib.suppress(NotFound):
        await ctx.ejabberd.unregister(name)
    with ctx.db.transaction() as conn:
        webhook = conn.execute("SELECT webhook_id FROM bots WHERE name = ?", (name,)).fetchone()
        conn.execute("DELETE FROM bots WHERE name = ?", (name,))
        if webhook and webhook["webhook_id"] is not None:
            conn.execute(
                "UPDATE webhooks SET deleted_at = ? WHERE id = ?",
                (time.time(), webhook["webhook_id"]),
            )


def bot_for(ctx: Context, name: str, token: str) -> str | None:
    """The bot's name when the token is that bot's, else None."""
    row = ctx.db.one("SELECT id FROM bots WHERE name = ? AND token_hash = ?", name, digest(token))
    if row is None:
        return None
    with contextlib.suppress(StorageFull):  # bookkeeping: a full disk must not stop replies
        ctx.db.run("UPDATE bots SET last_used_at = ? WHERE id = ?", time.time(), row["id"])
    return name


def _recipient(ctx: Context, raw: str) -> str:
    user, at, domain = raw.strip().partition("@")
    domain = domain.lower().rstrip(".")
    if not at or "/" in domain or not _DOMAIN.match(domain):
        raise Problem(f"{raw[:80]!r} is not a chat address (name@domain).")
    return f"{localpart(user)}@{domain}"


async def send(ctx: Context, bot: str, raw_to: str, raw_text: str) -> None:
    """A chat message from the bot, as the chat server delivers any other."""
    to = _recipient(ctx, raw_to)
    body = text(raw_text, "message", MAX_TEXT, multiline=True)
    if not body:
        raise Problem("The message is empty.")
    if not ctx.bot_sends.spend(bot):
        raise TooMany(f"Bot {bot} sent {ctx.bot_sends.limit} messages in the last minute: wait.")
    await ctx.ejabberd.send(bot, to, "", body, kind="chat")


def leave_reply(db: Database, bot: str, recipient: str, reply: str) -> None:
    """An answer for the console to send (the dispatcher's, for the assistant)."""
    db.run(
        "INSERT INTO bot_replies (bot, recipient, text, made_at) VALUES (?, ?, ?, ?)",
        bot,
        recipient,
        reply,
        time.time(),
    )


async def relay(ctx: Context) -> int:
    """Send the answers waiting in bot_replies, oldest first; how many went. One ejabberd
    cannot take now stays for the next round; one it refuses (no such bot any more, a
    recipient it will never take) is dropped, logged."""
    sent = 0
    for row in ctx.db.all("SELECT id, bot, recipient, text FROM bot_replies ORDER BY id LIMIT 50"):
        try:
            await send(ctx, row["bot"], row["recipient"], row["text"])
        except (Unavailable, TooMany):
            break
        except Problem as problem:
            log.warning("an answer of %s to %s dropped: %s", row["bot"], row["recipient"], problem)
        else:
            sent += 1
        ctx.db.run("DELETE FROM bot_replies WHERE id = ?", row["id"])
    return sent


async def in_step(ctx: Context) -> bool:
    """Whether ejabberd knows the bound bots; if not (a restored console, a server that lost
    its copy, a bot bound after its creation had stopped waiting), they are sent again. The
    console's sampler asks every sample."""
    try:
        applied = await ctx.ejabberd.bots()
        if json.loads(applied) != json.loads(document(ctx)):
            async with _changing:
                await _push(ctx)
    except (Problem, ValueError):
        return False
    return True
