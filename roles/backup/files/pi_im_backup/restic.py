"""restic, the tool that encrypts, deduplicates and keeps the backups (Debian's package).

The passphrase reaches restic through its environment or a file, never its command line."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# sftp:user@host:/path, or sftp://user@host:port//path (restic's two spellings). The login
# is one argument of ssh: neither part may begin with "-", or ssh would read it as an option.
SFTP = re.compile(
    r"^sftp:(?://)?(?P<login>[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}@[A-Za-z0-9][A-Za-z0-9.-]{0,252})"
    r"(?::(?P<port>\d{1,5}))?[:/](?P<path>[^\x00-\x1f\x7f]*)\Z"
)
# restic and ssh run as the system's: nothing from the caller's PATH.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# What restic says when the passphrase opens no key (0.14 and 0.18 alike).
WRONG_PASSPHRASE = "wrong password or no key found"
NO_REPOSITORY = (
    "Is there a repository at the following location?",
    "repository does not exist",
    "unable to open config file",
)


# ssh's banner and its last line when a server shows another host key than the one kept.
HOST_KEY_CHANGED = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")


class ResticError(Exception):
    """restic failed; the message says why in words an owner can act on."""


class WrongPassphrase(ResticError):
    pass


class NoRepository(ResticError):
    pass


@dataclass(frozen=True)
class Repository:
    location: str
    # RESTIC_PASSWORD_FILE (the device's own) or RESTIC_PASSWORD (one typed in for a restore).
    password: dict[str, str]
    cache_dir: Path
    ssh_key: Path | None = None
    known_hosts: Path | None = None

    @property
    def is_sftp(self) -> bool:
        return self.location.startswith("sftp:")

    def options(self) -> list[str]:
        return ["-o", f"sftp.command={shlex.join(self.ssh())}"] if self.is_sftp else []

    def ssh(self) -> list[str]:
        """An SFTP server is reached with the device's own key, its host key kept on first use."""
        found = SFTP.match(self.location)
        if not found:
            raise ResticError(f"{self.location}: not an SFTP place (sftp:user@host:/path)")
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
        # Host names in the clear, so the Backups page can say which server each key is of.
        ssh += ["-o", "HashKnownHosts=no"]
        if self.ssh_key:
            ssh += ["-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if found["port"]:
            ssh += ["-p", found["port"]]
        return [*ssh, found["login"], "-s", "sftp"]

    def ssh_said(self) -> str:
        """What ssh itself says when it reaches the server, read to its end."""
        try:
            done = subprocess.run(
                self.ssh(),
                env={"PATH": SYSTEM_PATH, "HOME": str(self.cache_dir)},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "ssh gave no answer in 60 s"
        return done.stderr

    def run(self, args: Sequence[str], timeout: float = 6 * 3600) -> str:
        env = {
            "PATH": SYSTEM_PATH,
            "HOME": str(self.cache_dir),
            "RESTIC_REPOSITORY": self.location,
            "RESTIC_CACHE_DIR": str(self.cache_dir),
            "RESTIC_PROGRESS_FPS": "0.016",
            **self.password,
        }
        # A disk plugged into the device is read directly: no cache written to its card.
        cache = [] if self.is_sftp else ["--no-cache"]
        command = ["restic", *cache, *self.options(), *args]
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise ResticError(f"restic {args[0]} gave no answer in {timeout:.0f} s") from error
        if done.returncode == 0:
            return done.stdout
        said = done.stderr or done.stdout
        error = classify(said, self.location)
        if self.is_sftp and type(error) is ResticError:
            # restic can end before it has passed on ssh's last line, the one that says why:
            # ask ssh again, alone, and read all it says.
            error = classify(f"{said}\n{self.ssh_said()}", self.location)
        raise error

    def exists(self) -> bool:
        try:
            self.run(["cat", "config"], timeout=300)
        except NoRepository:
            return False
        return True

    def init(self) -> None:
        self.run(["init"], timeout=300)

    def backup(self, paths: Sequence[Path], host: str) -> dict[str, object]:
        """The paths as one snapshot; restic's summary (snapshot_id, data_added, ...)."""
        out = self.run(["backup", "--json", "--host", host, "--tag", "pi-im", *map(str, paths)])
        summaries = [
            message
            for line in out.splitlines()
            if line.startswith("{")
            and (message := json.loads(line)).get("message_type") == "summary"
        ]
        if not summaries:
            raise ResticError("restic made no snapshot (no summary in its output)")
        return summaries[-1]

    def forget(self, host: str, keep: dict[str, int]) -> None:
        rules = [f"--keep-{period}={count}" for period, count in sorted(keep.items()) if count]
        self.run(["forget", "--host", host, "--tag", "pi-im", "--prune", *rules])

    def snapshots(self) -> list[dict[str, object]]:
        return json.loads(self.run(["snapshots", "--json", "--tag", "pi-im"], timeout=600))

    def restore(self, snapshot: str, target: Path) -> None:
        self.run(["restore", snapshot, "--target", str(target)])


def classify(output: str, location: str) -> ResticError:
    if any(sign in output for sign in HOST_KEY_CHANGED):
        return ResticError(
            f"Host key verification failed: the SFTP server of {location} shows another key than "
            "it did the first time (another machine at its address, or the same one "
            "reinstalled). If you trust it, remove its line from /var/lib/pi-im-backup/known_hosts"
        )
    if "Permission denied (publickey" in output:
        return ResticError(
            f"the SFTP server of {location} did not let the device in: put the device's key "
            "(shown on the console's Backups page) into that account's ~/.ssh/authorized_keys"
        )
    if WRONG_PASSPHRASE in output:
        return WrongPassphrase("wrong passphrase: it opens no key of the backup")
    if any(sign in output for sign in NO_REPOSITORY):
        return NoRepository(f"no backup at {location}")
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return ResticError("restic: " + " / ".join(lines[-3:]) if lines else "restic failed")


def environment_password(passphrase: str) -> dict[str, str]:
    return {"RESTIC_PASSWORD": passphrase}


def file_password(path: Path) -> dict[str, str]:
    return {"RESTIC_PASSWORD_FILE": str(path)}
