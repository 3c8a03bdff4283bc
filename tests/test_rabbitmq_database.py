"""The check run before every start of RabbitMQ: a database 4.0 cannot start (one from before
3.13, as bookworm's 3.10 after an upgrade to trixie) is set aside and kept; any other stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "roles/rabbitmq/files/pi_im_rabbitmq_database.py"
NODE = "rabbit@localhost"
# The feature flags files as the releases leave them (bookworm's 3.10 read on a device).
FLAGS_3_10 = (
    "[classic_mirrored_queue_version,implicit_default_bindings,\n maintenance_mode_status,"
    "quorum_queue,stream_queue,user_limits,\n virtual_host_metadata].\n"
)
FLAGS_4_0 = FLAGS_3_10.replace("].", ",message_containers,stream_filtering].")


def run(
    tmp_path: Path, version: str, flags: str | None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    data = tmp_path / "mnesia"
    (data / NODE).mkdir(parents=True)
    (data / NODE / "schema.DAT").write_text("tables")
    if flags is not None:
        (data / f"{NODE}-feature_flags").write_text(flags)
    tools = tmp_path / "bin"
    tools.mkdir()
    dpkg = tools / "dpkg-query"
    dpkg.write_text(f"#!/bin/sh\nprintf '%s' '{version}'\n")
    dpkg.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(data), NODE],
        capture_output=True,
        text=True,
        env={"PATH": f"{tools}:/usr/bin:/bin"},
        check=False,
    )
    return done, data


def test_a_3_10_database_is_set_aside_and_kept_under_4_0(tmp_path: Path) -> None:
    done, data = run(tmp_path, "4.0.5-6+deb13u2", FLAGS_3_10)
    assert done.returncode == 0, done.stderr
    assert not data.exists()
    (kept,) = tmp_path.glob("mnesia-before-3.13-*")
    assert (kept / NODE / "schema.DAT").read_text() == "tables"
    assert f"set aside as {kept}" in done.stdout


@pytest.mark.parametrize(
    ("version", "flags"),
    [
        ("4.0.5-6+deb13u2", FLAGS_4_0),  # a database 4.0 made or ran
        ("3.10.8-1.1+deb12u1", FLAGS_3_10),  # still on bookworm
        ("4.0.5-6+deb13u2", None),  # no database yet: the broker makes one
    ],
    ids=["4.0-database", "bookworm", "fresh"],
)
def test_any_other_database_stays(tmp_path: Path, version: str, flags: str | None) -> None:
    done, data = run(tmp_path, version, flags)
    assert done.returncode == 0, done.stderr
    assert (data / NODE / "schema.DAT").is_file()
    assert not list(tmp_path.glob("mnesia-before-*"))
    assert done.stdout == ""


def test_wrong_arguments_say_how_to_call_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "DATA_DIR NODE" in done.stderr
