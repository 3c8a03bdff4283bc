"""One load-generating process: a slice of the sessions, driven by the coordinator.

Processes, not threads: each holds at most a few thousand sockets, far from the machine's
20,000 descriptors per process, and gets a core of its own when there is one.
Protocol on the pipe (dicts): coordinator -> worker `prime`, `grow`, `traffic`, `online`,
`stop`; worker -> coordinator a `tick` every second, an `ack` for `prime`, `traffic` and
`online` (the latter with the indices logged in), and a `final` before exiting. A worker
whose pipe closes (the coordinator was killed) closes its sessions and exits without a
`final`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .accounts import Account, account_name
from .scram import SaltedPasswordCache, TokenCache
from .xmpp import Endpoint, Session, SessionError, client_tls_context

TICK_SECONDS = 1.0
IDLE_POLL_SECONDS = 0.01  # how often a sender without a rate looks again
# A message's text after its header: words, as people write (the moderation list reads them).
FILLER = "see you at the station at eight, bring the tickets and some water for the kids. "


@dataclass
class WorkerSpec:
    index: int
    workers: int
    host: str
    port: int
    domain: str
    mechanism: str | None
    cafile: str | None
    accounts: list[Account]
    cpus: list[int] | None = None
    resource_name: str = "bench"
    roster: bool = True
    run_id: int = 0
    sasl2: bool = False
    fast: bool = False


@dataclass
class Counters:
    up: int = 0
    logins_failed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    received: int = 0
    duplicates: int = 0
    stale: int = 0
    send_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    login_ms: list[float] = field(default_factory=list)
    mechanisms: Counter[str] = field(default_factory=Counter)

    def drain_samples(self) -> tuple[list[float], list[float]]:
        latencies, logins = self.latencies_ms, self.login_ms
        self.latencies_ms, self.login_ms = [], []
        return latencies, logins


class Worker:
    def __init__(self, spec: WorkerSpec, pipe: Connection):
        self.spec = spec
        self.pipe = pipe
        self.endpoint = Endpoint(
            spec.host,
            spec.port,
            spec.domain,
            client_tls_context(spec.cafile),
            spec.mechanism,
            sasl2=spec.sasl2,
            fast=spec.fast,
        )
        self.cache = SaltedPasswordCache()
        self.tokens = TokenCache()
        for account in spec.accounts:
            if account.salted is not None:
                self.cache.put(
                    account.digest,
                    account.password,
                    account.salt,
                    account.iterations,
                    account.salted,
                )
        self.by_index = {account.index: account for account in spec.accounts}
        self.sessions: dict[int, Session] = {}
        self.up: list[int] = []  # indices of logged-in sessions, to pick senders from
        self.counters = Counters()
        self.seen: set[tuple[int, int]] = set()
        self.received_from: Counter[int] = Counter()
        self.sequence = 0
        self.rate = 0.0
        self.message_bytes = 0
        self.recipients: list[int] = []  # accounts online when traffic began
        self.stopping = asyncio.Event()
        self.logins: set[asyncio.Task[None]] = set()
        self.random = random.Random()

    # -- commands ------------------------------------------------------------------------

    def on_command(self) -> None:
        while self.pipe.poll():
            try:
                command: dict[str, Any] = self.pipe.recv()
            except EOFError:
                # The coordinator is gone (killed): close the sessions and end, rather than
                # stay behind with a pipe that polls readable for ever.
                asyncio.get_running_loop().remove_reader(self.pipe.fileno())
                self.pipe.close()
                self.stopping.set()
                return
            op = command["op"]
            if op in ("grow", "prime"):
                logins = self.grow if op == "grow" else self.prime
                task = asyncio.get_running_loop().create_task(
                    logins(command["indices"], command["rate"], command["pending"])
                )
                self.logins.add(task)
                task.add_done_callback(self.logins.discard)
            elif op == "traffic":
                self.rate = command["rate"]
                self.message_bytes = command["bytes"]
                self.recipients = command["recipients"]
                # Counts as of this command: the coordinator waits for them to close a window.
                self.pipe.send(self.snapshot("ack"))
            elif op == "online":
                self.pipe.send({**self.snapshot("ack"), "online": list(self.up)})
            elif op == "stop":
                self.stopping.set()

    async def paced(
        self,
        indices: list[int],
        rate: float,
        pending: int,
        log_in: Callable[[int, asyncio.Semaphore], Awaitable[None]],
    ) -> None:
        """`log_in` each of the given sessions at `rate` per second, at most `pending` at a
        time (it releases the gate once its login is over)."""
        gate = asyncio.Semaphore(pending)
        started = time.monotonic()
        tasks = []
        for n, index in enumerate(indices):
            if self.stopping.is_set():
                break
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            tasks.append(asyncio.create_task(log_in(index, gate)))
        await asyncio.gather(*tasks)

    async def grow(self, indices: list[int], rate: float, pending: int) -> None:
        """Log in the given sessions, and keep them."""
        await self.paced(indices, rate, pending, self.login)
        # Thousands of long-lived sessions: a full collection of them would stall the loop
        # for tens of ms and be measured as server latency. Park them out of the collector.
        gc.collect()
        gc.freeze()

    async def prime(self, indices: list[int], rate: float, pending: int) -> None:
        """Before a warm run: log each account in once with its password and out again, as
        phones did before a router restart (with FAST the server gives each a token, kept
        for the measured logins); then say how many tokens this worker holds."""
        await self.paced(indices, rate, pending, self.log_in_and_out)
        self.pipe.send({**self.snapshot("ack"), "tokens": len(self.tokens.tokens)})

    async def log_in_and_out(self, index: int, gate: asyncio.Semaphore) -> None:
        account = self.by_index[index]
        session = Session(self.endpoint, account.name, account.password, self.cache, self.tokens)
        try:
            await asyncio.wait_for(session.login(self.spec.resource_name, self.spec.roster), 60)
            await session.close()
        except (SessionError, TimeoutError):
            session.abort()
        finally:
            gate.release()

    async def login(self, index: int, gate: asyncio.Semaphore) -> None:
        account = self.by_index[index]
        session = Session(self.endpoint, account.name, account.password, self.cache, self.tokens)
        session.on_message = self.on_message
        session.on_closed = self.on_closed
        began = time.monotonic()
        try:
            await asyncio.wait_for(session.login(self.spec.resource_name, self.spec.roster), 60)
        except (SessionError, TimeoutError) as error:
            kind = error.kind if isinstance(error, SessionError) else "timeout"
            self.counters.logins_failed[kind] += 1
            session.abort()
            return
        finally:
            gate.release()
        self.counters.login_ms.append((time.monotonic() - began) * 1000)
        self.counters.mechanisms[session.mechanism_used] += 1
        self.sessions[index] = session
        self.up.append(index)
        self.counters.up += 1

    def on_closed(self, session: Session, error: SessionError | None) -> None:
        for index, known in list(self.sessions.items()):
            if known is session:
                del self.sessions[index]
                self.up.remove(index)
                self.counters.up -= 1
        self.counters.dropped[error.kind if error else "dropped"] += 1

    # -- traffic -------------------------------------------------------------------------

    def on_message(self, body: str, received_ns: int) -> None:
        try:
            run_id, origin, sender, sequence = (int(part) for part in body.split(" ", 4)[:4])
        except ValueError:
            return  # not ours (a server announcement, say)
        if run_id != self.spec.run_id:
            self.counters.stale += 1  # left from an earlier run (offline storage)
            return
        key = (sender, sequence)
        if key in self.seen:
            self.counters.duplicates += 1
            return
        self.seen.add(key)
        self.received_from[sender] += 1
        self.counters.received += 1
        self.counters.latencies_ms.append((received_ns - origin) / 1e6)

    async def send_loop(self) -> None:
        """Messages leave one at a time, at exponential gaps averaging 1/rate: many users each
        typing when they like (a Poisson stream). Sent in fixed 10 ms batches instead, they
        reached the server together and their wait in its queue was measured as latency."""
        due = time.monotonic()
        while not self.stopping.is_set():
            if not self.can_send():
                await asyncio.sleep(IDLE_POLL_SECONDS)
                due = time.monotonic()
                continue
            due += self.random.expovariate(self.rate)
            # Behind schedule (a busy loop), it sends at once, still yielding to the reads.
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self.can_send():  # the rate, or the sessions, may have gone meanwhile
                self.send_one()

    def can_send(self) -> bool:
        return self.rate > 0 and bool(self.up) and len(self.recipients) >= 2

    def send_one(self) -> None:
        index = self.random.choice(self.up)
        session = self.sessions[index]
        recipient = index
        while recipient == index:  # anyone online but oneself
            recipient = self.random.choice(self.recipients)
        self.sequence += 1
        head = f"{self.spec.run_id} {time.monotonic_ns()} {self.spec.index} {self.sequence} "
        body = (
            head
            + (FILLER * (1 + self.message_bytes // len(FILLER)))[
                : max(0, self.message_bytes - len(head))
            ]
        )
        to = f"{account_name(recipient)}@{self.spec.domain}/{self.spec.resource_name}"
        try:
            session.send_chat(to, body, f"m{self.spec.index}-{self.sequence}")
            self.counters.sent += 1
        except SessionError:
            self.counters.send_errors += 1

    # -- reporting -----------------------------------------------------------------------

    def snapshot(self, kind: str) -> dict[str, Any]:
        latencies, logins = self.counters.drain_samples()
        counters = self.counters
        report: dict[str, Any] = {
            "kind": kind,
            "worker": self.spec.index,
            "up": counters.up,
            "logins_failed": dict(counters.logins_failed),
            "dropped": dict(counters.dropped),
            "sent": counters.sent,
            "received": counters.received,
            "duplicates": counters.duplicates,
            "stale": counters.stale,
            "send_errors": counters.send_errors,
            "latencies_ms": latencies,
            "login_ms": logins,
            "salted_computed": self.cache.computed,
            "mechanisms": dict(counters.mechanisms),
            "cpu_s": time.process_time(),
        }
        if kind == "final":
            report["received_from"] = dict(self.received_from)
        return report

    async def tick_loop(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(TICK_SECONDS)
            if not self.pipe.closed:
                self.pipe.send(self.snapshot("tick"))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.pipe.fileno(), self.on_command)
        ticks = loop.create_task(self.tick_loop())
        sending = loop.create_task(self.send_loop())
        await self.stopping.wait()
        for task in list(self.logins):
            task.cancel()
        self.rate = 0
        await asyncio.gather(ticks, sending, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self.sessions.values()), return_exceptions=True)
        if not self.pipe.closed:
            loop.remove_reader(self.pipe.fileno())
            self.pipe.send(self.snapshot("final"))


def main(spec: WorkerSpec, pipe: Connection) -> None:
    """Process entry point."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    asyncio.run(Worker(spec, pipe).run())
