"""pi-im-update --from FILE|https://URL [--sha256 HEX] [--reinstall]; pi-im-update status.

The archive is fetched and checked first (nothing changes if it is not a newer release of
pi-im-appliance); then pi-im-update.service applies it, so that a lost SSH session does not
stop it halfway. Exit: 0 applied; 1 refused, nothing changed; 3 failed, everything put back
as it was; 4 failed, and not everything came back (see the status)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from . import update
from .release import Refused
from .settings import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pi-im-update", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="update", choices=["update", "status", "apply"]
    )
    parser.add_argument(
        "--from", dest="source", help="the release archive: a file or an https:// address"
    )
    parser.add_argument("--sha256", default="", help="the archive's sha256 (from its .sha256 file)")
    parser.add_argument(
        "--reinstall", action="store_true", help="apply the release the device runs again"
    )
    args = parser.parse_args(argv)
    settings = load()
    if args.command == "status":
        path = settings.status_file
        print(path.read_text().strip() if path.exists() else json.dumps({"result": "never"}))
        return 0
    if args.command == "apply":
        # pi-im-update.service: the release staged by the command below.
        with update.locked(settings):
            status = update.apply(settings)
        return 0 if status["result"] == "ok" else 1
    if not args.source:
        parser.error("name the release with --from")
    try:
        with update.locked(settings):
            new = update.stage(settings, args.source, args.sha256, args.reinstall)
    except Refused as refused:
        print(f"pi-im-update: {refused}; nothing on the device was changed", file=sys.stderr)
        return 1
    print(f"pi-im-update: applying {new.version} (journalctl -fu pi-im-update follows it)")
    subprocess.run(["systemctl", "start", "pi-im-update.service"], check=False)
    status = json.loads(settings.status_file.read_text())
    print(json.dumps(status, indent=1))
    if status.get("result") == "ok":
        return 0
    return 3 if status.get("back") else 4


if __name__ == "__main__":
    sys.exit(main())
