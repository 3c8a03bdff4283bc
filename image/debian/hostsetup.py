"""Make the build host able to build (and boot) an arm64 image: packages, QEMU user-mode
emulation from bookworm-backports, binfmt_misc. Every step says what it could not do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from progress import BuildError, run

BUILD_PACKAGES = [
    "mmdebstrap",
    "binfmt-support",
    "arch-test",
    "dosfstools",
    "mtools",
    "fdisk",
    "e2fsprogs",
    "xz-utils",
    "debian-archive-keyring",
]
BOOT_TEST_PACKAGES = ["qemu-system-arm", "qemu-utils", "openssh-client", "mtools", "fdisk"]
# qemu-user 7.2 (bookworm) crashes Erlang's JIT; 8.1 fixed it. The bake runs no Erlang, but a
# current emulator keeps the chroot honest if a role ever does.
QEMU_USER_MIN = "1:8.1"
BACKPORTS = Path("/etc/apt/sources.list.d/pi-im-bookworm-backports.sources")
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def installed_version(package: str) -> str | None:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}|${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = result.stdout.partition("|")
    return version if result.returncode == 0 and status == "install ok installed" else None


def version_at_least(version: str, minimum: str) -> bool:
    return (
        subprocess.run(["dpkg", "--compare-versions", version, "ge", minimum], check=False)
    ).returncode == 0


def codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return ""


def require_debian_root() -> None:
    if os.geteuid() != 0:
        raise BuildError("run as root: the build uses chroot, mounts and apt")
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise BuildError(
            "this builder sets up Debian build hosts only; elsewhere install mmdebstrap, "
            f"qemu-user-static >= {QEMU_USER_MIN}, {' '.join(BUILD_PACKAGES)} yourself"
        )


def apt_install(packages: list[str], release: str | None = None) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"], "apt-get update", env=env)
    target = ["-t", release] if release else []
    run(
        [
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=300",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            *target,
            *packages,
        ],
        f"installing {' '.join(packages)}",
        env=env,
    )


def ensure_packages(packages: list[str]) -> list[str]:
    missing = [p for p in packages if installed_version(p) is None]
    if missing:
        apt_install(missing)
    return missing


def ensure_backports() -> None:
    sources = "\n".join(p.read_text() for p in Path("/etc/apt").rglob("*.list*") if p.is_file())
    sources += "\n".join(p.read_text() for p in Path("/etc/apt").rglob("*.sources") if p.is_file())
    if "bookworm-backports" in sources:
        return
    BACKPORTS.write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def ensure_qemu_user() -> bool:
    """Install a qemu-user-static that runs Erlang; True when it changed."""
    current = installed_version("qemu-user-static")
    if current and version_at_least(current, QEMU_USER_MIN):
        return False
    if codename() == "bookworm":
        ensure_backports()
        apt_install(["qemu-user-static"], release="bookworm-backports")
    else:
        apt_install(["qemu-user-static"])
    current = installed_version("qemu-user-static") or "none"
    if not version_at_least(current, QEMU_USER_MIN):
        raise BuildError(f"qemu-user-static {current} is installed, {QEMU_USER_MIN} is needed")
    return True


def binfmt_line() -> str:
    """The kernel registration line qemu-user-static ships for aarch64."""
    for path in (
        Path("/usr/lib/binfmt.d/qemu-aarch64.conf"),
        Path("/lib/binfmt.d/qemu-aarch64.conf"),
    ):
        if path.is_file():
            return path.read_text().strip()
    return ""


def ensure_binfmt(reload: bool) -> None:
    """Register qemu-aarch64 with binfmt_misc; re-register after an upgrade, because the
    'F' flag keeps the old emulator binary open."""
    if not (BINFMT / "register").exists():
        result = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=False
        )
        if result.returncode != 0:
            raise BuildError(
                f"cannot mount binfmt_misc on {BINFMT}: the build host must allow it "
                "(in a container: run it with binfmt_misc mounted from the host)"
            )
    entry = BINFMT / "qemu-aarch64"
    if entry.exists() and reload:
        entry.write_text("-1")
    if not entry.exists():
        line = binfmt_line()
        if line:
            (BINFMT / "register").write_text(line)
        else:
            run(["update-binfmts", "--enable", "qemu-aarch64"], "registering qemu-aarch64")
    elif "enabled" not in entry.read_text():
        entry.write_text("1")
    check = subprocess.run(["arch-test", "arm64"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise BuildError(f"arm64 programs still do not run here: {check.stdout.strip()}")


def prepare_build_host() -> str:
    """Everything the image build needs; returns the emulator version in use."""
    require_debian_root()
    ensure_packages(BUILD_PACKAGES)
    ensure_binfmt(reload=ensure_qemu_user())
    return installed_version("qemu-user-static") or "?"


def prepare_boot_test_host() -> None:
    require_debian_root()
    ensure_packages(BOOT_TEST_PACKAGES)
