"""pi-im-restore: a backup onto this device, typically a fresh one (a new card).

Everything is read and checked before anything of the device changes: the passphrase, every
piece of the snapshot (restic authenticates each one it decrypts), the manifest and the
copies it lists, each database's integrity and schema, the domain. What is replaced is kept
aside and put back if a step fails."""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import rabbitmq, snapshot
from .backup import STAGING, repository, unpacked
from .restic import ResticError, environment_password
from .settings import Settings


class RestoreError(Exception):
    """The backup is refused (nothing changed) or a step failed (everything put back)."""


class NotStarted(RestoreError):
    """The backup is in place, but a service did not start on it."""


@dataclass
class Backup:
    """A snapshot restored into the state directory, not yet onto the device."""

    root: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def staged(self, path: Path | str) -> Path:
        return self.root / Path(path).relative_to("/")


def fetch(settings: Settings, location: str, passphrase: str, snapshot_id: str) -> Backup:
    target = settings.state_dir / "restore"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(mode=0o700, parents=True)
    with unpacked(settings, location) as place:
        repository(settings, place, environment_password(passphrase)).restore(snapshot_id, target)
    manifest = target / (settings.state_dir / STAGING / snapshot.MANIFEST).relative_to("/")
    try:
        return Backup(target, json.loads(manifest.read_text()))
    except (OSError, ValueError) as error:
        raise RestoreError(
            f"the snapshot has no readable manifest: it is not a pi-im backup ({error})"
        ) from error


def staged_copy(backup: Backup, settings: Settings, name: str) -> Path:
    return backup.staged(settings.state_dir / STAGING) / name


def check(backup: Backup, settings: Settings) -> None:
    """Refuse, with the reason, a backup this device cannot take whole."""
    try:
        check_manifest(backup, settings)
    except (KeyError, TypeError, ValueError) as error:
        raise RestoreError(
            f"the backup's manifest lacks what this device needs ({error})"
        ) from error


def check_manifest(backup: Backup, settings: Settings) -> None:
    manifest = backup.manifest
    made = manifest.get("format")
    if not isinstance(made, int) or made > snapshot.FORMAT:
        raise RestoreError(
            f"the backup was made by a newer appliance (format {made}, this one reads "
            f"{snapshot.FORMAT}): update this device first"
        )
    databases = manifest["databases"]
    for database in settings.databases:
        entry = databases.get(database.name)
        if entry is None:
            raise RestoreError(f"the backup has no {database.name} database")
        copy = staged_copy(backup, settings, entry["file"])
        if not copy.exists() or snapshot.sha256(copy) != entry["sha256"]:
            raise RestoreError(f"the backup's copy of the {database.name} database is damaged")
        with sqlite3.connect(copy) as connection:
            (verdict,) = connection.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise RestoreError(f"the backup's {database.name} database is damaged: {verdict}")
        current = schema_on_device(database.path)
        newer = {
            part: version
            for part, version in entry["schema"].items()
            if part in current and version > current[part]
        }
        if newer:
            described = ", ".join(f"{k} {v} (here {current[k]})" for k, v in sorted(newer.items()))
            raise RestoreError(
                f"the backup's {database.name} database has a newer schema than this device "
                f"reads ({described}): update this device first"
            )
    broker = manifest["rabbitmq"]
    definitions = staged_copy(backup, settings, broker["file"])
    if not definitions.exists() or snapshot.sha256(definitions) != broker["sha256"]:
        raise RestoreError("the backup's RabbitMQ definitions are damaged")
    domain = manifest["domain"]
    if settings.configured_domain and settings.configured_domain != domain:
        raise RestoreError(
            f"the backup is of {domain}, and this device's options name "
            f"{settings.configured_domain}: set ejabberd_domain to {domain} (or leave it "
            "empty) and converge first"
        )
    for path in manifest["settings"]:
        staged, here = backup.staged(path), Path(path)
        if staged.exists() and (not here.exists() or staged.read_bytes() != here.read_bytes()):
            backup.notes.append(f"{path} differs from the backup's: this device keeps its own")


def schema_on_device(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        return snapshot.describe(connection)
    finally:
        connection.close()


def systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RestoreError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")


ASIDE = ".pi-im-before-restore"


@dataclass
class Swap:
    """What a restore replaces is renamed aside beside it, on its own file system (so owners
    and modes stay, and a mount point stays one: a directory's entries move, not the
    directory), and renamed back if a step fails."""

    # ("dir", path): its entries are in path/ASIDE; ("file", path): it is path+ASIDE;
    # ("new", path): nothing was there.
    journal: list[tuple[str, Path]] = field(default_factory=list)

    def set_aside(self, path: Path) -> None:
        if not os.path.lexists(path):
            self.journal.append(("new", path))
        elif path.is_dir() and not path.is_symlink():
            aside = path / ASIDE
            aside.mkdir(mode=0o700)
            for entry in path.iterdir():
                if entry.name != ASIDE:
                    entry.rename(aside / entry.name)
            self.journal.append(("dir", path))
        else:
            path.rename(path.with_name(path.name + ASIDE))
            self.journal.append(("file", path))

    def replace(self, path: Path, new: Path) -> None:
        self.set_aside(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if new.is_dir() and not new.is_symlink():
            shutil.copytree(new, path, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(new, path, follow_symlinks=False)

    def undo(self) -> None:
        for kind, path in reversed(self.journal):
            if kind == "dir":
                for entry in path.iterdir():
                    if entry.name != ASIDE:
                        remove(entry)
                for entry in (path / ASIDE).iterdir():
                    entry.rename(path / entry.name)
                (path / ASIDE).rmdir()
            else:
                remove(path)
                if kind == "file":
                    path.with_name(path.name + ASIDE).rename(path)
        self.journal.clear()

    def finish(self) -> None:
        for kind, path in self.journal:
            remove(path / ASIDE if kind == "dir" else path.with_name(path.name + ASIDE))
        self.journal.clear()


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def put_back(backup: Backup, settings: Settings, swap: Swap) -> None:
    databases: dict[str, dict[str, str]] = backup.manifest["databases"]
    for database in settings.databases:
        # As this device's role made it; the owner is the service's.
        mode = database.path.stat().st_mode & 0o777 if database.path.exists() else 0o640
        # A journal beside a database belongs to it alone: the old one's would corrupt the new.
        for journal in ("-wal", "-shm", "-journal"):
            swap.set_aside(database.path.with_name(database.path.name + journal))
        swap.replace(database.path, staged_copy(backup, settings, databases[database.name]["file"]))
        shutil.chown(database.path, database.owner, database.owner)
        database.path.chmod(mode)
    roots = put_back_roots(backup, settings)
    for root in roots:
        swap.replace(Path(root), backup.staged(root))
    # By name: this device's service accounts may have other numbers than the old one's.
    for path, user, group, mode in backup.manifest["ownership"]:
        if under(path, roots) and os.path.lexists(path):
            os.chown(path, uid(user), gid(group), follow_symlinks=False)
            os.chmod(path, mode)


def put_back_roots(backup: Backup, settings: Settings) -> list[str]:
    """What of the backup is put back: only what this device backs up itself, whatever else
    a backup may list."""
    mine = {str(path) for path in settings.files}
    return [path for path in backup.manifest["files"] if path in mine]


def under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def uid(user: str) -> int:
    return int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid


def gid(group: str) -> int:
    return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid


def provision(phase: str) -> None:
    """The device's own provisioning, as at boot: the restored domain settles into ejabberd's
    configuration (early), the accounts match the restored secrets (late)."""
    subprocess.run(["/usr/local/sbin/pi-im-provision", phase], check=False, timeout=1800)


def apply(backup: Backup, settings: Settings) -> None:
    services = list(dict.fromkeys(database.service for database in settings.databases))
    # Users with their password hashes, virtual hosts, permissions: added to the broker, as
    # the administrator this device has until its secrets are put back.
    definitions = staged_copy(backup, settings, backup.manifest["rabbitmq"]["file"])
    rabbitmq.definitions(settings, upload=definitions.read_bytes())
    for service in reversed(services):
        systemctl("stop", service)
    swap = Swap()
    try:
        put_back(backup, settings, swap)
    except BaseException as error:  # whatever stopped it: the device as it was, running
        swap.undo()
        unstarted = start(services)
        if not isinstance(error, OSError | LookupError):
            raise
        raise RestoreError(
            f"putting the backup in place failed, the device is as it was: {error}"
            + (f" (but {', '.join(unstarted)} did not start again)" if unstarted else "")
        ) from error
    swap.finish()
    unstarted = start(services)
    if any(path.startswith("/etc/ssh/") for path in put_back_roots(backup, settings)):
        systemctl("try-restart", "ssh")
    if unstarted:
        raise NotStarted(
            f"the backup is in place, but {', '.join(unstarted)} did not start on it: see "
            + ", ".join(f"journalctl -u {name}" for name in unstarted)
        )


def start(services: list[str]) -> list[str]:
    """The device's provisioning and services, as at boot; the services that did not start."""
    provision("early")
    unstarted = []
    for service in services:
        try:
            systemctl("start", service)
        except RestoreError:
            unstarted.append(service)
    provision("late")
    return unstarted


def main(settings: Settings, location: str, snapshot_id: str, passphrase: str) -> int:
    """0 restored; 1 refused, nothing changed; 3 failed while putting it in place, put back;
    4 restored, but a service did not start on it."""
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (settings.state_dir / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("pi-im-restore: a backup or restore is running already", file=sys.stderr)
            return 1
        changed = False
        try:
            backup = fetch(settings, location, passphrase, snapshot_id)
            check(backup, settings)
            for note in backup.notes:
                print(f"note: {note}")
            changed = True
            apply(backup, settings)
        except NotStarted as error:
            print(f"pi-im-restore: {error}", file=sys.stderr)
            return 4
        except (ResticError, RestoreError, OSError, sqlite3.Error) as error:
            print(f"pi-im-restore: {error}", file=sys.stderr)
            if not changed:
                print("pi-im-restore: nothing on this device was changed", file=sys.stderr)
            return 3 if changed else 1
        finally:
            # The restored tree holds the old device's secrets in the clear.
            shutil.rmtree(settings.state_dir / "restore", ignore_errors=True)
    manifest = backup.manifest
    print(f"restored the backup of {manifest['domain']} made {manifest['created']}")
    return 0
