"""Scenario files: every shipped one loads; bad input is refused with a message saying where."""

from __future__ import annotations

import pytest

from pi_im_bench import scenario
from pi_im_bench.scenario import ScenarioError


@pytest.mark.parametrize("path", sorted(scenario.SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_load(path):
    loaded = scenario.load(str(path))
    assert loaded.name == path.stem
    assert loaded.description
    assert 0 < loaded.max_seconds <= scenario.MAX_SECONDS


def test_seed_scenario_states_the_claim():
    seed = scenario.load("seed-4000")
    assert seed.steps == (scenario.Step(4000, 1000.0, 60.0),)
    assert seed.p99_bound_ms == 50


def test_climb_ends_at_its_bound():
    climbing = scenario.parse({"climb": {"start": 1000, "step": 3000, "until": 8000}})
    assert [s.sessions for s in climbing.steps] == [1000, 4000, 7000, 8000]


def test_override_from_the_command_line():
    small = scenario.load("seed-4000", {"login.sessions": 50, "traffic.seconds": 2})
    assert small.steps[0].sessions == 50
    assert small.steps[0].seconds == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"login": {"sessions": 10, "sesions": 3}}, "unknown setting login.sesions"),
        ({"logn": {"sessions": 10}}, r"unknown table \[logn\]"),
        ({"login": {"sessions": "many"}}, "wrong type"),
        ({"login": {"sessions": True}}, "must be a number"),
        ({"login": {"sessions": 1}}, "at least 2 sessions"),
        ({"login": {"sessions": 10**6}}, "more than"),
        ({"login": {"sessions": 10}, "bounds": {"max_seconds": 10**5}}, "max_seconds"),
        ({"login": {"sessions": 10, "mechanism": "DIGEST-MD5"}}, "mechanism must be one of"),
        ({"login": {"sessions": 10, "sessions_per_worker": 30000}}, "file limit"),
        ({"traffic": {"seconds": -1}, "login": {"sessions": 10}}, "must not be negative"),
        ({"climb": {"start": 5, "step": 0, "until": 9}}, "climb needs"),
        ({}, "login.sessions is required"),
        ({"login": {"sessions": 10, "fast": True, "sasl2": False}}, "fast needs login.sasl2"),
        ({"login": {"sessions": 10, "fast": True, "mechanism": "PLAIN"}}, "not PLAIN"),
    ],
)
def test_bad_scenarios_are_refused(data, message):
    with pytest.raises(ScenarioError, match=message):
        scenario.parse(data)


def test_fast_logs_in_through_sasl2():
    fast = scenario.load("reconnect-4000-fast")
    assert (fast.sasl2, fast.fast) == (True, True)
    assert (scenario.parse({"login": {"sessions": 2, "fast": True}}).sasl2) is True
    assert (scenario.load("seed-4000").sasl2, scenario.load("seed-4000").fast) == (False, False)


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(ScenarioError, match="seed-4000"):
        scenario.find("seed-5000")
