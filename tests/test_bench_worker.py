"""A load worker: it ends when its coordinator dies (not spin on a pipe that stays readable),
and it sends messages the way many independent users would."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import re
import statistics

from pi_im_bench import worker
from pi_im_bench.xmpp import Session


def test_a_worker_ends_when_its_coordinator_goes_away():
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    spec = worker.WorkerSpec(
        index=0,
        workers=1,
        host="127.0.0.1",
        port=9,
        domain="bench.invalid",
        mechanism=None,
        cafile=None,
        accounts=[],
    )
    process = context.Process(target=worker.main, args=(spec, theirs))
    process.start()
    theirs.close()
    assert ours.recv()["kind"] == "tick"  # it is up and talking
    ours.close()  # what a killed coordinator leaves behind
    process.join(timeout=30)
    alive = process.is_alive()
    if alive:
        process.kill()
    assert not alive, "the worker outlived its coordinator"
    assert process.exitcode == 0


def test_messages_leave_one_at_a_time_at_random_gaps():
    """At 400 messages/s the sender spreads them out (a Poisson stream: median gap ~1.7 ms)
    instead of sending every 10 ms a batch of 4 that reaches the server at once."""
    origins = asyncio.run(send_for(rate=400, seconds=1.5))
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(origins)]
    assert 300 < len(origins) < 900, len(origins)
    assert statistics.median(gaps_ms) > 0.5, sorted(gaps_ms)[:: len(gaps_ms) // 10]


async def send_for(rate: float, seconds: float) -> list[int]:
    """Run a worker's send loop over two plain loopback connections (standing in for
    logged-in streams); the send times stamped into what arrived, in order."""
    arrived: list[bytearray] = []  # one stream per connection

    async def collect(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        stream = bytearray()
        arrived.append(stream)
        while data := await reader.read(65536):
            stream.extend(data)

    server = await asyncio.start_server(collect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = worker.WorkerSpec(
        index=0,
        workers=1,
        host="127.0.0.1",
        port=port,
        domain="bench.invalid",
        mechanism=None,
        cafile=None,
        accounts=[],
    )
    ours, _theirs = multiprocessing.Pipe()
    sender = worker.Worker(spec, ours)
    for index in (1, 2):
        session = Session(sender.endpoint, f"user{index}", "unused", sender.cache)
        session._reader, session._writer = await asyncio.open_connection("127.0.0.1", port)
        sender.sessions[index] = session
        sender.up.append(index)
    sender.recipients = [1, 2]
    sender.message_bytes = 100
    sender.rate = rate
    sending = asyncio.create_task(sender.send_loop())
    await asyncio.sleep(seconds)
    sender.stopping.set()
    await sending
    for session in sender.sessions.values():
        session.abort()
    server.close()
    await asyncio.sleep(0.1)
    return sorted(
        int(origin) for stream in arrived for origin in re.findall(rb"<body>\d+ (\d+) ", stream)
    )


def test_logins_are_paced_and_bounded_in_flight():
    """Both a step's logins and a warm run's first logins go through `paced`: every index
    once, in order, never more than `pending` at a time, no faster than `rate`."""
    spec = worker.WorkerSpec(
        index=0, workers=1, host="127.0.0.1", port=9, domain="bench.invalid",
        mechanism=None, cafile=None, accounts=[],
    )  # fmt: skip
    ours, _theirs = multiprocessing.Pipe()
    pacer = worker.Worker(spec, ours)
    started, in_flight, most = [], 0, 0

    async def log_in(index: int, gate: asyncio.Semaphore) -> None:
        nonlocal in_flight, most
        started.append((index, asyncio.get_running_loop().time()))
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        gate.release()

    asyncio.run(pacer.paced(list(range(20)), rate=200, pending=3, log_in=log_in))
    assert [index for index, _ in started] == list(range(20))
    assert most <= 3
    assert started[-1][1] - started[0][1] >= 19 / 200 - 0.005
