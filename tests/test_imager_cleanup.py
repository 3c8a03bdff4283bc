"""Imager's secrets leave the boot partition once cloud-init has applied them (finding 13):
the shipped script run on a boot directory like the one Imager writes."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "roles/sd_image/files/pi_im_imager_cleanup.py"
cleanup = runpy.run_path(str(SCRIPT))


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    (tmp_path / "user-data").write_text(
        "#cloud-config\nusers:\n  - name: pi\n    passwd: $6$salt$hash\n"
    )
    (tmp_path / "network-config").write_text(
        "version: 2\nwifis:\n  wlan0:\n    access-points:\n      home: {password: s3cret}\n"
    )
    (tmp_path / "meta-data").write_text("instance-id: pi-im-1\n")
    return tmp_path


def test_nothing_is_touched_before_cloud_init_has_finished(boot: Path, tmp_path: Path) -> None:
    assert cleanup["clean"](boot, tmp_path / "not-yet") == []
    assert "passwd" in (boot / "user-data").read_text()
    assert (boot / "network-config").exists()


def test_the_password_hash_and_wifi_key_are_gone_once_applied(boot: Path, tmp_path: Path) -> None:
    done = tmp_path / "boot-finished"
    done.touch()
    assert cleanup["clean"](boot, done) == ["emptied user-data", "removed network-config"]
    assert (boot / "user-data").read_text() == cleanup["EMPTY"]
    assert not (boot / "network-config").exists()
    # The NoCloud instance is kept, so cloud-init never runs first boot again.
    assert (boot / "meta-data").read_text() == "instance-id: pi-im-1\n"
    assert cleanup["clean"](boot, done) == []
