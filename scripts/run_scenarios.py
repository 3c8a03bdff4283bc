"""Run `make test`'s unit tests and Molecule scenarios in three lanes at once, each in order.

A scenario spends much of its time waiting on its device (services starting, clients timing
out, playbooks on the device), so lanes at once finish sooner than one after another, though
each job takes longer beside the others: on this two-core machine the jobs' summed time was
about a third more in three lanes than in two, and the whole run about a tenth shorter. The
lanes share nothing: each scenario has its own containers, volumes and networks, and its own
device name. Every line is printed as it comes, prefixed with its job; a lane goes on past a
failed job so that one run names every failure. Exits 1 when any job failed.
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
# Balanced on the runs of 2026-12-07 (the lanes ended at 1,432, 1,600 and 1,571 s): default's
# and operations' tests share one directory, split by a mark, so neither is the long pole
# default alone was.
LANES: tuple[tuple[str, ...], ...] = (
    ("default", "bake"),
    ("operations", "restore"),
    (UNIT, "bookworm", "acme"),
)
PRINTING = threading.Lock()


@dataclass
class Outcome:
    job: str
    returncode: int
    seconds: float


def say(job: str, line: str) -> None:
    with PRINTING:
        sys.stdout.write(f"[{job}] {line}")
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


def run_job(job: str) -> Outcome:
    start = time.monotonic()
    with subprocess.Popen(
        command(job),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            say(job, line)
    return Outcome(job, process.returncode, time.monotonic() - start)


def run_lane(jobs: Sequence[str], outcomes: list[Outcome]) -> None:
    for job in jobs:
        outcomes.append(run_job(job))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lane",
        action="append",
        metavar="S1,S2",
        help="jobs (scenarios, or unit: the unit tests) run one after another; "
        "lanes run at once (default: " + " ".join(",".join(lane) for lane in LANES) + ")",
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
    for outcome in sorted(outcomes, key=lambda o: o.job):
        verdict = "passed" if outcome.returncode == 0 else f"FAILED ({outcome.returncode})"
        print(f"  {outcome.job:10} {verdict} in {outcome.seconds:.0f} s")
    ran = {outcome.job for outcome in outcomes}
    failed = [o for o in outcomes if o.returncode != 0]
    return 1 if failed or ran != {s for lane in lanes for s in lane} else 0


if __name__ == "__main__":
    sys.exit(main())
