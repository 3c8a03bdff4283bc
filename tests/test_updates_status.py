"""What the console is told about the nightly updates (roles/updates/files/pi_im_updates_status.py),
read from unattended-upgrades' own log: data/unattended-upgrades.log is a real one from the
Molecule device (Debian's openssl security update installed; a run with nothing to do; a run
the ejabberd package check stopped)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "roles/updates/files/pi_im_updates_status.py"
LOG = Path(__file__).parent / "data/unattended-upgrades.log"
spec = importlib.util.spec_from_file_location("pi_im_updates_status", SCRIPT)
assert spec
assert spec.loader
status_writer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(status_writer)

RUNS = LOG.read_text().split("\n")


def log_until(last_line: int) -> str:
    return "\n".join(RUNS[:last_line]) + "\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            9,
            {
                "ran": "2026-12-06T11:49:31",
                "result": "installed",
                "packages": ["libssl3t64", "openssl", "openssl-provider-legacy"],
                "errors": [],
            },
        ),
        (16, {"ran": "2026-12-06T11:51:15", "result": "nothing", "packages": [], "errors": []}),
        (
            26,
            {
                "ran": "2026-12-06T11:52:13",
                "result": "failed",
                "packages": ["ejabberd"],
                "errors": [
                    "Installing the upgrades failed!",
                    "error message: installArchives() failed",
                    "dpkg returned a error! See "
                    "/var/log/unattended-upgrades/unattended-upgrades-dpkg.log for details",
                ],
            },
        ),
        # Cut off before its verdict: a run that died (power lost, killed).
        (
            21,
            {
                "ran": "2026-12-06T11:52:13",
                "result": "unfinished",
                "packages": ["ejabberd"],
                "errors": [],
            },
        ),
    ],
    ids=["installed", "nothing", "failed", "unfinished"],
)
def test_the_last_run_is_read_from_the_log(lines: int, expected: dict[str, object]) -> None:
    run = status_writer.last_run(log_until(lines))
    assert run is not None
    assert status_writer.outcome(run) == expected


def test_no_run_yet() -> None:
    assert status_writer.last_run("") is None
    assert status_writer.last_run(RUNS[0] + "\n") is None


def write(
    tmp_path: Path, *args: str, log: str | None = None, reboot: bool = False
) -> dict[str, object]:
    log_file = tmp_path / "uu.log"
    if log is not None:
        log_file.write_text(log)
    flag = tmp_path / "reboot-required"
    if reboot:
        flag.touch()
    env = {
        **os.environ,
        "PI_IM_UPDATES_LOG": str(log_file),
        "PI_IM_UPDATES_STATUS": str(tmp_path / "status/status.json"),
        "PI_IM_REBOOT_REQUIRED": str(flag),
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.startswith("updates: ")
    status = tmp_path / "status/status.json"
    assert status.stat().st_mode & 0o777 == 0o644  # the console reads it as its own user
    return json.loads(status.read_text())


def test_the_status_file_says_what_the_console_shows(tmp_path: Path) -> None:
    status = write(tmp_path, "--reboot-time", "05:30", log=LOG.read_text(), reboot=True)
    assert status["result"] == "failed"
    assert status["unattended"] is True
    assert (status["reboot_pending"], status["reboot_at"]) == (True, "05:30")


def test_before_the_first_run_and_when_updates_are_off(tmp_path: Path) -> None:
    assert write(tmp_path, "--reboot-time", "05:30") == {
        "ran": None,
        "result": "not yet",
        "unattended": True,
        "reboot_pending": False,
        "reboot_at": None,
    }
    assert write(tmp_path, "--off", log=log_until(9))["unattended"] is False
