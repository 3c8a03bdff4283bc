"""Run `make test`'s Molecule scenarios in two lanes at once, each lane's in order.

A scenario spends about half its time waiting on its device (services starting, clients
timing out, playbooks on the device); two lanes on a two-core machine use that time. The lanes
share nothing: each scenario has its own containers, volumes and networks, and the bookworm
scenario its own container name. Every line is printed as it comes, prefixed with its
scenario; a lane goes on past a failed scenario so that one run names every failure. Exits 1
when any scenario failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

# Balanced on the last full runs' times (default about as long as the other four together).
LANES: tuple[tuple[str, ...], ...] = (("default", "bake"), ("bookworm", "acme", "restore"))
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


def run_scenario(scenario: str) -> Outcome:
    start = time.monotonic()
    with subprocess.Popen(
        ["molecule", "test", "--scenario-name", scenario],
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

    print("\nScenarios:")
    for outcome in sorted(outcomes, key=lambda o: o.scenario):
        verdict = "passed" if outcome.returncode == 0 else f"FAILED ({outcome.returncode})"
        print(f"  {outcome.scenario:10} {verdict} in {outcome.seconds:.0f} s")
    ran = {outcome.scenario for outcome in outcomes}
    failed = [o for o in outcomes if o.returncode != 0]
    return 1 if failed or ran != {s for lane in lanes for s in lane} else 0


if __name__ == "__main__":
    sys.exit(main())
