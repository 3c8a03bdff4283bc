"""Staging a release (nothing changes), then applying it in pi-im-update.service: the device's
managed files kept, the playbooks run locally, the services checked; on any failure, the
files put back and the services restarted as they were."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from . import release, snapshot
from .release import Refused, Release
from .settings import Settings

STAGED = "staged.json"
RUN_OPTIONS = "options.json"
LOG = "update.log"
# Debian trixie's ansible-core runs the playbooks on the device; bookworm's 2.14 is too old.
ANSIBLE_AT_LEAST = (2, 19)
SETTLE_SECONDS = 180


class Failed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def locked(settings: Settings) -> Iterator[None]:
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (settings.state_dir / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise Refused("an update is running already") from error
        yield


def installed(settings: Settings) -> Release | None:
    try:
        return release.read(settings.release_file)
    except (OSError, ValueError):
        return None


def ansible_environment(tree: Path) -> dict[str, str]:
    return {
        # The appliance's own commands are in /usr/local/sbin, as in root's login shell.
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "ANSIBLE_CONFIG": str(tree / "ansible.cfg"),
        # Mitogen is the controller's; the device runs Ansible's own strategy.
        "ANSIBLE_STRATEGY": "linear",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    }


def check_ansible() -> None:
    try:
        done = subprocess.run(
            ["ansible-playbook", "--version"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as error:
        raise Refused("ansible-playbook is missing: the release role installs it") from error
    found = re.search(r"core (\d+)\.(\d+)", done.stdout)
    if not found or (int(found[1]), int(found[2])) < ANSIBLE_AT_LEAST:
        raise Refused(
            "this device's ansible-core is older than 2.19, which the playbooks need "
            "(Debian bookworm's is 2.14): update it from a controller with ansible-playbook"
        )


def stage_options(settings: Settings) -> None:
    """The options the device was built with, for the run; recorded again as they are
    (release_options), for the next update."""
    options = json.loads(settings.options.read_text())
    (settings.state_dir / RUN_OPTIONS).write_text(
        json.dumps(options | {"release_options": options})
    )


def playbook(settings: Settings, tree: Path, *extra: str) -> list[str]:
    return [
        "ansible-playbook",
        "-i", str(settings.inventory),
        "-e", f"@{settings.state_dir / RUN_OPTIONS}",
        *extra,
        str(tree / "playbooks" / "site.yml"),
    ]  # fmt: skip


def stage(settings: Settings, source: str, sha256: str, reinstall: bool) -> Release:
    """The release fetched, checked and unpacked beside the device's own; nothing changes
    (a refused release is not kept)."""
    try:
        return staged(settings, source, sha256, reinstall)
    except Refused:
        shutil.rmtree(settings.staged, ignore_errors=True)
        (settings.state_dir / RUN_OPTIONS).unlink(missing_ok=True)
        raise


def staged(settings: Settings, source: str, sha256: str, reinstall: bool) -> Release:
    check_ansible()
    archive = settings.state_dir / "incoming.tar.gz"
    try:
        release.check_digest(release.fetch(source, archive), sha256)
        tree, new = release.unpack(archive, settings.staged)
    finally:
        archive.unlink(missing_ok=True)
    release.check_newer(new, installed(settings), reinstall)
    stage_options(settings)
    done = subprocess.run(
        playbook(settings, tree, "--syntax-check"),
        env=ansible_environment(tree), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise Refused(
            f"the release's playbooks do not parse: {last_lines(done.stderr or done.stdout)}"
        )
    (settings.state_dir / STAGED).write_text(
        json.dumps({"tree": str(tree), "version": new.version})
    )
    return new


def apply(settings: Settings) -> dict[str, object]:
    """The staged release onto the device; the outcome, as the console shows it."""
    staged = json.loads((settings.state_dir / STAGED).read_text())
    tree = Path(staged["tree"])
    before = installed(settings)
    status: dict[str, object] = {
        "result": "running", "from": before.version if before else "", "to": staged["version"],
        "started": now(),
    }  # fmt: skip
    write_status(settings, status)
    try:
        status |= applied(settings, tree, staged["version"], before)
    finally:
        snapshot.forget(settings)
        for name in (STAGED, RUN_OPTIONS):
            (settings.state_dir / name).unlink(missing_ok=True)
        shutil.rmtree(settings.staged, ignore_errors=True)
    status["finished"] = now()
    write_status(settings, status)
    return status


def applied(
    settings: Settings, tree: Path, version: str, before: Release | None
) -> dict[str, object]:
    try:
        snapshot.take(settings)
    except (OSError, subprocess.CalledProcessError) as error:
        # Nothing was changed yet: the device is as it was.
        message = f"the managed files could not be kept, so nothing was changed ({error})"
        return {"result": "failed", "step": "snapshot", "message": message, "back": True}
    try:
        run(settings, tree)
        settle(settings)
    except Failed as failure:
        return {
            "result": "failed",
            "step": failure.step,
            "message": failure.message,
            "back": undo(settings),
        }
    except OSError as error:
        return {"result": "failed", "step": "run", "message": str(error), "back": undo(settings)}
    keep(settings, tree, version, before)
    return {"result": "ok"}


def run(settings: Settings, tree: Path) -> None:
    log = settings.state_dir / LOG
    with log.open("w") as out:
        os.chmod(log, 0o600)
        done = subprocess.run(
            playbook(settings, tree), env=ansible_environment(tree), stdout=out,
            stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        task, message = failed_task(log.read_text(errors="replace"))
        raise Failed("run", f"{task}: {message}" if task else message)


def failed_task(output: str) -> tuple[str, str]:
    """The task that failed and what it said, from ansible-playbook's output."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("fatal:", "failed:")):
            task = next(
                (
                    re.sub(r"^TASK \[(.*)\].*$", r"\1", t)
                    for t in reversed(lines[:index])
                    if t.startswith("TASK [")
                ),
                "",
            )
            said = next(
                (
                    m.split("msg:", 1)[1].strip(" '\"")
                    for m in lines[index : index + 40]
                    if "msg:" in m
                ),
                "",
            )
            return task, said or line
    return "", last_lines(output)


def last_lines(output: str, count: int = 3) -> str:
    found = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return " / ".join(found[-count:]) or "no output"


def settle(settings: Settings, step: str = "verify") -> None:
    """Every service running and the console answering, within a few minutes."""
    deadline = time.monotonic() + SETTLE_SECONDS
    missing: list[str] = []
    while time.monotonic() < deadline:
        missing = [s for s in settings.services if not active(s)]
        if not missing and console_answers(settings.console_url):
            return
        time.sleep(2)
    said = f"not running: {', '.join(missing)}" if missing else "the console does not answer"
    raise Failed(step, said)


def active(service: str) -> bool:
    return (
        subprocess.run(["systemctl", "is-active", "--quiet", service], check=False).returncode == 0
    )


def console_answers(url: str) -> bool:
    # The device's own certificate, on loopback: its name is not what is checked here.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status == 200
    except OSError:
        return False


def undo(settings: Settings) -> bool:
    """The files as they were, the services restarted on them; whether all came back."""
    snapshot.put_back(settings)
    subprocess.run(["systemctl", "daemon-reload"], check=False)
    for service in settings.services:
        subprocess.run(["systemctl", "restart", service], check=False)
    try:
        settle(settings, "undo")
    except Failed:
        return False
    return True


def keep(settings: Settings, tree: Path, version: str, before: Release | None) -> None:
    """The applied release kept as /opt/pi-im/releases/VERSION (the one before it too), and
    `current` pointing to it."""
    settings.releases_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = settings.releases_dir / version
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(tree), target)
    link = settings.releases_dir / "current"
    temporary = settings.releases_dir / ".current"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(version)
    os.replace(temporary, link)
    kept = {version, before.version if before else ""}
    for old in settings.releases_dir.iterdir():
        if old.name not in kept and old.name != "current" and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


def write_status(settings: Settings, status: dict[str, object]) -> None:
    target = settings.status_file
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(status, indent=1) + "\n")
    temporary.chmod(0o644)
    os.replace(temporary, target)
