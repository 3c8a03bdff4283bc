"""Reuse the initramfs of an earlier build when nothing that goes into it has changed.

`update-initramfs` under qemu-user takes 6-20 minutes and, for the appliance, its result only
depends on the kernel, the initramfs hooks and configuration, the module and udev settings,
the firmware and the few packages whose programs the hooks copy: all of them come from the
bootstrap, which is itself cached. So the initrd is cached by a fingerprint of exactly those
inputs, read from the root tree by the build host (no emulation); any change, such as a role
that adds a hook or a newer kernel, makes a new fingerprint and a real `update-initramfs`.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

# Trees whose files decide what the initrd holds (paths relative to the root tree).
INPUT_TREES = (
    "etc/initramfs-tools",
    "usr/share/initramfs-tools",
    "usr/lib/modules",
    "etc/modprobe.d",
    "usr/lib/modprobe.d",
    "usr/lib/firmware",
    "etc/udev/rules.d",
    "usr/lib/udev/rules.d",
)
# Packages whose programs and libraries the hooks copy into the initrd.
INPUT_PACKAGES = (
    "initramfs-tools",
    "initramfs-tools-core",
    "busybox",
    "klibc-utils",
    "libklibc",
    "udev",
    "kmod",
    "libkmod2",
    "libc6",
    "zstd",
    "libzstd1",
)


def kernel_versions(rootfs: Path) -> list[str]:
    return sorted(path.name for path in (rootfs / "usr/lib/modules").iterdir() if path.is_dir())


def installed_versions(rootfs: Path) -> dict[str, str]:
    """Package → version for what dpkg has installed in the root tree."""
    versions: dict[str, str] = {}
    status = (rootfs / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            versions[fields["Package"].split(":")[0]] = fields.get("Version", "")
    return versions


def fingerprint(rootfs: Path) -> str:
    """A digest of every input of update-initramfs in the root tree."""
    digest = hashlib.sha256()
    for tree in INPUT_TREES:
        base = rootfs / tree
        paths = sorted(base.rglob("*")) if base.is_dir() else []
        for path in paths:
            name = str(path.relative_to(rootfs))
            if path.is_symlink():
                digest.update(f"L {name} {path.readlink()}\n".encode())
            elif path.is_file():
                digest.update(f"F {name} {_file_digest(path)}\n".encode())
    versions = installed_versions(rootfs)
    wanted = [name for name in versions if name in INPUT_PACKAGES or name.startswith("linux-image")]
    for name in sorted(wanted):
        digest.update(f"P {name} {versions[name]}\n".encode())
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def outputs(rootfs: Path) -> list[Path]:
    """What update-initramfs -c -k all writes: an initrd per kernel (bookworm's keeps no
    other record; `update-initramfs -u` on the device goes by these files)."""
    return [rootfs / f"boot/initrd.img-{version}" for version in kernel_versions(rootfs)]


def cached(cache: Path, key: str) -> Path:
    return cache / f"initramfs-{key}"


def restore(rootfs: Path, cache: Path, key: str) -> bool:
    """Put a cached initrd in place; False on a miss."""
    saved = cached(cache, key)
    wanted = outputs(rootfs)
    if not wanted or not all((saved / path.relative_to(rootfs)).is_file() for path in wanted):
        return False
    for path in wanted:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(saved / path.relative_to(rootfs), path)
    return True


def store(rootfs: Path, cache: Path, key: str) -> None:
    """Keep what update-initramfs just wrote; older entries go."""
    saved = cached(cache, key)
    partial = saved.with_name(saved.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for path in outputs(rootfs):
        target = partial / path.relative_to(rootfs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.rmtree(saved, ignore_errors=True)
    partial.rename(saved)
    for old in cache.glob("initramfs-*"):
        if old != saved:
            shutil.rmtree(old, ignore_errors=True)
