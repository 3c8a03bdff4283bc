"""Run `make test`'s unit tests and Molecule scenarios in three lanes at once, each in order.

A scenario spends much of its time waiting on its device (services starting, clients timing
out, playbooks on the device): measured on this two-core machine, a scenario beside another
takes about a tenth longer than alone, so lanes at once save most of the time of all but the
longest. The lanes share nothing: each scenario has its own containers, volumes and networks,
and its own device name. Every line is printed as it comes, prefixed with its job; a lane goes
on past a failed job so that one run names every failure. Exits 1 when any job failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

# The unit tests (tests/), beside the scenarios rather than before them.
UNIT = "unit"
# Balanced on the last full runs' times (docs/testing.md): default's and operations' tests
# share one directory and split by a mark, so neither is the long pole it made of default alone.
LANES: tuple[tuple[str, ...], ...] = (
    ("default", "bake"),
    ("operations", "restore"),
    (UNIT, "bookworm", "acme"),
)
PRINTING = threading.Lock()


@dataclass
class Outcome:
    scenario: str
    returncode: int
    seconds: float


def say(scenario: str, line: str) -> None:
    with PRINTING:
        sys.stdout.write(f"[{scenario}] {line}")
        sys.stdout.flush()


def command(job: str) -> list[str]:
    """The unit tests for UNIT, else the Molecule scenario of that name."""
    if job == UNIT:
        return [
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests",
            "--junitxml=build/test-results/unit.xml",
        ]
    return ["molecule", "test", "--scenario-name", job]


def run_scenario(scenario: str) -> Outcome:
    start = time.monotonic()
    with subprocess.Popen(
        command(scenario),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            say(scenario, line)
    return Outcome(scenario, process.returncode, time.monotonic() - start)


def run_lane(scenarios: Sequence[str], outcomes: list[Outcome]) -> None:
    for scenario in scenarios:
        outcomes.append(run_scenario(scenario))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lane",
        action="append",
        metavar="S1,S2",
        help="scenarios run one after another; lanes run at once (default: "
        + " ".join(",".join(lane) for lane in LANES)
        + ")",
    )
    args = parser.parse_args(argv)
    lanes = [tuple(lane.split(",")) for lane in args.lane] if args.lane else list(LANES)

    outcomes: list[Outcome] = []
    threads = [threading.Thread(target=run_lane, args=(lane, outcomes)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    print("\nJobs:")
    for outcome in sorted(outcomes, key=lambda o: o.scenario):
        verdict = "passed" if outcome.returncode == 0 else f"FAILED ({outcome.returncode})"
        print(f"  {outcome.scenario:10} {verdict} in {outcome.seconds:.0f} s")
    ran = {outcome.scenario for outcome in outcomes}
    failed = [o for o in outcomes if o.returncode != 0]
    return 1 if failed or ran != {s for lane in lanes for s in lane} else 0


if __name__ == "__main__":
    sys.exit(main())
