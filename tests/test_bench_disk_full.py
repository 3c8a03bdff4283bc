"""What `pi_im_bench disk-full` reads from ejabberd's journal, and where it refuses to fill
(the fill under load runs against a device: `make bench-disk-full`)."""

from __future__ import annotations

import pytest

from pi_im_bench import disk_full
from pi_im_bench.target import Target, TargetError

# As mod_mam_sql_grouped logs it (molecule/default's test_disk_full.py, 2026-12-06).
JOURNAL = "\n".join(
    [
        "2026-12-06 15:15:02.295068+00:00 [error] The disk is full: archive copies are held "
        "in memory (up to 64 MB) until it has room",
        "2026-12-06 15:15:07.296762+00:00 [warning] The disk is still full: 42 archive copies "
        "held, 0 dropped",
        "2026-12-06 15:15:12.299112+00:00 [warning] The disk is still full: 4200 archive copies "
        "held, 0 dropped",
        "2026-12-06 15:15:42.311840+00:00 [warning] The disk has room again: 4242 held archive "
        "copies written, 0 dropped while it was full",
    ]
)


def test_the_held_and_written_copies_are_read_from_the_journal() -> None:
    assert disk_full.held_counts(JOURNAL) == (4200, (4242, 0))


def test_while_still_full_nothing_is_written_yet() -> None:
    still = "\n".join(JOURNAL.splitlines()[:3])
    assert disk_full.held_counts(still) == (4200, None)


def test_only_a_devices_own_storage_is_filled() -> None:
    """On this machine, as in a container: its disk (/etc) and anything but a tmpfs are
    refused, with what to do; a tmpfs of its own (/dev/shm) may be filled."""
    here = Target(name="this machine", prefix=[], host="127.0.0.1")
    with pytest.raises(TargetError, match="give the state a file system of its own"):
        disk_full.own_file_system(here, "/etc")
    with pytest.raises(TargetError, match="proc at /proc"):
        disk_full.own_file_system(here, "/proc")
    assert disk_full.own_file_system(here, "/dev/shm") == "/dev/shm"
