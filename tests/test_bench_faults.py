"""What `pi_im_bench faults` reads from systemd's journal and prints (the kill and the timing
run against the demo: `make bench-faults`)."""

from __future__ import annotations

import pytest

from pi_im_bench import faults

# RabbitMQ killed on the demo under Debian's RestartSec=10, and a later start (as written).
SYSTEMD = "pi-im systemd[1]:"
UNIT = "rabbitmq-server.service"
JOURNAL = "\n".join(
    [
        f"1796562276.246474 {SYSTEMD} {UNIT}: Main process exited, code=killed, status=9/KILL",
        f"1796562286.281581 {SYSTEMD} {UNIT}: Scheduled restart job, restart counter is at 2.",
        f"1796562291.541985 {SYSTEMD} Started {UNIT} - RabbitMQ Messaging Server.",
        f"1796562495.779698 {SYSTEMD} Started {UNIT} - RabbitMQ Messaging Server.",
    ]
)


def test_the_restart_wait_and_the_start_are_read_from_the_journal() -> None:
    wait, start = faults.restart_times(JOURNAL)
    assert wait == pytest.approx(10.035, abs=0.001)
    assert start == pytest.approx(5.260, abs=0.001)


def test_a_journal_without_a_restart_gives_no_times() -> None:
    only_started = JOURNAL.splitlines()[-1]
    assert faults.restart_times(only_started) == (None, None)


def test_the_table_shows_what_the_clients_felt() -> None:
    step = {"dropped": {"closed": 4000}, "lost": 67, "sent": 23229, "latency_ms": {"p99": 8.2}}
    outcome = faults.Outcome("ejabberd", 3.4, 1.0, 2.0, {"steps": [step]})
    assert faults.table([outcome]).splitlines()[-1] == (
        "| ejabberd | 3.4 s | 1.0 s | 2.0 s | 4,000 | 67 of 23,229 | 8.2 ms |"
    )
