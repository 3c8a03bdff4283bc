"""ejabberd's public connections are capped below its open-file limit: past the cap a
newcomer is refused and everyone online stays online (without it, ejabberd's acceptor fails
in a loop, the node stops answering and the watchdog kills it with every session)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

DROP_IN = "/etc/systemd/system/ejabberd.service.d/zz-test-nofile.conf"
LIMIT, RESERVE = 600, 512  # the role's default reserve: a cap of 88 connections


def restart(host) -> None:  # type: ignore[no-untyped-def]
    host.check_output("systemctl daemon-reload && systemctl restart ejabberd")


@pytest.fixture
def low_limit(host) -> Iterator[None]:  # type: ignore[no-untyped-def]
    host.check_output(f"printf '[Service]\\nLimitNOFILE={LIMIT}\\n' > {DROP_IN}")
    restart(host)
    yield
    host.check_output(f"rm -f {DROP_IN}")
    restart(host)


def beam_open_file_limit(host) -> int:  # type: ignore[no-untyped-def]
    """What the Erlang VM really got (systemd clamps LimitNOFILE to what it may grant)."""
    pid = host.check_output("pgrep -f -- '-sname ejabberd@localhost'").split()[0]
    line = host.check_output(f"grep 'Max open files' /proc/{pid}/limits")
    return int(line.split()[3])


def test_the_cap_sits_below_the_servers_open_file_limit(host) -> None:  # type: ignore[no-untyped-def]
    rules = host.check_output("nft list table inet pi_im_ejabberd")
    assert f"ct count over {beam_open_file_limit(host) - RESERVE} " in rules
    # Clients and the web listener on both its ports: counted (federation is off). The admin
    # API: never.
    assert "tcp dport { 443, 5222, 5280 }" in rules


@pytest.mark.usefixtures("low_limit")
def test_past_the_cap_newcomers_are_refused_and_the_server_stays_up(
    host, container: str, tmp_path: Path
) -> None:
    assert beam_open_file_limit(host) == LIMIT
    pid = host.check_output("systemctl show -P MainPID ejabberd")
    restarts = host.check_output("systemctl show -P NRestarts ejabberd")
    done = subprocess.run(
        [sys.executable, "-m", "pi_im_bench", "run", "smoke-50", "--target",
         f"docker:{container}", "--set", "login.sessions=120", "--no-restart",
         "--out", str(tmp_path), "--state", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # errors: the refused logins
    (step,) = json.loads((tmp_path / "result.json").read_text())["steps"]
    assert step["sessions_up"] == LIMIT - RESERVE
    assert sum(step["login_failures"].values()) == 120 - (LIMIT - RESERVE)
    assert step["dropped"] == {}
    # Those online kept chatting through it.
    assert step["sent"] > 0
    assert step["lost"] == 0
    assert host.check_output("systemctl show -P MainPID ejabberd") == pid
    assert host.check_output("systemctl show -P NRestarts ejabberd") == restarts


PER_ADDRESS = 256  # the role's default


def test_one_address_cannot_fill_the_cap(host, address: str) -> None:  # type: ignore[no-untyped-def]
    """Finding 8: one host holds at most PER_ADDRESS connections; another still gets in."""
    held = [socket.create_connection((address, 5222), timeout=10) for _ in range(PER_ADDRESS)]
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, 5222), timeout=10)
        # The device itself is another address: it is let in while this host is held back.
        assert host.run(f"timeout 10 bash -c '</dev/tcp/{address}/5222'").rc == 0
    finally:
        for connection in held:
            connection.close()
