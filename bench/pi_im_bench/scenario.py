"""Scenarios are data: one TOML file each (bench/scenarios/), checked before anything runs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scram import MECHANISMS

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
#: Hard bounds: a run always ends, and never opens more than this.
MAX_SESSIONS = 60_000
MAX_SECONDS = 3_600

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "": {"name": str, "description": str},
    "login": {
        "sessions": int,
        "rate": (int, float),
        "pending": int,
        "roster": bool,
        "mechanism": str,
        "sessions_per_worker": int,
        "sasl2": bool,
        "fast": bool,
        "warm": bool,
    },
    "traffic": {
        "messages_per_second": (int, float),
        "message_bytes": int,
        "seconds": (int, float),
        "idle_seconds": (int, float),
        "drain_seconds": (int, float),
    },
    "bounds": {"max_seconds": (int, float), "p99_ms": (int, float), "stop_on_errors": bool},
    "climb": {"start": int, "step": int, "until": int},
    # Relayed calls placed one step after another while the sessions are online and idle.
    "calls": {
        "counts": list,
        "seconds": (int, float),
        "kbps": (int, float),
        "packet_ms": (int, float),
    },
}


#: A relay port per side of a call: the appliance's default range holds 1,000.
MAX_CALLS = 480
#: A relayed packet starts with its send time and sequence number (calls.py).
CALL_HEADER_BYTES = 12


@dataclass(frozen=True)
class CallPlan:
    """Concurrent calls per step, each step's length, and what one call sends each way."""

    counts: tuple[int, ...]
    seconds: float
    kbps: float
    packet_ms: float

    @property
    def packet_bytes(self) -> int:
        """Payload per packet for kbps at one packet every packet_ms (20 ms: Opus's frame)."""
        return max(CALL_HEADER_BYTES, round(self.kbps * 1000 / 8 * self.packet_ms / 1000))


class ScenarioError(ValueError):
    """The scenario file is not valid; the message says where."""


@dataclass(frozen=True)
class Step:
    sessions: int
    messages_per_second: float
    seconds: float


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    login_rate: float
    pending: int
    roster: bool
    mechanism: str | None
    sessions_per_worker: int
    # SASL2 with Bind2 (XEP-0388/0386); fast: every measured login uses the token its client
    # got at an earlier login (XEP-0484); warm: every client logged in once (and out) before
    # the measured logins, on the same running server: a reconnect storm after a router
    # restart, not a cold start (fast is always warm: the token comes from that login).
    sasl2: bool
    fast: bool
    warm: bool
    message_bytes: int
    idle_seconds: float
    drain_seconds: float
    max_seconds: float
    p99_bound_ms: float | None
    stop_on_errors: bool
    calls: CallPlan | None = None

    @property
    def max_sessions(self) -> int:
        return max(step.sessions for step in self.steps)

    @property
    def climbs(self) -> bool:
        return len(self.steps) > 1


def find(name_or_path: str) -> Path:
    """A scenario by name (bench/scenarios/NAME.toml) or by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SCENARIOS / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.toml")))
        raise ScenarioError(f"no scenario {name_or_path!r} (known: {known})")
    return path


def load(name_or_path: str, overrides: dict[str, Any] | None = None) -> Scenario:
    path = find(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: {error}") from error
    for dotted, value in (overrides or {}).items():
        table, _, key = dotted.rpartition(".")
        data.setdefault(table, {})[key] = value
    return parse(data, str(path))


def _check(data: dict[str, Any], where: str) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in SCHEMA or key == "":
                raise ScenarioError(f"{where}: unknown table [{key}]")
            fields = SCHEMA[key]
            for field, item in value.items():
                _check_field(fields, key, field, item, where)
        else:
            _check_field(SCHEMA[""], "", key, value, where)


def _check_field(fields: dict[str, Any], table: str, field: str, value: Any, where: str) -> None:
    name = f"{table}.{field}" if table else field
    if field not in fields:
        raise ScenarioError(f"{where}: unknown setting {name} (known: {', '.join(fields)})")
    if isinstance(value, bool) and fields[field] is not bool:
        raise ScenarioError(f"{where}: {name} must be a number, not {value}")
    if not isinstance(value, fields[field]):
        raise ScenarioError(f"{where}: {name} has the wrong type ({type(value).__name__})")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ScenarioError(f"{where}: {name} must not be negative")


def parse(data: dict[str, Any], where: str = "scenario") -> Scenario:
    _check(data, where)
    login = data.get("login", {})
    traffic = data.get("traffic", {})
    bounds = data.get("bounds", {})
    climb = data.get("climb")
    rate = float(traffic.get("messages_per_second", 0))
    seconds = float(traffic.get("seconds", 0))
    if climb is not None:
        start, step, until = climb.get("start", 0), climb.get("step", 0), climb.get("until", 0)
        if not 0 < start <= until or step <= 0:
            raise ScenarioError(f"{where}: climb needs 0 < start <= until and step > 0")
        levels = list(range(start, until + 1, step))
        if levels[-1] != until:
            levels.append(until)
        steps = tuple(Step(level, rate, seconds) for level in levels)
    else:
        if "sessions" not in login:
            raise ScenarioError(f"{where}: login.sessions is required (or a [climb] table)")
        steps = (Step(login["sessions"], rate, seconds),)
    if any(step.sessions < 2 for step in steps):
        raise ScenarioError(f"{where}: at least 2 sessions (messages need a recipient)")
    if max(step.sessions for step in steps) > MAX_SESSIONS:
        raise ScenarioError(f"{where}: more than {MAX_SESSIONS} sessions")
    mechanism = login.get("mechanism")
    # PLAIN only to measure its cost on a server that allows it (the appliance does not).
    if mechanism is not None and mechanism not in [*MECHANISMS, "PLAIN"]:
        raise ScenarioError(
            f"{where}: login.mechanism must be one of {', '.join(MECHANISMS)} or PLAIN"
        )
    fast = bool(login.get("fast", False))
    sasl2 = bool(login.get("sasl2", fast))
    if fast and not sasl2:
        raise ScenarioError(f"{where}: login.fast needs login.sasl2 (FAST lives inside SASL2)")
    if fast and mechanism == "PLAIN":
        raise ScenarioError(f"{where}: login.fast takes its first login with SCRAM, not PLAIN")
    max_seconds = float(bounds.get("max_seconds", 600))
    if not 0 < max_seconds <= MAX_SECONDS:
        raise ScenarioError(f"{where}: bounds.max_seconds must be in (0, {MAX_SECONDS}]")
    login_rate = float(login.get("rate", 500))
    pending = int(login.get("pending", 200))
    per_worker = int(login.get("sessions_per_worker", 5000))
    if login_rate <= 0 or pending <= 0 or not 0 < per_worker <= 15_000:
        raise ScenarioError(
            f"{where}: login.rate and login.pending must be positive, "
            "login.sessions_per_worker in 1..15000 (the per-process file limit is 20,000)"
        )
    message_bytes = int(traffic.get("message_bytes", 200))
    if not 64 <= message_bytes <= 65_536:
        raise ScenarioError(f"{where}: traffic.message_bytes must be in 64..65536")
    p99 = bounds.get("p99_ms")
    calls = _calls(data["calls"], where) if "calls" in data else None
    return Scenario(
        name=data.get("name", Path(where).stem),
        description=data.get("description", ""),
        steps=steps,
        login_rate=login_rate,
        pending=pending,
        roster=login.get("roster", True),
        mechanism=mechanism,
        sessions_per_worker=per_worker,
        sasl2=sasl2,
        fast=fast,
        warm=fast or bool(login.get("warm", False)),
        message_bytes=message_bytes,
        idle_seconds=float(traffic.get("idle_seconds", 5)),
        drain_seconds=float(traffic.get("drain_seconds", 5)),
        max_seconds=max_seconds,
        p99_bound_ms=float(p99) if p99 is not None else None,
        stop_on_errors=bounds.get("stop_on_errors", True),
        calls=calls,
    )


def _calls(table: dict[str, Any], where: str) -> CallPlan:
    counts = table.get("counts", [])
    if not counts or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_CALLS for n in counts
    ):
        raise ScenarioError(f"{where}: calls.counts must list call counts in 1..{MAX_CALLS}")
    plan = CallPlan(
        counts=tuple(counts),
        seconds=float(table.get("seconds", 30)),
        kbps=float(table.get("kbps", 100)),
        packet_ms=float(table.get("packet_ms", 20)),
    )
    if not (0 < plan.seconds <= 600 and 8 <= plan.kbps <= 2000 and 5 <= plan.packet_ms <= 200):
        raise ScenarioError(
            f"{where}: calls.seconds must be in (0, 600], calls.kbps in 8..2000, "
            "calls.packet_ms in 5..200"
        )
    return plan
