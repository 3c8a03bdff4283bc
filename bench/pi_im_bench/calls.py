"""Relayed calls: pairs of TURN clients (aioice, the ICE/TURN library of aiortc) that send
audio-sized packets to each other through the device's relay, as two apps do when neither can
reach the other directly. The relay's credentials come from the server over XMPP (XEP-0215),
as an app gets them. Each packet carries its send time: one clock, so one-way latency through
the relay is measured exactly; sent minus received is the loss."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import struct
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection

from aioice.turn import TurnTransport, create_turn_endpoint

from .accounts import Account
from .scenario import CallPlan
from .scram import SaltedPasswordCache
from .stats import summary
from .xmpp import Endpoint, Session, SessionError

NS_EXTDISCO = "urn:xmpp:extdisco:2"
HEADER = struct.Struct("!QI")  # send time (monotonic ns), sequence number
#: Allocations asked for at once while a step sets up.
ALLOCATING = 50
#: Packets sent in this first stretch are not counted: a side's first packets may reach the
#: relay before the other side's permission does, in any TURN call.
WARMUP_SECONDS = 2.0
DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class TurnService:
    host: str
    port: int
    username: str
    password: str


async def turn_service(endpoint: Endpoint, account: Account) -> TurnService:
    """The relay and its credentials as a logged-in app asks for them (XEP-0215)."""
    session = Session(endpoint, account.name, account.password, SaltedPasswordCache())
    await asyncio.wait_for(session.login("calls", roster=False), 60)
    try:
        answer = await session.ask("turn", f"<services xmlns='{NS_EXTDISCO}' type='turn'/>")
    finally:
        await session.close()
    for service in answer.iter(f"{{{NS_EXTDISCO}}}service"):
        if service.get("transport", "udp") == "udp":
            return TurnService(
                host=service.get("host", ""),
                port=int(service.get("port", "3478")),
                username=service.get("username", ""),
                password=service.get("password", ""),
            )
    raise SessionError("turn", "the server offers no TURN relay over UDP (XEP-0215)")


def packet(sequence: int, size: int) -> bytes:
    return HEADER.pack(time.monotonic_ns(), sequence) + bytes(size - HEADER.size)


def sent_at(data: bytes) -> int:
    """The send time a packet carries (ns), or -1 for anything that is not one of ours."""
    if len(data) < HEADER.size:
        return -1
    return int(HEADER.unpack_from(data)[0])


class Ear(asyncio.DatagramProtocol):
    """One side's incoming packets: counted, with their one-way latency, once counting began."""

    def __init__(self) -> None:
        self.counting_from_ns = math.inf
        self.received = 0
        self.latencies_ms: list[float] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        sent = sent_at(data)
        if sent >= self.counting_from_ns:
            self.received += 1
            self.latencies_ms.append((time.monotonic_ns() - sent) / 1e6)


@dataclass
class CallsResult:
    calls: int
    allocations_failed: int
    sent: int
    received: int
    lost_percent: float | None
    latency_ms: dict[str, float | None]
    client_cpu_s: float
    seconds: float


async def _allocate(
    service: TurnService, count: int
) -> tuple[list[tuple[TurnTransport, Ear]], int]:
    endpoints: list[tuple[TurnTransport, Ear]] = []
    failed = 0
    for first in range(0, count, ALLOCATING):
        batch = await asyncio.gather(
            *(
                create_turn_endpoint(
                    Ear, (service.host, service.port), service.username, service.password
                )
                for _ in range(min(ALLOCATING, count - first))
            ),
            return_exceptions=True,
        )
        for outcome in batch:
            if isinstance(outcome, BaseException):
                failed += 1
            else:
                endpoints.append(outcome)
    return endpoints, failed


async def place_calls(service: TurnService, calls: int, plan: CallPlan) -> CallsResult:
    """`calls` relayed calls for plan.seconds (after a warm-up), both sides sending."""
    cpu_before = time.process_time()
    endpoints, failed = await _allocate(service, 2 * calls)
    pairs = [(endpoints[i], endpoints[i + 1]) for i in range(0, len(endpoints) - 1, 2)]
    routes = [
        (a, b[0].get_extra_info("sockname"), b, a[0].get_extra_info("sockname")) for a, b in pairs
    ]
    interval = plan.packet_ms / 1000
    size = plan.packet_bytes
    sent = 0
    sequence = 0
    began = time.monotonic()
    counting_from = began + WARMUP_SECONDS
    stop_at = counting_from + plan.seconds
    counting = False
    tick = began
    try:
        while (now := time.monotonic()) < stop_at:
            if not counting and now >= counting_from:
                counting = True
                mark = time.monotonic_ns()
                for transport_ear in endpoints:
                    transport_ear[1].counting_from_ns = mark
            for (a, _), to_b, (b, _), to_a in routes:
                a.sendto(packet(sequence, size), to_b)
                b.sendto(packet(sequence, size), to_a)
            sequence += 1
            if counting:
                sent += 2 * len(routes)
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        await asyncio.sleep(DRAIN_SECONDS)
    finally:
        for transport, _ in endpoints:
            transport.close()
        await asyncio.sleep(0.5)
    received = sum(ear.received for _, ear in endpoints)
    latencies = [latency for _, ear in endpoints for latency in ear.latencies_ms]
    return CallsResult(
        calls=len(routes),
        allocations_failed=failed,
        sent=sent,
        received=received,
        lost_percent=round(100 * max(0, sent - received) / sent, 3) if sent else None,
        latency_ms=summary(latencies),
        client_cpu_s=round(time.process_time() - cpu_before, 2),
        seconds=plan.seconds,
    )


def _child(
    service: TurnService, calls: int, plan: CallPlan, cpus: list[int] | None, pipe: Connection
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    pipe.send(asdict(asyncio.run(place_calls(service, calls, plan))))
    pipe.close()


def start_step(
    service: TurnService, calls: int, plan: CallPlan, cpus: list[int] | None
) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """One step in a process of its own (pinned like the workers): the generator's CPU is its
    own, and a step's sockets go with it. Its result arrives on the returned connection."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_child, args=(service, calls, plan, cpus, theirs), daemon=True)
    process.start()
    return process, ours


def step_limit(plan: CallPlan) -> float:
    """Seconds a step may take: its calls, their warm-up and drain, and time to set them up."""
    return plan.seconds + WARMUP_SECONDS + DRAIN_SECONDS + 120
