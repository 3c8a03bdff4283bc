"""What the appliance's ejabberd modules add to each message, timed inside the running
ejabberd (erl_call), where the end-to-end run's CPU per message is too noisy to show tens of
microseconds:

- the moderation matcher (mod_moderation_rules:check) on a benchmark message, against no
  list, 1,000 words, and the console's largest list (950 words and 50 patterns: patterns
  that start with letters, and patterns that start with a class), none matching: the common
  case. Each list checks two messages: one of ASCII text, and the same with an emoji in
  place of its last word, which takes the matcher's Unicode path (any accent does too);
- the event bus's work in the sender's process (mod_event_bus:publish_event: the envelope,
  its JSON, the cast to the publisher) for a chat message's metadata, published as
  `bench.hook_cost`, which nothing is bound to.

Each is `count` calls per round, `rounds` rounds; the median of the rounds is given.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from .moderation import rules
from .target import Target, TargetError
from .worker import FILLER

ERL_CALL = "/usr/lib/erlang/bin/erl_call"
COOKIE = "/var/lib/ejabberd/.erlang.cookie"
# The lists timed: none, words only, the console's largest with each shape of pattern.
LISTS = (
    ("no list", 0, 0, "letters"),
    ("1,000 words", 1000, 0, "letters"),
    ("950 words and 50 patterns", 950, 50, "letters"),
    ("950 words and 50 patterns led by a class", 950, 50, "class"),
)
BASE_TEXT = ("1765000000 123456789012345 3 77 " + FILLER * 3)[:200]
# The texts each list checks: 200 bytes each, the second with an emoji (4 bytes of UTF-8).
TEXTS = (("ASCII", BASE_TEXT), ("with an emoji", BASE_TEXT[:-5] + " \N{SLIGHTLY SMILING FACE}"))
# The publisher's buffer holds 20,000 events: every round's go out well within it.
EVENTS_PER_ROUND = 1000


def _erlang_binary(text: str) -> str:
    return "<<" + ",".join(str(b) for b in text.encode()) + ">>"


def _erlang_rules(words: int, patterns: int, shape: str) -> str:
    return (
        "["
        + ",".join(
            f"#{{id => {r['id']}, kind => {r['kind']}, text => {_erlang_binary(r['text'])}, "
            f"action => {r['action']}}}"
            for r in rules(words, patterns, shape)
        )
        + "]"
    )


def expression(count: int, rounds: int) -> str:
    """Erlang answering [{Name, SetupMicros, [MicrosPerCall...]}]: each moderation list
    with each text (the list's compile time as the setup) and the event bus (no setup)."""
    lists = ",".join(
        f"{{{_erlang_binary(name)}, {_erlang_rules(words, patterns, shape)}}}"
        for name, words, patterns, shape in LISTS
    )
    texts = ",".join(f"{{{_erlang_binary(name)}, {_erlang_binary(text)}}}" for name, text in TEXTS)
    return f"""
PerCall = fun(Call, N) ->
    {{Micros, _}} = timer:tc(fun() -> lists:foreach(fun(_) -> Call() end, lists:seq(1, N)) end),
    Micros / N
end,
Matcher = [begin
     {{CompileMicros, {{ok, C}}}} = timer:tc(mod_moderation_rules, compile, [Rules]),
     Check = fun() -> pass = mod_moderation_rules:check(Text, C) end,
     {{binary_to_list(<<Name/binary, ", ", TextName/binary>>), CompileMicros,
      [PerCall(Check, {count}) || _ <- lists:seq(1, {rounds})]}}
 end || {{Name, Rules}} <- [{lists}], {{TextName, Text}} <- [{texts}]],
Host = hd(ejabberd_option:hosts()),
Data = #{{<<"from">> => <<"bench-00001@", Host/binary, "/bench">>,
         <<"to">> => <<"bench-00002@", Host/binary>>, <<"message_id">> => <<"m3-77">>,
         <<"origin_id">> => null, <<"stanza_id">> => <<"1765000000123456">>,
         <<"file">> => false, <<"encryption">> => null}},
Publish = fun() -> mod_event_bus:publish_event(Host, 'bench.hook_cost', Data) end,
Events = {{"event bus", 0,
           [begin R = PerCall(Publish, {EVENTS_PER_ROUND}), timer:sleep(1000), R end
            || _ <- lists:seq(1, {rounds})]}},
Matcher ++ [Events].
"""


def measure(target: Target, count: int = 20000, rounds: int = 7) -> list[dict[str, Any]]:
    """Per moderation list and for the event bus: the setup (a list's compile time, ms) and
    the median microseconds each message costs, with every round's, measured inside the
    target's running ejabberd."""
    cookie = target.run(["cat", COOKIE]).decode().strip()
    answer = target.run(
        [ERL_CALL, "-sname", "ejabberd@localhost", "-c", cookie, "-e"],
        stdin=expression(count, rounds).encode(),
        timeout=900,
    ).decode()
    rows = parse(answer)
    if len(rows) != len(LISTS) * len(TEXTS) + 1:
        raise TargetError(f"{target.name}: erl_call answered {answer[:300]!r}")
    return rows


def parse(answer: str) -> list[dict[str, Any]]:
    """erl_call's printed answer ({ok, [{"name", SetupMicros, [Micros, ...]}, ...]},
    wherever it broke its lines) as rows."""
    found = re.findall(r'\{"([^"]+)",\s*(\d+),\s*\[([^\]]*)\]\s*\}', answer)
    rows = []
    for name, setup_us, per_call in found:
        rounds = [float(x) for x in per_call.split(",")]
        rows.append(
            {
                "name": name,
                "setup_ms": int(setup_us) / 1000,
                "rounds_us": rounds,
                "median_us": statistics.median(rounds),
            }
        )
    return rows
