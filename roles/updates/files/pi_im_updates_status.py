#!/usr/bin/python3
"""Write what the last unattended-upgrades run did where the console reads it.

apt's daily script (apt-daily-upgrade.service) runs unattended-upgrades and keeps its outcome
to itself, so after each run (ExecStopPost) the run's part of unattended-upgrades' own log is
read: when it started, what it installed, whether it failed and why, and whether a reboot is
pending. Prints one line saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

# The variables are for tests.
LOG = Path(
    os.environ.get("PI_IM_UPDATES_LOG", "/var/log/unattended-upgrades/unattended-upgrades.log")
)
STATUS = Path(os.environ.get("PI_IM_UPDATES_STATUS", "/var/lib/pi-im/updates/status.json"))
REBOOT_REQUIRED = Path(os.environ.get("PI_IM_REBOOT_REQUIRED", "/run/reboot-required"))
START = "Starting unattended upgrades script"
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (\w+) (.*)$")
# How many error lines are kept: the first ones say why; dpkg's output follows them.
ERRORS = 5


def last_run(log: str) -> list[tuple[str, str, str]] | None:
    """The last run's lines as (time, level, message), or None if it never ran."""
    lines = [m.groups() for m in map(LINE.match, log.splitlines()) if m]
    starts = [i for i, (_, _, message) in enumerate(lines) if message == START]
    return lines[starts[-1] :] if starts else None


def outcome(run: list[tuple[str, str, str]]) -> dict[str, object]:
    messages = [message for _, _, message in run]
    packages: list[str] = []
    for message in messages:
        if message.startswith("Packages that will be upgraded:"):
            packages = message.split(":", 1)[1].split()
    if any(m.startswith("Installing the upgrades failed") for m in messages):
        result = "failed"
    elif any(m.startswith("All upgrades installed") for m in messages):
        result = "installed"
    elif any(m.startswith("No packages found that can be upgraded") for m in messages):
        result = "nothing"
    else:
        # Stopped before its verdict (a lock held by someone else, power lost).
        result = "unfinished"
    errors = [" ".join(m.split())[:300] for _, level, m in run if level in ("ERROR", "CRITICAL")]
    return {
        "ran": run[0][0].replace(" ", "T"),
        "result": result,
        "packages": packages,
        "errors": errors[:ERRORS],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reboot-time", help="when a pending reboot is made (HH:MM)")
    parser.add_argument("--off", action="store_true", help="unattended updates are off")
    args = parser.parse_args()
    try:
        run = last_run(LOG.read_text(errors="replace"))
    except FileNotFoundError:
        run = None
    status: dict[str, object] = outcome(run) if run else {"ran": None, "result": "not yet"}
    # Updates a person installs by hand still land in the log; the console says they are off.
    status["unattended"] = not args.off
    pending = REBOOT_REQUIRED.exists()
    status["reboot_pending"] = pending
    status["reboot_at"] = args.reboot_time if pending else None
    STATUS.parent.mkdir(parents=True, exist_ok=True)
    partial = STATUS.with_suffix(".partial")
    partial.write_text(json.dumps(status, indent=2) + "\n")
    partial.chmod(0o644)
    partial.replace(STATUS)
    installed = status.get("packages") or []
    print(f"updates: {status['result']}, {len(installed)} packages, reboot pending: {pending}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
