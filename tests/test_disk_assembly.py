"""The SD-card layout the Debian builder writes: an MBR with a FAT boot partition and an
ext4 root, made from a directory tree with the same tools the build uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import disk


def test_layout_is_aligned_and_contiguous() -> None:
    layout = disk.Layout(boot_mib=512, root_mib=1500)
    assert layout.boot_start == 4 * disk.MIB
    assert layout.root_start == layout.boot_start + 512 * disk.MIB
    assert layout.total_bytes == (4 + 512 + 1500) * disk.MIB
    script = layout.sfdisk_script()
    assert "start=8192, size=1048576, type=c" in script
    assert f"start={(4 + 512) * 2048}, size={1500 * 2048}, type=83" in script


def test_root_size_leaves_room_beyond_the_tree() -> None:
    used = 900 * disk.MIB
    size = disk.root_size_mib(used, inodes=40_000)
    assert size * disk.MIB > used * 1.15
    assert size < 2 * 900


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "boot/firmware/overlays").mkdir(parents=True)
    (root / "boot/firmware/config.txt").write_text("arm_64bit=1\n")
    (root / "boot/firmware/overlays/README").write_text("overlays\n")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("pi-im\n")
    secret = root / "etc/shadow"
    secret.write_text("root:*:1::::::\n")
    secret.chmod(0o640)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/big").write_bytes(os.urandom(3 * disk.MIB))
    return root


def test_assembled_image_holds_both_file_systems(tree: Path, tmp_path: Path) -> None:
    image = tmp_path / "card.img"
    layout = disk.Layout(boot_mib=64, root_mib=64)
    disk.assemble(tree, tmp_path, image, layout, ("RASPIFIRM", "RASPIROOT"))

    assert image.stat().st_size == layout.total_bytes
    assert disk.partitions(image) == [
        (layout.boot_start, 64 * disk.MIB, "c"),
        (layout.root_start, 64 * disk.MIB, "83"),
    ]
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    boot = f"{image}@@{layout.boot_start}"
    label = subprocess.run(
        ["mlabel", "-s", "-i", boot, "::"], capture_output=True, text=True, env=env, check=True
    )
    assert "RASPIFIRM" in label.stdout
    config = subprocess.run(
        ["mtype", "-i", boot, "::/config.txt"], capture_output=True, text=True, env=env, check=True
    )
    assert config.stdout == "arm_64bit=1\n"

    root = tmp_path / "root.check"
    with image.open("rb") as src, root.open("wb") as dst:
        src.seek(layout.root_start)
        dst.write(src.read(64 * disk.MIB))
    fsck = subprocess.run(["e2fsck", "-fn", str(root)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout
    info = subprocess.run(
        ["debugfs", "-R", "stat /etc/shadow", str(root)], capture_output=True, text=True
    )
    assert "Mode:  0640" in info.stdout
    listing = subprocess.run(
        ["debugfs", "-R", "ls -l /boot/firmware", str(root)], capture_output=True, text=True
    )
    assert "config.txt" not in listing.stdout  # the boot files live on the FAT partition only
    big = subprocess.run(
        ["debugfs", "-R", "cat /usr/bin/big", str(root)], capture_output=True
    ).stdout
    assert big == (tree / "usr/bin/big").read_bytes()
    assert not (tmp_path / "boot.vfat").exists()
