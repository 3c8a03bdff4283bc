"""The console in a real browser (Debian's Chromium driven by Playwright): sign in, create a
user, that user logs in over XMPP, delete it. Screenshots are kept in artifacts/."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import zxingcpp
from chromium import launched
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

from conftest import DOMAIN, REPO, Account, create_user, secret
from test_xmpp import roster_of, xmpp_login

ARTIFACTS = REPO / "artifacts"


def xmpp_login_beside_playwright(account: Account, cert: Path, address: str) -> str:
    """Playwright's sync API owns this thread's event loop: log in from another thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(xmpp_login, account, cert, address).result()


def scanned(code: Locator, into: Path) -> str:
    """What a camera reads off the QR code as the browser draws it."""
    code.screenshot(path=into)
    [found] = zxingcpp.read_barcodes(Image.open(into))
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    return found.text


def sign_in(page: Page, host, base: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/signin")
    page.get_by_label("User name").fill("owner")
    page.get_by_label("Password").fill(secret(host, "admin-owner-password"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as started:
        yield started


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
    sign_in(page, host, base)
    page.goto(f"{base}/users")
    page.get_by_label("User name").fill("no spaces allowed")
    page.get_by_label("Password").fill(secrets.token_urlsafe(16))
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert")).to_have_text(
        "A user name may not contain spaces or control characters."
    )


def test_an_invitation_from_qr_code_to_contacts(
    host,
    browser: Browser,
    page: Page,
    address: str,
    device_cert: Path,
    owner_api: httpx.Client,
    tmp_path: Path,
) -> None:
    """An operator makes an invitation into a group: its QR code holds the link. The new
    member, in a browser of their own, reads which app to install, signs up, and is shown
    their address as a QR code; in their app the group's members are already contacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"https://{address}:8080"
    group = f"family{secrets.token_hex(3)}"
    assert owner_api.post("/groups", json={"name": group}).status_code == 201
    grandma = create_user(owner_api, group)

    sign_in(page, host, base)
    page.goto(f"{base}/invites")
    page.get_by_label("Group").select_option(group)
    page.get_by_role("button", name="Create invitation link").click()
    link = page.get_by_role("status").inner_text().split(": ", 1)[1].split(" (shown once")[0]
    assert link.startswith(f"{base}/invite/i")
    assert scanned(page.locator("#new-invitation svg"), tmp_path / "invitation.png") == link
    page.screenshot(path=ARTIFACTS / "invitation.png", full_page=True)

    newcomer = browser.new_context(ignore_https_errors=True).new_page()
    newcomer.goto(link)
    expect(
        newcomer.get_by_role("heading", name=f"You are invited to chat on {DOMAIN}")
    ).to_be_visible()
    expect(newcomer.locator("#apps")).to_contain_text("Conversations")
    stores = newcomer.locator("#apps a").evaluate_all("links => links.map(a => a.href)")
    assert "https://f-droid.org/packages/eu.siacs.conversations/" in stores
    assert {"https://monal-im.org/", "https://gajim.org/download/", "https://dino.im/"} <= set(
        stores
    )
    name, password = f"n{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    newcomer.get_by_label("User name").fill(name)
    newcomer.get_by_label("Password").fill(password)
    newcomer.get_by_role("button", name="Create account").click()
    expect(newcomer.locator("#jid")).to_have_text(f"{name}@{DOMAIN}")
    assert scanned(newcomer.locator("#address-code svg"), tmp_path / "address.png") == (
        f"xmpp:{name}@{DOMAIN}"
    )
    newcomer.screenshot(path=ARTIFACTS / "welcome.png", full_page=True)
    # No app yet: the device's web chat, by the name this browser came by.
    newcomer.locator("#web-chat").click()
    expect(newcomer).to_have_url(f"https://{address}:5280/")
    expect(newcomer).to_have_title(f"Chat on {DOMAIN}")
    expect(newcomer.locator("#converse-login-jid")).to_be_visible()
    newcomer.context.close()

    member = Account(f"{name}@{DOMAIN}", password)
    with ThreadPoolExecutor(1) as pool:
        contacts = pool.submit(roster_of, member, device_cert, address).result()
    assert grandma.jid in contacts


def test_the_reachability_page_in_a_browser(host, page: Page, address: str) -> None:
    """An owner finds the page from the menu, reads each check with what to do, and asks
    again (a form with its CSRF token, back to the page)."""
    base = f"https://{address}:8080"
    sign_in(page, host, base)
    page.get_by_role("link", name="Reachability").click()
    expect(page.get_by_role("heading", name="Reachability")).to_be_visible()
    expect(page.locator("#finding-certificate")).to_contain_text("self-signed")
    expect(page.locator("#finding-listening")).to_have_attribute("data-state", "ok")
    page.get_by_role("button", name="Check again").click()
    expect(page).to_have_url(f"{base}/reachability")
    expect(page.get_by_role("heading", name="On your router")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "reachability.png", full_page=True)


def test_an_admin_registers_a_webhook_sees_its_secret_once_and_deletes_it(
    host, page: Page, address: str
) -> None:
    base = f"https://{address}:8080"
    sign_in(page, host, base)
    page.get_by_role("link", name="Webhooks").click()
    name = f"w{secrets.token_hex(3)}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("URL").fill("http://example.org/hook")
    page.get_by_label("room.destroyed").check()
    page.get_by_role("button", name="Register webhook").click()
    expect(page.get_by_role("alert")).to_contain_text("Plain http:// is for the local network only")

    page.get_by_label("Name").fill(name)
    page.get_by_label("URL").fill(f"http://{address}:9/hook")
    page.get_by_label("room.destroyed").check()
    page.get_by_role("button", name="Register webhook").click()
    notice = page.get_by_role("status")
    expect(notice).to_contain_text(f"Webhook {name} registered. Its secret, whsec_")
    secret_shown = notice.inner_text().split("secret, ")[1].split(",")[0]
    page.screenshot(path=ARTIFACTS / "webhooks.png", full_page=True)

    page.goto(f"{base}/webhooks")  # not a reload, which would post the form again
    expect(page.locator("#webhooks")).to_contain_text(f"http://{address}:9/hook")
    assert secret_shown not in page.content()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=f"Webhook {name}")).to_be_visible()
    expect(page.locator("#deliveries")).to_contain_text("No delivery yet.")
    page.get_by_role("link", name="All webhooks").click()
    page.locator("#webhooks tr", has_text=name).get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("Webhook deleted.")
    expect(page.locator("#webhooks")).not_to_contain_text(name)


def test_an_admin_makes_a_bot_sees_its_token_once_and_deletes_it(
    host, page: Page, address: str
) -> None:
    base = f"https://{address}:8080"
    sign_in(page, host, base)
    page.get_by_role("link", name="Bots").click()
    name, form = f"bot-{secrets.token_hex(3)}", page.locator("#new-bot")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Webhook URL").fill("http://example.org/hook")
    form.get_by_role("button", name="Make bot").click()
    expect(page.get_by_role("alert")).to_contain_text("Plain http:// is for the local network only")

    form.get_by_label("Name").fill(name)
    form.get_by_label("Webhook URL").fill(f"http://{address}:9/hook")
    form.get_by_role("button", name="Make bot").click()
    shown = page.locator("#bot-credentials")
    expect(shown).to_contain_text(f"{name}@{DOMAIN}")
    token, webhook_secret = (
        page.locator("#bot-token").inner_text(),
        page.locator("#bot-secret").inner_text(),
    )
    assert token.startswith("pib_")
    assert webhook_secret.startswith("whsec_")
    page.screenshot(path=ARTIFACTS / "bots.png", full_page=True)

    page.goto(f"{base}/bots")  # not a reload, which would post the form again
    row = page.locator("#bots tr", has_text=name)
    expect(row).to_contain_text("answering")
    assert token not in page.content()
    assert webhook_secret not in page.content()
    row.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text(f"Bot {name} deleted.")
    expect(page.locator("#bots")).not_to_contain_text(name)


def test_an_admin_keeps_a_moderation_list_and_is_told_what_it_refuses(
    host, page: Page, address: str
) -> None:
    base = f"https://{address}:8080"
    sign_in(page, host, base)
    page.get_by_role("navigation").get_by_role("link", name="Moderation").click()
    expect(page.get_by_role("heading", name="Moderation", exact=True)).to_be_visible()
    word = f"rude{secrets.token_hex(3)}"
    page.get_by_label("Words").fill(f"{word}, Another{word}\n{word}")
    page.locator("#add-words").get_by_label("Action").select_option("block")
    page.get_by_role("button", name="Add words").click()
    expect(page.get_by_role("status")).to_have_text(
        "2 words added (words already in the list are left as they are)."
    )
    expect(page.locator("#words")).to_contain_text(f"another{word}")

    page.get_by_label("Pattern").fill("(unclosed")
    page.get_by_role("button", name="Add pattern").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Not changed: the pattern '(unclosed': missing )"
    )
    expect(page.locator("#patterns")).to_contain_text("None.")
    page.screenshot(path=ARTIFACTS / "moderation.png", full_page=True)

    for text in (f"another{word}", word):  # the longer first: the other is part of it
        page.locator("#words tr", has_text=text).get_by_role("button", name="Remove").click()
        expect(page.get_by_role("status")).to_contain_text("removed.")
    expect(page.locator("#words")).not_to_contain_text(word)
