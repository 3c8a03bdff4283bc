"""The coordinator: starts the worker processes, walks the scenario's steps, watches the
server through the probe, prints one progress line, and returns what it measured."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from . import calls, worker
from .accounts import Account
from .probe_reader import Probe, ServerSample
from .scenario import Scenario, Step
from .stats import percentile, summary
from .target import Target
from .xmpp import Endpoint, client_tls_context

TIMELINE_SECONDS = 1.0


@dataclass
class StepResult:
    sessions: int
    sessions_up: int
    login_failures: dict[str, int]
    login_wall_s: float | None
    login_ms: dict[str, float | None]
    login_server_cpu_s: float
    login_server_cpu_ms_per_session: float | None
    rss_baseline_kb: int
    rss_after_login_kb: int
    rss_per_session_kb: float | None
    erlang_after_login: dict[str, int] | None
    messages_per_second: float
    traffic_seconds: float
    sent: int
    received: int
    lost: int
    duplicates: int
    dropped: dict[str, int]
    latency_ms: dict[str, float | None]
    traffic_server_cpu_s: float
    rss_after_traffic_kb: int
    # How the step's logins authenticated (SCRAM-SHA-1, HT-SHA-256-NONE, ...): a FAST run
    # shows every one was a token login.
    login_mechanisms: dict[str, int] = field(default_factory=dict)
    # The server idle with the step's sessions online, then each step of relayed calls.
    idle_server_cpu_percent: float | None = None
    # RabbitMQ's CPU over the traffic (the appliance: what publishing the events cost there).
    traffic_broker_cpu_s: float | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""


@dataclass
class RunResult:
    scenario: str
    description: str
    target: str
    server: dict[str, Any]
    generator: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)  # the server before any session
    steps: list[StepResult] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    stopped_because: str = ""
    wall_s: float = 0.0
    fast_tokens: int | None = None  # FAST runs: the clients that held a token before step 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Coordinator:
    def __init__(
        self,
        scenario: Scenario,
        target: Target,
        domain: str,
        accounts: list[Account],
        probe: Probe,
        cafile: str | None,
        client_cpus: list[int] | None,
    ):
        self.scenario = scenario
        self.target = target
        self.domain = domain
        self.clients = len(accounts)
        self.caller = accounts[0]
        self.cafile = cafile
        self.client_cpus = client_cpus
        self.probe = probe
        count = math.ceil(scenario.max_sessions / scenario.sessions_per_worker)
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.pipes: list[Connection] = []
        self.gone: set[Connection] = set()
        self.assigned: list[int] = [0] * count
        self.latest: dict[int, dict[str, Any]] = {}
        self.finals: dict[int, dict[str, Any]] = {}
        self.latencies: list[float] = []
        self.logins: list[float] = []
        self.window: list[float] = []
        self.timeline: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.deadline = self.started + scenario.max_seconds
        self.tty = sys.stdout.isatty()
        self.last_line = 0.0
        self.last_printed = 0.0
        self.acks = 0
        self.online: dict[int, list[int]] = {}
        self.tokens: dict[int, int] = {}  # FAST tokens each worker holds, by worker
        self.step_label = ""
        context = multiprocessing.get_context("spawn")
        run_id = random.getrandbits(31)
        for index in range(count):
            mine = [a for a in accounts if a.index % count == index]
            spec = worker.WorkerSpec(
                index=index,
                workers=count,
                host=target.host,
                port=target.port,
                domain=domain,
                mechanism=scenario.mechanism,
                cafile=cafile,
                accounts=mine,
                cpus=client_cpus,
                roster=scenario.roster,
                run_id=run_id,
                sasl2=scenario.sasl2,
                fast=scenario.fast,
            )
            ours, theirs = context.Pipe()
            process = context.Process(target=worker.main, args=(spec, theirs), daemon=True)
            process.start()
            self.workers.append(process)
            self.pipes.append(ours)

    # -- aggregate view ------------------------------------------------------------------

    def total(self, key: str) -> int:
        return sum(report[key] for report in self.latest.values())

    def total_counter(self, key: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for report in self.latest.values():
            counts.update(report[key])
        return counts

    def failures(self) -> int:
        """Logins that failed plus sessions the server dropped, all workers."""
        return sum(self.total_counter("logins_failed").values()) + sum(
            self.total_counter("dropped").values()
        )

    def pump(self, seconds: float, until: Any = None) -> bool:
        """Handle worker reports for up to `seconds`; True if `until()` became true."""
        end = min(time.monotonic() + seconds, self.deadline)
        while True:
            if until is not None and until():
                return True
            now = time.monotonic()
            if now >= end:
                return False
            alive = [pipe for pipe in self.pipes if pipe not in self.gone]
            for pipe in wait(alive, timeout=min(0.2, end - now)):
                try:
                    report = pipe.recv()  # type: ignore[union-attr]
                except EOFError:
                    self.gone.add(pipe)  # a worker died: its last counts stand
                    continue
                self.latest[report["worker"]] = report
                self.window.extend(report["latencies_ms"])
                self.latencies.extend(report["latencies_ms"])
                self.logins.extend(report["login_ms"])
                if report["kind"] == "final":
                    self.finals[report["worker"]] = report
                elif report["kind"] == "ack":
                    self.acks += 1
                    if "online" in report:
                        self.online[report["worker"]] = report["online"]
                    if "tokens" in report:
                        self.tokens[report["worker"]] = report["tokens"]
            if time.monotonic() - self.last_line >= TIMELINE_SECONDS:
                self.record()

    def record(self) -> None:
        now = time.monotonic()
        server = self.probe.latest()
        previous = self.timeline[-1] if self.timeline else None
        point = {
            "t": round(now - self.started, 2),
            "sessions": self.total("up"),
            "failed": sum(self.total_counter("logins_failed").values()),
            "dropped": sum(self.total_counter("dropped").values()),
            "sent": self.total("sent"),
            "received": self.total("received"),
            "latency_p50_ms": percentile(self.window, 50),
            "latency_p99_ms": percentile(self.window, 99),
            "client_cpu_s": round(sum(r["cpu_s"] for r in self.latest.values()), 3),
            "server_rss_kb": server.rss_kb,
            "server_cpu_s": server.cpu_s,
            "erlang_total": server.erlang_total,
            "erlang_ports": (server.erlang or {}).get("port_count"),
            "erlang_processes": (server.erlang or {}).get("process_count"),
        }
        self.window = []
        self.timeline.append(point)
        self.last_line = now
        self.progress(point, previous)

    def progress(self, point: dict[str, Any], previous: dict[str, Any] | None) -> None:
        span = point["t"] - previous["t"] if previous else 0
        rate = (point["received"] - previous["received"]) / span if previous and span else 0
        cpu = (point["server_cpu_s"] - previous["server_cpu_s"]) / span if previous and span else 0
        client = (
            (point["client_cpu_s"] - previous["client_cpu_s"]) / span if previous and span else 0
        )
        p99 = point["latency_p99_ms"]
        line = (
            f"[{point['t']:6.0f}s] {self.step_label}  sessions {point['sessions']:>6,}  "
            f"failed {point['failed'] + point['dropped']}  msg/s {rate:6.0f}  "
            f"p99 {'-' if p99 is None else f'{p99:.1f} ms':>9}  "
            f"server {point['server_rss_kb'] / 1024:6.0f} MB {cpu * 100:4.0f}% cpu  "
            f"client {client * 100:4.0f}% cpu"
        )
        if self.tty:
            print(f"\r{line}", end="", flush=True)
        elif point["t"] - self.last_printed >= 5:  # a log, not a terminal: fewer lines
            self.last_printed = point["t"]
            print(line, flush=True)

    def send(self, message_for: Any) -> None:
        for index, pipe in enumerate(self.pipes):
            message = message_for(index)
            if message is not None and pipe not in self.gone:
                pipe.send(message)

    # -- steps ---------------------------------------------------------------------------

    def login_share(self, op: str, indices: list[int]) -> dict[str, Any]:
        """A worker's share of logins (`grow` keeps the sessions, `prime` logs them out)."""
        count = len(self.pipes)
        return {
            "op": op,
            "indices": indices,
            "rate": self.scenario.login_rate / count,
            "pending": max(1, self.scenario.pending // count),
        }

    def prime(self) -> int:
        """Warm runs: every account logs in once with its password and out again, asking
        for a FAST token when the scenario uses them (the workers keep them for the steps);
        returns how many tokens they hold."""
        count = len(self.pipes)
        sessions = self.scenario.max_sessions
        acks = self.acks
        self.step_label = "first logins"
        self.send(
            lambda worker: self.login_share(
                "prime", [i for i in range(sessions) if i % count == worker]
            )
        )
        self.pump(self.deadline - time.monotonic(), lambda: self.acks >= acks + count)
        return sum(self.tokens.values())

    def run_step(self, number: int, step: Step, baseline: ServerSample) -> StepResult:
        scenario = self.scenario
        count = len(self.pipes)
        self.step_label = f"step {number}/{len(scenario.steps)}"
        current = sum(self.assigned)
        new = range(current, step.sessions)
        failed_before = self.failures()
        login_mark = len(self.logins)
        mechanisms_before = self.total_counter("mechanisms")
        before = self.probe.latest()
        began = time.monotonic()

        def indices(worker_index: int) -> dict[str, Any] | None:
            mine = [i for i in new if i % count == worker_index]
            if not mine:
                return None
            self.assigned[worker_index] += len(mine)
            return self.login_share("grow", mine)

        self.send(indices)

        def settled() -> bool:
            # Sessions the server dropped count too: otherwise a crash mid-step would wait
            # for the time bound.
            return self.total("up") + self.failures() - failed_before >= step.sessions

        all_up = self.pump(self.deadline - time.monotonic(), settled)
        login_wall = time.monotonic() - began if all_up else None
        after_login = self.probe.after(time.monotonic())
        up = self.total("up")
        failures = self.total_counter("logins_failed")
        idle_began = time.monotonic()
        self.pump(scenario.idle_seconds)
        after_idle = self.probe.after(time.monotonic())
        idle_cpu = (after_idle.cpu_s - after_login.cpu_s) / max(1e-9, time.monotonic() - idle_began)
        placed = self.place_calls() if scenario.calls else []

        sent_before, received_before = self.total("sent"), self.total("received")
        latency_mark = len(self.latencies)
        traffic_began = time.monotonic()
        if step.messages_per_second > 0 and step.seconds > 0:
            per_worker = step.messages_per_second / count
            # Messages go only to accounts online now: one sent to a session that never came
            # up would be stored offline and counted as lost.
            acks = self.acks
            self.send(lambda _i: {"op": "online"})
            self.pump(10, lambda: self.acks >= acks + len(self.pipes) - len(self.gone))
            online = sorted(i for indices in self.online.values() for i in indices)
            self.send(
                lambda _i: {
                    "op": "traffic",
                    "rate": per_worker,
                    "bytes": scenario.message_bytes,
                    "recipients": online,
                }
            )
            self.pump(step.seconds)
            acks = self.acks
            self.send(lambda _i: {"op": "traffic", "rate": 0, "bytes": 0, "recipients": []})
            self.pump(10, lambda: self.acks >= acks + len(self.pipes) - len(self.gone))
            sent = self.total("sent") - sent_before
            self.pump(
                scenario.drain_seconds, lambda: self.total("received") - received_before >= sent
            )
        traffic_wall = time.monotonic() - traffic_began
        after_traffic = self.probe.after(time.monotonic())
        sent = self.total("sent") - sent_before
        received = self.total("received") - received_before
        logged = len(self.logins) - login_mark
        new_sessions = max(1, up - current)
        rss_gain = after_idle.rss_kb - baseline.rss_kb
        return StepResult(
            sessions=step.sessions,
            sessions_up=up,
            login_failures=dict(failures),
            login_wall_s=round(login_wall, 2) if login_wall is not None else None,
            login_ms=summary(self.logins[login_mark : login_mark + logged]),
            login_server_cpu_s=round(after_login.cpu_s - before.cpu_s, 2),
            login_server_cpu_ms_per_session=round(
                (after_login.cpu_s - before.cpu_s) * 1000 / new_sessions, 3
            ),
            rss_baseline_kb=baseline.rss_kb,
            rss_after_login_kb=after_idle.rss_kb,
            rss_per_session_kb=round(rss_gain / up, 1) if up else None,
            erlang_after_login=after_idle.erlang,
            messages_per_second=step.messages_per_second,
            traffic_seconds=round(traffic_wall, 2),
            sent=sent,
            received=received,
            lost=max(0, sent - received),
            duplicates=self.total("duplicates"),
            dropped=dict(self.total_counter("dropped")),
            latency_ms=summary(self.latencies[latency_mark:]),
            traffic_server_cpu_s=round(after_traffic.cpu_s - after_idle.cpu_s, 2),
            rss_after_traffic_kb=after_traffic.rss_kb,
            login_mechanisms=dict(self.total_counter("mechanisms") - mechanisms_before),
            idle_server_cpu_percent=round(100 * idle_cpu, 1),
            calls=placed,
            traffic_broker_cpu_s=(
                None
                if after_traffic.broker_cpu_s is None or after_idle.broker_cpu_s is None
                else round(after_traffic.broker_cpu_s - after_idle.broker_cpu_s, 2)
            ),
        )

    def place_calls(self) -> list[dict[str, Any]]:
        """Each step of relayed calls with the sessions online: what the generator saw, and
        the server's CPU and memory over the step. Worker reports are handled meanwhile."""
        plan = self.scenario.calls
        assert plan is not None
        endpoint = Endpoint(
            self.target.host, self.target.port, self.domain, client_tls_context(self.cafile)
        )
        service = asyncio.run(calls.turn_service(endpoint, self.caller))
        placed = []
        for count in plan.counts:
            self.step_label = f"{count} calls"
            before = self.probe.after(time.monotonic())
            began = time.monotonic()
            process, pipe = calls.start_step(service, count, plan, self.client_cpus)
            if not self.pump(calls.step_limit(plan), pipe.poll):
                process.kill()
                placed.append({"calls": count, "error": "did not finish in time"})
                break
            outcome: dict[str, Any] = pipe.recv()
            process.join(10)
            after = self.probe.after(time.monotonic())
            wall = time.monotonic() - began
            outcome["server_cpu_percent"] = round(100 * (after.cpu_s - before.cpu_s) / wall, 1)
            outcome["server_rss_kb"] = after.rss_kb
            outcome["client_cpu_percent"] = round(100 * outcome["client_cpu_s"] / wall, 1)
            placed.append(outcome)
            print(
                f"\n{count} calls: lost {outcome['lost_percent']} %, "
                f"p99 {outcome['latency_ms']['p99']} ms, server {outcome['server_cpu_percent']} % "
                f"cpu, client {outcome['client_cpu_percent']} % cpu",
                flush=True,
            )
        return placed

    def judge(self, result: StepResult) -> str:
        """Why the climb stops here, or '' to go on."""
        failures = sum(result.login_failures.values()) + sum(result.dropped.values())
        if self.scenario.stop_on_errors and (failures or result.lost):
            return f"errors at {result.sessions:,} sessions ({failures} failed, {result.lost} lost)"
        p99 = result.latency_ms.get("p99")
        bound = self.scenario.p99_bound_ms
        if bound is not None and p99 is not None and p99 > bound:
            return f"p99 {p99:.1f} ms above {bound:g} ms at {result.sessions:,} sessions"
        if result.login_wall_s is None:
            return "time bound reached while logging in"
        if time.monotonic() >= self.deadline:
            return "time bound reached"
        return ""

    def stop(self) -> None:
        self.send(lambda _i: {"op": "stop"})
        self.pump(30, lambda: len(self.finals) + len(self.gone) >= len(self.workers))
        for process in self.workers:
            process.join(10)
            if process.is_alive():
                process.kill()
        if self.tty:
            print()


def execute(
    scenario: Scenario,
    target: Target,
    domain: str,
    accounts: list[Account],
    probe: Probe,
    cafile: str | None = None,
    client_cpus: list[int] | None = None,
) -> RunResult:
    coordinator = Coordinator(scenario, target, domain, accounts, probe, cafile, client_cpus)
    try:
        result = measure_steps(coordinator)
    finally:
        coordinator.stop()
    result.timeline = coordinator.timeline
    result.wall_s = round(time.monotonic() - coordinator.started, 1)
    return result


def measure_steps(coordinator: Coordinator) -> RunResult:
    """The scenario's steps on started workers (a warm run's first logins before them), from
    a baseline taken once the server is idle; the caller stops the workers."""
    scenario, target, probe = coordinator.scenario, coordinator.target, coordinator.probe
    tokens = None
    if scenario.warm:
        tokens = coordinator.prime()
        waited = probe.settle()
        print(
            f"{target.name}: {coordinator.clients:,} clients logged in once ({tokens:,} hold a "
            f"FAST token); idle again after {waited:.0f} s",
            flush=True,
        )
    baseline = probe.after(time.monotonic())
    result = RunResult(
        scenario=scenario.name,
        description=scenario.description,
        target=target.name,
        server=probe.info,
        generator={
            "workers": len(coordinator.workers),
            "client_cpus": coordinator.client_cpus,
            "host": target.host,
            "port": target.port,
            "domain": coordinator.domain,
            "target": target.notes,
        },
        baseline={"rss_kb": baseline.rss_kb, "cpu_s": baseline.cpu_s, "erlang": baseline.erlang},
    )
    if scenario.fast:
        result.fast_tokens = tokens
    for number, step in enumerate(scenario.steps, 1):
        step_result = coordinator.run_step(number, step, baseline)
        reason = coordinator.judge(step_result)
        step_result.verdict = reason or "ok"
        result.steps.append(step_result)
        if reason:
            result.stopped_because = reason
            break
    else:
        result.stopped_because = "all steps done"
    return result
