"""The comparison table of `variants` (report.medians): one row per variant, the median of its
rounds, with what the event bus adds (events lost, RabbitMQ's CPU per message)."""

from __future__ import annotations

from typing import Any

from pi_im_bench import report


def run(name: str, sent: int, server_s: float, broker_s: float | None, lost: int | None) -> dict:
    step: dict[str, Any] = {
        "rss_per_session_kb": 30.0,
        "login_server_cpu_ms_per_session": 2.0,
        "login_wall_s": 10.0,
        "received": sent,
        "traffic_seconds": 30.0,
        "latency_ms": {"p50": 3.0, "p99": 20.0},
        "lost": 0,
        "sent": sent,
        "traffic_server_cpu_s": server_s,
        "traffic_broker_cpu_s": broker_s,
    }
    events = None if lost is None else {"sent": sent, "published": sent - lost, "lost": lost}
    return {"target": name, "steps": [step], "events": events}


def row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_each_variant_gets_the_median_cpu_per_message_and_events_lost() -> None:
    table = report.medians(
        [
            run("events on #1", 30_000, 15.0, 6.0, 0),
            run("events on #2", 30_000, 18.0, 9.0, 0),
            run("events on #3", 30_000, 21.0, 3.0, 0),
            run("no events #1", 30_000, 12.0, 0.3, None),
        ]
    )
    header = row(table, "variant")
    on = dict(zip(header, row(table, "events on"), strict=True))
    off = dict(zip(header, row(table, "no events"), strict=True))
    assert on["runs"] == "3"
    assert on["server CPU µs/msg"] == "600.0"  # 18 s over 30,000 messages, the median
    assert on["+ RabbitMQ µs/msg"] == "800.0"  # (18 + 6) s: the median of each round's sum
    assert on["events lost"] == "0.0"
    assert off["events lost"] == "-"
    assert off["server CPU µs/msg"] == "400.0"
