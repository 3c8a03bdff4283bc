"""An ejabberd update passes the appliance's check before dpkg changes anything: its modules
are compiled against the new package and the configuration read by the new ejabberd, and an
update that fails either is refused while ejabberd runs on as it was; the console says so.

Debian's archive holds one ejabberd per suite, so the device's own package is repacked on the
device with a higher version: whole (a good update), without a module the appliance's modules
build on, without one its configuration names, and as a release they were not written for.
Each goes through apt, as unattended-upgrades or a person would install it."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

import family
from admin_console import Console
from conftest import EJABBERD_CONFIG, Account
from debian_packages import download, install, installed_version, repack

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

WORK = "/root/package-updates"
STATUS = "/var/lib/pi-im/updates/ejabberd.json"
BUILT_FOR = "/usr/local/lib/pi-im/pi_im_ejabberd/ebin/.built-for"
EBIN = "usr/lib/*/ejabberd-*/ebin"


@dataclass(frozen=True)
class Packages:
    original: str  # the version the device came with
    debs: dict[str, str]  # variant -> .deb on the device


def ejabberd_state(host) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """The installed version, the running server's PID and what the modules were built for."""
    return (
        installed_version(host, "ejabberd"),
        host.check_output("systemctl show --value -p MainPID ejabberd"),
        host.file(BUILT_FOR).content_string,
    )


@pytest.fixture(scope="module")
def packages(host) -> Iterator[Packages]:  # type: ignore[no-untyped-def]
    original = installed_version(host, "ejabberd")
    host.check_output(f"rm -rf {WORK}")
    deb = download(host, "ejabberd", original, WORK)
    variants = {
        "good": (f"{original}+pitest1", ()),
        "no-behaviour": (f"{original}+pitest2", (f"{EBIN}/mod_offline.beam",)),
        "no-module": (f"{original}+pitest3", (f"{EBIN}/mod_vcard_xupdate.beam",)),
        "unported": ("26.07-1", ()),
    }
    debs = {
        name: repack(host, deb, version, f"{WORK}/{name}.deb", gone)
        for name, (version, gone) in variants.items()
    }
    yield Packages(original, debs)
    # Back to the device's own package, through the same check.
    done = install(host, deb)
    assert done.rc == 0, done.stdout
    host.check_output(f"rm -rf {WORK}")


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        (
            "no-behaviour",
            "the appliance's modules do not compile against ejabberd {version}: compile: "
            "warnings being treated as errors",
        ),
        (
            "no-module",
            "ejabberd {version} does not accept the device's configuration: invalid ejabberd "
            "configuration: Invalid value of option modules: unknown ejabberd module: "
            "mod_vcard_xupdate",
        ),
        (
            "unported",
            "ejabberd 26.07-1 is release 26.07; the appliance's modules were written for 23.01 "
            "and 24.12 and must be ported first",
        ),
    ],
)
def test_an_update_ejabberd_would_not_survive_changes_nothing(
    host, packages: Packages, variant: str, reason: str
) -> None:
    before = ejabberd_state(host)
    config = host.file(EJABBERD_CONFIG).content_string
    version = host.check_output(f"dpkg-deb --field {packages.debs[variant]} Version")

    done = install(host, packages.debs[variant])

    assert done.rc == 100, done.stdout
    expected = reason.format(version=version)
    assert f"pi-im: this update is not installed: {expected}" in " ".join(done.stdout.split())
    assert f"Nothing was changed; ejabberd stays on {before[0]}." in done.stdout
    assert ejabberd_state(host) == before
    assert host.file(EJABBERD_CONFIG).content_string == config
    assert host.check_output("systemctl is-active ejabberd") == "active"
    status = json.loads(host.file(STATUS).content_string)
    assert status["result"] == "refused"
    assert status["reason"].startswith(expected)
    assert status["installed"] == before[0]
    assert status["packages"] == {"ejabberd": {"from": before[0], "to": version}}
    if variant == "no-behaviour":
        assert "mod_offline_sql_known.erl:14:2: behaviour mod_offline undefined" in status["reason"]
    # Nothing is left behind by the check.
    assert host.check_output("ls -d /var/tmp/pi-im-package-check.* 2>/dev/null || true") == ""


def test_the_console_tells_everyone_an_update_was_refused(
    host, packages: Packages, owner_api: httpx.Client, owner: Console
) -> None:
    install(host, packages.debs["unported"])
    board = owner_api.get("/dashboard").json()
    assert board["ejabberd_update"]["result"] == "refused"
    assert board["ejabberd_update"]["packages"]["ejabberd"]["to"] == "26.07-1"
    page = " ".join(owner.get("/").text.split()).replace("&#39;", "'")
    assert "An update of ejabberd was not installed (ejabberd 26.07-1," in page
    assert "modules were written for 23.01 and 24.12 and must be ported first" in page
    assert f"Nothing was changed: ejabberd runs on {packages.original} as before." in page


def test_a_good_update_is_installed_and_the_modules_rebuilt_for_it(
    host,
    packages: Packages,
    accounts: list[Account],
    owner_api: httpx.Client,
    device_tls: ssl.SSLContext,
    address: str,
) -> None:
    before = ejabberd_state(host)
    version = f"{packages.original}+pitest1"

    done = install(host, packages.debs["good"])

    assert done.rc == 0, done.stdout
    assert "pi-im: the ejabberd update passed its checks (1 package)" in done.stdout
    installed, pid, built_for = ejabberd_state(host)
    assert installed == version
    assert pid not in ("0", before[1])  # restarted by the package, on the new modules
    assert built_for.startswith(f"ejabberd {version}\n")
    assert host.check_output("systemctl is-active ejabberd") == "active"
    # The package's scripts give ejabberd.yml to ejabberd unless told otherwise: it stays root's.
    config = host.file(EJABBERD_CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "ejabberd", 0o640)
    assert json.loads(host.file(STATUS).content_string)["result"] == "passed"
    assert owner_api.get("/dashboard").json()["ejabberd_update"]["result"] == "passed"

    async def logs_in() -> None:
        user = accounts[0].jid.split("@")[0]
        client = await family.online(user, accounts[0].password, device_tls, address)
        client.disconnect()

    asyncio.run(logs_in())
