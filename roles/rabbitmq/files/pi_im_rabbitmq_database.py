#!/usr/bin/python3
"""Before RabbitMQ starts (ExecStartPre): set aside a database this RabbitMQ cannot start.

RabbitMQ 4.0 boots only on a database whose node ran 3.13 with every feature flag enabled; one
from an older release (Debian bookworm's 3.10, after an upgrade to trixie) makes it fail at
every start, and with it the package's own upgrade. Such a database is moved aside, kept, and
the broker starts on a new one; the device provisions it again at boot (vhost, administrator
from the device's secrets: pi-im-rabbitmq-provision). The appliance keeps nothing else there.

    pi-im-rabbitmq-database DATA_DIR NODE        (run as the broker's user)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

# A feature flag RabbitMQ 3.13 introduced; 4.0 requires every 3.13 flag enabled.
SINCE_3_13 = "message_containers"


def installed_major() -> int:
    version = subprocess.run(
        ["dpkg-query", "--showformat=${Version}", "--show", "rabbitmq-server"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(version.split(":")[-1].split(".")[0])


def set_aside_if_unstartable(data: Path, node: str) -> Path | None:
    """Where the database went, or None when it stays (none yet, or one this release runs)."""
    flags = data / f"{node}-feature_flags"
    if not flags.is_file() or installed_major() < 4 or SINCE_3_13 in flags.read_text():
        return None
    kept = data.with_name(f"{data.name}-before-3.13-{time.strftime('%Y%m%dT%H%M%S')}")
    data.rename(kept)
    return kept


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    kept = set_aside_if_unstartable(Path(argv[1]), argv[2])
    if kept is not None:
        print(
            f"RabbitMQ database from before 3.13 set aside as {kept}: this RabbitMQ cannot "
            "start it; starting on a new one, provisioned again at boot"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
