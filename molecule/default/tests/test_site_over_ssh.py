"""The way people run it on their own Pis: site.yml over SSH as a user who may sudo (what
Raspberry Pi Imager makes), not as root through Docker. On a converged device it changes
nothing, and every step ran through that login and sudo."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from playbook_run import HOST, converge

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

# inventory/example's user; Imager's sudoers entry for it is password-less.
USER = "pi"
SUDOERS = f"/etc/sudoers.d/010_{USER}-nopasswd"


@pytest.fixture(scope="module")
def ssh_inventory(host, address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An inventory that reaches the test device over SSH as USER, with a key made for this
    test and the device's own host key (read from the device, so nothing is trusted blind)."""
    work = tmp_path_factory.mktemp("ssh")
    key = work / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pi-im-test", "-f", str(key)],
        check=True,
    )
    host.run_expect([0], "useradd --create-home --shell /bin/bash %s", USER)
    host.run_expect([0], "printf '%%s ALL=(ALL) NOPASSWD: ALL\\n' %s > %s", USER, SUDOERS)
    host.run_expect([0], "install -d -m 0700 -o %s -g %s /home/%s/.ssh", USER, USER, USER)
    host.run_expect(
        [0],
        "printf '%%s\\n' %s | install -m 0600 -o %s -g %s /dev/stdin /home/%s/.ssh/authorized_keys",
        (work / "id_ed25519.pub").read_text().strip(),
        USER,
        USER,
        USER,
    )
    host_key = " ".join(host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()[:2])
    known_hosts = work / "known_hosts"
    known_hosts.write_text(f"{address} {host_key}\n")
    inventory = work / "ssh.yml"
    connection = {
        "ansible_connection": "ssh",
        "ansible_host": address,
        "ansible_user": USER,
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o IdentitiesOnly=yes",
    }
    inventory.write_text(yaml.safe_dump({"im_servers": {"hosts": {HOST: connection}}}))
    yield inventory
    host.run("pkill -u %s", USER)
    host.run_expect([0], "rm -f %s", SUDOERS)
    host.run_expect([0], "userdel --remove %s", USER)


def test_site_over_ssh_as_a_sudoer_changes_nothing(host, ssh_inventory: Path) -> None:
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    run = converge({}, [ssh_inventory])
    assert run.returncode == 0, run.messages
    assert run.stats["unreachable"] == 0
    assert run.stats["failures"] == 0
    assert run.stats["changed"] == 0
    journal = "journalctl --no-pager -o cat --since %s _COMM=%s"
    # OpenSSH 9.8 and later (trixie) log the login from its per-connection sshd-session.
    logins = host.check_output(journal + " + _COMM=sshd", since, "sshd-session")
    assert f"Accepted publickey for {USER} from" in logins
    # Each step ran as root through sudo, in the Python the playbook names for the device.
    sudo = host.check_output(journal, since, "sudo")
    assert f"{USER} : " in sudo
    assert "USER=root ; COMMAND=/usr/bin/python3 " in sudo
