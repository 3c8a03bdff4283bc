"""The image's sysconf.txt step (Debian's contract for a card prepared without Imager): what it
reads, what it blanks once applied, and what it refuses; run on a boot directory like a card's."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "roles/sd_image/files/pi_im_sysconf.py"
sysconf = runpy.run_path(str(SCRIPT))

CARD = """# Debian's sysconf.txt
root_pw=correct horse
root_authorized_key=ssh-ed25519 AAAAC3Nza key@laptop
hostname=kitchen-pi
unknown=kept
"""


def test_only_the_three_keys_with_values_are_read() -> None:
    assert sysconf["parse"](CARD + "hostname_typo=x\nroot_pw=\n") == {
        "root_pw": "correct horse",
        "root_authorized_key": "ssh-ed25519 AAAAC3Nza key@laptop",
        "hostname": "kitchen-pi",
    }


def test_what_was_applied_is_blanked_and_the_rest_kept() -> None:
    blanked = sysconf["blank"](CARD, ["root_pw", "hostname"])
    assert blanked.splitlines() == [
        "# Debian's sysconf.txt",
        "root_pw=",
        "root_authorized_key=ssh-ed25519 AAAAC3Nza key@laptop",
        "hostname=",
        "unknown=kept",
    ]


def test_host_names_follow_the_dns_label_rules() -> None:
    valid = sysconf["HOSTNAME"].match
    assert valid("kitchen-pi")
    assert valid("a" * 63)
    for bad in ["-pi", "pi-", "pi.local", "pi pi", "a" * 64, ""]:
        assert not valid(bad), bad


def run_on(boot: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    settings = tmp_path / "sd-image.json"
    settings.write_text(json.dumps({"boot_mount": str(boot)}))
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PI_IM_SD_IMAGE_SETTINGS": str(settings)},
    )  # fmt: skip


def test_a_card_without_sysconf_has_nothing_to_do(tmp_path: Path) -> None:
    done = run_on(tmp_path, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_an_invalid_host_name_is_refused_and_left_on_the_card(tmp_path: Path) -> None:
    (tmp_path / "sysconf.txt").write_text("hostname=-bad-\n")
    done = run_on(tmp_path, tmp_path)
    assert done.returncode == 0
    assert "ignored hostname '-bad-'" in done.stderr
    assert (tmp_path / "sysconf.txt").read_text() == "hostname=-bad-\n"


IMAGER_USER_DATA = """#cloud-config
manage_resolv_conf: false

hostname: kitchen-pi
manage_etc_hosts: true
user:
  name: ann
"""


def test_imagers_host_name_is_read_from_its_cloud_config() -> None:
    read = sysconf["imager_hostname"]
    assert read(IMAGER_USER_DATA) == "kitchen-pi"
    # What the clean-up leaves, and what is not a cloud-config at all.
    assert read("#cloud-config\n# Applied at first boot, then emptied.\n") is None
    assert read("- a\n- list\n") is None
    assert read("hostname: [unclosed\n") is None


def test_an_invalid_imager_host_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "user-data").write_text(IMAGER_USER_DATA.replace("kitchen-pi", "-bad-"))
    done = run_on(tmp_path, tmp_path)
    assert done.returncode == 0
    assert "ignored hostname '-bad-'" in done.stderr
    assert "from Imager" not in done.stdout
