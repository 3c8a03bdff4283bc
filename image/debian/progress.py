"""Visible progress for long builds: numbered steps with elapsed time, a heartbeat while a
step runs, and the durations kept for the closing summary."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field


class BuildError(RuntimeError):
    """A failure with a message meant for the person running the build."""


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


@dataclass
class Progress:
    total_steps: int
    heartbeat_seconds: float = 60.0
    started: float = field(default_factory=time.monotonic)
    durations: dict[str, float] = field(default_factory=dict)
    _number: int = 0

    def say(self, message: str) -> None:
        print(f"==> [{clock(time.monotonic() - self.started):>7}] {message}", flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._number += 1
        self.say(f"step {self._number}/{self.total_steps}: {title}")
        began = time.monotonic()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                self.say(f"... still {title} ({clock(time.monotonic() - began)})")

        threading.Thread(target=beat, daemon=True).start()
        try:
            yield
        finally:
            done.set()
        self.durations[title] = time.monotonic() - began
        self.say(f"done: {title} in {clock(self.durations[title])}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def run(argv: Sequence[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command with its output shown; a failure names what was being done."""
    try:
        return subprocess.run(list(argv), check=True, text=True, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError as error:
        raise BuildError(f"{what}: {argv[0]} is not installed") from error
    except subprocess.CalledProcessError as error:
        raise BuildError(f"{what} failed (exit {error.returncode}): {' '.join(argv)}") from error


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
