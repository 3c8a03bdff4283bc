"""Where A's owner keeps backups besides the disk, chosen on the console's Backups page: an
SFTP server (OpenSSH in a container of its own, as a NAS), which lets the device in with the
key the page shows, its host key kept on first use and a changed one refused; and a download
to keep on a computer, which another device reads as it is. The passphrase is shown to the
owner once; an operator sees none of it. Runs after the restore story (test_restore.py)."""

from __future__ import annotations

import json
import re
import shlex
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import backup_page
import pytest
import testinfra
from chromium import launched
from playwright.sync_api import Page, expect

from admin_console import Console, flashed
from conftest import DOMAIN, REPO
from containers import address_of
from family import Story

SFTP_SERVER = "pi-im-restore-sftp"
ARTIFACTS = REPO / "artifacts"
DOWNLOAD_SECONDS = 300


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    return testinfra.get_host(f"docker://{SFTP_SERVER}")


@pytest.fixture(scope="module")
def sftp_target() -> str:
    return f"sftp:keeper@{address_of(SFTP_SERVER)}:/srv/pi-im"


@pytest.fixture(scope="module")
def over_sftp(device_a, owner_a: Console, server, sftp_target: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The owner copies the device's key from the page into the server's backup account,
    names the server as the target and backs up now."""
    key = backup_page.ssh_key(owner_a)
    assert key.startswith("ssh-ed25519 ")
    server.check_output(
        f"printf '%s\\n' '{key}' > /home/keeper/.ssh/authorized_keys && "
        "chown keeper:keeper /home/keeper/.ssh/authorized_keys && "
        "chmod 0600 /home/keeper/.ssh/authorized_keys"
    )
    notice, error = owner_a.post("/backups/target", location=sftp_target)
    assert (notice, error) == (
        f"Backups go to {sftp_target} from now on. Back up now to try it.",
        "",
    )
    return backup_page.back_up_now(device_a, owner_a)


def test_the_owner_backs_up_to_an_sftp_server(  # type: ignore[no-untyped-def]
    device_a, server, story: Story, over_sftp: dict[str, object], sftp_target: str
) -> None:
    assert over_sftp["result"] == "ok", over_sftp
    assert over_sftp["repository"] == sftp_target
    (snapshot,) = json.loads(device_a.check_output("pi-im-backup snapshots"))
    assert snapshot["id"] == over_sftp["snapshot"]
    assert snapshot["hostname"] == DOMAIN
    assert server.file("/srv/pi-im/config").user == "keeper"
    # Encrypted: neither a message nor a secret is on the server as it was written.
    for text in (story.chat[0], story.secrets["admin-owner-password"]):
        assert server.run(f"grep -rqF -e {shlex.quote(text)} -- /srv/pi-im").rc == 1


def test_the_page_shows_the_servers_key_as_first_seen(owner_a: Console, server, over_sftp) -> None:  # type: ignore[no-untyped-def]
    fingerprint = server.check_output("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
    shown = backup_page.page(owner_a)
    assert fingerprint in shown
    assert "The playbook sets this" not in shown


def test_a_device_with_the_restored_key_reads_them(host, over_sftp, sftp_target: str) -> None:  # type: ignore[no-untyped-def]
    """B took A's backup, secrets included: its key and passphrase open A's SFTP backups, as a
    new card's would after a restore."""
    (snapshot,) = json.loads(
        host.check_output(f"pi-im-backup snapshots --repository {sftp_target}")
    )
    assert snapshot["id"] == over_sftp["snapshot"]


def test_a_server_showing_another_host_key_is_refused(  # type: ignore[no-untyped-def]
    device_a, owner_a: Console, server, over_sftp
) -> None:
    """A server that is not the one first seen (another machine at its address, or the same
    one reinstalled) gets no backup until the owner looks into it."""
    server.check_output("rm /etc/ssh/ssh_host_*; ssh-keygen -A; systemctl restart ssh")
    refused = backup_page.back_up_now(device_a, owner_a)
    assert refused["result"] == "failed"
    assert "Host key verification failed" in str(refused["message"])
    shown = backup_page.page(owner_a)
    assert 'role="alert" id="backup"' in shown
    assert "Host key verification failed" in shown
    assert server.run("find /srv/pi-im/snapshots -type f | wc -l").stdout.strip() == "1"


@pytest.fixture
def page(story: Story) -> Iterator[Page]:
    """Debian's Chromium, accepting the device's own certificate as a user does once."""
    with launched() as browser:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, ignore_https_errors=True
        )
        yield context.new_page()


def test_the_page_in_a_browser_backs_up_and_refreshes_until_done(
    page: Page, address_a: str, story: Story, over_sftp, sftp_target: str
) -> None:  # type: ignore[no-untyped-def]
    base = f"https://{address_a}:8080"
    page.goto(f"{base}/signin")
    page.get_by_label("User name").fill("owner")
    page.get_by_label("Password").fill(story.secrets["admin-owner-password"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Backups").click()
    expect(page.get_by_role("heading", name="Backups", exact=True)).to_be_visible()
    expect(page.locator("#repository")).to_have_text(sftp_target)
    expect(page.get_by_label("Backup target")).to_have_value(sftp_target)
    page.get_by_role("button", name="Back up now").click()
    expect(page.get_by_role("status").first).to_have_text(
        "The backup has started: this page shows its outcome when it is done."
    )
    # The page reloads itself while the backup runs; the server still shows another key.
    expect(page.locator("#backup")).to_contain_text("Host key verification failed", timeout=120_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "backups.png", full_page=True)


def test_the_passphrase_is_shown_to_the_owner_once(device_a, owner_a: Console) -> None:  # type: ignore[no-untyped-def]
    response = owner_a.http.post("/backups/passphrase", data={"csrf": owner_a.csrf})
    assert response.status_code == 200, response.status_code
    shown = re.search(r'<code class="secret">([^<]+)</code>', response.text)
    assert shown
    assert shown.group(1) == device_a.check_output("pi-im-secret show backup-passphrase")
    again = owner_a.http.post("/backups/passphrase", data={"csrf": owner_a.csrf})
    assert again.status_code == 303
    said = flashed(owner_a.get("/backups").text)["error"]
    assert said.startswith("The passphrase was shown to owner at ")
    assert "pi-im-secret show backup-passphrase" in said
    assert shown.group(1) not in owner_a.get("/backups").text
    # Never in the journal of either side.
    journal = device_a.check_output(
        "journalctl -u pi-im-admin -u pi-im-backup-console --since -10min -o cat"
    )
    assert shown.group(1) not in journal
    assert "passphrase by owner: done" in journal


def test_an_operator_has_no_backups_page(
    address_a: str, tls_a: ssl.SSLContext, story: Story
) -> None:
    helper = Console(f"https://{address_a}:8080", tls_a)
    assert helper.sign_in(*story.operator).status_code == 303
    assert helper.get("/backups").status_code == 403
    for action in ("/backups/run", "/backups/target", "/backups/passphrase", "/backups/download"):
        assert helper.http.post(action, data={"csrf": helper.csrf}).status_code == 403


def ready_download(owner: Console) -> str:
    deadline = time.monotonic() + DOWNLOAD_SECONDS
    while time.monotonic() < deadline:
        found = re.search(r'href="/backups/download/([^"]+)"', owner.get("/backups").text)
        if found:
            return found.group(1)
        time.sleep(2)
    raise AssertionError(f"no download was ready in {DOWNLOAD_SECONDS} s")


def test_the_owner_downloads_a_backup_another_device_reads(  # type: ignore[no-untyped-def]
    host, owner_a: Console, story: Story, tmp_path: Path
) -> None:
    notice, error = owner_a.post("/backups/download")
    assert notice.startswith("The download is being prepared"), (notice, error)
    name = ready_download(owner_a)
    assert name.startswith(f"pi-im-backup-{DOMAIN}-")
    saved = tmp_path / "download.tar"
    with owner_a.http.stream("GET", f"/backups/download/{name}") as response:
        assert response.status_code == 200
        assert response.headers["content-disposition"] == f'attachment; filename="{name}.tar"'
        assert response.headers["cache-control"] == "no-store"
        with saved.open("wb") as out:
            for piece in response.iter_bytes():
                out.write(piece)
    content = saved.read_bytes()
    for text in (story.chat[0], story.secrets["admin-owner-password"]):
        assert text.encode() not in content
    subprocess.run(
        ["docker", "cp", str(saved), f"{host.backend.host}:/root/download.tar"], check=True
    )
    (snapshot,) = json.loads(
        host.check_output("pi-im-backup snapshots --repository /root/download.tar")
    )
    assert snapshot["hostname"] == DOMAIN
    # Nothing of it is left unpacked on B.
    assert not host.file("/var/lib/pi-im-backup/unpacked").exists
