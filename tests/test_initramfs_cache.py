"""The image builder reuses an initramfs only while every input of update-initramfs is the
same: root trees made here stand in for the build's, read the way the build reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

import initramfs

KERNEL = "6.1.0-57-arm64"
STATUS = """Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9+deb12u13
Description: GNU C Library
 multi-line description

Package: linux-image-{kernel}
Status: install ok installed
Version: 6.1.158-1

Package: docker.io
Status: install ok installed
Version: 20.10.24+dfsg1-1+deb12u1

Package: busybox
Status: deinstall ok config-files
Version: 1:1.35.0-4
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    modules = root / "usr/lib/modules" / KERNEL / "kernel/drivers/mmc"
    modules.mkdir(parents=True)
    (modules / "sdhci-iproc.ko").write_bytes(b"\x7fELF module")
    hooks = root / "usr/share/initramfs-tools/hooks"
    hooks.mkdir(parents=True)
    (hooks / "udev").write_text("#!/bin/sh\ncopy_exec /usr/bin/udevadm\n")
    (root / "etc/initramfs-tools").mkdir(parents=True)
    (root / "etc/initramfs-tools/initramfs.conf").write_text("MODULES=most\nCOMPRESS=zstd\n")
    (root / "etc/initramfs-tools/scripts").symlink_to("/usr/share/initramfs-tools/scripts")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(STATUS.format(kernel=KERNEL))
    (root / "etc/docker").mkdir(parents=True)
    (root / "boot").mkdir()
    return root


def build_initrd(root: Path, content: bytes = b"initrd") -> None:
    """What update-initramfs -c -k all leaves."""
    (root / f"boot/initrd.img-{KERNEL}").write_bytes(content)


def test_fingerprint_is_stable_and_ignores_what_the_initrd_does_not_hold(rootfs: Path) -> None:
    before = initramfs.fingerprint(rootfs)
    (rootfs / "etc/docker/daemon.json").write_text("{}\n")
    status = rootfs / "var/lib/dpkg/status"
    status.write_text(status.read_text().replace("20.10.24+dfsg1-1+deb12u1", "20.10.25"))
    assert initramfs.fingerprint(rootfs) == before


@pytest.mark.parametrize(
    "change",
    [
        "a new hook",
        "a changed module",
        "a changed setting",
        "a newer libc",
        "a retargeted link",
    ],
)
def test_fingerprint_changes_with_every_input(rootfs: Path, change: str) -> None:
    before = initramfs.fingerprint(rootfs)
    if change == "a new hook":
        (rootfs / "usr/share/initramfs-tools/hooks/cryptroot").write_text("#!/bin/sh\n")
    elif change == "a changed module":
        module = next((rootfs / "usr/lib/modules").rglob("*.ko"))
        module.write_bytes(b"\x7fELF rebuilt")
    elif change == "a changed setting":
        (rootfs / "etc/initramfs-tools/initramfs.conf").write_text("MODULES=dep\n")
    elif change == "a newer libc":
        status = rootfs / "var/lib/dpkg/status"
        status.write_text(status.read_text().replace("2.36-9+deb12u13", "2.36-9+deb12u14"))
    else:
        link = rootfs / "etc/initramfs-tools/scripts"
        link.unlink()
        link.symlink_to("/elsewhere")
    assert initramfs.fingerprint(rootfs) != before


def test_only_installed_packages_count(rootfs: Path) -> None:
    versions = initramfs.installed_versions(rootfs)
    assert versions["libc6"] == "2.36-9+deb12u13"
    assert "busybox" not in versions


def test_a_stored_initrd_comes_back_for_the_same_inputs_only(rootfs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    key = initramfs.fingerprint(rootfs)
    assert not initramfs.restore(rootfs, cache, key)
    build_initrd(rootfs, b"the real initrd")
    initramfs.store(rootfs, cache, key)
    (rootfs / f"boot/initrd.img-{KERNEL}").unlink()

    assert initramfs.restore(rootfs, cache, key)
    assert (rootfs / f"boot/initrd.img-{KERNEL}").read_bytes() == b"the real initrd"
    assert not initramfs.restore(rootfs, cache, "0" * 16)


def test_storing_replaces_older_entries(rootfs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    build_initrd(rootfs, b"first")
    initramfs.store(rootfs, cache, "a" * 16)
    build_initrd(rootfs, b"second")
    initramfs.store(rootfs, cache, "b" * 16)
    assert sorted(path.name for path in cache.iterdir()) == [f"initramfs-{'b' * 16}"]
