"""pi-im-backup [run|status|snapshots|console] and pi-im-restore (wrappers in /usr/local/sbin)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from contextlib import suppress
from pathlib import Path

from . import backup, console, restore, settings
from .restic import ResticError


def read_passphrase(source: Path | None) -> str:
    """From a file, or typed in (a terminal), or piped in: never a command-line argument."""
    if source is not None:
        return source.read_text().strip()
    if sys.stdin.isatty():
        return getpass.getpass("The backup's passphrase: ").strip()
    return sys.stdin.readline().strip()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pi-im-backup", description=__doc__)
    tool = top.add_subparsers(dest="tool", required=True)
    backing = tool.add_parser("backup", help="back the device up (pi-im-backup)")
    commands = backing.add_subparsers(dest="command")
    running = commands.add_parser("run", help="one backup now (the default)")
    running.add_argument(
        "--if-unset", action="store_true", help="only record that no target is set, if none is"
    )
    commands.add_parser("status", help="the last backup's outcome, as JSON")
    listing = commands.add_parser("snapshots", help="the backups in the repository, as JSON")
    listing.add_argument("--repository", help="another repository than the device's")
    commands.add_parser("console", help="answer the console's requests (its path unit runs this)")
    restoring = tool.add_parser("restore", help="a backup onto this device (pi-im-restore)")
    restoring.add_argument(
        "--repository", help="where the backup is (default: the device's backup target)"
    )
    restoring.add_argument("--snapshot", default="latest", help="which one (default: latest)")
    restoring.add_argument(
        "--passphrase-file", type=Path, help="read the passphrase from this file, not stdin"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = settings.load()
    if args.tool == "restore":
        location = args.repository or chosen.repository
        if not location:
            print("pi-im-restore: name the backup's place with --repository", file=sys.stderr)
            return 2
        return restore.main(chosen, location, args.snapshot, read_passphrase(args.passphrase_file))
    if args.command == "status":
        path = chosen.status_file
        print(path.read_text().strip() if path.exists() else json.dumps({"result": "never"}))
        return 0
    if args.command == "console":
        return console.serve(chosen)
    if args.command == "snapshots":
        try:
            with backup.unpacked(chosen, args.repository or chosen.repository) as location:
                found = backup.repository(chosen, location).snapshots()
        except ResticError as error:
            print(f"pi-im-backup: {error}", file=sys.stderr)
            return 1
        print(json.dumps(found, indent=1))
        return 0
    if getattr(args, "if_unset", False) and chosen.repository:
        return 0
    done = backup.main(chosen)
    # A first backup to an SFTP server keeps its host key: the page shows it from now on.
    with suppress(OSError, KeyError):
        console.publish(chosen)
    return done


if __name__ == "__main__":
    sys.exit(main())
