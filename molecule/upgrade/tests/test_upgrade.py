"""Bookworm to trixie in place, nothing lost. In order: the device (converged on bookworm) is
used as a family would use it; it is upgraded as Debian's release notes describe and rebooted;
site.yml runs again; then everything made before is checked with real clients."""

from __future__ import annotations

import ssl
import subprocess
import time

import pytest

import family
from family import Story
from playbook_run import Run, converge

APT = (
    "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 "
    # A configuration file the appliance wrote (ejabberd.yml, ...) is kept: site.yml owns it.
    "-o Dpkg::Options::=--force-confold"
)


@pytest.fixture(scope="module")
def story(host, address: str, device_tls: ssl.SSLContext) -> Story:
    """The bookworm device, used."""
    assert "VERSION_CODENAME=bookworm" in host.file("/etc/os-release").content_string
    return family.use(host, address, device_tls)


@pytest.fixture(scope="module")
def upgraded(host, container: str, story: Story) -> tuple[Run, Run]:
    """Debian's procedure (release notes, chapter 4): sources to trixie, a minimal upgrade, the
    full upgrade, a reboot; then the owner runs site.yml again, twice."""
    host.check_output(
        "grep -rl bookworm /etc/apt/sources.list /etc/apt/sources.list.d "
        "| xargs sed -i 's/bookworm/trixie/g'"
    )
    for step in ("update", "upgrade --without-new-pkgs", "full-upgrade"):
        done = host.run(f"{APT} {step}")
        assert done.rc == 0, f"apt-get {step}: {done.stdout[-3000:]} {done.stderr[-3000:]}"
    subprocess.run(["docker", "restart", container], check=True, capture_output=True)
    for _ in range(60):  # until systemd answers at all, then until it is up
        booted = host.run("systemctl is-system-running --wait")
        if booted.stdout.strip() in ("running", "degraded"):
            break
        time.sleep(2)
    assert booted.stdout.strip() in ("running", "degraded"), booted.stdout + booted.stderr
    first = converge({})
    assert first.returncode == 0, first.messages
    again = converge({})
    return first, again


def test_the_device_runs_trixie_after_the_upgrade(host, upgraded) -> None:
    assert "VERSION_CODENAME=trixie" in host.file("/etc/os-release").content_string
    versions = host.check_output(
        "dpkg-query --showformat='${Package} ${Version}\\n' --show ejabberd rabbitmq-server"
    )
    assert "ejabberd 24.12" in versions
    assert "rabbitmq-server 4.0" in versions


def test_site_yml_again_changes_nothing_and_leaves_no_unit_failed(host, upgraded) -> None:
    _first, again = upgraded
    assert again.returncode == 0, again.messages
    assert again.stats["changed"] == 0
    assert host.check_output("systemctl --failed --no-legend --plain") == ""


def test_the_devices_secrets_and_identity_are_the_same(host, story: Story, upgraded) -> None:
    assert family.device_secrets(host) == story.secrets
    assert host.check_output(family.IDENTITY) == story.identity


def test_everyone_logs_in_with_the_old_password_and_finds_their_things(
    story: Story, upgraded, address: str, device_tls: ssl.SSLContext
) -> None:
    family.check_clients(story, address, device_tls)


def test_the_console_keeps_its_operators_tokens_groups_rooms_and_invitations(
    story: Story, upgraded, address: str, device_tls: ssl.SSLContext
) -> None:
    family.check_console(story, address, device_tls)


def test_rabbitmq_takes_the_old_administrator_password(host, story: Story, upgraded) -> None:
    assert family.broker_takes(host, story.secrets["rabbitmq-admin-password"])
