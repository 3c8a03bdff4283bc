#!/usr/bin/python3
"""Once cloud-init has applied Raspberry Pi Imager's customisation, take its secrets off the
boot partition: user-data holds the user's password hash, network-config the Wi-Fi key, and
the FAT partition is readable by whoever holds the card. user-data stays as an empty
cloud-config (NoCloud keeps its instance, so nothing runs again); network-config goes (its
netplan file on the root file system is what the device uses from then on).

    pi-im-imager-cleanup BOOT_DIR DONE_MARKER
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EMPTY = "#cloud-config\n# Applied at first boot, then emptied by pi-im-imager-cleanup.\n"


def clean(boot: Path, done: Path) -> list[str]:
    if not done.exists():
        return []  # cloud-init has not finished: leave everything for it
    actions = []
    user_data = boot / "user-data"
    if user_data.exists() and user_data.read_text(errors="replace") != EMPTY:
        user_data.write_text(EMPTY)
        actions.append("emptied user-data")
    network_config = boot / "network-config"
    if network_config.exists():
        network_config.unlink()
        actions.append("removed network-config")
    if actions:
        # FAT has no journal: make the change stick before anyone pulls the plug.
        os.sync()
    return actions


def main() -> int:
    boot, done = (Path(arg) for arg in sys.argv[1:3])
    for action in clean(boot, done):
        print(f"{action} on {boot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
