"""The backup role's program (roles/backup/files/pi_im_backup) on its own: restic's answers
read right (the real restic of this machine), a database copied whole while it is written,
a directory repository refused on the device's own disk, and a failed restore step putting
back what it had replaced. The round trip between two devices is Molecule's `restore`."""

from __future__ import annotations

import grp
import os
import pwd
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from pi_im_backup import backup, restic, restore, snapshot
from pi_im_backup.settings import Database, Settings

PASSPHRASE = "correct horse battery staple"
SETTINGS = Settings(
    repository="",
    secrets_dir=Path("/nonexistent"),
    passphrase_secret="backup-passphrase",
    ssh_key_secret="backup-ssh-key",
    state_dir=Path("/nonexistent"),
    keep={"daily": 7},
    databases=(),
    files=(),
    recorded=(),
    rabbitmq=Path("/nonexistent"),
    domain_file=Path("/nonexistent"),
    configured_domain="",
    status_file=Path("/nonexistent"),
)


def repository(location: Path, passphrase: str = PASSPHRASE) -> restic.Repository:
    return restic.Repository(
        location=str(location),
        password=restic.environment_password(passphrase),
        cache_dir=location.parent / "cache",
    )


@pytest.fixture
def filled(tmp_path: Path) -> restic.Repository:
    """A repository with one snapshot of a few files (made, pruned and listed as the device
    does it, by this machine's restic)."""
    data = tmp_path / "data"
    data.mkdir()
    for n in range(3):
        (data / f"file{n}").write_bytes(os.urandom(200_000))
    repo = repository(tmp_path / "repo")
    repo.init()
    summary = repo.backup([data], host="test")
    assert summary["total_files_processed"] == 3
    repo.forget("test", {"daily": 7, "weekly": 0})
    (kept,) = repo.snapshots()
    assert kept["id"].startswith(summary["snapshot_id"])  # 0.14 gives the short id
    return repo


def largest_pack(repo: restic.Repository) -> Path:
    packs = [p for p in (Path(repo.location) / "data").rglob("*") if p.is_file()]
    return max(packs, key=lambda p: p.stat().st_size)


def test_a_wrong_passphrase_is_named(filled: restic.Repository, tmp_path: Path) -> None:
    with pytest.raises(restic.WrongPassphrase, match="wrong passphrase"):
        repository(Path(filled.location), "not it").restore("latest", tmp_path / "out")


def test_a_place_with_no_backup_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    assert not repository(empty).exists()
    with pytest.raises(restic.NoRepository, match=f"no backup at {empty}"):
        repository(empty).restore("latest", tmp_path / "out")


@pytest.mark.parametrize("spoil", ["flip a byte", "cut short"])
def test_a_spoiled_backup_does_not_restore(
    filled: restic.Repository, tmp_path: Path, spoil: str
) -> None:
    pack = largest_pack(filled)
    pack.chmod(0o600)
    content = bytearray(pack.read_bytes())
    if spoil == "flip a byte":
        content[len(content) // 2] ^= 1
    else:
        del content[len(content) // 2 :]
    pack.write_bytes(bytes(content))
    with pytest.raises(restic.ResticError):
        filled.restore("latest", tmp_path / "out")


def test_the_sftp_target_is_reached_with_the_devices_key(tmp_path: Path) -> None:
    repo = restic.Repository(
        location="sftp://backup@192.0.2.7:2222//srv/pi-im",
        password=restic.file_password(tmp_path / "pass"),
        cache_dir=tmp_path,
        ssh_key=Path("/etc/pi-im/secrets/backup-ssh-key"),
        known_hosts=Path("/var/lib/pi-im-backup/known_hosts"),
    )
    (flag, command) = repo.options()
    assert flag == "-o"
    assert command.startswith("sftp.command=ssh ")
    assert "-i /etc/pi-im/secrets/backup-ssh-key" in command
    assert "-p 2222 backup@192.0.2.7 -s sftp" in command
    assert "UserKnownHostsFile=/var/lib/pi-im-backup/known_hosts" in command
    assert restic.Repository("/media/backup", {}, tmp_path).options() == []


def test_a_database_is_copied_whole_while_it_is_written(tmp_path: Path) -> None:
    """A writer in another connection commits all along, as ejabberd does."""
    path = tmp_path / "live.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE m (n INTEGER PRIMARY KEY, body TEXT)")
        db.execute("PRAGMA user_version = 7")
    stop = threading.Event()

    def write() -> None:
        db = sqlite3.connect(path, timeout=30)
        while not stop.is_set():
            db.execute("INSERT INTO m (body) VALUES (?)", ("x" * 500,))
            db.commit()
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while sqlite3.connect(path).execute("SELECT count(*) FROM m").fetchone()[0] < 200:
            stop.wait(0.01)
        copied = snapshot.copy_database(Database("t", path, "none", "root"), tmp_path / "copy.db")
    finally:
        stop.set()
        writer.join()
    assert copied["schema"] == {"user_version": 7}
    assert copied["sha256"] == snapshot.sha256(tmp_path / "copy.db")
    with sqlite3.connect(tmp_path / "copy.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT count(*), max(n) FROM m").fetchone()
    assert rows[0] == rows[1] >= 200  # every row up to the last one copied, none missing


def test_a_directory_target_on_the_devices_own_disk_is_refused(tmp_path: Path) -> None:
    """A Pi's mounts: the card's two partitions, a USB disk, and a bind mount of the card
    (what PrivateTmp makes of /var/tmp)."""
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 179:2 / / rw,relatime - ext4 /dev/mmcblk0p2 rw\n"
        "23 22 179:1 / /boot/firmware rw,relatime - vfat /dev/mmcblk0p1 rw\n"
        "40 22 8:1 / /media/backup rw,relatime - ext4 /dev/sda1 rw\n"
        "41 22 179:2 /var/tmp/systemd-private-x /var/tmp rw - ext4 /dev/mmcblk0p2 rw\n"
    )
    sys_block = tmp_path / "block"
    for device, disk in [
        ("179:2", "mmcblk0/mmcblk0p2"),
        ("179:1", "mmcblk0/mmcblk0p1"),
        ("8:1", "sda/sda1"),
    ]:
        node = tmp_path / "devices" / disk
        (node / "partition").parent.mkdir(parents=True)
        (node / "partition").write_text("1")
        sys_block.mkdir(exist_ok=True)
        (sys_block / device).symlink_to(node)

    def check(location: str) -> None:
        backup.check_location(location, mountinfo, sys_block)

    assert backup.mount_of(Path("/media/backup/pi-im"), mountinfo) == ("/media/backup", "8:1")
    check("/media/backup/pi-im")
    for on_the_card in ("/media/backupx", "/boot/firmware/pi-im", "/var/tmp/pi-im", "/srv/x"):
        with pytest.raises(backup.BackupError, match="on the device's own card"):
            check(on_the_card)
    with pytest.raises(backup.BackupError, match="no backup target is set"):
        check("")
    with pytest.raises(backup.BackupError, match="absolute path"):
        check("backups")


def test_a_failed_step_puts_back_what_it_replaced(tmp_path: Path) -> None:
    directory, single = tmp_path / "tls", tmp_path / "domain"
    directory.mkdir()
    (directory / "device.pem").write_text("the device's own")
    single.write_text("pi-im.local")
    new = tmp_path / "new"
    (new / "tls").mkdir(parents=True)
    (new / "tls" / "device.pem").write_text("the backup's")
    (new / "domain").write_text("chat.example.org")
    swap = restore.Swap()
    swap.replace(directory, new / "tls")
    swap.replace(single, new / "domain")
    swap.replace(tmp_path / "upload", new / "tls")
    assert (directory / "device.pem").read_text() == "the backup's"
    swap.undo()
    assert (directory / "device.pem").read_text() == "the device's own"
    assert single.read_text() == "pi-im.local"
    assert not (tmp_path / "upload").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["domain", "new", "tls"]
    assert [p.name for p in directory.iterdir()] == ["device.pem"]


def test_a_finished_swap_leaves_nothing_aside(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "old.pem").write_text("old")
    new = tmp_path / "new"
    new.mkdir()
    (new / "device.pem").write_text("new")
    swap = restore.Swap()
    swap.replace(directory, new)
    swap.finish()
    assert [p.name for p in directory.iterdir()] == ["device.pem"]


def test_a_restore_puts_back_only_what_the_device_backs_up(tmp_path: Path) -> None:
    """A manifest listing a path the device does not back up (its SSH authorized keys, say)
    gets nothing written there."""
    mine, other = tmp_path / "secrets", tmp_path / "authorized_keys"
    mine.mkdir()
    (mine / "old").write_text("the device's")
    staged = tmp_path / "restore"
    for path, content in [(mine / "kept", "the backup's"), (other, "a stranger's key")]:
        target = staged / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    me = (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
    manifest = {
        "databases": {},
        "files": [str(mine), str(other)],
        "ownership": [[str(mine), *me, 0o700], [str(other), *me, 0o4755]],
    }
    settings = replace(SETTINGS, files=(mine,), databases=())
    swap = restore.Swap()
    restore.put_back(restore.Backup(staged, manifest), settings, swap)
    swap.finish()
    assert [p.name for p in mine.iterdir()] == ["kept"]
    assert (mine / "kept").read_text() == "the backup's"
    assert not other.exists()
