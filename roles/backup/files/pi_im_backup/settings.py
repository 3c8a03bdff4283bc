"""What to back up and where: /etc/pi-im/backup.json, written by the backup role."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# The environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_BACKUP_SETTINGS", "/etc/pi-im/backup.json"))


@dataclass(frozen=True)
class Database:
    """A SQLite database, copied online and put back with its service stopped."""

    name: str
    path: Path
    service: str
    owner: str


@dataclass(frozen=True)
class Settings:
    # Where backups go: the playbook's backup_repository, else the one the owner chose in the
    # console (target_file); "" when neither is set.
    repository: str
    secrets_dir: Path
    passphrase_secret: str
    ssh_key_secret: str
    state_dir: Path
    keep: dict[str, int]
    databases: tuple[Database, ...]
    # Put back as they were (owners and modes kept): secrets, the domain, certificates, files.
    files: tuple[Path, ...]
    # Recorded and compared on restore, never put back: the new device's roles own them.
    recorded: tuple[Path, ...]
    rabbitmq: Path
    # The device's XMPP domain (settled at first boot), and the one its options name, if any.
    domain_file: Path
    configured_domain: str
    # The last backup's outcome, readable by the console (nothing secret in it).
    status_file: Path
    # Whether the playbook set the repository (the console then shows it, never changes it).
    repository_fixed: bool = False
    # The target the owner chose in the console, used when the playbook sets none.
    target_file: Path = Path("/var/lib/pi-im/backup/target")
    # The console's requests and their answers (its own directory), what the page shows, and
    # the download it asked for (root's, readable by the console's group).
    console_spool: Path = Path("/var/lib/pi-im-admin/backup")
    console_user: str = "pi-im-admin"
    console_state: Path = Path("/var/lib/pi-im/backup/console.json")
    export_dir: Path = Path("/var/lib/pi-im/backup/export")

    @property
    def passphrase_file(self) -> Path:
        return self.secrets_dir / self.passphrase_secret

    @property
    def ssh_key_file(self) -> Path:
        return self.secrets_dir / self.ssh_key_secret


def chosen_target(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def load(path: Path = SETTINGS) -> Settings:
    raw = json.loads(path.read_text())
    target_file = Path(raw.get("target_file", Settings.target_file))
    return Settings(
        repository=raw["repository"] or chosen_target(target_file),
        secrets_dir=Path(raw["secrets_dir"]),
        passphrase_secret=raw["passphrase_secret"],
        ssh_key_secret=raw["ssh_key_secret"],
        state_dir=Path(raw["state_dir"]),
        keep={key: int(value) for key, value in raw["keep"].items()},
        databases=tuple(
            Database(d["name"], Path(d["path"]), d["service"], d["owner"]) for d in raw["databases"]
        ),
        files=tuple(Path(p) for p in raw["files"]),
        recorded=tuple(Path(p) for p in raw["recorded"]),
        rabbitmq=Path(raw["rabbitmq"]),
        domain_file=Path(raw["domain_file"]),
        configured_domain=raw["configured_domain"],
        status_file=Path(raw["status_file"]),
        repository_fixed=bool(raw["repository"]),
        target_file=target_file,
        console_spool=Path(raw.get("console_spool", Settings.console_spool)),
        console_user=raw.get("console_user", Settings.console_user),
        console_state=Path(raw.get("console_state", Settings.console_state)),
        export_dir=Path(raw.get("export_dir", Settings.export_dir)),
    )
