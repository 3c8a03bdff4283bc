"""A service killed outright under load: a scenario runs (seed-4000 by default) and, once its
traffic has flowed for a while, one of the appliance's services is killed with SIGKILL on the
target, as a crash or the kernel's OOM killer would. How long until it answers again is
measured from this machine, and systemd's journal tells how much of that was its restart wait
and how much the service's own start; the scenario's own numbers (sessions dropped, messages
lost, p99) say what the clients felt.

The target's state is checked by the Molecule tests (test_faults.py); this measures time."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .target import Target, TargetError
from .under_load import ScenarioRun

# How each service is killed and how it is seen to answer again, on the target.
KILL = {
    # ejabberd's main process is ejabberdctl's shell; the server is its Erlang VM.
    "ejabberd": "kill -9 $(pgrep -f -- '-sname ejabberd@localhost' | head -n 1)",
    "rabbitmq-server": "kill -9 $(systemctl show -p MainPID --value rabbitmq-server)",
    "pi-im-admin": "kill -9 $(systemctl show -p MainPID --value pi-im-admin)",
}
ANSWERS = {
    "ejabberd": "exec 3<>/dev/tcp/127.0.0.1/5222",
    # The management API answers (401 without a password) once the broker is up.
    "rabbitmq-server": "test $(curl -s -o /dev/null -w '%{http_code}' "
    "http://127.0.0.1:15672/api/overview) = 401",
    "pi-im-admin": "test $(curl -sk -o /dev/null -w '%{http_code}' "
    "https://127.0.0.1:8080/signin) = 200",
}


@dataclass
class Outcome:
    service: str
    back_s: float
    restart_wait_s: float | None
    start_s: float | None
    run: dict[str, Any]


def answers(target: Target, service: str, before: str) -> bool:
    script = (
        f'[ "$(systemctl is-active {service})" = active ] '
        f'&& [ "$(systemctl show -p MainPID --value {service})" != {before} ] '
        f"&& {ANSWERS[service]}"
    )
    try:
        target.run(["bash", "-c", script], timeout=10)
    except TargetError:
        return False
    return True


def journal_times(target: Target, service: str, since: float) -> tuple[float | None, float | None]:
    lines = target.run(
        ["journalctl", "-u", service, "--since", f"@{since:.0f}", "-o", "short-unix", "--no-pager"]
    ).decode(errors="replace")
    return restart_times(lines)


def restart_times(journal: str) -> tuple[float | None, float | None]:
    """From systemd's journal (short-unix): the restart wait (the process gone -> a restart
    scheduled) and the service's own start (scheduled -> started); the first of each."""
    marks: dict[str, float] = {}
    for line in journal.splitlines():
        stamp, _, text = line.partition(" ")
        for key, needle in (
            ("gone", "Main process exited"),
            ("scheduled", "Scheduled restart job"),
            ("started", "Started "),
        ):
            if needle in text and key not in marks:
                marks[key] = float(stamp)

    def between(first: str, then: str) -> float | None:
        return marks[then] - marks[first] if {first, then} <= marks.keys() else None

    return between("gone", "scheduled"), between("scheduled", "started")


def kill_under_load(
    target: Target, service: str, run_command: list[str], out: Path, after_s: float
) -> Outcome:
    """Start the scenario, kill `service` after `after_s` seconds of traffic, measure."""
    bench = ScenarioRun(run_command)
    bench.wait_for_traffic()
    time.sleep(after_s)
    before = target.run(["systemctl", "show", "-p", "MainPID", "--value", service]).decode().strip()
    since = time.time() - 1
    target.run(["bash", "-c", KILL[service]])
    killed = time.monotonic()
    while not answers(target, service, before):
        if time.monotonic() - killed > 300:
            raise TargetError(f"{service} did not come back within 300 s")
        time.sleep(0.1)
    back = time.monotonic() - killed
    print(f"\n{service}: answering again {back:.1f} s after kill -9", flush=True)
    bench.finish()
    wait, start = journal_times(target, service, since)
    run = json.loads((out / "result.json").read_text())
    return Outcome(service, round(back, 1), wait, start, run)


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| service killed | answering again | restart wait | its own start | sessions dropped "
        "| messages lost | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        step = o.run["steps"][-1]
        dropped = sum(step["dropped"].values()) if step["dropped"] else 0
        p99 = step["latency_ms"].get("p99")

        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        rows.append(
            f"| {o.service} | {o.back_s:.1f} s | {seconds(o.restart_wait_s)} "
            f"| {seconds(o.start_s)} | {dropped:,} | {step['lost']:,} of {step['sent']:,} "
            f"| {'-' if p99 is None else f'{p99:.1f} ms'} |"
        )
    return "\n".join(rows)


def run_all(
    target: Target,
    services: list[str],
    run_for: Callable[[Path], list[str]],
    directory: Path,
    after_s: float,
) -> int:
    """`run_for(out)` is the bench command line writing its result to `out`."""
    outcomes = []
    for service in services:
        out = directory / service
        outcomes.append(kill_under_load(target, service, run_for(out), out, after_s))
    summary = table(outcomes)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "faults.md").write_text(summary + "\n")
    print(summary)
    print(f"\nwritten: {directory / 'faults.md'}", file=sys.stderr)
    return 0
