"""The benchmark's kernel tools on the booted image (bench/README.md): the sysctls the tuning
role ships are in force and are not the kernel's defaults anyway, the congestion-control
comparison runs on the device's own kernel, and, with --bench, a load scenario against the
emulated Pi."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pi_im_bench.cli import overrides
from pi_im_bench.scenario import load

from conftest import REPO, Booted

SYSCTL_FILE = "/etc/sysctl.d/60-pi-im.conf"


def bench(booted: Booted, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    ports = booted.device.ports
    target = [
        "--target", f"ssh:root@127.0.0.1:{ports['ssh']}",
        "--identity", str(booted.root.key),
        "--known-hosts", str(booted.root.known_hosts),
    ]  # fmt: skip
    command, *rest = args
    if command == "run":
        target += ["--xmpp", f"127.0.0.1:{ports['xmpp']}"]
    return subprocess.run(
        [sys.executable, "-m", "pi_im_bench", command, *rest, *target],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip


def shipped_sysctls(booted: Booted) -> dict[str, str]:
    settings = {}
    for line in booted.root(f"cat {SYSCTL_FILE}").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = " ".join(value.split())
    return settings


def test_shipped_sysctls_are_in_force_and_none_is_a_default(booted: Booted) -> None:
    settings = shipped_sysctls(booted)
    assert settings
    for key, value in settings.items():
        assert " ".join(booted.root(f"sysctl -n {key}").split()) == value, key
    # A fresh network namespace starts from the kernel's own values (congestion control
    # excepted: it copies the running one, so the kernel's build default is asked): a
    # setting equal to one of them would change nothing.
    for key, value in settings.items():
        if key == "net.ipv4.tcp_congestion_control":
            config = booted.root("grep '^CONFIG_DEFAULT_TCP_CONG=' /boot/config-$(uname -r)")
            assert config.split("=", 1)[1].strip('"') != value
        elif key.startswith("net.ipv4."):
            fresh = booted.root(f"unshare --net sysctl -n {key}")
            assert " ".join(fresh.split()) != value, f"{key} = {value} is the kernel's default"


def test_congestion_control_comparison_runs_on_the_device(
    booted: Booted, request: pytest.FixtureRequest
) -> None:
    seconds, _, rounds = request.config.getoption("--netpath").partition("x")
    done = bench(booted, "netpath", "--seconds", seconds, "--rounds", rounds, timeout=3600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [
        line for line in done.stdout.splitlines() if line.startswith("| ") and "|---" not in line
    ]
    assert len(rows) == 1 + 6, done.stdout  # header, three variants with and without an upload
    # Its namespaces are gone again.
    assert "pi-im-netpath" not in booted.root("ip netns list")


def connections_per_address(booted: Booted) -> int:
    """ejabberd_connections_per_address as this image was built (256 unless told)."""
    return int(booted.root("sed -n 's/^CONNECTIONS_PER_ADDRESS=//p' /etc/pi-im/ejabberd.env"))


def test_benchmark_scenario_on_the_emulated_pi(
    booted: Booted, request: pytest.FixtureRequest
) -> None:
    scenario = request.config.getoption("--bench")
    if not scenario:
        pytest.skip("no --bench SCENARIO given")
    # QEMU's user networking brings every client from one address, which the appliance
    # holds to ejabberd_connections_per_address: say so now rather than after the storm.
    per_address = connections_per_address(booted)
    sets = request.config.getoption("--bench-set")
    wanted = load(scenario, overrides(sets)).max_sessions
    if per_address < wanted:
        pytest.fail(
            f"this image lets one address hold {per_address} connections and the scenario "
            f"wants {wanted}: build it with -e ejabberd_connections_per_address={wanted} "
            "or more (bench/README.md)"
        )
    done = bench(booted, "run", scenario, *(f"--set={pair}" for pair in sets), timeout=3 * 3600)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr


def test_connection_cap_is_in_the_devices_packet_filter(booted: Booted) -> None:
    """The device's kernel takes the cap (nftables `ct count`): its LimitNOFILE less the
    reserve, on the public XMPP and HTTP ports."""
    pid = booted.root("systemctl show -P MainPID ejabberd")
    limit = int(booted.root(f"grep 'Max open files' /proc/{pid}/limits").split()[3])
    rules = booted.root("nft list table inet pi_im_ejabberd")
    assert f"ct count over {limit - 512} " in rules
    # No one address takes it all (a benchmark image lets QEMU's one address hold more).
    per_address = connections_per_address(booted)
    assert per_address < limit - 512
    assert f"ct count over {per_address} " in rules
    # Federation is off on an image: 5269 is neither counted nor listened on.
    assert "tcp dport { 443, 5222, 5280 }" in rules
