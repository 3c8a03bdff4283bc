"""The assistant: a bot the device answers for itself, with any OpenAI-compatible
chat-completions service the owner names (its URL, model and key). The dispatcher
(pi_im_admin.webhooks.assistant) takes what people write to it from the bus, asks the
service and leaves the answer in bot_replies, which the console sends (bots.relay).

The key is a device secret: a file only the console's user reads (0600, beside its
database, so a backup keeps it), never shown, logged, audited or sent anywhere but the
service, and only over HTTPS."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from ..context import Context
from ..db import Database
from ..errors import NotFound, Problem
from ..security import Principal
from ..validation import text
from ..webhooks import targets
from . import bots

MAX_KEY = 4096
MAX_PROMPT = 2000
MAX_PER_HOUR = 1000
MAX_TURNS = 50


def key_file(ctx: Context) -> Path:
    """Beside the database (webhooks.config.Config.assistant_key reads it there)."""
    return ctx.settings.database.with_name("assistant-api-key")


def stored(db: Database) -> dict[str, Any] | None:
    """The settings as the console keeps them (the dispatcher reads them too), or None when
    there is no assistant."""
    rows = {
        row["name"].removeprefix("assistant."): json.loads(row["value"])
        for row in db.all("SELECT name, value FROM console_settings WHERE name LIKE 'assistant.%'")
    }
    return rows if "bot" in rows else None


def current(ctx: Context) -> dict[str, object] | None:
    """The assistant's settings (and whether a key is kept), or None when there is none."""
    rows = stored(ctx.db)
    if rows is None:
        return None
    bound = ctx.db.one("SELECT bound_at FROM bots WHERE name = ?", rows["bot"])
    return rows | {
        "jid": f"{rows['bot']}@{ctx.ejabberd.domain}",
        "key_set": key_file(ctx).exists(),
        "answering": bool(bound and bound["bound_at"]),
    }


def _checked(
    url: str, model: str, prompt: str, per_hour: int, turns: int, keyed: bool
) -> dict[str, object]:
    checked_url = targets.check_url(url)
    if keyed and not checked_url.startswith("https://"):
        raise Problem("With a key, the service's URL must be https://: the key is a password.")
    model = text(model, "model", 200)
    if not model:
        raise Problem("Name the model the service should use.")
    if not 1 <= per_hour <= MAX_PER_HOUR:
        raise Problem(f"Questions per person per hour: 1 to {MAX_PER_HOUR}.")
    if not 0 <= turns <= MAX_TURNS:
        raise Problem(f"Exchanges remembered per person: 0 to {MAX_TURNS}.")
    return {
        "url": checked_url,
        "model": model,
        "prompt": text(prompt, "instructions", MAX_PROMPT, multiline=True),
        "per_hour": per_hour,
        "turns": turns,
    }


def _write_key(path: Path, key: str) -> None:
    """Written whole or not at all, readable by the console's user alone."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


async def configure(
    ctx: Context,
    actor: Principal,
    name: str,
    url: str,
    model: str,
    prompt: str = "",
    per_hour: int = 20,
    turns: int = 10,
    key: str | None = None,
) -> dict[str, object]:
    """Make the assistant or change it. `key`: a new key; "" to forget it; None keeps it."""
    before = current(ctx)
    if key is not None:
        key = key.strip()
        if len(key) > MAX_KEY or not key.isprintable() or " " in key:
            raise Problem(f"The key is one word of at most {MAX_KEY} printable characters.")
    keyed = bool(key) if key is not None else key_file(ctx).exists()
    values = _checked(url, model, prompt, per_hour, turns, keyed)
    if before is None:
        bot = values["bot"] = bots.checked_name(name.strip() or "assistant")
        await bots.make_account(ctx, bot)
        # Its answers are the dispatcher's, through the console: it has no token.
        ctx.db.run(
            "INSERT INTO bots (name, webhook_id, created_by, created_at) VALUES (?, NULL, ?, ?)",
            bot,
            actor.name,
            time.time(),
        )
    else:
        bot = str(before["bot"])
        if name.strip() and name.strip() != bot:
            raise Problem(f"The assistant is {bot}: remove it to give it another name.")
    if key:
        _write_key(key_file(ctx), key)
    elif key == "":
        key_file(ctx).unlink(missing_ok=True)
    with ctx.db.transaction() as conn:
        for setting, value in values.items():
            conn.execute(
                "INSERT INTO console_settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (f"assistant.{setting}", json.dumps(value)),
            )
    if before is None:
        await bots.activate(ctx, bot)
    said = " ".join(f"{k}={values[k]}" for k in ("url", "model", "per_hour", "turns"))
    if key is not None:
        said += " key=" + ("changed" if key else "removed")
    ctx.db.audit(actor.name, "assistant.configure", bot, said)
    return current(ctx) or {}


async def remove(ctx: Context, actor: Principal) -> None:
    """The assistant, its account, settings and key gone."""
    before = current(ctx)
    if before is None:
        raise NotFound("There is no assistant.")
    await bots.forget(ctx, str(before["bot"]))
    ctx.db.run("DELETE FROM console_settings WHERE name LIKE 'assistant.%'")
    with contextlib.suppress(FileNotFoundError):
        key_file(ctx).unlink()
    ctx.db.audit(actor.name, "assistant.remove", str(before["bot"]))
