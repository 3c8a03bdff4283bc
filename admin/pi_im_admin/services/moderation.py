"""Moderation as operators manage it: the word and pattern list ejabberd applies to every
message (mod_moderation), whether its records keep the message's text, and those records:
what was blocked or masked, and the spam reports clients sent (XEP-0377).

The console's database holds the list; ejabberd holds the copy it applies. Every change is
sent to ejabberd whole, and stands only once ejabberd has checked and taken it (a pattern its
regular expressions cannot compile is refused there, and nothing changes).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..context import Context
from ..db import Database
from ..errors import NotFound, Problem
from ..security import Principal

Kind = Literal["word", "pattern"]
Action = Literal["block", "mask"]
KINDS: tuple[Kind, ...] = ("word", "pattern")
ACTIONS: tuple[Action, ...] = ("block", "mask")
# Words cost one lookup per word of a message however many there are; each pattern is a
# regular expression run on every message (docs/decisions/0034-moderation.md).
MAX_RULES = 1000
MAX_PATTERNS = 50
MAX_WORD = 64
MAX_PATTERN = 200
# The records ejabberd sends (blocked, masked, reports): the newest kept.
RECORDS_KEPT = 10000
RECORD_KINDS = ("blocked", "masked", "report")
WORD = re.compile(r"\w+")
# One change at a time goes to ejabberd, so the list it applies is the last one saved.
_changing = asyncio.Lock()


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str
    text: str
    action: str
    created_by: str
    created_at: float


def rules(ctx: Context) -> list[Rule]:
    return [
        Rule(**dict(row))
        for row in ctx.db.all(
            "SELECT id, kind, text, action, created_by, created_at FROM moderation_rules "
            "ORDER BY kind DESC, text"
        )
    ]


def keeps_text(ctx: Context) -> bool:
    row = ctx.db.one("SELECT value FROM console_settings WHERE name = 'moderation.keep_text'")
    return row is not None and row["value"] == "true"


def document(ctx: Context, keep_text: bool | None = None) -> str:
    """The list as ejabberd takes it (mod_moderation's rules document)."""
    return json.dumps(
        {
            "keep_text": keeps_text(ctx) if keep_text is None else keep_text,
            "rules": [
                {"id": r.id, "kind": r.kind, "text": r.text, "action": r.action}
                for r in sorted(rules(ctx), key=lambda r: r.id)
            ],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _action(raw: str) -> Action:
    if raw not in ACTIONS:
        raise Problem(f"The action is block or mask, not {raw[:20]!r}.")
    return raw  # type: ignore[return-value]


def _word(raw: str) -> str:
    word = raw.strip().casefold()
    if not word or len(word) > MAX_WORD or not WORD.fullmatch(word):
        raise Problem(
            f"{raw[:MAX_WORD]!r} is not a word: letters, digits or _ only, 1 to {MAX_WORD} "
            "characters (a phrase or a spelling with symbols is a pattern)."
        )
    return word


def _pattern(raw: str) -> str:
    if not raw.strip() or len(raw) > MAX_PATTERN or not raw.isprintable():
        raise Problem(f"A pattern is 1 to {MAX_PATTERN} printable characters.")
    return raw


def _within_bounds(ctx: Context, words: int, patterns: int) -> None:
    current = rules(ctx)
    if len(current) + words + patterns > MAX_RULES:
        raise Problem(
            f"The list holds at most {MAX_RULES} entries ({len(current)} now): remove some first."
        )
    if sum(r.kind == "pattern" for r in current) + patterns > MAX_PATTERNS:
        raise Problem(
            f"The list holds at most {MAX_PATTERNS} patterns, each run on every message: "
            "use words where you can."
        )


OFF = "Moderation is off on this device (ejabberd_moderation: false): nothing changed."


async def _push(ctx: Context, keep_text: bool | None = None) -> None:
    """ejabberd takes the list as the database has it now, or says why not."""
    try:
        answer = await ctx.ejabberd.set_moderation_rules(document(ctx, keep_text))
    except NotFound as absent:
        raise Problem(OFF) from absent
    if answer != "ok":
        raise Problem(f"Not changed: {_named(ctx, answer)}.")


async def _taken_or_undone(ctx: Context, undo: Callable[[], None]) -> None:
    """The change just saved goes to ejabberd; if ejabberd does not take it (or cannot be
    asked), `undo` takes it back out of the database."""
    try:
        await _push(ctx)
    except BaseException:
        undo()
        raise


def _named(ctx: Context, answer: str) -> str:
    """ejabberd's "rule 12: why" with the rule as the operator wrote it."""
    number, _, why = answer.partition(": ")
    if number.startswith("rule ") and number[5:].isdigit():
        row = ctx.db.one("SELECT kind, text FROM moderation_rules WHERE id = ?", int(number[5:]))
        if row is not None:
            return f"the {row['kind']} {row['text']!r}: {why}"
    return answer


async def add(ctx: Context, actor: Principal, kind: str, raw_text: str, raw_action: str) -> int:
    if kind not in KINDS:
        raise Problem(f"A rule is a word or a pattern, not {kind[:20]!r}.")
    action = _action(raw_action)
    text = _word(raw_text) if kind == "word" else _pattern(raw_text)
    async with _changing:
        _within_bounds(ctx, kind == "word", kind == "pattern")
        if ctx.db.one("SELECT 1 FROM moderation_rules WHERE kind = ? AND text = ?", kind, text):
            raise Problem(f"The {kind} {text!r} is already in the list.")
        rule_id = ctx.db.run(
            "INSERT INTO moderation_rules (kind, text, action, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            kind,
            text,
            action,
            actor.name,
            time.time(),
        )
        await _taken_or_undone(
            ctx, lambda: ctx.db.run("DELETE FROM moderation_rules WHERE id = ?", rule_id)
        )
    ctx.db.audit(actor.name, "moderation.add", f"{kind} #{rule_id}", f"{action} {text}")
    return rule_id


async def add_words(ctx: Context, actor: Principal, raw_words: str, raw_action: str) -> list[int]:
    """Many words at once (separated by spaces, commas or lines): all of them or none."""
    action = _action(raw_action)
    words = list(dict.fromkeys(_word(w) for w in re.split(r"[\s,;]+", raw_words) if w))
    if not words:
        raise Problem("Give at least one word.")
    async with _changing:
        known = {r.text for r in rules(ctx) if r.kind == "word"}
        words = [w for w in words if w not in known]
        if not words:
            return []
        _within_bounds(ctx, len(words), 0)
        now = time.time()
        with ctx.db.transaction() as conn:
            ids = [
                conn.execute(
                    "INSERT INTO moderation_rules (kind, text, action, created_by, created_at) "
                    "VALUES ('word', ?, ?, ?, ?)",
                    (word, action, actor.name, now),
                ).lastrowid
                or 0
                for word in words
            ]

        def undo() -> None:
            with ctx.db.transaction() as conn:
                conn.executemany("DELETE FROM moderation_rules WHERE id = ?", [(i,) for i in ids])

        await _taken_or_undone(ctx, undo)
    shown = " ".join(words[:20]) + (f" and {len(words) - 20} more" if len(words) > 20 else "")
    ctx.db.audit(actor.name, "moderation.add", f"{len(ids)} words", f"{action} {shown}")
    return ids


async def remove(ctx: Context, actor: Principal, rule_id: int) -> None:
    async with _changing:
        row = ctx.db.one(
            "SELECT id, kind, text, action, created_by, created_at FROM moderation_rules "
            "WHERE id = ?",
            rule_id,
        )
        if row is None:
            raise NotFound(f"There is no moderation rule #{rule_id}.")
        ctx.db.run("DELETE FROM moderation_rules WHERE id = ?", rule_id)
        await _taken_or_undone(
            ctx,
            lambda: ctx.db.run(
                "INSERT INTO moderation_rules (id, kind, text, action, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                *tuple(row),
            ),
        )
    ctx.db.audit(actor.name, "moderation.remove", f"{row['kind']} #{rule_id}", str(row["text"]))


async def keep_text(ctx: Context, actor: Principal, on: bool) -> None:
    """Whether records of blocked and masked messages keep what was said (the owner's
    choice: off, they say who, to whom, when and which rule)."""
    if on == keeps_text(ctx):
        return
    async with _changing:
        await _push(ctx, keep_text=on)
        ctx.db.run(
            "INSERT INTO console_settings (name, value) VALUES ('moderation.keep_text', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            "true" if on else "false",
        )
    ctx.db.audit(actor.name, "moderation.keep_text", "moderation", "on" if on else "off")


async def in_step(ctx: Context) -> Literal["applied", "off", "unreachable"]:
    """Whether ejabberd applies the console's list; if not (a restored console, a server that
    lost its copy), it is sent again. The console's sampler asks every sample."""
    try:
        applied = await ctx.ejabberd.moderation_rules()
        if json.loads(applied) != json.loads(document(ctx)):
            async with _changing:
                await _push(ctx)
    except NotFound:
        return "off"
    except (Problem, ValueError):
        return "unreachable"
    return "applied"


def records(
    ctx: Context, kinds: tuple[str, ...] = RECORD_KINDS, limit: int = 200
) -> list[dict[str, object]]:
    """Those of `kinds`, the latest first."""
    if not kinds or not set(kinds) <= set(RECORD_KINDS):
        raise Problem(f"Records are {', '.join(RECORD_KINDS)}.")
    rows = ctx.db.all(
        "SELECT id, at, kind, sender, target, room, rules, reason, text FROM moderation_log "
        f"WHERE kind IN ({', '.join('?' * len(kinds))}) ORDER BY at DESC, id DESC LIMIT ?",
        *kinds,
        limit,
    )
    return [dict(row) | {"rules": json.loads(row["rules"])} for row in rows]


def record_row(event: dict[str, Any]) -> tuple[object, ...]:
    """An event from the bus (moderation.*) as a record's row; ValueError if it is not one."""
    try:
        data = event["data"]
        kind = str(event["type"]).removeprefix("moderation.")
        if kind not in RECORD_KINDS or not isinstance(data, dict):
            raise ValueError(f"not a moderation event: {event.get('type')!r}")
        return (
            str(event["id"]),
            datetime.fromisoformat(str(event["time"])).timestamp(),
            kind,
            str(data["from"]),
            str(data["jid"] if kind == "report" else data["to"]),
            data.get("room"),
            json.dumps([int(rule) for rule in data.get("rules", [])]),
            str(data.get("reason", "")),
            data.get("text"),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a moderation event (no {error})") from error


def record(db: Database, rows: list[tuple[object, ...]]) -> None:
    """Records (record_row), each once (the bus may bring one again after a restart), the
    oldest past RECORDS_KEPT removed."""
    with db.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO moderation_log "
            "(event_id, at, kind, sender, target, room, rules, reason, text) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "DELETE FROM moderation_log WHERE id <= (SELECT MAX(id) FROM moderation_log) - ?",
            (RECORDS_KEPT,),
        )


def recent_reports(ctx: Context, days: int = 7) -> int:
    row = ctx.db.one(
        "SELECT COUNT(*) AS n FROM moderation_log WHERE kind = 'report' AND at > ?",
        time.time() - days * 86400,
    )
    return int(row["n"]) if row else 0
