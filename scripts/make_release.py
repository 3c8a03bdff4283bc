"""make release: one archive a device applies to itself with pi-im-update.

It holds what a device needs to run the playbooks locally and nothing to fetch: the project's
playbooks, roles and console source as committed, RELEASE.json (the version the device records),
the console's wheels for both CPUs a device has (aarch64 Pis, x86_64 machines and containers) with
the markers the admin_service role checks, and Converse, checked against its pinned sha512.

    python scripts/make_release.py [--version V] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# What the device runs: the playbooks, their roles and the console they install.
SHIPPED = ("ansible.cfg", "playbooks", "roles", "admin", "plugins")
# Debian trixie's Python on every device that updates itself.
PYTHON = "3.13"
ARCHITECTURES = ("aarch64", "x86_64")
# Reproducible wheels and archive: the same tree gives the same bytes.
EPOCH = 315532800


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def identity(version: str) -> dict[str, str]:
    """As the release role records a checkout's: the commit's day and hash."""
    commit, day = git("log", "-1", "--format=%H %cs").split()
    changed = "+changed" if git("status", "--porcelain", "--untracked-files=no") else ""
    made = f"{day.replace('-', '.')}+{commit[:7]}{changed}"
    return {"version": version or made, "commit": commit, "date": day}


def copy_tree(into: Path) -> None:
    """The shipped paths as they are on disk: what git tracks, and new files it does not
    ignore (a release made before they are committed has them too)."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SHIPPED)
    for name in listed.split("\0"):
        if name and (REPO / name).is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)


def source_fingerprint(admin: Path) -> str:
    """The admin_service role's fingerprint of the console's source (the same pipeline)."""
    return subprocess.run(
        "set -o pipefail; find pyproject.toml pi_im_admin -type f ! -path '*/__pycache__/*' "
        "-print0 | LC_ALL=C sort -z | xargs -0 sha1sum | sha1sum | cut -d' ' -f1",
        shell=True,
        executable="/bin/bash",
        cwd=admin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def dependencies_hash(admin: Path) -> str:
    """The role's hash of the dependency pins (its regex_search, then hash('sha1'))."""
    found = re.search(r"(?s)dependencies = \[.*?\]", (admin / "pyproject.toml").read_text())
    assert found, "admin/pyproject.toml names no dependencies"
    return hashlib.sha1(found.group(0).encode()).hexdigest()


def wheels(tree: Path) -> None:
    """The console's wheel and its pinned dependencies for each CPU, with the role's markers,
    so the device's run finds them made and fetches nothing."""
    admin = tree / "admin"
    for architecture in ARCHITECTURES:
        cache = tree / ".cache" / "wheels" / f"{architecture}-py{PYTHON}"
        cache.mkdir(parents=True)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        # Built from a copy: the build leaves its own files beside the source.
        with tempfile.TemporaryDirectory() as scratch:
            source = shutil.copytree(admin, Path(scratch) / "admin")
            subprocess.run(
                [*pip, "wheel", "--no-deps", "--wheel-dir", str(cache), str(source)],
                env=os.environ | {"SOURCE_DATE_EPOCH": str(EPOCH)},
                check=True,
            )
        (wheel,) = cache.glob("pi_im_admin-*.whl")
        platform = ["--platform", f"manylinux2014_{architecture}", "--python-version", PYTHON]
        subprocess.run(
            [*pip, "download", "--only-binary=:all:", *platform, "--implementation", "cp",
             "--dest", str(cache), str(wheel)],
            check=True,
        )  # fmt: skip
        cache.with_name(f"{cache.name}.source-{source_fingerprint(admin)}").touch()
        cache.with_name(f"{cache.name}.deps-{dependencies_hash(admin)}").touch()


def converse(tree: Path) -> None:
    """Converse as the ejabberd role pins it, from the project's cache or npm's registry."""
    pinned = yaml.safe_load((REPO / "roles/ejabberd/vars/main.yml").read_text())[
        "__ejabberd_converse"
    ]
    name = f"converse.js-{pinned['version']}.tgz"
    cached = REPO / ".cache" / "web-chat" / name
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(pinned["url"], timeout=120) as response:
            cached.write_bytes(response.read())
    if hashlib.sha512(cached.read_bytes()).hexdigest() != pinned["sha512"].replace(" ", ""):
        raise SystemExit(f"{cached}: not the Converse the ejabberd role pins (sha512 differs)")
    target = tree / ".cache" / "web-chat" / name
    target.parent.mkdir(parents=True)
    shutil.copy2(cached, target)


def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = EPOCH
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="", help="the version to record (default: from git)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "release")
    args = parser.parse_args(argv)
    release = identity(args.version)
    name = f"pi-im-appliance-{release['version']}"
    staging = args.out / name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    copy_tree(staging)
    (staging / "RELEASE.json").write_text(json.dumps(release, indent=1) + "\n")
    wheels(staging)
    converse(staging)
    archive = args.out / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as out:
        for path in sorted(staging.rglob("*")):
            out.add(
                path, arcname=f"{name}/{path.relative_to(staging)}", recursive=False, filter=reset
            )
    shutil.rmtree(staging)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    archive.with_name(archive.name + ".sha256").write_text(f"{digest}  {archive.name}\n")
    print(f"{archive} ({archive.stat().st_size // 2**20} MB), sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
