"""A release archive: fetched, checked, unpacked; and which release is newer."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# As the release role records one: the commit's day, then the commit (and +changed).
VERSION = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})\+[0-9A-Za-z.+-]{1,64}\Z")
MAX_ARCHIVE = 512 * 2**20
SAFE_EXTRACTION = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class Refused(Exception):
    """The release is not applied; nothing on the device changed."""


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    date: str

    @property
    def day(self) -> tuple[int, int, int]:
        found = VERSION.match(self.version)
        return (int(found[1]), int(found[2]), int(found[3])) if found else (0, 0, 0)


def read(path: Path) -> Release:
    raw = json.loads(path.read_text())
    return Release(
        str(raw.get("version", "")), str(raw.get("commit", "")), str(raw.get("date", ""))
    )


def fetch(source: str, into: Path) -> Path:
    """The archive from a file on the device or an HTTPS address, bounded in size."""
    into.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if source.startswith("https://"):
        try:
            with urllib.request.urlopen(source, timeout=300) as response, into.open("wb") as out:
                copied = 0
                while piece := response.read(1 << 20):
                    copied += len(piece)
                    if copied > MAX_ARCHIVE:
                        raise Refused(f"{source} is larger than {MAX_ARCHIVE // 2**20} MB")
                    out.write(piece)
        except OSError as error:
            raise Refused(f"{source} could not be fetched: {error}") from error
        return into
    if "://" in source:
        raise Refused(f"{source}: a release comes from a file or an https:// address")
    path = Path(source)
    if not path.is_file():
        raise Refused(f"{source}: no such file")
    if path.stat().st_size > MAX_ARCHIVE:
        raise Refused(f"{source} is larger than {MAX_ARCHIVE // 2**20} MB")
    shutil.copyfile(path, into)
    return into


def check_digest(archive: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with archive.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if sha256 and digest.hexdigest() != sha256.strip().lower():
        raise Refused(
            f"the archive's sha256 is {digest.hexdigest()}, not the {sha256.strip()} given: "
            "it is not the release you meant, or it came damaged"
        )


def unpack(archive: Path, into: Path) -> tuple[Path, Release]:
    """The archive's one top directory, unpacked (files and directories only, nothing
    outside it), and the release it says it is."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(mode=0o700, parents=True)
    try:
        with tarfile.open(archive) as source:
            members = source.getmembers()
            for member in members:
                parts = Path(member.name).parts
                if (
                    not (member.isfile() or member.isdir())
                    or member.name.startswith("/")
                    or ".." in parts
                ):
                    raise Refused(f"{member.name!r} is not part of a release")
            source.extractall(into, members, **SAFE_EXTRACTION)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise Refused(f"the archive is not a whole release ({error})") from error
    tops = list(into.iterdir())
    if len(tops) != 1 or not (tops[0] / "RELEASE.json").is_file():
        raise Refused("the archive is not a release of pi-im-appliance (no RELEASE.json)")
    tree = tops[0]
    for needed in ("playbooks/site.yml", "ansible.cfg", "roles"):
        if not (tree / needed).exists():
            raise Refused(f"the release has no {needed}")
    found = read(tree / "RELEASE.json")
    if not VERSION.match(found.version):
        raise Refused(f"the release's version {found.version!r} is not one pi-im-update reads")
    return tree, found


def check_newer(new: Release, installed: Release | None, reinstall: bool) -> None:
    if installed is None or reinstall:
        return
    if new.version == installed.version:
        raise Refused(
            f"{new.version} is the release the device runs (--reinstall applies it again)"
        )
    if new.day < installed.day:
        raise Refused(
            f"{new.version} is older than {installed.version}, which the device runs: going back "
            "is not done by an update (a backup of the older release, restored, is)"
        )
