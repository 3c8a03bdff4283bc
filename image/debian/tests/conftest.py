"""Boot the built SD-card image once under QEMU for every test in this directory.

sudo make image-test                       # the newest build/image/*.img
sudo make image-test IMAGE_TEST_OPTIONS="--image path/to.img"
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import hostsetup
from imager import Customisation
from qemu_device import BootPartition, Device, Ssh, copy_card, keygen, wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


CARD_BYTES = 4 << 30
# First boot under TCG emulation: RabbitMQ alone has taken 8.5 minutes to start there.
BOOT_TIMEOUT = 30 * 60


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--image", type=Path, help="the .img to boot (default: newest build)")
    parser.addoption(
        "--bench",
        metavar="SCENARIO",
        help="also run this benchmark scenario against the booted device (an image built "
        "with ejabberd_bench_accounts=true; see bench/README.md)",
    )
    parser.addoption(
        "--bench-set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="scenario overrides for --bench (emulation is slow: a lower login rate)",
    )
    parser.addoption(
        "--netpath",
        default="3x1",
        metavar="SECONDSxROUNDS",
        help="chat seconds per case and rounds of the congestion-control comparison",
    )


@dataclass
class Booted:
    device: Device
    root: Ssh
    user: Ssh
    customisation: Customisation
    root_key: str
    domain: str
    card_bytes: int
    times: dict[str, float] = field(default_factory=dict)


def console_answers(health: str) -> bool:
    """Only whether it answers (its certificate is checked by the console's own test). Under
    emulation a TLS handshake with a service still starting can take longer than a read
    timeout: that is "not yet", not a failure."""
    try:
        return httpx.get(health, verify=False, timeout=30).status_code == 200
    except httpx.TransportError:
        return False


def newest_image() -> Path:
    images = sorted((REPO / "build/image").glob("*.img"), key=lambda p: p.stat().st_mtime)
    if not images:
        pytest.exit("no image in build/image: run `sudo make image` first", returncode=2)
    return images[-1]


def kernel_and_initrd(boot: BootPartition, work: Path) -> tuple[Path, Path]:
    """The files the Pi firmware would load, named by the image's own config.txt."""
    config = boot.read("config.txt").decode()
    kernel = re.search(r"^kernel=(\S+)", config, re.MULTILINE)
    initrd = re.search(r"^initramfs (\S+)", config, re.MULTILINE)
    assert kernel, config
    assert initrd, config
    return (
        boot.extract(kernel.group(1), work / "vmlinuz"),
        boot.extract(initrd.group(1), work / "initrd.img"),
    )


def xmpp_answers(port: int, domain: str) -> bool:
    """A forwarded port accepts even when nothing listens behind it: ask for a stream."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>".encode()
        )
        received = b""
        while b"</stream:features>" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            received += chunk
        return b"starttls" in received


@pytest.fixture(scope="session")
def booted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Booted]:
    hostsetup.prepare_boot_test_host()
    image: Path = request.config.getoption("--image") or newest_image()
    work = tmp_path_factory.mktemp("qemu")
    card = work / "card.img"
    copy_card(image, card, CARD_BYTES)

    user_key_file, root_key_file = work / "user_ed25519", work / "root_ed25519"
    customisation = Customisation(
        hostname=f"chat-{secrets.token_hex(2)}",
        user=f"u{secrets.token_hex(3)}",
        password=secrets.token_urlsafe(12),
        ssh_key=keygen(user_key_file, "imager-user"),
        wifi_ssid="pi-im test network",
        wifi_password=secrets.token_urlsafe(12),
        wifi_country="DE",
    )
    root_key = keygen(root_key_file, "sysconf-root")
    boot = BootPartition(card)
    original_cmdline = boot.read("cmdline.txt").decode()
    boot.write("meta-data", customisation.meta_data())
    boot.write("user-data", customisation.user_data())
    boot.write("network-config", customisation.network_config())
    boot.write("cmdline.txt", customisation.cmdline(original_cmdline) + "\n")
    boot.write("sysconf.txt", f"# Debian's sysconf.txt\nroot_authorized_key={root_key}\n")
    kernel, initrd = kernel_and_initrd(boot, work)
    # The image's own command line; only the console differs (QEMU virt's UART is ttyAMA0).
    cmdline = " ".join(
        arg for arg in boot.read("cmdline.txt").decode().split() if not arg.startswith("console=")
    )
    cmdline = f"console=ttyAMA0,115200 {cmdline}"

    device = Device(work)
    known_hosts = work / "known_hosts"
    root = Ssh(device.ports["ssh"], root_key_file, "root", known_hosts)
    user = Ssh(device.ports["ssh"], user_key_file, customisation.user, known_hosts)
    device.boot(card, kernel, initrd, cmdline)
    try:
        times = {"ssh": wait_for("SSH as root", lambda: root("true") == "", device, BOOT_TIMEOUT)}
        times["provisioned"] = wait_for(
            "first-boot provisioning",
            lambda: root("systemctl is-active pi-im-provision-late.service") == "active",
            device,
            BOOT_TIMEOUT,
        )
        domain = root("ejabberdctl registered_vhosts").split()[0]
        times["xmpp"] = wait_for(
            "XMPP on the forwarded port",
            lambda: xmpp_answers(device.ports["xmpp"], domain),
            device,
            300,
        )
        health = f"https://127.0.0.1:{device.ports['admin']}/api/v1/health"
        times["admin"] = wait_for("the admin console", lambda: console_answers(health), device, 300)
        times["ready"] = max(times.values())
        # Ready to serve is above; systemd also reports when the rest of boot (cloud-init's
        # final stage) is through, and how that went.
        state = root.run("systemctl is-system-running --wait", check=False, timeout=900)
        times["boot_finished"] = device.elapsed()
        report = {
            "image": str(image),
            "seconds_after_qemu_start": {k: round(v, 1) for k, v in times.items()},
            "system_state": state.stdout.strip(),
            "systemd_analyze": root("systemd-analyze time").splitlines()[0],
        }
        Path(f"{image}.boot.json").write_text(json.dumps(report, indent=2) + "\n")
        print("\nboot report:", json.dumps(report, indent=2))
        yield Booted(device, root, user, customisation, root_key, domain, CARD_BYTES, times)
    finally:
        # A clean shutdown if the guest still answers; QEMU is stopped in any case (a guest
        # left running would eat the cores of the next run).
        if device.alive():
            try:
                root.run("systemctl poweroff", check=False, timeout=30)
                assert device.process is not None
                device.process.wait(120)
            except subprocess.TimeoutExpired:
                pass
        device.stop()
        print(f"serial console log: {device.serial_log}")
