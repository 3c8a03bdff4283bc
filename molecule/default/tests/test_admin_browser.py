"""The console in a real browser (Debian's Chromium driven by Playwright): sign in, create a
user, that user logs in over XMPP, delete it. Screenshots are kept in artifacts/."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conftest import DOMAIN, REPO, Account, secret
from test_xmpp import xmpp_login

ARTIFACTS = REPO / "artifacts"
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


def xmpp_login_beside_playwright(account: Account, cert: Path, address: str) -> str:
    """Playwright's sync API owns this thread's event loop: log in from another thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(xmpp_login, account, cert, address).result()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: make test installs it (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # The device's certificate is its own (self-signed, for its domain, reached here by
    # address): the browser is told to accept it, as a user does once in theirs.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    yield context.new_page()
    context.close()


def test_sign_in_create_log_in_delete(host, page: Page, address: str, device_cert: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"https://{address}:8080"
    page.goto(f"{base}/users")
    expect(page).to_have_url(f"{base}/signin?next=%2Fusers")
    page.get_by_label("User name").fill("owner")
    page.get_by_label("Password").fill(secret(host, "admin-owner-password"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    name, password = f"b{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text(f"Created {name}@{DOMAIN}.")
    expect(page.locator("#users")).to_contain_text(f"{name}@{DOMAIN}")
    page.screenshot(path=ARTIFACTS / "users.png", full_page=True)

    account = Account(f"{name}@{DOMAIN}", password)
    assert xmpp_login_beside_playwright(account, device_cert, address).startswith("session started")

    page.get_by_role("link", name=f"{name}@{DOMAIN}").click()
    page.get_by_role("button", name=f"Delete {name}").click()
    expect(page.get_by_role("status")).to_have_text(f"Deleted {name}.")
    expect(page.locator("#users")).not_to_contain_text(f"{name}@{DOMAIN}")
    assert xmpp_login_beside_playwright(account, device_cert, address) == "auth failed"


def test_bad_input_is_shown_not_crashed(host, page: Page, address: str) -> None:
    base = f"https://{address}:8080"
    page.goto(f"{base}/signin")
    page.get_by_label("User name").fill("owner")
    page.get_by_label("Password").fill(secret(host, "admin-owner-password"))
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/users")
    page.get_by_label("User name").fill("no spaces allowed")
    page.get_by_label("Password").fill(secrets.token_urlsafe(16))
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert")).to_have_text(
        "A user name may not contain spaces or control characters."
    )
