"""Debian's updates, installed unattended in the nightly window: the device's own units
(apt-daily-upgrade.service, unattended-upgrades, needrestart) run for real, with what Debian's
archive has for the device that day and a local archive of its own origin holding a newer
ejabberd, first one the appliance takes, then one its check refuses. The console shows each
outcome."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from admin_console import Console
from debian_packages import (
    UPDATES_STATUS,
    archive,
    download,
    install,
    installed_version,
    nightly_run,
    repack,
)

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

ARCHIVE = "/root/updates-archive"
ORIGIN = "pi-im-test"
SOURCE = "/etc/apt/sources.list.d/pi-im-test.list"
# The test's origin beside the device's own; the device's list of origins is not touched.
PATTERN = "/etc/apt/apt.conf.d/53pi-im-test-origin"


def status(host) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return json.loads(host.file(UPDATES_STATUS).content_string)


def dashboard_text(owner: Console) -> str:
    return " ".join(owner.get("/").text.split()).replace("&#39;", "'")


def test_updates_come_from_debian_in_the_nightly_window(host) -> None:
    origins = host.check_output("apt-config dump Unattended-Upgrade::Origins-Pattern")
    assert [line.split(" ", 1)[1] for line in origins.splitlines()[1:]] == [
        '"origin=Debian,codename=${distro_codename},label=Debian";',
        '"origin=Debian,codename=${distro_codename},label=Debian-Security";',
        '"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
    ]
    reboot = host.check_output("apt-config dump Unattended-Upgrade::Automatic-Reboot")
    assert reboot.splitlines()[0] == 'Unattended-Upgrade::Automatic-Reboot "true";'
    time = host.check_output("apt-config dump Unattended-Upgrade::Automatic-Reboot-Time")
    assert time == 'Unattended-Upgrade::Automatic-Reboot-Time "05:30";'
    periodic = host.check_output("apt-config dump APT::Periodic::Unattended-Upgrade")
    assert periodic == 'APT::Periodic::Unattended-Upgrade "1";'
    timer = host.check_output(
        "systemctl show apt-daily-upgrade.timer -p TimersCalendar -p RandomizedDelayUSec"
    )
    assert "OnCalendar=*-*-* 04:30:00" in timer
    assert "RandomizedDelayUSec=30min" in timer
    assert host.service("apt-daily-upgrade.timer").is_enabled


@pytest.fixture(scope="module")
def local_archive(host) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An archive of the test's own origin, which unattended-upgrades is told to take from."""
    original = installed_version(host, "ejabberd")
    host.check_output(f"rm -rf {ARCHIVE}")
    deb = download(host, "ejabberd", original, f"{ARCHIVE}.own")
    host.check_output(f"mkdir -p {ARCHIVE}")
    host.check_output(f"echo 'deb [trusted=yes] file:{ARCHIVE} ./' > {SOURCE}")
    host.check_output(
        f"""echo 'Unattended-Upgrade::Origins-Pattern {{ "origin={ORIGIN}"; }};' > {PATTERN}"""
    )
    yield deb
    host.check_output(f"rm -rf {SOURCE} {PATTERN} {ARCHIVE} && apt-get -qq update")
    done = install(host, deb)
    assert done.rc == 0, done.stdout
    host.check_output(f"rm -rf {ARCHIVE}.own")


def publish(host, deb: str, version: str) -> None:  # type: ignore[no-untyped-def]
    host.check_output(f"rm -f {ARCHIVE}/*.deb")
    repack(host, deb, version, f"{ARCHIVE}/ejabberd_{version}.deb")
    archive(host, ARCHIVE, ORIGIN)


def test_a_nightly_run_installs_an_update_and_restarts_what_it_replaced(
    host, local_archive: str, owner: Console, owner_api: httpx.Client
) -> None:
    version = f"{installed_version(host, 'ejabberd')}+pitest1"
    publish(host, local_archive, version)
    pid = host.check_output("systemctl show --value -p MainPID ejabberd")

    nightly_run(host)

    assert installed_version(host, "ejabberd") == version
    assert host.check_output("systemctl show --value -p MainPID ejabberd") != pid
    assert (
        host.check_output("systemctl is-active ejabberd rabbitmq-server pi-im-admin").split()
        == ["active"] * 3
    )
    assert host.check_output("systemctl --failed --no-legend --plain") == ""
    run = status(host)
    assert run["result"] == "installed"
    assert "ejabberd" in run["packages"]
    assert run["errors"] == []
    assert run["reboot_pending"] is False
    assert owner_api.get("/dashboard").json()["updates"] == run
    page = dashboard_text(owner)
    assert f"installed {len(run['packages'])} packages: " in page
    assert "ejabberd" in page.split("installed", 1)[1]


def test_a_nightly_run_the_ejabberd_check_refuses_fails_and_the_console_says_so(
    host, local_archive: str, owner: Console, owner_api: httpx.Client
) -> None:
    before = installed_version(host, "ejabberd")
    pid = host.check_output("systemctl show --value -p MainPID ejabberd")
    publish(host, local_archive, "26.07-1")

    nightly_run(host)

    assert installed_version(host, "ejabberd") == before
    assert host.check_output("systemctl show --value -p MainPID ejabberd") == pid
    run = status(host)
    assert run["result"] == "failed"
    assert run["packages"] == ["ejabberd"]
    assert run["errors"]
    board = owner_api.get("/dashboard").json()
    assert board["updates"]["result"] == "failed"
    assert board["ejabberd_update"]["result"] == "refused"
    page = dashboard_text(owner)
    assert f"Installing the updates at {run['ran'].replace('T', ' ')} failed" in page
    assert "They are tried again next night." in page
    assert "An update of ejabberd was not installed (ejabberd 26.07-1," in page
    assert f"Nothing was changed: ejabberd runs on {before} as before." in page


def test_a_pending_reboot_is_shown_with_its_time(host, owner: Console) -> None:
    """What the unit runs after each run, run alone: a run now, with a reboot pending, would
    schedule it."""
    post = host.check_output("systemctl show --value -p ExecStopPost apt-daily-upgrade.service")
    command = re.search(r"argv\[\]=([^;]+);", post)
    assert command, post
    host.check_output("touch /run/reboot-required")
    try:
        host.check_output(command[1])
        run = status(host)
        assert run["reboot_pending"] is True
        assert run["reboot_at"] == "05:30"
        assert "An update needs a reboot: the device restarts at 05:30." in dashboard_text(owner)
    finally:
        host.check_output("rm -f /run/reboot-required")
    host.check_output(command[1])
    assert status(host)["reboot_pending"] is False
