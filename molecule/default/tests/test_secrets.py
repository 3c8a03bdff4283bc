"""Secrets are made on the device, stay in its root-only store and nowhere else."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

SECRETS_DIR = "/etc/pi-im/secrets"
SECRET_NAMES = [
    "ejabberd-admin-password",
    "rabbitmq-admin-password",
    "rabbitmq-webhooks-password",
    "admin-owner-password",
    "backup-passphrase",
]
# Everything persistent or temporary a service or a tool could have written to.
SEARCHED = "/etc /var /root /home /opt /srv /tmp /usr/local /run"
# Where a unit hands a secret to its service alone, in RAM, at each start.
HANDED = {"/run/pi-im-webhooks/rabbitmq-password"}


@pytest.fixture(scope="module")
def values(host) -> dict[str, str]:
    found = {}
    for name in SECRET_NAMES:
        value = host.check_output(f"cat {SECRETS_DIR}/{name}")
        assert len(value) >= 32, f"{name} is too short to be a generated secret"
        found[name] = value
    return found


def test_store_is_root_only(host) -> None:
    store = host.file(SECRETS_DIR)
    assert store.is_directory
    assert store.user == "root"
    assert store.mode == 0o700
    for name in SECRET_NAMES:
        secret = host.file(f"{SECRETS_DIR}/{name}")
        assert secret.user == "root"
        assert secret.group == "root"
        assert secret.mode == 0o600


def test_secrets_differ(values: dict[str, str]) -> None:
    assert len(set(values.values())) == len(values)


def test_no_secret_in_any_other_file_on_the_device(host, values: dict[str, str]) -> None:
    patterns = " ".join(f"-e {shlex.quote(v)}" for v in values.values())
    result = host.run(f"grep -rlsF {patterns} {SEARCHED} --exclude-dir=secrets --exclude-dir=proc")
    leaks = [path for path in result.stdout.splitlines() if not path.startswith(SECRETS_DIR + "/")]
    assert set(leaks) - HANDED == set()
    for path in HANDED:
        handed = host.file(path)
        assert (handed.user, handed.mode) == ("pi-im-admin", 0o400)


def test_no_secret_in_ansible_output(values: dict[str, str]) -> None:
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    text = log.read_text()
    # The log covers the steps that create and use the secrets.
    assert "Create the admin account" in text
    assert "Create the vhost and administrator, remove guest" in text
    for name, value in values.items():
        assert value not in text, f"{name} appears in the Ansible log"


def test_no_secret_in_the_repository(values: dict[str, str]) -> None:
    for name, value in values.items():
        # Tracked and untracked files, not what .gitignore keeps out (.venv, build output).
        found = subprocess.run(
            # -e: a generated password may begin with "-" and must not read as an option.
            ["git", "-C", str(REPO), "grep", "--untracked", "-lF", "-e", value],
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 1, f"{name} found in {found.stdout}{found.stderr}"
