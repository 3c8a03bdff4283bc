"""Where backups may go, as the owner names it in the console: a directory on a disk plugged
into the device (under /media or /mnt), an SFTP server, or nothing."""

from __future__ import annotations

import posixpath

from .restic import SFTP

MAX_LENGTH = 255
# Where Debian mounts a disk plugged in (udisks, the owner's fstab) and pi-im-backup.service
# may write.
DISK_ROOTS = ("/media/", "/mnt/")


class BadTarget(Exception):
    pass


def check(location: str) -> str:
    """The location as it will be used, or BadTarget saying what is wrong."""
    chosen = location.strip()
    if len(chosen) > MAX_LENGTH:
        raise BadTarget(f"a backup target is at most {MAX_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in chosen):
        raise BadTarget("a backup target has no control characters")
    if not chosen:
        return ""
    if chosen.startswith("sftp:"):
        if not SFTP.match(chosen):
            raise BadTarget(
                f"{chosen!r} is not an SFTP place: sftp:user@host:/path (user and host of "
                "letters, digits, '.', '_' and '-', not beginning with '-')"
            )
        return chosen
    if not chosen.startswith("/"):
        raise BadTarget(
            f"{chosen!r}: a backup target is a directory on a disk (/media/backup/pi-im) or an "
            "SFTP server (sftp:user@host:/path)"
        )
    normal = posixpath.normpath(chosen)
    if normal != chosen.rstrip("/") or not normal.startswith(DISK_ROOTS) or normal.count("/") < 3:
        raise BadTarget(
            f"{chosen!r}: a backup directory is on a disk plugged into the device, such as "
            "/media/backup/pi-im (under /media or /mnt, a directory of the disk's own)"
        )
    return normal
