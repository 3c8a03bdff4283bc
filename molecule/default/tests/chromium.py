"""Debian's Chromium, the real browser the tests drive with Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

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


@contextmanager
def launched(*args: str) -> Iterator[Browser]:
    """Chromium started quiet, with more arguments if given; closed at the end."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: make test installs it (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *args])
        try:
            yield browser
        finally:
            browser.close()
