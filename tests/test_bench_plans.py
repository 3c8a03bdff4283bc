"""bench/tuning.toml, compare.toml, logins.toml, events.toml and moderation.toml: every
variant measures what it names (a misspelt role variable would converge the appliance as
shipped and compare it with itself; a misspelt peer would measure nothing) under the README's
conditions."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from pi_im_bench import hook_cost, moderation
from pi_im_bench.cli import plan_scenario
from pi_im_bench.worker import FILLER

ROOT = Path(__file__).resolve().parents[1]
TUNING = tomllib.loads((ROOT / "bench" / "tuning.toml").read_text())
COMPARE = tomllib.loads((ROOT / "bench" / "compare.toml").read_text())
LOGINS = tomllib.loads((ROOT / "bench" / "logins.toml").read_text())
EVENTS = tomllib.loads((ROOT / "bench" / "events.toml").read_text())
MODERATION = tomllib.loads((ROOT / "bench" / "moderation.toml").read_text())
SPECS = yaml.safe_load((ROOT / "roles" / "ejabberd" / "meta" / "argument_specs.yml").read_text())
OPTIONS = SPECS["argument_specs"]["main"]["options"]
INVENTORY = yaml.safe_load((ROOT / "inventory" / "demo" / "hosts.yml").read_text())
ALL_VARIANTS = [
    (plan, variant)
    for plan, variants in (
        ("tuning", TUNING),
        ("compare", COMPARE),
        ("logins", LOGINS),
        ("events", EVENTS),
        ("moderation", MODERATION),
    )
    for variant in variants["variant"]
]


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda pv: f"{pv[0]}: {pv[1]['name']}")
def test_each_variant_sets_real_role_options(variant):
    unknown = set(variant[1].get("vars", {})) - set(OPTIONS)
    assert not unknown, f"not options of the ejabberd role: {sorted(unknown)}"


@pytest.mark.parametrize("variant", TUNING["variant"], ids=lambda v: v["name"])
def test_each_tuning_variant_runs_the_readme_conditions(variant):
    assert "target" not in variant, "a tuning variant measures the appliance"
    chosen = plan_scenario(TUNING, variant, {})
    assert chosen.name == "seed-4000"
    assert [(s.sessions, s.seconds) for s in chosen.steps] == [(4000, 30)]


def test_compare_runs_the_seed_claim_with_history_on_and_off_on_both_ejabberds_and_prosody():
    hosts = INVENTORY["bench_peers"]["hosts"]
    # ...and the appliance itself on bookworm: what the move to trixie cost or gained.
    bookworm = {f"docker:{name}" for name in INVENTORY["bench_appliances"]["hosts"]}
    assert bookworm == {"docker:pi-im-bench-bookworm"}
    peers = {f"docker:{name}" for name in hosts} | bookworm
    variants = COMPARE["variant"]
    assert {v["target"] for v in variants if "target" in v} == peers
    # Stock ejabberd as packaged and with its archive on: like for like with both appliance rows.
    stock = [
        h.get("bench_peer_history", False)
        for h in hosts.values()
        if h["bench_peer_server"] == "ejabberd"
    ]
    assert sorted(stock) == [False, True]
    assert not any("vars" in v for v in variants if "target" in v), "peers run as packaged"
    appliance = [v.get("vars", {}) for v in variants if "target" not in v]
    assert appliance == [{}, {"ejabberd_mam_default": "never"}]
    chosen = plan_scenario(COMPARE, variants[0], {})
    assert [(s.sessions, s.messages_per_second, s.seconds) for s in chosen.steps] == [
        (4000, 1000, 60)
    ]


def test_the_command_line_overrides_the_plan_and_the_variant_overrides_both():
    plain = {"name": "x"}
    assert plan_scenario(TUNING, plain, {"traffic.seconds": 5}).steps[0].seconds == 5
    variant = {"name": "y", "set": {"traffic.seconds": 7}}
    assert plan_scenario(TUNING, variant, {"traffic.seconds": 5}).steps[0].seconds == 7


def test_logins_compares_sasl_sasl2_and_fast_on_the_same_reconnect_storm():
    chosen = [plan_scenario(LOGINS, variant, {}) for variant in LOGINS["variant"]]
    assert [(c.sasl2, c.fast) for c in chosen] == [
        (False, False),
        (True, False),
        (True, True),
        (True, True),
        (False, False),
        (False, False),
    ]
    # The fourth is the FAST variant with ejabberd's own log level, as shipped before 0017;
    # the last two offer PLAIN beside SCRAM, then use it (0019).
    assert [v.get("vars") for v in LOGINS["variant"]] == [
        None,
        None,
        None,
        {"ejabberd_loglevel": "info"},
        {"ejabberd_sasl_plain": True},
        {"ejabberd_sasl_plain": True},
    ]
    assert all(c.warm for c in chosen)  # every client logged in before: a reconnect storm
    assert {(c.name, c.steps[0].sessions) for c in chosen} == {("reconnect-4000", 4000)}
    assert [c.mechanism for c in chosen] == [None] * 5 + ["PLAIN"]


def test_events_measures_the_seed_claim_with_the_bus_as_shipped_with_text_and_off():
    variants = EVENTS["variant"]
    assert [v.get("vars", {}) for v in variants] == [
        {},
        {"ejabberd_events_bodies": True},
        {"ejabberd_events": []},
    ]
    for variant in variants:
        chosen = plan_scenario(EVENTS, variant, {})
        assert chosen.name == "seed-4000"
        assert [(s.sessions, s.messages_per_second) for s in chosen.steps] == [(4000, 1000)]


def test_moderation_measures_the_seed_claim_with_no_list_words_and_the_largest_list():
    lists = [moderation.spec(v) for v in MODERATION["variant"]]
    assert lists[0] is None
    counted = [
        sorted(
            (kind, sum(r["kind"] == kind for r in json.loads(doc)["rules"]))
            for kind in ("word", "pattern")
        )
        for doc in lists[1:]
    ]
    assert counted == [[("pattern", 0), ("word", 1000)], [("pattern", 50), ("word", 950)]]
    for variant in MODERATION["variant"]:
        chosen = plan_scenario(MODERATION, variant, {})
        assert [(s.sessions, s.messages_per_second) for s in chosen.steps] == [(4000, 1000)]


def test_no_entry_of_the_benchmarks_lists_matches_its_messages():
    """The cost measured is a message passing the list: the common case."""
    assert json.loads(moderation.document(950, 50))["rules"] == moderation.rules(950, 50)
    for shape in moderation.PATTERN_SHAPES:
        rules = moderation.rules(950, 50, shape)
        for _, message in hook_cost.TEXTS:
            text = ("123 456 7 8 " + FILLER * 3 + message).casefold()
            words = set(re.findall(r"\w+", text))
            assert not [r for r in rules if r["kind"] == "word" and r["text"] in words]
            assert not [
                r
                for r in rules
                if r["kind"] == "pattern" and re.search(r["text"], text, re.IGNORECASE)
            ]
        assert len({r["id"] for r in rules}) == 1000
        assert len({r["text"] for r in rules}) == 1000


def test_a_list_the_console_would_refuse_is_refused_before_the_run():
    with pytest.raises(moderation.ModerationError, match="at most 1000 entries of which 50"):
        moderation.document(980, 51)
    with pytest.raises(moderation.ModerationError, match="unknown"):
        moderation.spec({"name": "x", "moderation": {"phrases": 3}})
    with pytest.raises(moderation.ModerationError, match="pattern shape 'round'"):
        moderation.rules(10, 10, "round")


def test_every_list_and_the_event_bus_are_timed_and_the_answer_read_however_printed():
    expression = hook_cost.expression(100, 3)
    # Each list once, checked against each text.
    assert expression.count("kind => word") == 2900
    assert expression.count("kind => pattern") == 100
    assert expression.count("{TextName, Text} <- [") == 1
    assert len(hook_cost.TEXTS) == 2
    assert all(len(text.encode()) == 200 for _, text in hook_cost.TEXTS)
    assert not hook_cost.TEXTS[1][1].isascii()
    assert "mod_event_bus:publish_event(Host, 'bench.hook_cost', Data)" in expression
    answer = (
        '{ok, [{"no list", 15, [0.25, 0.3, 0.26]},\n      {"1,000 words",\n       8123,'
        '[3.5,3.25,\n        3.75]},\n      {"950 words and 50 patterns",9000,'
        "[40.0,41.5,1.0e1]}]}"
    )
    rows = hook_cost.parse(answer)
    assert [(r["name"], r["setup_ms"], r["median_us"]) for r in rows] == [
        ("no list", 0.015, 0.26),
        ("1,000 words", 8.123, 3.5),
        ("950 words and 50 patterns", 9.0, 40.0),
    ]
