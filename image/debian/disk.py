"""Assemble a Raspberry Pi SD-card image from a root file system tree without loop devices:
an MBR with a FAT boot partition (the Pi firmware reads it) and an ext4 root, each file
system made in a file (mkfs.vfat + mcopy, mkfs.ext4 -d) and written into place."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from progress import BuildError, run

MIB = 1 << 20
SECTOR = 512
# 4 MiB alignment is what SD cards' erase blocks like and what Raspberry Pi OS uses.
FIRST_PARTITION_MIB = 4
COPY_CHUNK = 4 * MIB


@dataclass(frozen=True)
class Layout:
    boot_mib: int
    root_mib: int

    @property
    def boot_start(self) -> int:
        return FIRST_PARTITION_MIB * MIB

    @property
    def root_start(self) -> int:
        return self.boot_start + self.boot_mib * MIB

    @property
    def total_bytes(self) -> int:
        return self.root_start + self.root_mib * MIB

    def sfdisk_script(self) -> str:
        """MBR: FAT32 (LBA) boot partition, Linux root after it."""
        return (
            "label: dos\nunit: sectors\n"
            f"start={self.boot_start // SECTOR}, size={self.boot_mib * MIB // SECTOR}, type=c\n"
            f"start={self.root_start // SECTOR}, size={self.root_mib * MIB // SECTOR}, type=83\n"
        )


def root_size_mib(used_bytes: int, inodes: int, slack: float = 0.15, spare_mib: int = 256) -> int:
    """Room for the tree, ext4's per-inode and journal overhead, and some slack; first boot
    grows the root file system to the whole card anyway."""
    overhead = inodes * 256 + 64 * MIB
    return math.ceil((used_bytes + overhead) * (1 + slack) / MIB) + spare_mib


def tree_usage(tree: Path) -> tuple[int, int]:
    """Bytes (4 KiB blocks, as ext4 stores them) and inode count of a directory tree."""
    used = 0
    inodes = 0
    for path in [tree, *tree.rglob("*")]:
        inodes += 1
        if path.is_file() and not path.is_symlink():
            used += math.ceil(path.lstat().st_size / 4096) * 4096
    return used, inodes


def make_boot_fs(source: Path, image: Path, size_mib: int, label: str) -> None:
    image.unlink(missing_ok=True)
    with image.open("wb") as handle:
        handle.truncate(size_mib * MIB)
    run(
        ["mkfs.vfat", "-F", "32", "-n", label, str(image)],
        "making the FAT boot file system",
        capture_output=True,
    )
    entries = sorted(str(p) for p in source.iterdir())
    if not entries:
        raise BuildError(f"{source} is empty: raspi-firmware wrote no boot files")
    run(
        ["mcopy", "-s", "-p", "-m", "-i", str(image), *entries, "::/"],
        "copying the boot files",
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    )


def make_root_fs(source: Path, image: Path, size_mib: int, label: str) -> None:
    image.unlink(missing_ok=True)
    with image.open("wb") as handle:
        handle.truncate(size_mib * MIB)
    run(
        ["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(source), str(image)],
        "making the ext4 root file system (mkfs.ext4 -d)",
    )


def write_at(target: Path, offset: int, source: Path) -> None:
    """Copy source into target at offset, skipping zero blocks so the image stays sparse."""
    zero = bytes(COPY_CHUNK)
    with source.open("rb") as src, target.open("r+b") as dst:
        position = offset
        while chunk := src.read(COPY_CHUNK):
            if chunk != zero[: len(chunk)]:
                dst.seek(position)
                dst.write(chunk)
            position += len(chunk)


def assemble(
    rootfs: Path, work: Path, image: Path, layout: Layout, labels: tuple[str, str]
) -> None:
    """rootfs/boot/firmware becomes the FAT partition, the rest the ext4 root."""
    boot_label, root_label = labels
    firmware = rootfs / "boot/firmware"
    staged = work / "bootfs"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for entry in firmware.iterdir():
        shutil.move(str(entry), staged / entry.name)
    boot_fs, root_fs = work / "boot.vfat", work / "root.ext4"
    make_boot_fs(staged, boot_fs, layout.boot_mib, boot_label)
    make_root_fs(rootfs, root_fs, layout.root_mib, root_label)
    image.unlink(missing_ok=True)
    with image.open("wb") as handle:
        handle.truncate(layout.total_bytes)
    run(
        ["sfdisk", "--quiet", "--no-reread", str(image)],
        "partitioning the image",
        input=layout.sfdisk_script(),
    )
    write_at(image, layout.boot_start, boot_fs)
    write_at(image, layout.root_start, root_fs)
    boot_fs.unlink()
    root_fs.unlink()


def partitions(image: Path) -> list[tuple[int, int, str]]:
    """(start byte, size bytes, type) of each partition, as sfdisk reads them back."""
    out = subprocess.run(
        ["sfdisk", "--dump", str(image)], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        if ":" not in line or "start=" not in line:
            continue
        fields = dict(
            part.strip().split("=", 1) for part in line.split(":", 1)[1].split(",") if "=" in part
        )
        found.append((int(fields["start"]) * SECTOR, int(fields["size"]) * SECTOR, fields["type"]))
    return found
