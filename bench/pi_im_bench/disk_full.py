"""The disk filled under load: a scenario runs (seed-4000 by default) and, once its traffic has
flowed for a while, the file system holding ejabberd's database is filled to the last byte by
root, kept full, then freed. The scenario says what the clients felt (messages lost, p99);
ejabberd's journal says how many archive copies waited in memory and whether all were written
once there was room.

Only a device's own storage is filled: a Pi's card (over SSH), or a tmpfs holding a
container's state. A container's root and a Docker volume are this machine's disk, which this
never fills. The device's state afterwards is checked by the Molecule tests
(test_disk_full.py); this measures it under load."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .target import Target, TargetError
from .under_load import ScenarioRun

STATE = "/var/lib/ejabberd"
FILLER = f"{STATE}/.pi-im-bench-filler"
WRITTEN = re.compile(r"The disk has room again: (\d+) held archive copies written, (\d+) dropped")
HELD = re.compile(r"The disk is still full: (\d+) archive copies held, (\d+) dropped")


@dataclass
class Outcome:
    full_s: float
    most_held: int
    written: int
    dropped: int
    written_after_s: float
    run: dict[str, Any]


def own_file_system(target: Target, path: str = STATE) -> str:
    """Where the file system holding `path` (ejabberd's state) is mounted, if it may be
    filled. On a device reached over SSH (a Pi) that is its card. On this machine or in a
    container it must be a tmpfs of its own: anything else there is this machine's disk (a
    container's root, or a Docker volume such as the demo's), which is never filled."""
    found = target.run(["findmnt", "-n", "-o", "TARGET,FSTYPE", "--target", path]).decode()
    # The last line: the mount on top, where mounts are stacked.
    mounted, fstype = found.strip().splitlines()[-1].split()
    if target.prefix[:1] != ["ssh"] and fstype != "tmpfs":
        raise TargetError(
            f"{path} on {target.name} is on {fstype} at {mounted}, this machine's own "
            "disk: give the state a file system of its own first (bench/README.md)"
        )
    return mounted


def ejabberd_journal(target: Target, since: float) -> str:
    return target.run(
        ["journalctl", "-u", "ejabberd", "--since", f"@{since:.0f}", "-o", "cat", "--no-pager"]
    ).decode(errors="replace")


def held_counts(journal: str) -> tuple[int, tuple[int, int] | None]:
    """The most copies held at once, and (written, dropped) once there was room again."""
    most = max((int(m[1]) for m in HELD.finditer(journal)), default=0)
    written = WRITTEN.search(journal)
    return most, ((int(written[1]), int(written[2])) if written else None)


def fill_under_load(
    target: Target, run_command: list[str], out: Path, after_s: float, full_s: float
) -> Outcome:
    own_file_system(target)
    bench = ScenarioRun(run_command)
    bench.wait_for_traffic()
    time.sleep(after_s)
    since = time.time() - 1
    # All but the last MiB reserved at once (a card is slow to write gigabytes), then written
    # until the file system says no room: an fallocate of exactly what is free can be refused.
    fill = (
        f"fallocate -l $(( $(df --output=avail -B1 {STATE} | tail -n 1) - 1048576 )) {FILLER}; "
        f"dd if=/dev/zero of={FILLER} bs=64k oflag=append conv=notrunc status=none; true"
    )
    target.run(["sh", "-c", fill])
    filled = time.monotonic()
    print(f"\nthe state's file system is full; freeing it in {full_s:.0f} s", flush=True)
    time.sleep(full_s)
    target.run(["rm", "-f", FILLER])
    freed = time.monotonic()
    while (counts := held_counts(ejabberd_journal(target, since)))[1] is None:
        if time.monotonic() - freed > 120:
            raise TargetError("the held archive copies were not written within 120 s")
        time.sleep(1)
    written_after = time.monotonic() - freed
    bench.finish()
    written, dropped = counts[1]
    run = json.loads((out / "result.json").read_text())
    return Outcome(freed - filled, counts[0], written, dropped, written_after, run)


def table(o: Outcome) -> str:
    step = o.run["steps"][-1]
    p99 = step["latency_ms"].get("p99")
    return "\n".join(
        [
            "| full for | messages lost | p99 | archive copies held (most) | written once "
            "there was room | dropped | written within |",
            "|---|---|---|---|---|---|---|",
            f"| {o.full_s:.0f} s | {step['lost']:,} of {step['sent']:,} "
            f"| {'-' if p99 is None else f'{p99:.1f} ms'} | {o.most_held:,} | {o.written:,} "
            f"| {o.dropped:,} | {o.written_after_s:.0f} s |",
        ]
    )
