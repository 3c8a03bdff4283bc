"""pi-im-update's parts on their own, on real files: an archive that is not a release (cut
short, a path outside, a link, no RELEASE.json, a version it does not read) refused; which
release is newer; the managed files put back exactly (what the failed run added removed, what
it changed restored, what it removed made again); the failed task read from Ansible's own
output; and the options an image is built with, read by Ansible's parser. The whole update
on a device is Molecule's `restore` (test_update.py)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pi_im_update import release, snapshot, update
from pi_im_update.release import Refused, Release
from pi_im_update.settings import Settings
from recorded_options import recorded

REPO = Path(__file__).resolve().parents[1]


def archive_of(tmp_path: Path, members: dict[str, bytes], name: str = "r.tar.gz") -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as out:
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(content)
            out.addfile(info, io.BytesIO(content))
    return path


def a_release(version: str = "2099.01.01+abc1234") -> dict[str, bytes]:
    top = "pi-im-appliance-x"
    body = json.dumps({"version": version, "commit": "abc", "date": "2099-01-01"}).encode()
    return {
        f"{top}/RELEASE.json": body,
        f"{top}/ansible.cfg": b"[defaults]\n",
        f"{top}/playbooks/site.yml": b"---\n",
        f"{top}/roles/base/tasks/main.yml": b"---\n",
    }


def test_a_release_is_unpacked_and_read(tmp_path: Path) -> None:
    tree, found = release.unpack(archive_of(tmp_path, a_release()), tmp_path / "staged")
    assert found == Release("2099.01.01+abc1234", "abc", "2099-01-01")
    assert (tree / "playbooks/site.yml").is_file()


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        ("cut short", "not a whole release"),
        ("outside", "is not part of a release"),
        ("link", "is not part of a release"),
        ("no RELEASE.json", "no RELEASE.json"),
        ("no playbooks", "has no playbooks/site.yml"),
        ("odd version", "is not one pi-im-update reads"),
    ],
)
def test_what_is_not_a_release_is_refused(tmp_path: Path, spoil: str, said: str) -> None:
    members = a_release("latest" if spoil == "odd version" else "2099.01.01+abc1234")
    if spoil == "outside":
        members["../escaped"] = b"x"
    if spoil == "no RELEASE.json":
        members = {k: v for k, v in members.items() if not k.endswith("RELEASE.json")}
    if spoil == "no playbooks":
        members = {k: v for k, v in members.items() if "playbooks" not in k}
    path = archive_of(tmp_path, members)
    if spoil == "link":
        with tarfile.open(path, "w:gz") as out:
            link = tarfile.TarInfo("pi-im-appliance-x/roles")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc"
            out.addfile(link)
    if spoil == "cut short":
        path.write_bytes(path.read_bytes()[:150])
    with pytest.raises(Refused, match=said):
        release.unpack(path, tmp_path / "staged")
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    ("new", "installed", "reinstall", "said"),
    [
        ("2099.01.02+b", "2099.01.01+a", False, ""),
        ("2099.01.01+b", "2099.01.01+a", False, ""),
        ("2099.01.01+a", "2099.01.01+a", False, "is the release the device runs"),
        ("2099.01.01+a", "2099.01.01+a", True, ""),
        ("2098.12.31+c", "2099.01.01+a", False, "is older than 2099.01.01+a"),
    ],
)
def test_only_a_newer_release_is_applied(
    new: str, installed: str, reinstall: bool, said: str
) -> None:
    def check() -> None:
        release.check_newer(Release(new, "", ""), Release(installed, "", ""), reinstall)

    if said:
        with pytest.raises(Refused, match=re.escape(said)):
            check()
    else:
        check()


def test_an_archive_is_fetched_only_from_a_file_or_https(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="from a file or an https:// address"):
        release.fetch("http://192.0.2.1/r.tar.gz", tmp_path / "in")
    with pytest.raises(Refused, match="no such file"):
        release.fetch(str(tmp_path / "missing.tar.gz"), tmp_path / "in")
    path = archive_of(tmp_path, a_release())
    with pytest.raises(Refused, match="not the release you meant"):
        release.check_digest(release.fetch(str(path), tmp_path / "in"), "0" * 64)


def settings(tmp_path: Path) -> Settings:
    return Settings(
        releases_dir=tmp_path / "releases",
        state_dir=tmp_path / "state",
        release_file=tmp_path / "release.json",
        status_file=tmp_path / "status.json",
        inventory=tmp_path / "inventory.yml",
        options=tmp_path / "options.json",
        roots=(tmp_path / "etc-pi-im",),
        files=(tmp_path / "default-ejabberd", tmp_path / "new-file"),
        services=(),
        console_url="",
    )


def test_the_managed_files_are_put_back_exactly(tmp_path: Path) -> None:
    chosen = settings(tmp_path)
    chosen.state_dir.mkdir()
    root = chosen.roots[0]
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "key").write_text("kept")
    (root / "secrets" / "key").chmod(0o600)
    (root / "config").write_text("before")
    (root / "link").symlink_to("config")
    (tmp_path / "default-ejabberd").write_text("ERLANG_NODE=before")
    snapshot.take(chosen)
    # What a failed run might leave: a changed, a removed, an added file, a new directory,
    # a single file changed and one made.
    (root / "config").write_text("after")
    (root / "secrets" / "key").unlink()
    (root / "added").write_text("new")
    (root / "new-dir" / "deep").mkdir(parents=True)
    (root / "link").unlink()
    (tmp_path / "default-ejabberd").write_text("ERLANG_NODE=after")
    (tmp_path / "new-file").write_text("made by the failed run")
    snapshot.put_back(chosen)
    assert (root / "config").read_text() == "before"
    assert (root / "secrets" / "key").read_text() == "kept"
    assert (root / "secrets" / "key").stat().st_mode & 0o777 == 0o600
    assert os.readlink(root / "link") == "config"
    assert sorted(p.name for p in root.iterdir()) == ["config", "link", "secrets"]
    assert (tmp_path / "default-ejabberd").read_text() == "ERLANG_NODE=before"
    assert not (tmp_path / "new-file").exists()
    snapshot.forget(chosen)
    assert not list(chosen.state_dir.iterdir())


def test_a_refused_release_is_not_kept(tmp_path: Path) -> None:
    chosen = settings(tmp_path)
    chosen.state_dir.mkdir()
    chosen.release_file.write_text(json.dumps({"version": "2099.01.01+abc1234"}))
    archive = archive_of(tmp_path, a_release("2099.01.01+abc1234"))
    with pytest.raises(Refused, match="is the release the device runs"):
        update.stage(chosen, str(archive), "", reinstall=False)
    assert not chosen.staged.exists()
    assert not (chosen.state_dir / update.STAGED).exists()


def test_an_update_that_cannot_keep_the_files_changes_nothing(tmp_path: Path) -> None:
    """No room, say, for the snapshot: the run never starts, and the status says so."""
    chosen = settings(tmp_path)
    chosen.state_dir.mkdir()
    (chosen.roots[0]).mkdir()
    staged = {"tree": str(chosen.staged / "tree"), "version": "2099.01.01+x"}
    (chosen.state_dir / update.STAGED).write_text(json.dumps(staged))
    (chosen.state_dir / snapshot.ARCHIVE).mkdir()
    status = update.apply(chosen)
    assert (status["result"], status["step"], status["back"]) == ("failed", "snapshot", True)
    assert "nothing was changed" in str(status["message"])
    assert json.loads(chosen.status_file.read_text())["step"] == "snapshot"
    assert sorted(p.name for p in chosen.state_dir.iterdir()) == []


def test_the_failed_task_is_read_from_ansibles_output(tmp_path: Path) -> None:
    """A real ansible-playbook run that fails, read as pi-im-update reads its log."""
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Pass\n      ansible.builtin.debug: {msg: fine}\n"
        "    - name: Fail on purpose\n"
        "      ansible.builtin.fail: {msg: a release that fails on purpose}\n"
    )
    environment = update.ansible_environment(REPO) | {"PATH": os.environ["PATH"]}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
         "-c", "local", str(play)],
        env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert update.failed_task(done.stdout) == ("Fail on purpose", "a release that fails on purpose")


def test_the_options_an_image_is_built_with_are_recorded() -> None:
    args = [
        "-e", "ejabberd_domain=chat.example.org",
        "--extra-vars", '{"ejabberd_max_users": 2000, "backup_repository": "/media/b/pi-im"}',
        "-e", "pi_im_sd_image=true",
        "-v",
    ]  # fmt: skip
    assert recorded(args) == {
        "ejabberd_domain": "chat.example.org",
        "ejabberd_max_users": 2000,
        "backup_repository": "/media/b/pi-im",
    }


def test_a_release_made_here_is_one_pi_im_update_reads(tmp_path: Path) -> None:
    """make release, then the device's own unpacking: the console's wheels for both CPUs with
    the markers the admin_service role checks, and Converse."""
    subprocess.run(
        [sys.executable, str(REPO / "scripts/make_release.py"), "--version", "2099.01.01+test",
         "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    archive = tmp_path / "pi-im-appliance-2099.01.01+test.tar.gz"
    digest = (tmp_path / f"{archive.name}.sha256").read_text().split()[0]
    release.check_digest(archive, digest)
    tree, found = release.unpack(archive, tmp_path / "staged")
    assert found.version == "2099.01.01+test"
    wheels = tree / ".cache" / "wheels"
    for cpu in ("aarch64", "x86_64"):
        assert list(wheels.glob(f"{cpu}-py3.13.source-*")), cpu
        assert list(wheels.glob(f"{cpu}-py3.13.deps-*")), cpu
        assert list((wheels / f"{cpu}-py3.13").glob("pi_im_admin-*.whl"))
    assert list((tree / ".cache" / "web-chat").glob("converse.js-*.tgz"))
    assert not (tree / "admin" / "build").exists()
