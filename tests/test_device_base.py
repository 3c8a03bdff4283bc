"""The base role's device scripts, run as the device runs them (their own interpreter, their
settings file) against a temporary tree: pi-im-secret and pi-im-provision."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

FILES = Path(__file__).parents[1] / "roles/base/files"


@pytest.fixture
def device(tmp_path: Path) -> dict[str, str]:
    """The environment of a device whose base settings point into tmp_path."""
    settings = tmp_path / "base.json"
    settings.write_text(
        json.dumps(
            {"secrets_dir": str(tmp_path / "secrets"), "provision_dir": str(tmp_path / "steps")}
        )
    )
    return {**os.environ, "PI_IM_BASE_SETTINGS": str(settings)}


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FILES / script), *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def test_a_secret_is_made_once_root_only_and_shown_only_when_asked(
    device: dict[str, str], tmp_path: Path
) -> None:
    made = run("pi_im_secret.py", "ensure", "db-password", env=device)
    assert made.stdout == "created\n"
    path = tmp_path / "secrets/db-password"
    value = path.read_text().strip()
    assert len(value) == 32  # 24 random bytes, URL-safe base64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert value not in made.stdout + made.stderr
    assert run("pi_im_secret.py", "ensure", "db-password", env=device).stdout == "exists\n"
    assert path.read_text().strip() == value  # kept, not made again
    assert run("pi_im_secret.py", "show", "db-password", env=device).stdout == value + "\n"
    assert run("pi_im_secret.py", "path", "db-password", env=device).stdout == f"{path}\n"


@pytest.mark.parametrize("name", ["../etc/shadow", "Upper", "-dash", "a" * 65, ""])
def test_a_name_outside_the_pattern_is_refused(device: dict[str, str], name: str) -> None:
    refused = run("pi_im_secret.py", "ensure", "--", name, env=device)
    assert refused.returncode != 0
    assert "invalid name" in refused.stderr


def test_showing_a_missing_secret_fails_without_making_it(
    device: dict[str, str], tmp_path: Path
) -> None:
    shown = run("pi_im_secret.py", "show", "nothing-here", env=device)
    assert shown.returncode == 1
    assert "no secret named 'nothing-here'" in shown.stderr
    assert not (tmp_path / "secrets/nothing-here").exists()


def step(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_steps_run_in_name_order_and_a_failure_fails_the_phase_after_the_rest(
    device: dict[str, str], tmp_path: Path
) -> None:
    early = tmp_path / "steps/early"
    trace = tmp_path / "trace"
    step(early, "20-second", f"echo second >> {trace}; echo made the key; echo and the other")
    step(early, "10-first", f"echo first >> {trace}")
    step(early, "15-broken", f"echo broken >> {trace}; printf checked; echo no disk >&2; exit 3")
    done = run("pi_im_provision.py", "early", env=device)
    assert trace.read_text().split() == ["first", "broken", "second"]
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "early/10-first: ok",
        "early/15-broken: FAILED checked no disk",
        "early/20-second: ok made the key and the other",
    ]
    assert "failed steps: 15-broken" in done.stderr


def test_a_phase_without_steps_has_nothing_to_do(device: dict[str, str]) -> None:
    done = run("pi_im_provision.py", "late", env=device)
    assert (done.returncode, done.stdout) == (0, "")


def test_only_the_two_phases_are_accepted(device: dict[str, str]) -> None:
    refused = run("pi_im_provision.py", "middle", env=device)
    assert refused.returncode == 2
    assert "usage" in refused.stderr
