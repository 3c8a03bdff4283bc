"""Where releases live and what an update touches: /etc/pi-im/update.json, by the release role."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# The environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_UPDATE_SETTINGS", "/etc/pi-im/update.json"))


@dataclass(frozen=True)
class Settings:
    # One directory per release applied, and the state of an update (staging, snapshot, log).
    releases_dir: Path
    state_dir: Path
    # The release the device runs (the release role writes it) and the last update's outcome.
    release_file: Path
    status_file: Path
    # The local run: its inventory and the options the device was built with.
    inventory: Path
    options: Path
    # What the playbooks manage and an update puts back as it was when it fails: directories
    # made whole again (files the failed run added are removed), and single files.
    roots: tuple[Path, ...]
    files: tuple[Path, ...]
    # Running when an update is done, or it is undone; the console answers here.
    services: tuple[str, ...]
    console_url: str

    @property
    def staged(self) -> Path:
        return self.state_dir / "staged"


def load(path: Path = SETTINGS) -> Settings:
    raw = json.loads(path.read_text())
    return Settings(
        releases_dir=Path(raw["releases_dir"]),
        state_dir=Path(raw["state_dir"]),
        release_file=Path(raw["release_file"]),
        status_file=Path(raw["status_file"]),
        inventory=Path(raw["inventory"]),
        options=Path(raw["options"]),
        roots=tuple(Path(p) for p in raw["roots"]),
        files=tuple(Path(p) for p in raw["files"]),
        services=tuple(raw["services"]),
        console_url=raw["console_url"],
    )
