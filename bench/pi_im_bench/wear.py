"""What the device writes to its storage, per hour: SD-card wear. Read on the target, at
idle and then while a scenario's traffic flows (seed-4000: 1,000 msg/s), two ways:

- per service: each process's `write_bytes` (/proc/PID/io: what it sent, or will send, to
  storage, counted when it dirtied the pages), summed by its systemd unit. This works in a
  container too, but misses the file system's own journal and metadata, and processes that
  came and went between two readings.
- the block device: the sectors written to the partition the root file system is on
  (/sys/class/block/DEV/stat), everything included. Only where the target has such a device (a Pi,
  a VM): a container's root is an overlay on the host's disk, shared with the host.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .target import Target, TargetError
from .under_load import ScenarioRun

# One reading: "proc PID UNIT WRITE_BYTES" per process, then "disk DEV SECTORS_WRITTEN" for
# the device holding / when it is a block device.
READING = r"""
for p in /proc/[0-9]*; do
  w=$(sed -n 's/^write_bytes: //p' "$p/io" 2>/dev/null) || continue
  [ -n "$w" ] || continue
  u=$(sed -n 's|^[0-9]*:name=systemd:.*/||p; s|^0::.*/||p' "$p/cgroup" 2>/dev/null | head -n 1)
  echo "proc ${p#/proc/} ${u:-none} $w"
done
src=$(findmnt -n -o SOURCE /)
case $src in
  /dev/*)
    dev=$(basename "$(readlink -f "$src")")
    echo "disk $dev $(awk '{print $7}' "/sys/class/block/$dev/stat")";;
esac
"""


@dataclass
class Reading:
    at: float
    processes: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (unit, bytes)
    disk: tuple[str, int] | None = None  # device, bytes written


def parse(text: str, at: float) -> Reading:
    reading = Reading(at)
    for line in text.splitlines():
        kind, *fields = line.split()
        if kind == "proc" and len(fields) == 3 and fields[2].isdigit():
            reading.processes[int(fields[0])] = (fields[1], int(fields[2]))
        elif kind == "disk" and len(fields) == 2 and fields[1].isdigit():
            reading.disk = (fields[0], int(fields[1]) * 512)
    return reading


def read(target: Target) -> Reading:
    at = time.monotonic()
    return parse(target.run(["sh", "-c", READING]).decode(errors="replace"), at)


def unit_name(unit: str) -> str:
    """A unit as a reader knows it: services without '.service', scopes as 'other'."""
    if unit.endswith(".service"):
        return unit.removesuffix(".service")
    return "other"


def per_hour(first: Reading, second: Reading) -> dict[str, float]:
    """Bytes per hour by unit between two readings; 'device' is the block device's total.
    A process seen only in the second counts from zero; one gone by then is not seen."""
    hours = (second.at - first.at) / 3600
    written: dict[str, float] = {}
    for pid, (unit, after) in second.processes.items():
        before = first.processes.get(pid, (unit, 0))[1]
        name = unit_name(unit)
        written[name] = written.get(name, 0) + max(0, after - before)
    rates = {name: value / hours for name, value in written.items()}
    if first.disk and second.disk and first.disk[0] == second.disk[0]:
        rates["device"] = (second.disk[1] - first.disk[1]) / hours
    return rates


def measure_idle(target: Target, seconds: float) -> dict[str, float]:
    first = read(target)
    time.sleep(seconds)
    return per_hour(first, read(target))


def measure_under_load(
    target: Target, run_command: list[str], seconds: float
) -> tuple[dict[str, float], str]:
    """Start the scenario; once its traffic flows, read for `seconds` of it. The second
    value is the scenario's last status line (its rate), to show what was measured."""
    bench = ScenarioRun(run_command)
    bench.wait_for_traffic()
    time.sleep(2)  # past the first second's ramp
    first = read(target)
    time.sleep(seconds)
    rates = per_hour(first, read(target))
    during = bench.last_traffic
    code = bench.finish()
    if code not in (0, 1):  # 1: a bound missed, still a measurement
        raise TargetError(f"the scenario ended with {code}")
    return rates, during


def megabytes(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}"


def table(idle: dict[str, float], load: dict[str, float]) -> str:
    names = sorted(
        set(idle) | set(load) - {"device"}, key=lambda n: -(load.get(n, 0) + idle.get(n, 0))
    )
    rows = ["| written per hour (MiB) | idle | under load |", "|---|---|---|"]
    for name in names:
        if name == "device" or max(idle.get(name, 0), load.get(name, 0)) < 0.05 * 2**20:
            continue
        rows.append(f"| {name} | {megabytes(idle.get(name))} | {megabytes(load.get(name))} |")
    processes = [n for n in names if n != "device"]

    def total(rates: dict[str, float]) -> float | None:
        return sum(rates.get(n, 0) for n in processes) if rates else None

    rows.append(f"| **all processes** | {megabytes(total(idle))} | {megabytes(total(load))} |")
    if "device" in idle or "device" in load:
        rows.append(
            f"| **the block device** | {megabytes(idle.get('device'))} "
            f"| {megabytes(load.get('device'))} |"
        )
    return "\n".join(rows)


def run(
    target: Target,
    run_command: Callable[[Path], list[str]],
    directory: Path,
    idle_s: float,
    load_s: float,
) -> int:
    idle: dict[str, float] = {}
    if idle_s > 0:  # 0: under load only
        print(f"idle: reading for {idle_s:.0f} s", file=sys.stderr)
        idle = measure_idle(target, idle_s)
    load, during = measure_under_load(target, run_command(directory / "load"), load_s)
    summary = table(idle, load) + f"\n\nUnder load: {load_s:.0f} s of `{during}`.\n"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wear.md").write_text(summary)
    print(summary)
    print(f"written: {directory / 'wear.md'}", file=sys.stderr)
    return 0
