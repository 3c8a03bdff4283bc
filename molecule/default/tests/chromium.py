"""Debian's Chromium, the real browser the tests drive with Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

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
# Playwright's 5 s is too short for a device that shares two cores with a second test lane:
# the web chat's first paint (Converse's 3 MB of script, compiled by a fresh profile, before the
# page sets its title) and a message fetched from the archive have each taken longer there.
# A real failure still fails, 20 s later.
EXPECT_SECONDS = 20


@contextmanager
def launched(*args: str) -> Iterator[Browser]:
    """Chromium started quiet, with more arguments if given; closed at the end."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: make test installs it (apt-get install chromium)"
        )
    expect.set_options(timeout=EXPECT_SECONDS * 1000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *args])
        try:
            yield browser
        finally:
            browser.close()
