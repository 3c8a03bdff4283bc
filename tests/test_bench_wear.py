"""`pi_im_bench wear` reads write counters on the target (the run against the demo:
`make bench-wear`). Here the reading script runs on this machine, against this very process:
what it writes to a file on disk shows up under its PID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pi_im_bench import wear
from pi_im_bench.target import Target

HERE = Target(name="this machine", prefix=[], host="127.0.0.1")


def test_what_this_process_writes_is_read_under_its_pid(tmp_path: Path) -> None:
    before = wear.read(HERE)
    with (tmp_path / "written").open("wb") as out:
        out.write(os.urandom(4 * 2**20))
        out.flush()
        os.fsync(out.fileno())
    after = wear.read(HERE)
    unit, first = before.processes[os.getpid()]
    assert after.processes[os.getpid()][0] == unit
    assert after.processes[os.getpid()][1] - first >= 4 * 2**20
    assert after.at > before.at


def test_rates_are_per_hour_by_unit_new_processes_from_zero() -> None:
    first = wear.Reading(
        at=100.0,
        processes={1: ("ejabberd.service", 1000), 2: ("session-3.scope", 50), 9: ("x", 7)},
        disk=("mmcblk0p2", 10_000),
    )
    second = wear.Reading(
        at=100.0 + 360,  # a tenth of an hour
        processes={
            1: ("ejabberd.service", 3000),
            2: ("session-3.scope", 50),
            3: ("ejabberd.service", 500),  # started between the readings
        },
        disk=("mmcblk0p2", 30_000),
    )
    rates = wear.per_hour(first, second)
    assert rates["ejabberd"] == pytest.approx(25_000)
    assert rates["other"] == 0
    assert rates["device"] == pytest.approx(200_000)


def test_no_device_line_where_the_root_is_no_block_device() -> None:
    reading = wear.parse("proc 12 systemd-journald.service 4096\nproc 13 none 0\n", 1.0)
    assert reading.disk is None
    assert reading.processes == {12: ("systemd-journald.service", 4096), 13: ("none", 0)}
    assert wear.parse("disk vda2 8\n", 1.0).disk == ("vda2", 4096)


def test_the_table_lists_the_writers_busiest_first_and_the_totals() -> None:
    mib = 2**20
    idle = {"systemd-journald": 2 * mib, "ejabberd": 0.5 * mib, "cron": 0.01 * mib}
    load = {"systemd-journald": 3 * mib, "ejabberd": 900 * mib, "device": 1000 * mib}
    lines = wear.table(idle, load).splitlines()
    assert lines[2] == "| ejabberd | 0.5 | 900.0 |"
    assert lines[3] == "| systemd-journald | 2.0 | 3.0 |"
    assert "cron" not in "\n".join(lines)
    assert lines[-2] == "| **all processes** | 2.5 | 903.0 |"
    assert lines[-1] == "| **the block device** | - | 1,000.0 |"
