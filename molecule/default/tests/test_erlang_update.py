"""A real Erlang security update from Debian's archive, on bookworm: the device is taken back
to the version in bookworm-security (1:25.2.3+dfsg-1+deb12u1), then the nightly run brings it
to the point release's (deb12u4). The package check passes it before dpkg runs, needrestart
restarts ejabberd on the new Erlang, and the modules are rebuilt for it as it starts.

trixie's archive holds one Erlang, so this runs in the bookworm scenario only."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest

import family
from conftest import Account
from debian_packages import INSTALL, UPDATES_STATUS, nightly_run

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

OLDER = "1:25.2.3+dfsg-1+deb12u1"
BUILT_FOR = "/usr/local/lib/pi-im/pi_im_ejabberd/ebin/.built-for"


def erlang_packages(host) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The installed packages built from Debian's erlang source, with their versions."""
    listing = host.check_output(
        "dpkg-query --showformat='${db:Status-Abbrev} ${Package} ${Version} ${source:Package}\\n'"
        " --show 'erlang-*'"
    )
    return {
        fields[1]: fields[2]
        for fields in map(str.split, listing.splitlines())
        if fields[0] == "ii" and fields[3] == "erlang"
    }


@pytest.fixture(scope="module")
def bookworm(host) -> None:  # type: ignore[no-untyped-def]
    if host.system_info.codename != "bookworm":
        pytest.skip("trixie's archive holds one Erlang: a real pair is bookworm's")


def test_a_real_erlang_update_is_checked_installed_and_ejabberd_rebuilt_for_it(
    host, bookworm: None, accounts: list[Account], device_tls: ssl.SSLContext, address: str
) -> None:
    newest = erlang_packages(host)
    assert newest["erlang-base"] != OLDER
    older = " ".join(f"{name}={OLDER}" for name in newest)
    taken_back = host.run(f"{INSTALL} --allow-downgrades {older} 2>&1")
    assert taken_back.rc == 0, taken_back.stdout
    # The check sees Erlang going, and passes it: the modules compile with the Erlang installed.
    assert "pi-im: the ejabberd update passed its checks" in taken_back.stdout
    host.check_output("systemctl restart ejabberd")
    assert f"erlang-base {OLDER}" in host.file(BUILT_FOR).content_string
    pid = host.check_output("systemctl show --value -p MainPID ejabberd")

    nightly_run(host)

    assert erlang_packages(host) == newest
    run = json.loads(host.file(UPDATES_STATUS).content_string)
    assert run["result"] == "installed"
    assert set(newest) <= set(run["packages"])
    checked = json.loads(host.file("/var/lib/pi-im/updates/ejabberd.json").content_string)
    assert checked["result"] == "passed"
    assert checked["packages"]["erlang-base"] == {"from": OLDER, "to": newest["erlang-base"]}
    # needrestart saw ejabberd's Erlang replaced under it and restarted it; the modules were
    # rebuilt for the new Erlang as it started.
    assert host.check_output("systemctl show --value -p MainPID ejabberd") != pid
    assert f"erlang-base {newest['erlang-base']}" in host.file(BUILT_FOR).content_string
    assert host.check_output("systemctl --failed --no-legend --plain") == ""

    async def logs_in() -> None:
        user = accounts[0].jid.split("@")[0]
        client = await family.online(user, accounts[0].password, device_tls, address)
        client.disconnect()

    asyncio.run(logs_in())
