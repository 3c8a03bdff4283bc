"""A Pi 4 image booted under qemu-system-aarch64 (-M virt) with the image's own kernel and
initrd, as if written to a 4 GB card with Raspberry Pi Imager's OS customisation. Only
loopback ports reach it; the guest's network is restricted (no traffic leaves the host)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20
# "closed" leads to a port the device's firewall must drop, to show the forwards go through it.
FORWARDED = {"ssh": 22, "xmpp": 5222, "http": 5280, "admin": 8080, "closed": 8081}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def boot_partition_offset(image: Path) -> int:
    dump = subprocess.run(
        ["sfdisk", "--dump", str(image)], capture_output=True, text=True, check=True
    ).stdout
    start = re.search(r"start=\s*(\d+)", dump.split("\n\n", 1)[1])
    assert start, dump
    return int(start.group(1)) * 512


class BootPartition:
    """Read and write files on the image's FAT partition with mtools (no loop devices)."""

    def __init__(self, image: Path) -> None:
        self.target = f"{image}@@{boot_partition_offset(image)}"
        self.env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}

    def read(self, name: str) -> bytes:
        return subprocess.run(
            ["mtype", "-i", self.target, f"::/{name}"],
            capture_output=True,
            check=True,
            env=self.env,
        ).stdout

    def write(self, name: str, content: str) -> None:
        subprocess.run(
            ["mcopy", "-o", "-i", self.target, "-", f"::/{name}"],
            input=content.encode(),
            check=True,
            env=self.env,
        )

    def extract(self, name: str, dest: Path) -> Path:
        dest.write_bytes(self.read(name))
        return dest


@dataclass
class Device:
    work: Path
    ports: dict[str, int] = field(default_factory=lambda: {k: free_port() for k in FORWARDED})
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def serial_log(self) -> Path:
        return self.work / "serial.log"

    def boot(self, card: Path, kernel: Path, initrd: Path, cmdline: str) -> None:
        forwards = ",".join(
            f"hostfwd=tcp:127.0.0.1:{self.ports[name]}-:{port}" for name, port in FORWARDED.items()
        )
        argv = [
            "qemu-system-aarch64",
            "-M", "virt",
            "-cpu", "cortex-a72",
            "-smp", "2",
            "-m", "2048",
            "-kernel", str(kernel),
            "-initrd", str(initrd),
            "-append", cmdline,
            "-drive", f"if=none,id=card,file={card},format=raw",
            "-device", "virtio-blk-pci,drive=card",
            # restrict=on: the guest reaches nothing but these loopback forwards.
            "-netdev", f"user,id=n0,restrict=on,{forwards}",
            # romfile= : bookworm's QEMU lacks efi-virtio.rom, and -kernel boots need none.
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-display", "none",
            "-serial", f"file:{self.serial_log}",
            "-monitor", "none",
        ]  # fmt: skip
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.alive():
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Ssh:
    port: int
    key: Path
    user: str
    known_hosts: Path

    def argv(self, command: str) -> list[str]:
        return [
            "ssh",
            "-p", str(self.port),
            "-i", str(self.key),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "ConnectTimeout=10",
            f"{self.user}@127.0.0.1",
            command,
        ]  # fmt: skip

    def run(
        self, command: str, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(command), input=stdin, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.user}: {command!r} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def __call__(self, command: str, stdin: str | None = None) -> str:
        return self.run(command, stdin).stdout.strip()


def wait_for(what: str, probe, device: Device, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Poll probe() until it is true; seconds since boot when it was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not device.alive():
            raise AssertionError(f"QEMU exited while waiting for {what}; see {device.serial_log}")
        try:
            if probe():
                return device.elapsed()
        except (OSError, subprocess.SubprocessError, AssertionError):
            pass
        time.sleep(3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )
    return path.with_suffix(".pub").read_text().strip()


def copy_card(image: Path, card: Path, card_bytes: int) -> None:
    """The image as Imager writes it to a larger card."""
    subprocess.run(["cp", "--sparse=always", str(image), str(card)], check=True)
    with card.open("r+b") as handle:
        handle.truncate(card_bytes)
