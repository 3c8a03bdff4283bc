"""Backups of the pi-im appliance: a consistent snapshot of the device's state, encrypted and
deduplicated by restic, and a restore of one onto a fresh device (`pi-im-backup`,
`pi-im-restore`). Standard library only: it runs on the device's own Python."""
