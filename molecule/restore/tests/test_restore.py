"""A dead card loses nothing. In order: device A is used as a family uses it and backed up onto
the disk both devices share; device B, fresh, refuses each bad backup without changing
anything; then it takes A's backup and is the same device, checked with real clients."""

from __future__ import annotations

import json
import shlex
import ssl
from html import unescape

import backup_page
import pytest

import family
from admin_console import Console
from conftest import GROUP_VARS
from family import Story

# Where A's owner sends backups from the console, and B's options name: the shared disk.
REPOSITORY: str = GROUP_VARS["backup_repository"]
DISK = "/media/backup"
# A's passphrase, as its owner kept it: apart from the device, given to B in a file.
PASSPHRASE = f"{DISK}/passphrase"
WRONG = f"{DISK}/wrong-passphrase"
FLIP_A_BYTE = (
    "python3 -c \"import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); "
    "b[len(b) // 2] ^= 1; open(p, 'wb').write(b)\""
)
LARGEST_PACK = (
    "find {} -path '*/data/*' -type f -printf '%s %p\\n' | sort -n | tail -1 | cut -d' ' -f2"
)
CONSOLE_DB = "/var/lib/pi-im-admin/admin.db"
# What a refused restore must leave as it was on B.
STATE = (
    "sha256sum /etc/pi-im/secrets/* /etc/pi-im/domain /etc/ejabberd/tls/device.pem "
    "/etc/ssh/ssh_host_ed25519_key.pub; "
    "ejabberdctl registered_users $(cat /etc/pi-im/domain) | sort | sha256sum; "
    "find /var/lib/ejabberd/upload /etc/pi-im -name '*before-restore*'; "
    "systemctl is-active ejabberd pi-im-admin rabbitmq-server"
)


def restore(host, repository: str, passphrase: str = PASSPHRASE, settings: str = ""):  # type: ignore[no-untyped-def]
    prefix = f"PI_IM_BACKUP_SETTINGS={settings} " if settings else ""
    return host.run(
        f"{prefix}pi-im-restore --repository {repository} --passphrase-file {passphrase}"
    )


def with_settings(host, path: str, **changes: str) -> str:  # type: ignore[no-untyped-def]
    """A copy of the device's backup settings with some changed (the variable is for tests)."""
    script = (
        "import json, sys; s = json.load(open('/etc/pi-im/backup.json')); "
        "s.update(json.loads(sys.argv[2])); json.dump(s, open(sys.argv[1], 'w'))"
    )
    host.check_output(f"python3 -c \"{script}\" {path} '{json.dumps(changes)}'")
    return path


@pytest.fixture(scope="module")
def backed_up(device_a, owner_a: Console) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """A's owner, whose device was flashed without a target, plugs the disk in, names it on
    the Backups page and backs up from there."""
    notice, error = owner_a.post("/backups/target", location=REPOSITORY)
    assert not error
    assert notice == f"Backups go to {REPOSITORY} from now on. Back up now to try it."
    status = backup_page.back_up_now(device_a, owner_a)
    device_a.check_output(f"install -m 0600 /etc/pi-im/secrets/backup-passphrase {PASSPHRASE}")
    device_a.check_output(f"echo not-the-passphrase > {WRONG}")
    return status


def test_the_used_device_backs_up_onto_the_disk(device_a, story: Story, backed_up) -> None:  # type: ignore[no-untyped-def]
    assert backed_up["result"] == "ok"
    status = json.loads(device_a.check_output("pi-im-backup status"))
    assert status["snapshot"] == backed_up["snapshot"]
    assert status["size"] > 0
    (snapshot,) = json.loads(device_a.check_output("pi-im-backup snapshots"))
    assert snapshot["id"] == backed_up["snapshot"]
    # Encrypted: neither a message nor a secret is anywhere on the disk as it was written.
    for text in (story.chat[0], story.secrets["admin-owner-password"]):
        assert device_a.run(f"grep -rqF -e {shlex.quote(text)} -- {REPOSITORY}").rc == 1


def test_the_console_shows_the_last_backup_and_a_failed_one(
    device_a, owner_a: Console, backed_up
) -> None:  # type: ignore[no-untyped-def]
    owner = owner_a
    shown = " ".join(unescape(owner.get("/").text).split())
    assert "The last backup was made at " in shown
    assert f"into <code>{REPOSITORY}</code>" in shown
    # The disk not plugged in: its mount point is a directory on the card.
    unplugged = with_settings(device_a, "/root/unplugged.json", repository="/srv/pi-im-backup")
    assert device_a.run(f"PI_IM_BACKUP_SETTINGS={unplugged} pi-im-backup run").rc == 1
    shown = " ".join(unescape(owner.get("/").text).split())
    assert 'role="alert" id="backup"' in shown
    assert "failed: /srv/pi-im-backup is on the device's own card" in shown
    assert "The last good one was made at " in shown


@pytest.fixture(scope="module")
def bad_backups(device_a, backed_up) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Copies of the backup spoiled in each way, and a backup of a newer console schema."""
    for copy in ("tampered", "truncated"):
        device_a.check_output(f"cp -a {REPOSITORY} {DISK}/{copy}")
    tampered = device_a.check_output(LARGEST_PACK.format(f"{DISK}/tampered"))
    device_a.check_output(f"{FLIP_A_BYTE} {tampered}")
    truncated = device_a.check_output(LARGEST_PACK.format(f"{DISK}/truncated"))
    device_a.check_output(f"truncate -s $(( $(stat -c %s {truncated}) / 2 )) {truncated}")
    # The console's schema one step ahead of what this release reads, for one backup.
    version = int(device_a.check_output(f"sqlite3 {CONSOLE_DB} 'PRAGMA user_version'"))
    device_a.check_output(f"sqlite3 {CONSOLE_DB} 'PRAGMA user_version = {version + 1}'")
    try:
        newer = with_settings(device_a, "/root/newer.json", repository=f"{DISK}/newer")
        done = device_a.run(f"PI_IM_BACKUP_SETTINGS={newer} pi-im-backup run")
        assert done.rc == 0, done.stdout + done.stderr
    finally:
        device_a.check_output(f"sqlite3 {CONSOLE_DB} 'PRAGMA user_version = {version}'")
    return {"version": str(version)}


@pytest.mark.parametrize(
    ("case", "repository", "passphrase", "settings", "said"),
    [
        ("wrong passphrase", REPOSITORY, WRONG, {}, "wrong passphrase"),
        ("no backup there", f"{DISK}/nowhere", PASSPHRASE, {}, f"no backup at {DISK}/nowhere"),
        ("a byte changed", f"{DISK}/tampered", PASSPHRASE, {}, "restic:"),
        ("cut short", f"{DISK}/truncated", PASSPHRASE, {}, "restic:"),
        ("a newer schema", f"{DISK}/newer", PASSPHRASE, {}, "newer schema than this device reads"),
        (
            "another domain",
            REPOSITORY,
            PASSPHRASE,
            {"configured_domain": "chat.example.org"},
            "the backup is of pi-im.test, and this device's options name chat.example.org",
        ),
    ],
)
def test_a_bad_backup_is_refused_before_anything_changes(
    host, bad_backups, case: str, repository: str, passphrase: str, settings: dict, said: str
) -> None:  # type: ignore[no-untyped-def]
    before = host.check_output(STATE)
    path = with_settings(host, "/root/other.json", **settings) if settings else ""

    done = restore(host, repository, passphrase, path)

    assert done.rc == 1, f"{case}: {done.stdout} {done.stderr}"
    assert said in done.stderr, f"{case}: {done.stderr}"
    assert "nothing on this device was changed" in done.stderr
    assert host.check_output(STATE) == before
    assert not host.file("/var/lib/pi-im-backup/restore").exists


def test_a_device_pointed_at_another_ones_backups_does_not_back_up_there(host, bad_backups) -> None:  # type: ignore[no-untyped-def]
    """B, before it takes A's backup, has a passphrase of its own: the disk's backups are not
    its to add to."""
    done = host.run("pi-im-backup run")
    assert done.rc == 1
    said = json.loads(done.stdout)
    assert said["result"] == "failed"
    assert "holds backups this device's passphrase does not open" in said["message"]


@pytest.fixture(scope="module")
def restored(host, bad_backups):  # type: ignore[no-untyped-def]
    done = restore(host, REPOSITORY)
    assert done.rc == 0, done.stdout + done.stderr
    return done


def test_the_fresh_device_takes_the_backup(restored) -> None:  # type: ignore[no-untyped-def]
    assert "restored the backup of pi-im.test made " in restored.stdout


def test_it_has_the_old_devices_secrets_certificate_and_ssh_identity(
    host, story: Story, restored
) -> None:  # type: ignore[no-untyped-def]
    assert family.device_secrets(host) == story.secrets
    assert host.check_output(family.IDENTITY) == story.identity
    key = host.file("/var/lib/pi-im-admin/assistant-api-key")
    assert (key.content_string, key.user, key.mode) == (story.assistant_key, "pi-im-admin", 0o600)


def test_everyone_logs_in_with_the_old_password_and_finds_their_things(
    story: Story, restored, address_b: str, tls_a: ssl.SSLContext
) -> None:  # type: ignore[no-untyped-def]
    family.check_clients(story, address_b, tls_a)


def test_the_console_has_its_operators_tokens_groups_rooms_and_invitations(
    story: Story, restored, address_b: str, tls_a: ssl.SSLContext
) -> None:  # type: ignore[no-untyped-def]
    family.check_console(story, address_b, tls_a)


def test_rabbitmq_takes_the_old_administrator_password(host, story: Story, restored) -> None:  # type: ignore[no-untyped-def]
    assert family.broker_takes(host, story.secrets["rabbitmq-admin-password"])


def test_nothing_of_the_restore_is_left_behind(host, restored) -> None:  # type: ignore[no-untyped-def]
    assert host.check_output("systemctl --failed --no-legend --plain") == ""
    assert not host.file("/var/lib/pi-im-backup/restore").exists
    leftovers = host.check_output("find / -xdev -name '*pi-im-before-restore*' 2>/dev/null || true")
    assert leftovers == ""


def test_the_restored_device_backs_up_into_the_same_place(host, restored) -> None:  # type: ignore[no-untyped-def]
    done = host.run("pi-im-backup run")
    assert done.rc == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["result"] == "ok"


# A runtime drop-in: gone at the next boot, whatever happens to the test.
BROKEN = "/run/systemd/system/pi-im-admin.service.d/50-test-broken.conf"


def test_a_service_that_does_not_start_on_the_backup_is_named(host, restored) -> None:  # type: ignore[no-untyped-def]
    """The backup is put in place, and a service then refuses to start (a step before its
    start fails here, as a broken unit's would): the restore says so, names it and where to
    look, exits 4, and does not claim the device is as it was."""
    host.check_output(
        f"mkdir -p {BROKEN.rsplit('/', 1)[0]} && printf '[Service]\\nExecStartPre=/bin/false\\n'"
        f" > {BROKEN} && systemctl daemon-reload"
    )
    try:
        done = restore(host, REPOSITORY)
    finally:
        host.check_output(
            f"rm {BROKEN} && systemctl daemon-reload && systemctl reset-failed pi-im-admin; "
            "systemctl start pi-im-admin"
        )
    assert done.rc == 4, done.stdout + done.stderr
    assert "the backup is in place, but pi-im-admin did not start on it" in done.stderr
    assert "journalctl -u pi-im-admin" in done.stderr
    assert "as it was" not in done.stderr
    assert "nothing on this device was changed" not in done.stderr
    assert host.check_output("systemctl is-active ejabberd rabbitmq-server pi-im-admin") == (
        "active\nactive\nactive"
    )
