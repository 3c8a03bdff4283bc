"""The appliance's ejabberd modules on the device: their EUnit tests pass against the device's
own ejabberd and Erlang, and a package update rebuilds them though their sources did not change."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from conftest import REPO

MODULES = REPO / "roles/ejabberd/files/ejabberd_modules"
# Every module the role installs, each built to its own beam.
NAMES = sorted(
    yaml.safe_load((REPO / "roles/ejabberd/vars/main.yml").read_text())["__ejabberd_modules"]
)
BUILT = "/usr/local/lib/pi-im/pi_im_ejabberd/ebin"
# Not /tmp: trixie mounts a tmpfs there, which `docker cp` (into the container's own files) misses.
COPY = "/var/tmp/pi-im-ejabberd-modules"


@pytest.fixture(scope="module")
def sources(host, container: str):  # type: ignore[no-untyped-def]
    """The modules' folder (src/ and test/) on the device, and Erlang's headers for EUnit
    (erlang-dev: a test tool, never part of the appliance)."""
    host.check_output(f"rm -rf {COPY}")
    subprocess.run(["docker", "cp", str(MODULES), f"{container}:{COPY}"], check=True)
    host.check_output(
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq install -y "
        "--no-install-recommends erlang-dev"
    )
    yield COPY
    host.check_output(f"rm -rf {COPY}")


def test_eunit_tests_pass_on_the_device(host, sources: str) -> None:
    done = host.run(f"{sources}/run-eunit")
    assert done.rc == 0, done.stdout + done.stderr
    tests = sorted(p.stem for p in MODULES.glob("*/test/*_tests.erl"))
    assert tests  # each module's folder has one (tests/test_ejabberd_module_layout.py)
    for module in tests:
        assert f"module '{module}'" in done.stdout
    passed = re.search(r"All (\d+) tests passed\.", done.stdout)
    assert passed, done.stdout
    assert int(passed[1]) >= 20


def beams(host) -> dict[str, float]:
    return {name: host.file(f"{BUILT}/{name}.beam").mtime.timestamp() for name in NAMES}


def test_a_package_update_rebuilds_the_modules(host) -> None:
    """What the modules were built against is recorded beside them; a different ejabberd or
    Erlang package (here: the record of an older one) rebuilds every module, once."""
    record = f"{BUILT}/.built-for"
    packages = host.check_output(
        "dpkg-query --showformat='${Package} ${Version}\\n' --show ejabberd erlang-base"
    )
    assert host.file(record).content_string.strip() == packages.strip()
    before = beams(host)
    host.check_output(f"sed -i 's/^ejabberd .*/ejabberd 23.01-0/' {record}")
    rebuilt = host.check_output("pi-im-ejabberd-build-modules")
    assert sorted(rebuilt.split()) == sorted(["compiled"] * len(NAMES) + NAMES)
    assert all(after > before[name] for name, after in beams(host).items())
    assert host.file(record).content_string.strip() == packages.strip()
    assert host.check_output("pi-im-ejabberd-build-modules") == ""
