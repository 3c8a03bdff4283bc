"""The backups page: what the device's backup program publishes, and requests to it.

The console runs unprivileged and cannot read the device's secrets, start a backup or write
where backups go. It asks: one small JSON request in its spool, which a path unit hands to
`pi-im-backup console` (root); that answers beside it. A request written whole appears at once
(renamed into place), so the device never reads half of one."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import tarfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, NotFound, Problem, Unavailable
from .dashboard import status_file

if TYPE_CHECKING:
    from ..context import Context
    from ..security import Principal
    from ..settings import Settings

# What the device answers within: everything but a download takes well under a second.
ANSWER_SECONDS = 20.0
MAX_TARGET = 255
EXPORT_NAME = re.compile(r"^pi-im-backup-[a-z0-9.-]{1,200}-\d{8}-\d{6}\Z")


def state(settings: Settings) -> dict[str, Any]:
    """Where backups go and who may change that, the device's SSH key for an SFTP server,
    whether the passphrase was shown, the last backup and the download (none secret)."""
    published = status_file(settings.backup_console_state) or {}
    return {
        "repository": published.get("repository", ""),
        "fixed": bool(published.get("fixed")),
        "ssh_public_key": published.get("ssh_public_key", ""),
        "known_hosts": published.get("known_hosts", []),
        "passphrase_shown": published.get("passphrase_shown"),
        "export": published.get("export"),
        "last": status_file(settings.backup_status),
        "published": bool(published),
    }


def _ask(settings: Settings, action: str, by: str, **fields: str) -> str:
    spool = settings.backup_spool
    request = secrets.token_hex(16)
    temporary = spool / f".{request}.tmp"
    temporary.write_text(json.dumps({"action": action, "by": by, **fields}))
    os.replace(temporary, spool / "requests" / f"{request}.json")
    return request


async def _answer(settings: Settings, request: str) -> dict[str, Any]:
    path = settings.backup_spool / "answers" / f"{request}.json"
    deadline = time.monotonic() + ANSWER_SECONDS
    while time.monotonic() < deadline:
        try:
            reply = json.loads(path.read_text())
        except FileNotFoundError:
            await asyncio.sleep(0.1)
            continue
        path.unlink()
        return reply if isinstance(reply, dict) else {}
    raise Unavailable(
        "The device did not answer the request (is pi-im-backup-console.path active?). "
        "Nothing was changed."
    )


async def ask(ctx: Context, actor: Principal, action: str, **fields: str) -> dict[str, Any]:
    """One request, and the device's answer; a refusal is a Problem the page shows."""
    try:
        request = _ask(ctx.settings, action, actor.name, **fields)
    except OSError as error:
        raise Unavailable(f"The request could not be written: {error.strerror}.") from error
    reply = await _answer(ctx.settings, request)
    if reply.get("result") != "done":
        message = str(reply.get("message") or "the device gave no reason")
        raise Conflict(message[:1].upper() + message[1:] + ".")
    return reply


async def run_now(ctx: Context, actor: Principal) -> str:
    reply = await ask(ctx, actor, "run")
    ctx.db.audit(actor.name, "backup.run", state(ctx.settings)["repository"])
    return str(reply.get("message", ""))


async def set_target(ctx: Context, actor: Principal, location: str) -> str:
    if len(location) > MAX_TARGET:
        raise Problem(f"A backup target is at most {MAX_TARGET} characters.")
    reply = await ask(ctx, actor, "target", location=location)
    ctx.db.audit(actor.name, "backup.target", location.strip() or "(none)")
    return str(reply.get("message", ""))


async def show_passphrase(ctx: Context, actor: Principal) -> str:
    """The passphrase, which the device gives out once; the audit says who saw it."""
    reply = await ask(ctx, actor, "passphrase")
    ctx.db.audit(actor.name, "backup.passphrase", "shown")
    return str(reply["passphrase"])


def prepare_download(ctx: Context, actor: Principal) -> None:
    """A download takes as long as a backup: the page shows it when it is ready."""
    found = state(ctx.settings)["export"] or {}
    if found.get("state") == "preparing":
        raise Conflict("A download is being prepared already.")
    try:
        _ask(ctx.settings, "export", actor.name)
    except OSError as error:
        raise Unavailable(f"The request could not be written: {error.strerror}.") from error
    ctx.db.audit(actor.name, "backup.download", "asked")


def download(ctx: Context, actor: Principal, name: str) -> tuple[str, Iterator[bytes]]:
    """The download the device made, as one .tar streamed from its files."""
    found = state(ctx.settings)["export"] or {}
    directory = ctx.settings.backup_export_dir / name
    if (
        found.get("state") != "ready"
        or found.get("name") != name
        or not EXPORT_NAME.match(name)
        or not directory.is_dir()
    ):
        raise NotFound("No such download: prepare a new one.")
    ctx.db.audit(actor.name, "backup.download", name)
    return f"{name}.tar", tar_stream(directory, name)


class _Pieces:
    """A write-only file for tarfile whose writes are handed on as they come."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.pieces)
        self.pieces.clear()
        return data


def tar_stream(directory: Path, name: str) -> Iterator[bytes]:
    """A tar of the directory, handed on file by file: memory holds one file of it at most
    (restic's pack files, 16 MB by default), never the whole download."""
    out = _Pieces()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        for path in sorted([directory, *directory.rglob("*")]):
            info = archive.gettarinfo(path, arcname=f"{name}/{path.relative_to(directory)}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with path.open("rb") as content:
                    archive.addfile(info, content)
            elif info.isdir():
                archive.addfile(info)
            yield out.take()
    yield out.take()


def forget_answers(settings: Settings, older_than: float = 3600.0) -> None:
    """Answers nobody read (the page was closed while it waited)."""
    answers = settings.backup_spool / "answers"
    with suppress(OSError):
        for path in answers.iterdir():
            if time.time() - path.stat().st_mtime > older_than:
                path.unlink()
