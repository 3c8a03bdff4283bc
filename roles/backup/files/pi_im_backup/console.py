"""pi-im-backup console: what the admin console asks of the backups, done as root.

The console runs unprivileged and sandboxed, so it never does these itself. It drops a small
JSON request into its own spool; a path unit starts this, which answers each request beside it
and publishes what the backups page shows (console.json, nothing secret in it). The spool is the
console's: it is opened without following links, and only what is in it is read or removed."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import backup, target
from .restic import ResticError
from .settings import Settings, chosen_target

REQUEST = re.compile(r"^[0-9a-f]{32}\.json\Z")
MAX_REQUEST_BYTES = 4096
MAX_NAME = 64
# Room kept free beside a download being made, as the console refuses writes below RabbitMQ's
# limit anyway.
EXPORT_MARGIN = 512 * 2**20


class Refused(Exception):
    """The request is not done; the message says why, for the owner."""


@contextmanager
def spool_dir(path: Path, owner: int) -> Iterator[int]:
    """A directory of the console's, opened without following a link to it, and only if the
    console owns it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise Refused(f"{path} is not the console's own directory ({error.strerror})") from error
    try:
        found = os.fstat(fd)
        if found.st_uid != owner or found.st_mode & 0o022:
            raise Refused(f"{path} is not the console's own directory")
        yield fd
    finally:
        os.close(fd)


def take(requests: int, name: str) -> dict[str, Any]:
    """One request, read (a regular file, bounded in size) and removed."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=requests)
    except OSError as error:
        os.unlink(name, dir_fd=requests)
        raise Refused(f"unreadable request: {error.strerror}") from error
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_REQUEST_BYTES:
            raise Refused("a request is a small JSON file")
        raw = os.read(fd, MAX_REQUEST_BYTES + 1)
    finally:
        os.close(fd)
        os.unlink(name, dir_fd=requests)
    try:
        request = json.loads(raw)
    except ValueError as error:
        raise Refused("a request is JSON") from error
    if not isinstance(request, dict) or not isinstance(request.get("action"), str):
        raise Refused("a request names its action")
    by = request.get("by")
    if not isinstance(by, str) or not 0 < len(by) <= MAX_NAME:
        raise Refused("a request names the operator who asked")
    return request


def answer(answers: int, name: str, reply: dict[str, Any], owner: int) -> None:
    """The answer to one request, for the console alone. Created anew (never through a link
    left in its place), written whole, then given to the console, which reads and removes it."""
    temporary = f".{name}.tmp"
    with suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=answers)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(temporary, flags, 0o600, dir_fd=answers)
    try:
        os.write(fd, json.dumps(reply).encode())
        os.fchown(fd, owner, -1)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, name, src_dir_fd=answers, dst_dir_fd=answers)


def run_now() -> dict[str, Any]:
    subprocess.run(
        ["systemctl", "start", "--no-block", "pi-im-backup.service"], check=True, timeout=30
    )
    return {"message": "The backup has started: this page shows its outcome when it is done."}


def set_target(settings: Settings, location: object) -> dict[str, Any]:
    if settings.repository_fixed:
        raise Refused(
            f"the playbook sets where backups go ({settings.repository}): change "
            "backup_repository there"
        )
    if not isinstance(location, str):
        raise Refused("name where backups go")
    chosen = target.check(location)
    if chosen:
        try:
            backup.check_location(chosen)
        except backup.BackupError as error:
            raise Refused(str(error)) from error
    settings.target_file.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    temporary = settings.target_file.with_suffix(".tmp")
    temporary.write_text(chosen + "\n")
    temporary.chmod(0o644)
    os.replace(temporary, settings.target_file)
    if not chosen:
        return {"message": "No place for backups is set now: none will be made."}
    return {"message": f"Backups go to {chosen} from now on. Back up now to try it."}


def passphrase_record(settings: Settings) -> Path:
    return settings.state_dir / "passphrase-shown.json"


def show_passphrase(settings: Settings, by: str) -> dict[str, Any]:
    """The passphrase, once: whoever reads it keeps it somewhere else. After that the
    console only says who saw it and when; on the device it stays readable to root."""
    record = passphrase_record(settings)
    if record.exists():
        shown = json.loads(record.read_text())
        raise Refused(
            f"the passphrase was shown to {shown['by']} at {shown['at'][:19].replace('T', ' ')} "
            "UTC, and is shown once. On the device: pi-im-secret show "
            f"{settings.passphrase_secret}"
        )
    passphrase = settings.passphrase_file.read_text().strip()
    record.write_text(json.dumps({"by": by, "at": backup.now()}) + "\n")
    record.chmod(0o600)
    return {"message": "Write it down and keep it away from the device.", "passphrase": passphrase}


def tree_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        for file in path.rglob("*") if path.is_dir() else ():
            if file.is_file() and not file.is_symlink():
                total += file.stat().st_size
    return total


def export(settings: Settings) -> dict[str, Any]:
    """One backup into a repository of its own under export_dir, for the console to hand out
    as a download; the previous download is removed first. Encrypted with the device's
    passphrase, as every backup is: pi-im-restore takes it as it is (or its .tar)."""
    console_gid = pwd.getpwnam(settings.console_user).pw_gid
    shutil.rmtree(settings.export_dir, ignore_errors=True)
    settings.export_dir.mkdir(mode=0o750, parents=True)
    os.chown(settings.export_dir, 0, console_gid)
    domain = settings.domain_file.read_text().strip()
    name = f"pi-im-backup-{domain}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    staging = settings.state_dir / backup.STAGING
    with backup.locked(settings, wait=True):
        try:
            paths = backup.stage(settings, staging, domain)
            needed = tree_bytes(paths) + EXPORT_MARGIN
            free = shutil.disk_usage(settings.export_dir).free
            if free < needed:
                raise Refused(
                    f"not enough room on the device for a download: it needs {needed // 2**20} MB "
                    f"free and has {free // 2**20} MB. Set a disk or an SFTP server as the target"
                )
            repo = backup.repository(settings, str(settings.export_dir / name))
            repo.init()
            summary = repo.backup(paths, domain)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for directory, _, files in os.walk(settings.export_dir):
        os.chown(directory, 0, console_gid)
        os.chmod(directory, 0o750)
        for file in files:
            os.chown(os.path.join(directory, file), 0, console_gid)
            os.chmod(os.path.join(directory, file), 0o640)
    size = tree_bytes([settings.export_dir / name])
    return {
        "message": "The download is ready.",
        "export": {"name": name, "size": size, "snapshot": summary.get("snapshot_id")},
    }


def handle(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    action = request["action"]
    if action == "run":
        return run_now()
    if action == "target":
        return set_target(settings, request.get("location"))
    if action == "passphrase":
        return show_passphrase(settings, request["by"])
    if action == "export":
        return export(settings)
    raise Refused(f"no such request: {action[:32]!r}")


def published(settings: Settings, export_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the backups page shows; nothing in it is secret."""
    try:
        before = json.loads(settings.console_state.read_text())
    except (OSError, ValueError):
        before = {}
    key = settings.ssh_key_file.with_name(settings.ssh_key_file.name + ".pub")
    shown = passphrase_record(settings)
    return {
        # Read anew: a request just now may have changed it.
        "repository": settings.repository
        if settings.repository_fixed
        else chosen_target(settings.target_file),
        "fixed": settings.repository_fixed,
        "ssh_public_key": key.read_text().strip() if key.exists() else "",
        "known_hosts": known_hosts(settings.state_dir / "known_hosts"),
        "passphrase_shown": json.loads(shown.read_text()) if shown.exists() else None,
        "export": export_state if export_state is not None else before.get("export"),
    }


def known_hosts(path: Path) -> list[str]:
    """The SFTP servers' host keys kept on first use, as fingerprints."""
    if not path.exists():
        return []
    done = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=False
    )
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def publish(settings: Settings, export_state: dict[str, Any] | None = None) -> None:
    target_path = settings.console_state
    target_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    temporary = target_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(published(settings, export_state), indent=1) + "\n")
    temporary.chmod(0o644)
    os.replace(temporary, target_path)


def serve(settings: Settings) -> int:
    """Every request waiting in the spool, in the order asked; then the page's state."""
    owner = pwd.getpwnam(settings.console_user).pw_uid
    publish(settings)
    # One at a time: a second start of this waits for the first.
    with (
        spool_dir(settings.console_spool / "requests", owner) as requests,
        spool_dir(settings.console_spool / "answers", owner) as answers,
        (settings.state_dir / "console.lock").open("w") as lock,
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in sorted(os.listdir(requests), key=lambda n: _asked(requests, n)):
            if not REQUEST.match(name):
                os.unlink(name, dir_fd=requests)
                continue
            reply = respond(settings, requests, name)
            answer(answers, name, reply, owner)
            print(f"pi-im-backup console: {reply['action']} by {reply['by']}: {reply['result']}")
    return 0


def respond(settings: Settings, requests: int, name: str) -> dict[str, Any]:
    request: dict[str, Any] = {"action": "?", "by": "?"}
    try:
        request = take(requests, name)
        if request["action"] == "export":
            publish(settings, {"state": "preparing", "by": request["by"], "at": backup.now()})
        done = handle(settings, request)
        result = {"result": "done", **done}
    except (Refused, backup.BackupError, target.BadTarget) as error:
        result = {"result": "refused", "message": str(error)}
    except (ResticError, OSError, subprocess.SubprocessError) as error:
        result = {"result": "failed", "message": str(error)}
    reply = {"action": request["action"][:32], "by": request["by"], **result}
    if request["action"] == "export":
        made = reply.pop("export", None)
        state = (
            {"state": "ready", **made}
            if made
            else {"state": "failed", "message": reply.get("message")}
        )
        publish(settings, state | {"by": request["by"], "at": backup.now()})
    else:
        publish(settings)
    return reply


def _asked(directory: int, name: str) -> float:
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return 0.0
