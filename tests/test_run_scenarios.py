"""scripts/run_scenarios.py: lanes at once, each lane in order, every failure named.

`molecule` here is a stand-in on PATH that records when each scenario ran; the real one is
what `make test` runs through this script."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import run_scenarios

STAND_IN = """#!/bin/sh
# molecule test --scenario-name NAME: sleeps, says its name; "broken" fails.
name="$3"
echo "start $name $(date +%s.%N)" >> "$RECORD"
sleep 0.5
echo "converging $name"
echo "end $name $(date +%s.%N)" >> "$RECORD"
[ "$name" != broken ]
"""


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    molecule = tmp_path / "molecule"
    molecule.write_text(STAND_IN)
    molecule.chmod(molecule.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path('/usr/bin')}:{Path('/bin')}")
    path = tmp_path / "record"
    monkeypatch.setenv("RECORD", str(path))
    return path


def times(record: Path) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for line in record.read_text().splitlines():
        what, name, at = line.split()
        found.setdefault(name, {})[what] = float(at)
    return found


def test_lanes_run_at_once_and_each_in_order(
    record: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_scenarios.main(["--lane", "one,two", "--lane", "three"]) == 0

    ran = times(record)
    assert ran["two"]["start"] >= ran["one"]["end"]
    assert ran["three"]["start"] < ran["one"]["end"]
    out = capsys.readouterr().out
    assert "[one] converging one\n" in out
    assert "[three] converging three\n" in out
    assert "one        passed in" in out


def test_a_lane_goes_on_past_a_failure_and_the_run_fails(
    record: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_scenarios.main(["--lane", "broken,after", "--lane", "other"]) == 1

    assert set(times(record)) == {"broken", "after", "other"}
    out = capsys.readouterr().out
    assert "broken     FAILED (1)" in out
    assert "after      passed" in out


def test_every_scenario_but_upgrade_is_in_a_lane_once() -> None:
    """A scenario left out of the lanes would never run in `make test`, and none says so."""
    molecule = Path(__file__).resolve().parents[1] / "molecule"
    scenarios = {path.parent.name for path in molecule.glob("*/molecule.yml")}
    laned = [job for lane in run_scenarios.LANES for job in lane]
    assert sorted(laned) == sorted({*scenarios - {"upgrade"}, run_scenarios.UNIT})
