"""The console's Backups page as its owner uses it, and the device's backup status read
while a backup asked for there runs."""

from __future__ import annotations

import json
import re
import time
from html import unescape

from admin_console import Console

# A backup of the story's device takes seconds; a first one over SFTP a little more.
BACKUP_SECONDS = 300


def status(host) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return json.loads(host.check_output("pi-im-backup status"))


def back_up_now(host, owner: Console) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Back up now, from the page; the outcome once the backup it started has finished."""
    before = status(host).get("started")
    notice, error = owner.post("/backups/run")
    assert (notice, error) == (
        "The backup has started: this page shows its outcome when it is done.",
        "",
    )
    deadline = time.monotonic() + BACKUP_SECONDS
    while time.monotonic() < deadline:
        now = status(host)
        if now.get("started") != before and now["result"] != "running":
            return now
        time.sleep(1)
    raise AssertionError(f"no backup finished in {BACKUP_SECONDS} s: {status(host)}")


def page(owner: Console) -> str:
    """The Backups page as text, entities read and white space folded."""
    response = owner.get("/backups")
    assert response.status_code == 200, response.status_code
    return " ".join(unescape(response.text).split())


def ssh_key(owner: Console) -> str:
    """The device's key for an SFTP server, as the page shows it to paste."""
    found = re.search(r'<pre id="ssh-key">([^<]+)</pre>', owner.get("/backups").text)
    assert found, "the page shows no SSH key"
    return unescape(found.group(1)).strip()
