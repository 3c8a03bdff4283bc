#!/usr/bin/python3
"""Per-device secrets of the pi-im appliance.

A secret is created on this device the first time it is asked for and kept, root-only, in the
directory the base role's settings name (`secrets_dir` in /etc/pi-im/base.json). Nothing prints
a secret unless `show` is asked for explicitly, so callers (Ansible, first boot) can ensure
secrets without ever seeing them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from pathlib import Path

# Written by the base role; the environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_BASE_SETTINGS", "/etc/pi-im/base.json"))
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def secrets_dir() -> Path:
    return Path(json.loads(SETTINGS.read_text())["secrets_dir"])


def secret_path(name: str) -> Path:
    if not NAME.match(name):
        raise SystemExit(f"pi-im-secret: invalid name {name!r} (use a-z, 0-9 and '-')")
    return secrets_dir() / name


def ensure(name: str, length: int) -> bool:
    """Create the secret if it is missing; True when it was created."""
    path = secret_path(name)
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # URL-safe so the value can go into configs, URLs and command lines unquoted.
    value = secrets.token_urlsafe(length)
    tmp = path.with_name(f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("ensure", "path", "show"):
        cmd = sub.add_parser(command)
        cmd.add_argument("name")
    sub.choices["ensure"].add_argument(
        "--length", type=int, default=24, help="random bytes before encoding (default 24)"
    )
    args = parser.parse_args()

    if args.command == "ensure":
        print("created" if ensure(args.name, args.length) else "exists")
    elif args.command == "path":
        print(secret_path(args.name))
    else:
        path = secret_path(args.name)
        if not path.exists():
            print(f"pi-im-secret: no secret named {args.name!r}", file=sys.stderr)
            return 1
        print(path.read_text().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
