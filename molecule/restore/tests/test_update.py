"""The device updates itself (pi-im-update), on B, which took A's backup and holds the family's
data: a bad archive, an older release or the same one are refused before anything changes; a
newer release (made by `make release`) is applied and nothing is lost; a release whose run
fails leaves every file the playbooks manage, and the services, as they were. Runs last."""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import family
from admin_console import Console
from conftest import REPO
from family import Story

NEXT = "2099.01.01+next"
BROKEN = "2099.01.02+broken"
OLDER = "2000.01.01+older"
# What the playbooks manage, as pi-im-update keeps it (the release role's update settings).
MANAGED = (
    "find /etc/pi-im /etc/ejabberd /etc/rabbitmq /etc/systemd /usr/local/sbin /usr/local/lib/pi-im "
    "/usr/local/share/pi-im /opt/pi-im-admin /etc/default/ejabberd -path '*/__pycache__' -prune "
    "-o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"
)


def make_release(version: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, str(REPO / "scripts/make_release.py"), "--version", version,
         "--out", str(into)],
        check=True, capture_output=True,
    )  # fmt: skip
    return into / f"pi-im-appliance-{version}.tar.gz"


def altered(source: Path, version: str, into: Path, change=None) -> Path:  # type: ignore[no-untyped-def]
    """A copy of a release under another version, its tree changed by `change`."""
    tree = into / f"tree-{version}"
    with tarfile.open(source) as archive:
        archive.extractall(tree, filter="data")
    (top,) = tree.iterdir()
    release = json.loads((top / "RELEASE.json").read_text())
    (top / "RELEASE.json").write_text(json.dumps(release | {"version": version}))
    if change:
        change(top)
    name = f"pi-im-appliance-{version}"
    target = into / f"{name}.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        archive.add(top, arcname=name)
    shutil.rmtree(tree)
    return target


def fails_on_purpose(top: Path) -> None:
    """ejabberd's configuration changes first; the run fails in the last role, before any
    handler restarted a service on it."""
    template = top / "roles/ejabberd/templates/ejabberd.yml.j2"
    template.write_text(template.read_text() + "\n# A release that fails on purpose.\n")
    tasks = top / "roles/release/tasks/main.yml"
    tasks.write_text(
        tasks.read_text()
        + "\n- name: Fail on purpose\n  ansible.builtin.fail:\n"
        + "    msg: a release that fails on purpose\n"
    )


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    into = tmp_path_factory.mktemp("releases")
    following = make_release(NEXT, into)
    return {
        NEXT: following,
        BROKEN: altered(following, BROKEN, into, fails_on_purpose),
        OLDER: altered(following, OLDER, into),
    }


def copy_to(host, source: Path) -> str:  # type: ignore[no-untyped-def]
    target = f"/root/{source.name}"
    subprocess.run(["docker", "cp", str(source), f"{host.backend.host}:{target}"], check=True)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_device_knows_its_release_and_can_update_itself(host) -> None:  # type: ignore[no-untyped-def]
    recorded = json.loads(host.file("/etc/pi-im/release.json").content_string)
    assert recorded["commit"]
    assert "core 2.19" in host.check_output("ansible-playbook --version")
    assert json.loads(host.check_output("pi-im-update status")) == {"result": "never"}


def test_what_is_not_a_newer_release_changes_nothing(host, releases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = host.check_output(MANAGED)
    short = tmp_path / "cut-short.tar.gz"
    short.write_bytes(releases[NEXT].read_bytes()[:100_000])
    current = json.loads(host.file("/etc/pi-im/release.json").content_string)["version"]
    same = altered(releases[NEXT], current, tmp_path)
    cases = [
        (copy_to(host, short), "", "is not a whole release"),
        (copy_to(host, releases[NEXT]), "0" * 64, "not the release you meant"),
        (copy_to(host, releases[OLDER]), "", f"{OLDER} is older than {current}"),
        (copy_to(host, same), "", f"{current} is the release the device runs"),
        ("http://192.0.2.1/release.tar.gz", "", "from a file or an https:// address"),
    ]
    for source, digest, said in cases:
        done = host.run(f"pi-im-update --from {source} --sha256 '{digest}'")
        assert done.rc == 1, (source, done.stdout, done.stderr)
        assert said in done.stderr
        assert "nothing on the device was changed" in done.stderr
    assert host.check_output(MANAGED) == before
    assert json.loads(host.check_output("pi-im-update status")) == {"result": "never"}
    assert not host.file("/var/lib/pi-im-update/staged").exists


def test_a_newer_release_is_applied_and_nothing_is_lost(  # type: ignore[no-untyped-def]
    host, releases, story: Story, address_b: str, tls_a: ssl.SSLContext
) -> None:
    secrets = family.device_secrets(host)
    old = json.loads(host.file("/etc/pi-im/release.json").content_string)["version"]
    archive = copy_to(host, releases[NEXT])
    done = host.run(f"pi-im-update --from {archive} --sha256 {sha256(releases[NEXT])}")
    assert done.rc == 0, done.stdout + done.stderr
    status = json.loads(host.check_output("pi-im-update status"))
    assert (status["result"], status["to"]) == ("ok", NEXT)
    assert json.loads(host.file("/etc/pi-im/release.json").content_string)["version"] == NEXT
    assert host.file("/opt/pi-im/releases/current").linked_to == f"/opt/pi-im/releases/{NEXT}"
    # Fetched nothing: the console's wheels and Converse came in the archive.
    assert "pip" not in host.file("/var/lib/pi-im-update/update.log").content_string
    assert family.device_secrets(host) == secrets
    family.check_clients(story, address_b, tls_a, waiting=False)
    family.check_console(story, address_b, tls_a)
    assert not host.file("/var/lib/pi-im-update/snapshot.tar").exists
    owner = Console(f"https://{address_b}:8080", tls_a)
    assert owner.sign_in("owner", story.secrets["admin-owner-password"]).status_code == 303
    shown = " ".join(owner.get("/").text.split())
    assert f"The device updated itself from {old} to {NEXT} at " in shown
    assert f"The device runs pi-im-appliance {NEXT}." in shown


def test_a_release_that_fails_leaves_the_device_as_it_was(  # type: ignore[no-untyped-def]
    host, releases, story: Story, address_b: str, tls_a: ssl.SSLContext
) -> None:
    before = host.check_output(MANAGED)
    pids = host.check_output("systemctl show -p MainPID --value ejabberd")
    archive = copy_to(host, releases[BROKEN])
    done = host.run(f"pi-im-update --from {archive}")
    assert done.rc == 3, done.stdout + done.stderr
    status = json.loads(host.check_output("pi-im-update status"))
    assert (status["result"], status["step"], status["back"]) == ("failed", "run", True)
    assert "Fail on purpose: a release that fails on purpose" in status["message"]
    assert (status["from"], status["to"]) == (NEXT, BROKEN)
    # Every file the playbooks manage as it was (ejabberd's configuration had changed).
    assert host.check_output(MANAGED) == before
    assert "fails on purpose" not in host.file("/etc/ejabberd/ejabberd.yml").content_string
    assert json.loads(host.file("/etc/pi-im/release.json").content_string)["version"] == NEXT
    assert host.file("/opt/pi-im/releases/current").linked_to == f"/opt/pi-im/releases/{NEXT}"
    assert not host.file(f"/opt/pi-im/releases/{BROKEN}").exists
    assert host.check_output("systemctl show -p MainPID --value ejabberd") != pids
    family.check_clients(story, address_b, tls_a, waiting=False)
    owner = Console(f"https://{address_b}:8080", tls_a)
    assert owner.sign_in("owner", story.secrets["admin-owner-password"]).status_code == 303
    shown = " ".join(owner.get("/").text.split())
    assert f"The update to {BROKEN} at " in shown
    assert f"Everything was put back: the device runs {NEXT} as before." in shown
    assert f"The device runs pi-im-appliance {NEXT}." in shown
