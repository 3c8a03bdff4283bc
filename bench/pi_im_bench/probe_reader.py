"""The controller's end of the server-side sampler (probe.py running on the target)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .target import Target, TargetError

PROBE_SOURCE = Path(__file__).with_name("probe.py").read_bytes()


@dataclass
class ServerSample:
    at: float  # controller's monotonic clock
    rss_kb: int
    cpu_s: float
    erlang: dict[str, int] | None  # erlang:memory() split, port_count, process_count, sessions
    broker_cpu_s: float | None = None  # RabbitMQ's, beside the appliance's ejabberd

    @property
    def erlang_total(self) -> int | None:
        return self.erlang.get("total") if self.erlang else None


@dataclass
class Probe:
    target: Target
    server: str
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    samples: list[ServerSample] = field(default_factory=list)
    error: str | None = None

    def start(self) -> None:
        self._process = self.target.start(["python3", "-", self.server, str(self.seconds), "1"])
        assert self._process.stdin is not None
        self._process.stdin.write(PROBE_SOURCE)
        self._process.stdin.close()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.samples and self.error is None:
            if time.monotonic() > deadline:
                raise TargetError(f"the server probe on {self.target.name} did not answer")
            time.sleep(0.1)
        if self.error:
            raise TargetError(f"server probe on {self.target.name}: {self.error}")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            record = json.loads(line)
            if record["type"] == "info":
                self.info = record
            elif record["type"] == "error":
                self.error = record["error"]
            else:
                self.samples.append(
                    ServerSample(
                        time.monotonic(),
                        record["rss_kb"],
                        record["cpu_s"],
                        record.get("erlang"),
                        record.get("broker_cpu_s"),
                    )
                )

    def latest(self) -> ServerSample:
        return self.samples[-1]

    def after(self, moment: float, timeout: float = 5) -> ServerSample:
        """The first sample taken after `moment` (waits for it, up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.samples[-1].at <= moment and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.samples[-1]

    def settle(self, timeout: float = 180, idle_share: float = 0.05) -> float:
        """Wait until the server's CPU use stays under `idle_share` of a core for 3 s (a
        restart, or an earlier run's backlog, must not count); returns the seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            recent = [s for s in self.samples if s.at >= time.monotonic() - 3.5]
            if len(recent) >= 3:
                span = recent[-1].at - recent[0].at
                if span > 0 and (recent[-1].cpu_s - recent[0].cpu_s) / span < idle_share:
                    return time.monotonic() - began
            time.sleep(0.5)
        raise TargetError(f"{self.target.name}: the server did not go idle in {timeout:.0f} s")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
