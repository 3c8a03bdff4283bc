"""What goes into a backup besides the files themselves: each SQLite database copied online
(one read transaction, while the service writes), RabbitMQ's definitions, the settings the
device was built with, and a manifest that describes and checks them."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import socket
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from . import rabbitmq
from .settings import Database, Settings

FORMAT = 1
MANIFEST = "manifest.json"
DEFINITIONS = "rabbitmq-definitions.json"


class SnapshotError(Exception):
    pass


def copy_database(database: Database, target: Path) -> dict[str, object]:
    """SQLite's online backup in one step (pages=-1): a consistent copy however often the
    service commits meanwhile, which a file copy of a live WAL database is not. Root opens
    it; SQLite gives a journal it creates the database's owner."""
    source = sqlite3.connect(database.path, timeout=60)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise SnapshotError(f"the copy of {database.path} is damaged: {verdict}")
        schema = describe(copy)
    finally:
        copy.close()
        source.close()
    fsync(target)
    return {"file": target.name, "sha256": sha256(target), "schema": schema}


def describe(connection: sqlite3.Connection) -> dict[str, int]:
    """The schema's versions: PRAGMA user_version (the console's steps) and ejabberd's
    schema_version table (one row per module), when it has one."""
    versions = {"user_version": connection.execute("PRAGMA user_version").fetchone()[0]}
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    if "schema_version" in tables:
        versions.update(connection.execute("SELECT module, version FROM schema_version"))
    return versions


def rabbitmq_definitions(settings: Settings, target: Path) -> dict[str, object]:
    """Users (with their password hashes), virtual hosts, permissions, policies, queues and
    exchanges: what RabbitMQ needs to be the same broker. Messages are not kept."""
    target.write_bytes(rabbitmq.definitions(settings))
    fsync(target)
    return {"file": target.name, "sha256": sha256(target)}


def ownership(paths: list[Path]) -> list[list[object]]:
    """Every file and directory under the paths with its owner and group by name and its
    mode: a new device gives its service accounts other numbers."""
    entries = []
    for root in paths:
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            if path.is_symlink():
                continue
            info = path.lstat()
            entries.append(
                [str(path), user_name(info.st_uid), group_name(info.st_gid), info.st_mode & 0o7777]
            )
    return entries


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def package_versions(names: list[str]) -> dict[str, str]:
    """The installed versions of the packages (one dpkg-query; one not installed is left out)."""
    done = subprocess.run(
        ["dpkg-query", "--showformat=${Package} ${Version}\\n", "--show", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def manifest(
    domain: str,
    databases: dict[str, object],
    rabbitmq: dict[str, object],
    files: list[Path],
    recorded: list[Path],
) -> dict[str, object]:
    return {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": socket.gethostname(),
        "domain": domain,
        "packages": package_versions(["ejabberd", "rabbitmq-server", "restic"]),
        "databases": databases,
        "rabbitmq": rabbitmq,
        "files": [str(path) for path in files],
        "ownership": ownership(files),
        "settings": [str(path) for path in recorded],
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
