"""A scenario run in the background, for the commands that act on the target while its
traffic flows (`faults`, `wear`): its output is echoed, and they wait until messages move."""

from __future__ import annotations

import re
import subprocess
import threading

from .target import TargetError

TRAFFIC = re.compile(r"msg/s\s+(\d+)")


class ScenarioRun:
    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.flowing = threading.Event()
        self.last_traffic = ""  # the last status line with messages moving
        self._reader = threading.Thread(target=self._watch, daemon=True)
        self._reader.start()

    def _watch(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            print(line, end="", flush=True)
            match = TRAFFIC.search(line)
            if match and int(match[1]) > 0:
                self.last_traffic = line.strip()
                self.flowing.set()

    def wait_for_traffic(self, timeout: float = 900) -> None:
        if not self.flowing.wait(timeout):
            self.process.kill()
            raise TargetError("the scenario's traffic never began")

    def finish(self) -> int:
        """Wait for the scenario's end; its exit code."""
        self.process.wait()
        self._reader.join(10)
        return self.process.returncode
