"""What the playbooks manage, kept before an update and put back exactly if it fails: the
directories whole (what the failed run added is removed) and single files (removed again if
the run made them). Packages a failed run installed stay: harmless, and apt's to undo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from .settings import Settings

ARCHIVE = "snapshot.tar"
LISTING = "snapshot.json"


def take(settings: Settings) -> None:
    into = settings.state_dir
    listing = {
        "roots": {
            str(root): sorted(map(str, tree(root))) for root in settings.roots if root.exists()
        },
        "files": {str(path): path.exists() or path.is_symlink() for path in settings.files},
    }
    present = [*listing["roots"], *(p for p, found in listing["files"].items() if found)]
    subprocess.run(
        ["tar", "--create", "--file", str(into / ARCHIVE), "--numeric-owner", "--acls",
         "--xattrs", "--sparse", "--directory", "/", *(p.lstrip("/") for p in present)],
        check=True, capture_output=True,
    )  # fmt: skip
    (into / LISTING).write_text(json.dumps(listing))
    (into / ARCHIVE).chmod(0o600)


def tree(root: Path) -> list[Path]:
    found = [root]
    for directory, names, files in os.walk(root):
        found += [Path(directory, name) for name in [*names, *files]]
    return found


def put_back(settings: Settings) -> None:
    """Each root as it was: what is not in the listing is removed first, then the snapshot
    is unpacked over it; each single file as it was, or gone if it was not there."""
    listing = json.loads((settings.state_dir / LISTING).read_text())
    for root, kept in listing["roots"].items():
        keep = set(kept)
        for path in sorted(tree(Path(root)), key=lambda p: len(p.parts), reverse=True):
            if str(path) not in keep:
                remove(path)
    for path, existed in listing["files"].items():
        if not existed:
            remove(Path(path))
    subprocess.run(
        ["tar", "--extract", "--file", str(settings.state_dir / ARCHIVE), "--numeric-owner",
         "--acls", "--xattrs", "--same-permissions", "--overwrite", "--directory", "/"],
        check=True, capture_output=True,
    )  # fmt: skip


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def forget(settings: Settings) -> None:
    """The snapshot holds the device's secrets: gone as soon as it is not needed."""
    for name in (ARCHIVE, LISTING):
        remove(settings.state_dir / name)
