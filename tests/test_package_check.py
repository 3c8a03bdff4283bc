"""How apt's hook input is read by the ejabberd package check (pi_im_ejabberd_package_check.py).
Erlang is not on this machine: what the check does with an update is tested on the device
(molecule/default/tests/test_package_updates.py, test_updates.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "roles/ejabberd/files/pi_im_ejabberd_package_check.py"
spec = importlib.util.spec_from_file_location("pi_im_ejabberd_package_check", SCRIPT)
assert spec
assert spec.loader
check = importlib.util.module_from_spec(spec)
# Registered first: its dataclass looks itself up there.
sys.modules[spec.name] = check
spec.loader.exec_module(check)

# apt 3.0's protocol 3, as a hook received it on trixie (the configuration cut short).
HOOK_INPUT = """VERSION 3
APT::Architecture=amd64
Dir=/
Binary=apt-get

hello 2.10-5 amd64 none = 2.10-5 amd64 none /var/cache/apt/archives/hello_2.10-5_amd64.deb
hello 2.10-5 amd64 none = 2.10-5 amd64 none **CONFIGURE**
ejabberd 24.12-3+deb13u2 amd64 none < 26.07-1 amd64 none /root/package-updates/unported.deb
erlang-p1-xmpp - - none < 1.9.4-1 amd64 none /var/cache/apt/archives/erlang-p1-xmpp_1.9.4-1.deb
ejabberd 24.12-3+deb13u2 amd64 none < 26.07-1 amd64 none **CONFIGURE**
"""


def test_the_packages_apt_unpacks_are_read() -> None:
    assert check.unpacks(HOOK_INPUT) == [
        check.Unpack("hello", "2.10-5", "2.10-5", "/var/cache/apt/archives/hello_2.10-5_amd64.deb"),
        check.Unpack(
            "ejabberd", "24.12-3+deb13u2", "26.07-1", "/root/package-updates/unported.deb"
        ),
        check.Unpack(
            "erlang-p1-xmpp",
            "-",
            "1.9.4-1",
            "/var/cache/apt/archives/erlang-p1-xmpp_1.9.4-1.deb",
        ),
    ]
    # The configuration above the empty line is never taken for a package.
    assert check.unpacks("VERSION 3\nDir=/\n") == []


def test_the_release_is_the_upstream_version() -> None:
    assert check.release("24.12-3+deb13u2") == "24.12"
    assert check.release("1:23.01-1") == "23.01"
    assert check.release("24.12-3~bpo12+1") == "24.12"


def test_an_update_of_anything_else_passes_untouched(tmp_path: Path) -> None:
    """Most of apt's runs: no ejabberd or Erlang package, nothing checked, nothing written."""
    status = tmp_path / "ejabberd.json"
    arguments = ["--modules", str(tmp_path), "--written-for", "24.12", "--package-ebin", "x/ebin"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        input=HOOK_INPUT.split("ejabberd 24.12")[0],
        capture_output=True,
        text=True,
        env={**os.environ, "PI_IM_EJABBERD_UPDATE_STATUS": str(status)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not status.exists()
