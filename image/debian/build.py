#!/usr/bin/env python3
"""Build the flashable SD-card image for a Raspberry Pi 4 from Debian's archive alone.

Debian trixie arm64 with Debian's own kernel and Raspberry Pi firmware packages, the
appliance applied in the chroot by the step every builder shares (image/chroot-apply.sh with
playbooks/sd-image.yml), assembled into an .img (FAT boot + ext4 root), compressed to .img.xz,
with sha256 files and a Raspberry Pi Imager repository file. Run as root on Debian; the build
host is set up by the build itself (mmdebstrap, qemu-user-static from bookworm-backports,
binfmt_misc).

    sudo image/debian/build.py [--out build/image] [--extra-vars @my-vars.yml]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

import disk  # noqa: E402
import hostsetup  # noqa: E402
import imager_repo  # noqa: E402
import initramfs  # noqa: E402
import packages  # noqa: E402
from progress import BuildError, Progress, clock, fail, run  # noqa: E402

SUITE = "trixie"
COMPONENTS = "main contrib non-free-firmware"
MIRRORS = [
    f"deb http://deb.debian.org/debian {SUITE} {COMPONENTS}",
    f"deb http://deb.debian.org/debian {SUITE}-updates {COMPONENTS}",
    f"deb http://deb.debian.org/debian-security {SUITE}-security {COMPONENTS}",
]
# What boots a Pi 4 and lets Ansible work in the chroot. The appliance's own packages come
# from the roles (playbooks/sd-image.yml); the board support comes from here because
# update-initramfs is held off until everything is installed (it is the slow part under
# emulation: ~6 minutes per run).
BOOTSTRAP_PACKAGES = [
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "kmod",
    "initramfs-tools",
    "linux-image-arm64",
    "raspi-firmware",
    "firmware-brcm80211",
    "dbus",
    "netbase",
    "ca-certificates",
    "python3",
    "python3-apt",
    "sudo",
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "procps",
    "less",
]
HOLD_INITRAMFS = [
    'chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs',
    "printf '#!/bin/sh\\nexit 0\\n' >\"$1/usr/sbin/update-initramfs\"",
    'chmod 0755 "$1/usr/sbin/update-initramfs"',
]
BOOT_LABEL, ROOT_LABEL = "RASPIFIRM", "RASPIROOT"
# No ejabberd_domain: the device chooses it at first boot from the host name Imager gives.
DEFAULT_VARS = {"sd_image_hostname": "pi-im"}
STEPS = 8


def bootstrap_key() -> str:
    recipe = json.dumps([SUITE, MIRRORS, BOOTSTRAP_PACKAGES, HOLD_INITRAMFS])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def bootstrap(rootfs: Path, cache: Path, use_cache: bool) -> str:
    """A minimal arm64 Debian with kernel and firmware; cached by recipe (mmdebstrap under
    emulation takes minutes). Returns how it was obtained."""
    cached = cache / f"debian-{SUITE}-arm64-{bootstrap_key()}.tar"
    if use_cache and cached.is_file():
        rootfs.mkdir(parents=True)
        with tarfile.open(cached) as archive:
            archive.extractall(rootfs, filter="fully_trusted")
        return f"from cache {cached.name}"
    hooks = [f"--essential-hook={hook}" for hook in HOLD_INITRAMFS]
    run(
        [
            "mmdebstrap",
            "--arch=arm64",
            "--variant=minbase",
            f"--components={COMPONENTS}",
            f"--include={','.join(BOOTSTRAP_PACKAGES)}",
            *hooks,
            SUITE,
            str(rootfs),
            *MIRRORS,
        ],
        "bootstrapping Debian arm64 (mmdebstrap)",
    )
    cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    run(
        ["tar", "--xattrs", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
        "caching the bootstrap",
    )
    partial.rename(cached)
    for old in cache.glob(f"debian-{SUITE}-arm64-*.tar"):
        if old != cached:
            old.unlink()
    return "bootstrapped with mmdebstrap"


def layer_key(groups: dict[bool, list[str]]) -> str:
    recipe = json.dumps([bootstrap_key(), groups[True], groups[False]])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def with_packages(
    rootfs: Path, cache: Path, use_cache: bool, groups: dict[bool, list[str]]
) -> list[str]:
    """The bootstrap with the roles' packages installed (packages.py), cached by both
    recipes; the roles' apt tasks then find them in place. Returns how it was obtained."""
    layer = cache / f"packages-{SUITE}-arm64-{layer_key(groups)}.tar"
    if use_cache and layer.is_file():
        rootfs.mkdir(parents=True)
        with tarfile.open(layer) as archive:
            archive.extractall(rootfs, filter="fully_trusted")
        return [f"with the roles' packages, from cache {layer.name}"]
    said = [bootstrap(rootfs, cache, use_cache)]
    install_packages(rootfs, groups)
    partial = layer.with_suffix(".partial")
    run(
        ["tar", "--xattrs", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
        "caching the bootstrap with the roles' packages",
    )
    partial.rename(layer)
    for old in cache.glob(f"packages-{SUITE}-arm64-*.tar"):
        if old != layer:
            old.unlink()
    count = len(groups[True]) + len(groups[False])
    return [*said, f"installed the roles' {count} packages, cached as {layer.name}"]


def install_packages(rootfs: Path, groups: dict[bool, list[str]]) -> None:
    """apt-get as the roles' apt tasks run it: services not started, Recommends as each
    task asks."""
    policy = rootfs / "usr/sbin/policy-rc.d"
    resolv = rootfs / "etc/resolv.conf"
    kept = rootfs / "etc/resolv.conf.pi-im"
    # No fsync per unpacked file: the tree is copied into the image afterwards.
    apt = (
        "DEBIAN_FRONTEND=noninteractive apt-get -y -o DPkg::Lock::Timeout=300"
        " -o DPkg::Options::=--force-unsafe-io"
    )
    script = ["apt-get update"]
    if groups[True]:
        script.append(f"{apt} install {' '.join(groups[True])}")
    if groups[False]:
        script.append(f"{apt} install --no-install-recommends {' '.join(groups[False])}")
    script.append("apt-get clean")
    if resolv.exists() or resolv.is_symlink():
        resolv.rename(kept)
    try:
        shutil.copy2("/etc/resolv.conf", resolv)
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        with chroot_mounts(rootfs):
            in_chroot(rootfs, "\n".join(script) + "\n", "installing the roles' packages")
    finally:
        policy.unlink(missing_ok=True)
        resolv.unlink(missing_ok=True)
        if kept.exists() or kept.is_symlink():
            kept.rename(resolv)


@contextmanager
def chroot_mounts(rootfs: Path) -> Iterator[None]:
    mounted: list[Path] = []
    try:
        for fs in ("proc", "sys", "dev", "dev/pts"):
            target = rootfs / fs
            run(["mount", "--bind", f"/{fs}", str(target)], f"mounting /{fs} in the chroot")
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            if subprocess.run(["umount", str(target)], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "--lazy", str(target)], check=False)


def mounts_under(rootfs: Path) -> list[str]:
    """Mount points inside rootfs, outermost first."""
    table = Path("/proc/self/mountinfo").read_text().splitlines()
    inside = f"{rootfs}/"
    return [line.split()[4] for line in table if line.split()[4].startswith(inside)]


def ensure_unmounted(rootfs: Path) -> None:
    """mkfs.ext4 -d would copy a mounted /proc or /dev into the image."""
    mounts = mounts_under(rootfs)
    if mounts:
        raise BuildError(f"still mounted inside the root file system: {', '.join(mounts)}")


def in_chroot(rootfs: Path, script: str, what: str) -> None:
    run(["chroot", str(rootfs), "/bin/sh", "-euc", script], what)


def finish_boot_files(rootfs: Path, cache: Path, use_cache: bool) -> tuple[str, str]:
    """Build the initramfs once, now that every package is in (or reuse the one an earlier
    build made from the same inputs: initramfs.py); raspi-firmware's hook then writes kernel,
    initrd, DTBs, config.txt and cmdline.txt to /boot/firmware. Returns cmdline.txt and how
    the initramfs was obtained."""
    key = initramfs.fingerprint(rootfs)
    reused = use_cache and initramfs.restore(rootfs, cache, key)
    # Without a rebuild, run what update-initramfs runs after one: the post-update hooks.
    hooks = "".join(
        f"run-parts --arg={version} --arg=/boot/initrd.img-{version} /etc/initramfs/post-update.d\n"
        for version in initramfs.kernel_versions(rootfs)
    )
    with chroot_mounts(rootfs):
        in_chroot(
            rootfs,
            "rm -f /usr/sbin/update-initramfs\n"
            "dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs\n"
            + (hooks if reused else "update-initramfs -c -k all\n")
            + "apt-get clean\n",
            "writing the boot files" if reused else "building the initramfs",
        )
    if reused:
        how = f"initramfs from cache {key} (its inputs are unchanged)"
    else:
        initramfs.store(rootfs, cache, key)
        how = f"initramfs built, cached as {key}"
    firmware = rootfs / "boot/firmware"
    needed = ["start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "config.txt", "cmdline.txt"]
    missing = [name for name in needed if not (firmware / name).is_file()]
    missing += [
        f"{kind}-*" for kind in ("vmlinuz", "initrd.img") if not any(firmware.glob(f"{kind}-*"))
    ]
    if missing:
        raise BuildError(f"a Pi 4 cannot boot without {', '.join(missing)} in /boot/firmware")
    cmdline = (firmware / "cmdline.txt").read_text().strip()
    if f"root=LABEL={ROOT_LABEL}" not in cmdline:
        raise BuildError(f"cmdline.txt does not boot the root by label: {cmdline}")
    return cmdline, how


def tidy(rootfs: Path) -> None:
    """Nothing of the build host or the build's own runs goes into the image."""
    for pattern in (
        "var/log/*.log",
        "var/log/apt/*",
        "var/cache/debconf/*-old",
        "var/lib/dpkg/*-old",
        "var/cache/apt/archives/*.deb",
        "root/.ansible",
        "var/log/journal/*",
        "tmp/*",
        "var/tmp/*",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    # systemd's clock floor: a Pi has no RTC, and until NTP answers the clock should not
    # start before the image was built (certificates made at first boot need a sane date).
    epoch = rootfs / "usr/lib/clock-epoch"
    epoch.touch()
    os.utime(epoch)


def write_sha256(path: Path, digest: str) -> str:
    """A sha256sum-compatible file beside path."""
    Path(f"{path}.sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def human(size: int) -> str:
    return f"{size / disk.MIB:,.0f} MiB"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "build/image", help="output directory")
    parser.add_argument("--name", default=f"pi-im-appliance-{date.today():%Y%m%d}-arm64")
    parser.add_argument("--boot-mib", type=int, default=512, help="FAT boot partition size")
    parser.add_argument(
        "--extra-vars", "-e", action="append", default=[], help="passed to ansible-playbook"
    )
    parser.add_argument("--url", help="where the .img.xz will be served (Imager repository)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="bootstrap and build the initramfs again, ignoring the caches",
    )
    parser.add_argument("--keep-rootfs", action="store_true", help="keep the root file system tree")
    return parser.parse_args()


def build(args: argparse.Namespace, progress: Progress) -> dict[str, object]:
    out: Path = args.out.resolve()
    work = out / "work"
    rootfs = work / "rootfs"
    image = out / f"{args.name}.img"
    compressed = Path(f"{image}.xz")
    with progress.step("setting up the build host"):
        emulator = hostsetup.prepare_build_host()
        progress.say(f"qemu-user-static {emulator}, binfmt qemu-aarch64 registered")
    with progress.step(f"bootstrapping Debian {SUITE} arm64 with the roles' packages"):
        if work.exists():
            # A failed earlier build may have left binds of the host's /dev or /proc here:
            # never delete through them.
            for target in reversed(mounts_under(rootfs)):
                subprocess.run(["umount", "--lazy", target], capture_output=True, check=False)
            ensure_unmounted(rootfs)
            shutil.rmtree(work)
        work.mkdir(parents=True)
        cache = REPO / ".cache/image"
        try:
            extra = packages.parse_extra_vars(args.extra_vars)
        except (OSError, ValueError) as error:
            extra = None
            progress.say(f"the roles install their packages themselves (extra vars: {error})")
        if extra is None:
            progress.say(bootstrap(rootfs, cache, use_cache=not args.fresh))
        else:
            groups = packages.install_groups(REPO, {**DEFAULT_VARS, **extra})
            for line in with_packages(rootfs, cache, not args.fresh, groups):
                progress.say(line)
    with progress.step("applying the appliance in the chroot"):
        defaults = [f"{key}={value}" for key, value in DEFAULT_VARS.items()]
        extra = [arg for value in [*defaults, *args.extra_vars] for arg in ("-e", value)]
        run(
            [
                str(REPO / "image/chroot-apply.sh"),
                "--playbook",
                str(REPO / "playbooks/sd-image.yml"),
                str(rootfs),
                *extra,
            ],
            "applying playbooks/sd-image.yml",
            # Under emulation a task can take minutes: show each task's time and the slowest.
            env={**os.environ, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"},
        )
    with progress.step("building the initramfs and boot files"):
        cmdline, how = finish_boot_files(rootfs, REPO / ".cache/image", use_cache=not args.fresh)
        progress.say(how)
        progress.say(f"cmdline.txt: {cmdline}")
        tidy(rootfs)
    with progress.step("assembling the SD-card image"):
        ensure_unmounted(rootfs)
        used, inodes = disk.tree_usage(rootfs)
        layout = disk.Layout(args.boot_mib, disk.root_size_mib(used, inodes))
        progress.say(f"root tree {human(used)}, {inodes:,} inodes → {layout.root_mib} MiB ext4")
        disk.assemble(rootfs, work, image, layout, (BOOT_LABEL, ROOT_LABEL))
    with progress.step("compressing (xz)"):
        compressed.unlink(missing_ok=True)
        run(["xz", "-T0", "-6", "-k", str(image)], "compressing the image")
    with progress.step("checksums and the Imager repository file"):
        # os_entry hashes both files (2.5 GB); the .sha256 files reuse its digests.
        url = args.url or compressed.as_uri()
        entry = imager_repo.os_entry(
            image, compressed, url, date.today(), imager_repo.NAME, imager_repo.DESCRIPTION
        )
        img_sha = write_sha256(image, str(entry["extract_sha256"]))
        xz_sha = write_sha256(compressed, str(entry["image_download_sha256"]))
        (out / "os_list.json").write_text(json.dumps({"os_list": [entry]}, indent=2) + "\n")
    with progress.step("cleaning up"):
        if not args.keep_rootfs:
            shutil.rmtree(work)
    summary = {
        "image": str(image),
        "image_bytes": image.stat().st_size,
        "image_sha256": img_sha,
        "compressed": str(compressed),
        "compressed_bytes": compressed.stat().st_size,
        "compressed_sha256": xz_sha,
        "imager_repository": str(out / "os_list.json"),
        "layout_mib": {"boot": layout.boot_mib, "root": layout.root_mib},
        "root_tree_bytes": used,
        "emulator": emulator,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "steps_seconds": {k: round(v, 1) for k, v in progress.durations.items()},
        "build_seconds": round(progress.elapsed(), 1),
    }
    (out / f"{args.name}.build.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_summary(summary: dict[str, object]) -> None:
    print("\nbuilt the SD-card image")
    print(f"  image           {summary['image']}  ({human(int(summary['image_bytes']))})")  # type: ignore[call-overload]
    print(f"  compressed      {summary['compressed']}  ({human(int(summary['compressed_bytes']))})")  # type: ignore[call-overload]
    print(f"  sha256 .img     {summary['image_sha256']}")
    print(f"  sha256 .img.xz  {summary['compressed_sha256']}")
    print(f"  Imager          rpi-imager --repo {summary['imager_repository']}")
    steps = summary["steps_seconds"]
    assert isinstance(steps, dict)
    for title, seconds in steps.items():
        print(f"    {clock(seconds):>8}  {title}")
    print(f"  build time      {clock(float(summary['build_seconds']))}")  # type: ignore[arg-type]


def main() -> int:
    args = parse_args()
    progress = Progress(STEPS)
    try:
        summary = build(args, progress)
    except BuildError as error:
        fail(f"{error} (after {clock(progress.elapsed())})")
        return 1
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
