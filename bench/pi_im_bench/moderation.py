"""A moderation list for a benchmark run: `moderation = {words = 950, patterns = 50}` in a
variant sets that many entries on the appliance (through ejabberd's moderation_set_rules, as
the console does) before the run, and an empty list after. None of them matches the
benchmark's messages: what is measured is the common case, a message that passes the list.
"""

from __future__ import annotations

import json
from typing import Any

from .target import Target

MAX_RULES = 1000  # the console's bound (pi_im_admin.services.moderation)
MAX_PATTERNS = 50


class ModerationError(ValueError):
    pass


# Pattern shapes: one that starts with letters (PCRE skips ahead to them, the cheap kind) and
# one that starts with a class (PCRE tries it at every position, the costly kind).
PATTERN_SHAPES = {
    "letters": r"offer{n:02d}\s*n[o0]w|sp[a4]m{n:02d}",
    "class": r"[bp]ad{n:02d}\s*n[o0]w|[ck]ash{n:02d}",
}


def rules(words: int, patterns: int, shape: str = "letters") -> list[dict[str, Any]]:
    """Words shaped like real ones and patterns like operators write (a spelling with
    symbols, a phrase with any spacing), none matching the benchmark's text."""
    if words < 0 or patterns < 0 or words + patterns > MAX_RULES or patterns > MAX_PATTERNS:
        raise ModerationError(
            f"moderation: at most {MAX_RULES} entries of which {MAX_PATTERNS} patterns"
        )
    if shape not in PATTERN_SHAPES:
        raise ModerationError(
            f"moderation: pattern shape {shape!r}; one of {sorted(PATTERN_SHAPES)}"
        )
    made: list[dict[str, Any]] = [
        {"id": n + 1, "kind": "word", "text": f"blocked{n:04d}word", "action": "mask"}
        for n in range(words)
    ]
    made += [
        {
            "id": words + n + 1,
            "kind": "pattern",
            "text": PATTERN_SHAPES[shape].format(n=n),
            "action": "block",
        }
        for n in range(patterns)
    ]
    return made


def document(words: int, patterns: int) -> str:
    """The list as moderation_set_rules takes it."""
    return json.dumps({"keep_text": False, "rules": rules(words, patterns)}, separators=(",", ":"))


def apply(target: Target, domain: str, rules: str) -> None:
    answer = target.run(["ejabberdctl", "moderation_set_rules", domain, rules], timeout=120)
    if answer.strip() != b"ok":
        raise ModerationError(f"{target.name}: ejabberd refused the list: {answer[:300]!r}")


def spec(variant: dict[str, Any]) -> str | None:
    """The variant's list as ejabberd takes it, or None without one."""
    settings = variant.get("moderation")
    if settings is None:
        return None
    unknown = set(settings) - {"words", "patterns"}
    if unknown:
        raise ModerationError(f"moderation: unknown {sorted(unknown)}; words and patterns")
    return document(int(settings.get("words", 0)), int(settings.get("patterns", 0)))
