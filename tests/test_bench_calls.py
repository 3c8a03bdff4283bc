"""The relayed-calls load (bench/pi_im_bench/calls.py) and its scenario table, without a
server: what a call sends, how a packet's send time travels, what is counted, what is refused."""

from __future__ import annotations

import time

import pytest

from pi_im_bench import calls, scenario
from pi_im_bench.scenario import ScenarioError

BASE = {"login": {"sessions": 10}}


def test_an_audio_call_sends_a_quarter_kilobyte_every_20_ms() -> None:
    plan = scenario.CallPlan(counts=(1,), seconds=1, kbps=100, packet_ms=20)
    assert plan.packet_bytes == 250  # 100 kbit/s = 12,500 bytes/s = 50 packets of 250
    tiny = scenario.CallPlan(counts=(1,), seconds=1, kbps=8, packet_ms=5)
    assert tiny.packet_bytes == calls.HEADER.size  # never smaller than the header
    assert calls.HEADER.size == scenario.CALL_HEADER_BYTES


def test_a_packet_carries_its_send_time() -> None:
    before = time.monotonic_ns()
    data = calls.packet(7, 250)
    assert len(data) == 250
    assert before <= calls.sent_at(data) <= time.monotonic_ns()
    assert calls.sent_at(b"short") == -1


def test_only_packets_sent_once_counting_began_are_counted() -> None:
    ear = calls.Ear()
    early = calls.packet(0, 64)
    ear.counting_from_ns = time.monotonic_ns()
    ear.datagram_received(early, ("192.0.2.1", 61000))
    ear.datagram_received(b"not ours", ("192.0.2.1", 61000))
    ear.datagram_received(calls.packet(1, 64), ("192.0.2.1", 61000))
    assert ear.received == 1
    assert len(ear.latencies_ms) == 1
    assert 0 <= ear.latencies_ms[0] < 1000


def test_the_calls_scenario_loads() -> None:
    loaded = scenario.load("calls-4000")
    assert loaded.calls is not None
    assert loaded.calls.counts[0] > 0
    assert loaded.steps[0].sessions == 4000


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"counts": []}, "calls.counts must list call counts in 1..480"),
        ({"counts": [10, 481]}, "calls.counts must list call counts in 1..480"),
        ({"counts": [10, True]}, "calls.counts must list call counts"),
        ({"counts": [10], "kbps": 5000}, "calls.kbps in 8..2000"),
        ({"counts": [10], "seconds": 0}, "calls.seconds must be in (0, 600]"),
        ({"counts": [10], "codec": "opus"}, "unknown setting calls.codec"),
        ({"counts": "10"}, "calls.counts has the wrong type"),
    ],
)
def test_bad_call_tables_are_refused(table: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scenario.parse({**BASE, "calls": table})
