"""The device's web chat: Converse served by the device itself at the root of its web listener.
Its headers by address and by name, then a real browser (Debian's Chromium driven by Playwright)
reaching the device by its domain as a member's would: two members sign in, a message goes each
way, a file is shared, history is there on a fresh browser, and nothing is asked of anywhere but
the device. Screenshots are kept in artifacts/."""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from chromium import launched
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

from conftest import DOMAIN, REPO, Account, api, create_user
from test_xmpp import log_in

T = TypeVar("T")
ARTIFACTS = REPO / "artifacts"
WEB = f"https://{DOMAIN}:5280"
# The same web chat on the standard HTTPS port: https://DOMAIN/.
STANDARD = f"https://{DOMAIN}"
CONVERSE = "/converse-14.0.0/dist"


def get(
    address: str, tls: ssl.SSLContext, path: str, by: str = "address", port: int = 5280
) -> httpx.Response:
    """A request to the web listener, by the device's address or with its domain as the Host."""
    headers = {"Host": f"{DOMAIN}:{port}"} if by == "domain" else {}
    return httpx.get(f"https://{address}:{port}{path}", headers=headers, verify=tls, timeout=10)


def policy(response: httpx.Response) -> dict[str, set[str]]:
    directives = (d.split() for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: set(d[1:]) for d in directives if d}


@pytest.mark.parametrize("port", [5280, 443])
@pytest.mark.parametrize("by", ["address", "domain"])
def test_the_page_is_served_by_any_name_and_holds_to_the_device(
    address: str, device_tls: ssl.SSLContext, by: str, port: int
) -> None:
    page = get(address, device_tls, "/", by, port)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert f'src="{CONVERSE[1:]}/converse.min.js"' in page.text
    csp = policy(page)
    # Everything from, and every connection to, the device alone: the page's own origin, and
    # the shared files under the domain on the web listener's port.
    files = f"https://{DOMAIN}:5280"
    assert csp["default-src"] == {"'self'"}
    assert csp["connect-src"] == {"'self'", files}
    assert csp["img-src"] == {"'self'", "data:", "blob:", files}
    # WebAssembly (OMEMO's crypto) but never eval; not framed by another site.
    assert csp["script-src"] == {"'self'", "'wasm-unsafe-eval'"}
    assert csp["frame-ancestors"] == csp["object-src"] == csp["base-uri"] == {"'none'"}
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    # The page is asked for again at every load; Converse's files, under a path naming the
    # version, are kept.
    assert page.headers["cache-control"] == "no-cache"
    script = get(address, device_tls, f"{CONVERSE}/converse.min.js", by, port)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    # Asked again, an unchanged file is not sent again.
    unchanged = get(address, device_tls, "/pi-im-chat.js", by, port).headers["last-modified"]
    again = httpx.get(
        f"https://{address}:{port}/pi-im-chat.js",
        headers={"If-Modified-Since": unchanged},
        verify=device_tls,
        timeout=10,
    )
    assert again.status_code == 304
    wasm = get(address, device_tls, f"{CONVERSE}/curve25519_compiled.wasm", by, port)
    assert wasm.headers["content-type"] == "application/wasm"
    settings = get(address, device_tls, "/settings.json", by, port)
    assert json.loads(settings.text) == {"domain": DOMAIN}


@pytest.mark.parametrize(
    "path",
    [
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/converse-14.0.0/../../../../etc/ejabberd/ejabberd.yml",
        f"{CONVERSE}/converse.min.js.map",
        "/converse-14.0.0/src/index.js",
    ],
)
def test_nothing_but_the_web_chat_is_served(
    address: str, device_tls: ssl.SSLContext, path: str
) -> None:
    """No path leaves the web chat's directory, and Converse's sources and maps stay off it."""
    response = httpx.get(
        httpx.URL(f"https://{address}:5280").copy_with(raw_path=path.encode()),
        verify=device_tls,
        timeout=10,
    )
    assert response.status_code in (400, 404)
    assert "root:" not in response.text
    assert "hosts:" not in response.text
    assert response.headers.get("cache-control", "no-cache") == "no-cache"


# In a browser


@pytest.fixture(scope="module")
def browser(address: str) -> Iterator[Browser]:
    """Chromium that finds the device's domain at its address, as a member's finds it on the
    LAN (mDNS or the router's DNS): the page, its WebSocket and shared files are one origin."""
    with launched(f"--host-resolver-rules=MAP {DOMAIN} {address}") as started:
        yield started


def signed_in(
    browser: Browser,
    member: Account,
    asked: list[str],
    heard: list[str] | None = None,
    page_script: str = "",
    web: str = WEB,
) -> Page:
    """A fresh browser profile on the web chat, signed in with the member's name alone (the
    page's domain is the device's); every URL it asks for is noted in asked, and what the
    server sends it (WebSocket frames, BOSH responses) in heard. page_script replaces the
    page's own settings script."""
    # The device's own certificate, accepted as a member does once in their browser.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    page = context.new_page()
    page.on("request", lambda request: asked.append(request.url))
    page.on("websocket", lambda socket: asked.append(socket.url))
    if heard is not None:
        page.on(
            "websocket",
            lambda socket: socket.on("framereceived", lambda frame: heard.append(str(frame))),
        )
        page.on(
            "response",
            lambda response: heard.append(response.text()) if "/bosh" in response.url else None,
        )
    if page_script:
        page.route(
            f"{web}/pi-im-chat.js",
            lambda route: route.fulfill(
                status=200, body=page_script, headers={"Content-Type": "text/javascript"}
            ),
        )
    page.goto(f"{web}/")
    expect(page).to_have_title(f"Chat on {DOMAIN}")
    page.locator("#converse-login-jid").fill(member.jid.split("@")[0])
    page.locator("#converse-login-password").fill(member.password)
    page.locator("#converse-login-password").press("Enter")
    expect(page.locator("converse-user-profile")).to_contain_text(member.jid.split("@")[0])
    return page


def chat_with(page: Page, other: Account) -> Locator:
    """Open the chat with a contact from the roster, as a member clicks it."""
    name = other.jid.split("@")[0]
    # .first: a contact with unread messages is listed among them too.
    page.locator("converse-roster-contact a.open-chat", has_text=name).first.click()
    chat = page.locator(f'converse-chat[jid="{other.jid}"]')
    expect(chat.locator("textarea.chat-textarea")).to_be_visible()
    return chat


def say(chat: Locator, text: str) -> None:
    chat.locator("textarea.chat-textarea").fill(text)
    chat.locator("textarea.chat-textarea").press("Enter")


def test_members_chat_share_a_file_and_find_history_in_the_web_chat(
    browser: Browser,
    owner_api: httpx.Client,
    address: str,
    device_tls: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # Members of one group: each is already in the other's contacts.
    group = f"web{secrets.token_hex(3)}"
    assert owner_api.post("/groups", json={"name": group}).status_code == 201
    alice, bob = create_user(owner_api, group), create_user(owner_api, group)
    asked: list[str] = []

    # Alice at https://DOMAIN/ (uploading across to the shared files' port), Bob on 5280.
    alice_page = signed_in(browser, alice, asked, web=STANDARD)
    bob_page = signed_in(browser, bob, asked)
    to_bob, to_alice = chat_with(alice_page, bob), chat_with(bob_page, alice)
    hello, reply = f"hello from a browser {secrets.token_hex(3)}", f"hi {secrets.token_hex(3)}"
    say(to_bob, hello)
    expect(to_alice.locator(".chat-msg__text", has_text=hello)).to_be_visible()
    say(to_alice, reply)
    expect(to_bob.locator(".chat-msg__text", has_text=reply)).to_be_visible()

    # A photo: uploaded to the device (XEP-0363), shown inline to the other, byte-identical.
    photo = tmp_path / "photo.png"
    Image.frombytes("RGB", (64, 64), secrets.token_bytes(64 * 64 * 3)).save(photo)
    to_bob.locator("input.fileupload").set_input_files(photo)
    shown = to_alice.locator(f'img[src^="{WEB}/upload/"]')
    expect(shown).to_be_visible()
    bob_page.screenshot(path=ARTIFACTS / "web-chat.png")
    src = urlsplit(shown.get_attribute("src") or "")
    assert get(address, device_tls, src.path, by="domain").content == photo.read_bytes()

    # History: a browser that never saw the chat reads it from the device's archive.
    alice_page.context.close()
    again = chat_with(signed_in(browser, alice, asked, web=STANDARD), bob)
    expect(again.locator(".chat-msg__text", has_text=hello)).to_be_visible()
    expect(again.locator(".chat-msg__text", has_text=reply)).to_be_visible()
    expect(again.locator(f'img[src^="{WEB}/upload/"]')).to_be_visible()
    bob_page.context.close()

    # Nothing was asked of anywhere but the device: no CDN, no sponsor logos, no providers.
    elsewhere = {
        url
        for url in asked
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != DOMAIN
    }
    assert not elsewhere
    assert f"wss://{DOMAIN}:5280/websocket" in asked
    assert f"wss://{DOMAIN}/websocket" in asked


class App:
    """A member's app on 5222 (initial presence at priority 0, as apps send it), on an event
    loop of its own: Playwright's sync API owns the test's."""

    def __init__(self, account: Account, cert: Path, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client = self._run(log_in(account, cert, address))

    def _run(self, step: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(step, self.loop).result(60)

    def send(self, to: str, body: str) -> None:
        async def send() -> None:
            self.client.send_message(mto=to, mbody=body, mtype="chat")

        self._run(send())

    def received(self, timeout: float = 20) -> str:
        async def next_body() -> str:
            message = await asyncio.wait_for(self.client.messages.get(), timeout)
            return str(message["body"])

        return self._run(next_body())

    def close(self) -> None:
        async def close() -> None:
            await self.client.disconnect()
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self._run(close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def wait_until_available(host, member: Account, resource: str = "converse.js") -> None:  # type: ignore[no-untyped-def]
    """Until the browser's session has sent its initial presence: only then is it available,
    and only available sessions get what is sent to the bare address (RFC 6121 8.5.2.1)."""
    user = member.jid.split("@")[0]
    for _ in range(80):
        sessions = api(host, "user_sessions_info", {"user": user, "host": DOMAIN})
        assert isinstance(sessions, list)
        if any(s["resource"].startswith(resource) and s["status"] == "available" for s in sessions):
            return
        time.sleep(0.25)
    raise TimeoutError(f"{member.jid}'s browser never sent its presence")


@pytest.mark.parametrize("transport", ["websocket", "bosh"])
def test_a_browser_beside_an_app_gets_what_is_sent_to_the_bare_address(
    host,
    browser: Browser,
    owner_api: httpx.Client,
    address: str,
    device_cert: Path,
    device_tls: ssl.SSLContext,
    transport: str,
) -> None:
    """Found with Converse against the demo: over BOSH it missed a message sent to the member's
    bare address while an app of theirs was online at priority 0. The cause is the order of
    things: a browser on BOSH signs in, then asks for its roster and the server's features
    before it sends its presence, and until then it is not available, so a message in that
    second goes to the app alone. Nothing is lost: the browser shows it from the archive when
    the chat opens; and once available, the browser gets every message live, over BOSH (as a
    web client of the owner's connects: the page's settings script swapped) or WebSocket."""
    group = f"bare{secrets.token_hex(3)}"
    assert owner_api.post("/groups", json={"name": group}).status_code == 201
    sender, member = create_user(owner_api, group), create_user(owner_api, group)
    script = get(address, device_tls, "/pi-im-chat.js").text
    if transport == "bosh":
        websocket = "websocket_url: `wss://${location.host}/websocket`"
        assert websocket in script
        script = script.replace(websocket, "bosh_service_url: `https://${location.host}/bosh`")
    app, other = App(member, device_cert, address), App(sender, device_cert, address)
    asked: list[str] = []
    heard: list[str] = []
    try:
        before = f"before the browser {secrets.token_hex(4)}"
        other.send(member.jid, before)
        assert app.received() == before
        page = signed_in(browser, member, asked, heard, script)
        wait_until_available(host, member)
        live = f"to the bare address {secrets.token_hex(4)}"
        other.send(member.jid, live)
        assert app.received() == live
        for _ in range(40):
            if any(live in text for text in heard):
                break
            page.wait_for_timeout(250)
        assert any(live in text for text in heard), f"the browser ({transport}) never got it"
        chat = chat_with(page, sender)
        for text in (before, live):
            # The first comes from the archive when the chat opens (chromium.EXPECT_SECONDS).
            try:
                expect(chat.locator(".chat-msg__text", has_text=text)).to_be_visible()
            except AssertionError as missing:
                shown = chat.locator(".chat-msg__text").all_inner_texts()
                reached = any(text in frame for frame in heard)
                raise AssertionError(
                    f"{text!r} not shown ({transport}); the chat shows {shown}; "
                    f"the server {'did' if reached else 'did not'} send it to the browser"
                ) from missing
        endpoint = (
            f"https://{DOMAIN}:5280/bosh"
            if transport == "bosh"
            else f"wss://{DOMAIN}:5280/websocket"
        )
        assert endpoint in asked
        page.context.close()
    finally:
        app.close()
        other.close()
