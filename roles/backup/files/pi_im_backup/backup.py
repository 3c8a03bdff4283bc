"""pi-im-backup: one snapshot of the device's state into the repository, then the retention.

Its outcome is kept in the state directory's status.json for the console."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from . import snapshot
from .restic import Repository, ResticError, WrongPassphrase, file_password
from .settings import Settings

STAGING = "snapshot"
SAFE_EXTRACTION = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class BackupError(Exception):
    pass


NO_TARGET = (
    "no backup target is set: plug in a disk and choose a directory on it, or an SFTP server "
    "(sftp:user@host:/path), on the console's Backups page or with backup_repository"
)


def repository(
    settings: Settings, location: str | None = None, password: dict[str, str] | None = None
) -> Repository:
    """The device's repository, or another place (a restore's); the device's passphrase
    unless another is given."""
    return Repository(
        location=location or settings.repository,
        password=password or file_password(settings.passphrase_file),
        cache_dir=settings.state_dir / "cache",
        ssh_key=settings.ssh_key_file,
        known_hosts=settings.state_dir / "known_hosts",
    )


@contextmanager
def unpacked(settings: Settings, location: str) -> Iterator[str]:
    """A download from the console (a .tar of one repository) is read from a copy unpacked
    into the state directory; any other location as it is."""
    if not (location.endswith(".tar") and Path(location).is_file()):
        yield location
        return
    into = settings.state_dir / "unpacked"
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(mode=0o700, parents=True)
    try:
        try:
            with tarfile.open(location) as archive:
                # Only files and directories, nothing outside: checked here as well, for a
                # Python without tarfile's filters.
                members = archive.getmembers()
                for member in members:
                    parts = Path(member.name).parts
                    if (
                        not (member.isfile() or member.isdir())
                        or member.name.startswith("/")
                        or ".." in parts
                    ):
                        raise tarfile.TarError(f"{member.name!r} is not part of a backup")
                archive.extractall(into, members, **SAFE_EXTRACTION)
        except (tarfile.TarError, OSError) as error:
            raise ResticError(
                f"{location} is not a whole download of a backup ({error})"
            ) from error
        tops = list(into.iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise ResticError(f"{location} holds no backup downloaded from the console")
        yield str(tops[0])
    finally:
        shutil.rmtree(into, ignore_errors=True)


def mount_of(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> tuple[str, str]:
    """The mount a path is on: (its mount point, the file system's device MAJOR:MINOR)."""
    mounts = [line.split() for line in mountinfo.read_text().splitlines()]
    resolved = str(path.resolve())
    fields = max(
        (f for f in mounts if resolved == f[4] or resolved.startswith(f[4].rstrip("/") + "/")),
        key=lambda f: len(f[4]),
    )
    return fields[4], fields[2]


def disk_of(device: str, sys_block: Path = Path("/sys/dev/block")) -> str:
    """The whole disk a partition is on (mmcblk0 for 179:2); a file system on no block
    device (overlay, tmpfs) is its own."""
    node = sys_block / device
    if not node.exists():
        return device
    real = node.resolve()
    return real.parent.name if (real / "partition").exists() else real.name


def check_location(
    location: str,
    mountinfo: Path = Path("/proc/self/mountinfo"),
    sys_block: Path = Path("/sys/dev/block"),
) -> None:
    """A directory repository must be on a disk of its own: a backup on the device's own
    card dies with it (another partition of it included), and a disk that is not plugged in
    leaves its empty mount point on the card."""
    if not location:
        raise BackupError(NO_TARGET)
    if location.startswith("sftp:"):
        return
    path = Path(location)
    if not path.is_absolute():
        raise BackupError(f"{location}: a backup directory is an absolute path")
    _, device = mount_of(path, mountinfo)
    _, root = mount_of(Path("/"), mountinfo)
    if disk_of(device, sys_block) == disk_of(root, sys_block):
        raise BackupError(
            f"{location} is on the device's own card, not on a disk of its own: "
            "is the disk plugged in and mounted?"
        )


def stage(settings: Settings, staging: Path, domain: str) -> list[Path]:
    """The databases and the broker's definitions into staging; the paths to back up."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    databases = {
        database.name: snapshot.copy_database(database, staging / f"{database.name}.db")
        for database in settings.databases
    }
    rabbitmq = snapshot.rabbitmq_definitions(settings, staging / snapshot.DEFINITIONS)
    files = [path for path in settings.files if path.exists()]
    recorded = [path for path in settings.recorded if path.exists()]
    manifest = snapshot.manifest(domain, databases, rabbitmq, files, recorded)
    (staging / snapshot.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return [staging, *files, *recorded]


def run(settings: Settings) -> dict[str, object]:
    """One backup; what the console shows of it. Raises BackupError or ResticError."""
    check_location(settings.repository)
    repo = repository(settings)
    try:
        found = repo.exists()
    except WrongPassphrase as error:
        raise BackupError(
            f"{settings.repository} holds backups this device's passphrase does not open "
            "(another device's?): choose another place"
        ) from error
    if not found:
        if not repo.is_sftp:
            Path(settings.repository).mkdir(mode=0o700, parents=True, exist_ok=True)
        repo.init()
    staging = settings.state_dir / STAGING
    # The domain names the device: its snapshots are grouped (and pruned) under it.
    domain = settings.domain_file.read_text().strip()
    try:
        summary = repo.backup(stage(settings, staging, domain), domain)
        repo.forget(domain, settings.keep)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "snapshot": summary.get("snapshot_id"),
        "files": summary.get("total_files_processed"),
        "size": summary.get("total_bytes_processed"),
        "added": summary.get("data_added"),
    }


def write_status(settings: Settings, status: dict[str, object]) -> None:
    """This run's outcome, and when the last good backup was made (kept through failures)."""
    target = settings.status_file
    try:
        before = json.loads(target.read_text())
    except (OSError, ValueError):
        before = {}
    last_good = status.get("finished") if status["result"] == "ok" else before.get("last_good")
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(status | {"last_good": last_good}, indent=1) + "\n")
    temporary.chmod(0o644)
    os.replace(temporary, target)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Busy(Exception):
    pass


@contextmanager
def locked(settings: Settings, wait: bool = False) -> Iterator[None]:
    """One backup, restore or download at a time: they share the staging directory."""
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (settings.state_dir / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as error:
            raise Busy("a backup or restore is running already") from error
        yield


def main(settings: Settings) -> int:
    try:
        with locked(settings):
            status = backed_up(settings)
    except Busy as error:
        print(f"pi-im-backup: {error}")
        return 1
    print(json.dumps(status))
    return 0 if status["result"] in ("ok", "unset") else 1


def backed_up(settings: Settings) -> dict[str, object]:
    """One run, its outcome written for the console ("running" while it runs)."""
    began = time.monotonic()
    status: dict[str, object] = {"started": now(), "repository": settings.repository}
    if not settings.repository:
        # Not a failure: the owner has not chosen a target yet (the console asks).
        status |= {"result": "unset", "message": NO_TARGET}
    else:
        write_status(settings, status | {"result": "running"})
        try:
            status |= run(settings) | {"result": "ok"}
        except (
            BackupError,
            ResticError,
            snapshot.SnapshotError,
            OSError,
            sqlite3.Error,
        ) as error:
            status |= {"result": "failed", "message": str(error)}
    status |= {"finished": now(), "seconds": round(time.monotonic() - began, 1)}
    write_status(settings, status)
    return status
