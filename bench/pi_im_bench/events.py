"""The event bus during a run: a queue of the benchmark's own counts the message.chat events
ejabberd published, so a run says whether every message it sent became exactly one event
(events_probe.py does the counting on the target)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .target import Target

EVENTS_SOURCE = Path(__file__).with_name("events_probe.py").read_bytes()


@dataclass
class EventCount:
    target: Target

    def _call(self, *args: str, timeout: float = 180) -> dict[str, Any]:
        return json.loads(self.target.run(["python3", "-", *args], EVENTS_SOURCE, timeout))

    def bind(self) -> bool:
        """An empty queue bound before the run; False on a server without the event bus."""
        return bool(self._call("bind")["available"])

    def tally(self, sent: int, settle_seconds: float = 60) -> dict[str, int]:
        """The events for `sent` messages, once their number stops moving."""
        published = int(self._call("count", str(settle_seconds))["events"])
        return {
            "sent": sent,
            "published": published,
            "lost": max(0, sent - published),
            "repeated": max(0, published - sent),
        }

    def remove(self) -> None:
        self._call("remove")
