"""How apt's hook input is read by the ejabberd package check (pi_im_ejabberd_package_check.py).
Erlang is not on this machine: what the check does with an update is tested on the device
(molecule/default/tests/test_package_updates.py, test_updates.py)."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def package(tmp_path: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A real .deb, built with this machine's dpkg-deb."""
    tree = tmp_path / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n"
    )
    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    deb = tmp_path / f"{name}_{version}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def settings(tmp_path: Path) -> argparse.Namespace:
    (tmp_path / "installed/ejabberd-24.12/ebin").mkdir(parents=True)
    (tmp_path / "modules/src").mkdir(parents=True)
    return argparse.Namespace(
        modules=str(tmp_path / "modules"),
        written_for="23.01 24.12",
        package_ebin=str(tmp_path / "installed/ejabberd-*/ebin"),
    )


def test_a_package_that_will_not_unpack_is_refused_with_dpkgs_reason(tmp_path: Path) -> None:
    damaged = tmp_path / "ejabberd_24.12-4.deb"
    damaged.write_bytes(b"!<arch>\ncut short")
    change = check.Unpack("ejabberd", "24.12-3", "24.12-4", str(damaged))
    with pytest.raises(
        check.Refused, match=r"ejabberd_24\.12-4\.deb could not be unpacked: dpkg-deb"
    ):
        check.check([change], settings(tmp_path), "24.12-3")


def test_without_a_compiler_the_check_cannot_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Erlang here: the unpacked package is real, the compiler is missing, and main()
    refuses the update with that reason (dpkg's database has no ejabberd here: a stand-in)."""
    deb = package(tmp_path, "ejabberd", "24.12-4", {"usr/lib/x/ejabberd-24.12-4/ebin/a.beam": ""})
    config = settings(tmp_path)
    (tmp_path / "modules/ebin").mkdir()
    (tmp_path / "modules/ebin/.built-for").write_text("ejabberd 24.12-3\n")
    status = tmp_path / "status.json"
    monkeypatch.setattr(check, "STATUS", status)
    monkeypatch.setattr(check, "STAGE_DIR", str(tmp_path))
    monkeypatch.setattr(check, "installed", lambda _package: "24.12-3")
    monkeypatch.setattr(check, "arguments", lambda: config)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools") + ":/usr/bin:/bin")
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO(f"VERSION 3\n\nejabberd 24.12-3 all none < 24.12-4 all none {deb}\n"),
    )
    if shutil.which("erlc"):
        pytest.skip("this machine has an Erlang compiler")
    assert check.main() == 1
    written = json.loads(status.read_text())
    assert written["result"] == "refused"
    assert written["reason"].startswith("the check could not run: [Errno 2] No such file")
    assert not list(tmp_path.glob("pi-im-package-check.*"))


def test_a_tools_output_is_bounded_in_the_reason() -> None:
    done = subprocess.CompletedProcess([], 1, "warning " * 1000, "")
    assert len(check.said(done)) == check.REASON_CHARS + 2
    assert check.said(subprocess.CompletedProcess([], 1, "a\n  b", "c")) == "a b c"
