"""The Imager repository file describes exactly the files it names."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import imager_repo

IMAGE_DIR = Path(__file__).resolve().parents[1] / "image"


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, Path]:
    img = tmp_path / "pi-im.img"
    # Mostly zeros with some noise, like a disk image: compresses well, not trivially.
    img.write_bytes(bytes(3 << 20) + os.urandom(64 << 10) + bytes(1 << 20))
    xz = tmp_path / "pi-im.img.xz"
    xz.write_bytes(lzma.compress(img.read_bytes(), preset=1))
    return img, xz


def test_entry_matches_the_files(image: tuple[Path, Path]) -> None:
    img, xz = image
    entry = imager_repo.os_entry(
        img, xz, "https://example.invalid/pi-im.img.xz", date(2026, 11, 29), "pi-im", "test"
    )
    assert entry["extract_size"] == img.stat().st_size
    assert entry["extract_sha256"] == hashlib.sha256(img.read_bytes()).hexdigest()
    assert entry["image_download_size"] == xz.stat().st_size
    assert entry["image_download_sha256"] == hashlib.sha256(xz.read_bytes()).hexdigest()
    assert entry["release_date"] == "2026-11-29"
    assert entry["devices"] == ["pi4"]
    assert entry["init_format"] == "cloudinit"


def test_swapped_files_are_refused(image: tuple[Path, Path]) -> None:
    img, xz = image
    with pytest.raises(ValueError, match="not smaller"):
        imager_repo.os_entry(xz, img, "u", date(2026, 11, 29), "n", "d")


def test_command_line_writes_os_list(image: tuple[Path, Path], tmp_path: Path) -> None:
    img, xz = image
    out = tmp_path / "os_list.json"
    subprocess.run(
        [
            sys.executable,
            str(IMAGE_DIR / "imager_repo.py"),
            "--img",
            str(img),
            "--xz",
            str(xz),
            "--url",
            "https://example.invalid/pi-im.img.xz",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    (entry,) = json.loads(out.read_text())["os_list"]
    assert entry["url"] == "https://example.invalid/pi-im.img.xz"
    assert entry["extract_size"] == img.stat().st_size


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(IMAGE_DIR / "imager_repo.py"),
            "--img",
            str(tmp_path / "no.img"),
            "--xz",
            str(tmp_path / "no.img.xz"),
            "--url",
            "u",
            "--out",
            str(tmp_path / "o.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "no.img does not exist" in result.stderr
