"""Debian's Chromium, the real browser the tests drive with Playwright."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Without these Chromium keeps calling home, which this machine's closed network refuses.
QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
