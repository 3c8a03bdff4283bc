#!/usr/bin/python3
"""Per-device provisioning of the pi-im appliance, in two phases.

`early` runs before the services start (TLS keys, SSH host keys), `late` once they run
(accounts, users). Each role drops its steps into <provision_dir>/<phase>/ (`provision_dir` in
/etc/pi-im/base.json, written by the base role); they run in name order, are idempotent, and
print what they changed. The first-boot units run both
phases on every boot of a baked image (and of a live device: nothing to do then); Ansible's
live path runs the same steps role by role.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Written by the base role; the environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_BASE_SETTINGS", "/etc/pi-im/base.json"))


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("early", "late"):
        print("usage: pi-im-provision early|late", file=sys.stderr)
        return 2
    phase = Path(json.loads(SETTINGS.read_text())["provision_dir"]) / sys.argv[1]
    steps = sorted(p for p in phase.iterdir() if p.is_file()) if phase.is_dir() else []
    failed = []
    for step in steps:
        result = subprocess.run([str(step)], capture_output=True, text=True, check=False)
        # One line per step, however many a step prints: its lines are what tests and the
        # journal read as "phase/step: ok|FAILED ...".
        # (A space between the two streams: stdout need not end its last line.)
        output = " ".join(f"{result.stdout}\n{result.stderr}".split())
        status = "ok" if result.returncode == 0 else "FAILED"
        print(f"{sys.argv[1]}/{step.name}: {status} {output}".rstrip(), flush=True)
        if result.returncode != 0:
            failed.append(step.name)
    if failed:
        print(f"failed steps: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
