"""The module builder's decisions (pi-im-ejabberd-build-modules): what it compiles, when, and
what it refuses. Erlang is not installed here, so `erlc` and `dpkg-query` are small stand-ins
on PATH; the device's real compiler and packages run it in Molecule
(test_ejabberd_modules.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "roles/ejabberd/files/pi-im-ejabberd-build-modules"
MODULES = ["mod_a", "mod_b"]


class Device:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules = root / "pi_im_ejabberd"
        (self.modules / "src").mkdir(parents=True)
        (self.modules / "ebin").mkdir()
        (root / "ejabberd-23.01/ebin").mkdir(parents=True)
        for name in MODULES:
            (self.modules / "src" / f"{name}.erl").write_text(f"-module({name}).\n")
        self.bin = root / "bin"
        self.bin.mkdir()
        # erlc -Werror -pa EBIN -o DIR SOURCE: a .beam named after the source.
        self.tool("erlc", 'name=$(basename "$6" .erl); echo "beam of $name" > "$5/$name.beam"')
        self.packages("ejabberd 23.01-3+deb12u1", "erlang-base 1:25.2.3+dfsg-1")
        settings = {
            "MODULES_DIR": self.modules,
            "MODULES_WRITTEN_FOR": "23.01 24.12",
            "PACKAGE_EBIN": root / "ejabberd-*/ebin",
        }
        self.settings = root / "ejabberd.env"
        self.settings.write_text(
            "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in settings.items())
        )

    def tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def packages(self, *lines: str) -> None:
        self.tool("dpkg-query", "printf '%s\\n' " + " ".join(shlex.quote(line) for line in lines))

    def build(self) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "PI_IM_EJABBERD_SETTINGS": str(self.settings),
        }
        return subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, env=env)

    def compiled(self) -> list[str]:
        done = self.build()
        assert done.returncode == 0, done.stderr
        return [line.removeprefix("compiled ") for line in done.stdout.splitlines()]


@pytest.fixture
def device(tmp_path: Path) -> Device:
    return Device(tmp_path)


def test_first_build_compiles_every_module_and_the_next_none(device: Device) -> None:
    assert device.compiled() == MODULES
    assert device.compiled() == []
    assert not list((device.modules / "ebin").glob(".build.*"))


def test_a_newer_source_is_compiled_alone(device: Device) -> None:
    device.compiled()
    beam = device.modules / "ebin/mod_b.beam"
    os.utime(beam, (beam.stat().st_mtime - 60,) * 2)
    assert device.compiled() == ["mod_b"]


@pytest.mark.parametrize(
    "packages",
    [
        ("ejabberd 23.01-3+deb12u2", "erlang-base 1:25.2.3+dfsg-1"),
        ("ejabberd 23.01-3+deb12u1", "erlang-base 1:25.3.2+dfsg-1"),
        # The move from bookworm to trixie: the other release the modules were written for.
        ("ejabberd 24.12-3+deb13u2", "erlang-base 1:27.3.4.1+dfsg-1"),
    ],
    ids=["ejabberd-update", "erlang-update", "trixie"],
)
def test_a_package_update_rebuilds_every_module(device: Device, packages: tuple[str, str]) -> None:
    device.compiled()
    device.packages(*packages)
    assert device.compiled() == MODULES
    assert device.compiled() == []


def test_a_failed_build_is_tried_again_in_full(device: Device) -> None:
    device.compiled()
    device.packages("ejabberd 23.01-3+deb12u2", "erlang-base 1:25.2.3+dfsg-1")
    device.tool("erlc", "echo 'mod_a.erl:3: Warning: deprecated' >&2; exit 1")
    failed = device.build()
    assert failed.returncode == 1
    assert "deprecated" in failed.stderr
    device.tool("erlc", 'name=$(basename "$6" .erl); echo "beam" > "$5/$name.beam"')
    assert device.compiled() == MODULES


def test_another_ejabberd_release_is_refused(device: Device) -> None:
    device.compiled()
    device.packages("ejabberd 25.03-1", "erlang-base 1:27.3+dfsg-1")
    done = device.build()
    assert done.returncode == 3
    assert "written for ejabberd 23.01 24.12, not 25.03" in done.stderr
    assert (device.modules / "ebin/mod_a.beam").read_text() == "beam of mod_a\n"


def test_erlc_runs_with_a_small_open_file_limit(device: Device) -> None:
    """An Erlang VM sizes its port table by the open-file limit; the unit's "+" step inherits
    systemd's own (2^30 on trixie), a 2 GB table a 2 GB Pi cannot reserve."""
    seen = device.root / "nofile"
    device.tool(
        "erlc",
        f'ulimit -n > {seen}; name=$(basename "$6" .erl); echo "beam" > "$5/$name.beam"',
    )
    assert device.compiled() == MODULES
    assert seen.read_text().strip() == "1024"
