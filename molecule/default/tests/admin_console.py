"""A small client of the admin console: a browser-like session (cookies, CSRF tokens from the
pages) and an API client, both over real HTTPS to the deployed service."""

from __future__ import annotations

import re
import ssl
from html import unescape

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
MESSAGE = re.compile(r'<p class="(notice|error)"[^>]*>([^<]*)</p>')
# What the last action came to: base.html's message, which has no id (a page's own alerts do).
FLASHED = re.compile(r'<p class="(notice|error)" role="(?:status|alert)">([^<]*)</p>')


def messages(html: str) -> dict[str, str]:
    """The notice and error a page shows, as the operator reads them."""
    return {kind: unescape(text) for kind, text in MESSAGE.findall(html)}


def flashed(html: str) -> dict[str, str]:
    """What the page says of the action that led to it, without the page's own alerts."""
    return {kind: unescape(text) for kind, text in FLASHED.findall(html)}


class Console:
    """Signed in to the pages as one operator."""

    def __init__(self, base_url: str, tls: ssl.SSLContext) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30, verify=tls)
        self.csrf = ""

    def sign_in(self, username: str, password: str) -> httpx.Response:
        form = self.http.get("/signin")
        csrf = CSRF.search(form.text).group(1)
        response = self.http.post(
            "/signin", data={"username": username, "password": password, "csrf": csrf}
        )
        if response.status_code == 303:
            self.csrf = CSRF.search(self.http.get("/").text).group(1)
        return response

    def post(self, path: str, **fields: str) -> tuple[str, str]:
        """Submit a form; (notice, error) as the page it sends us back to shows them."""
        response = self.http.post(path, data={"csrf": self.csrf, **fields})
        assert response.status_code == 303, (response.status_code, response.text[:300])
        assert "?" not in response.headers["location"], response.headers["location"]
        shown = flashed(self.http.get(response.headers["location"]).text)
        return shown.get("notice", ""), shown.get("error", "")

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def create_token(self, name: str, role: str) -> str:
        """A new API token, read from the one response that shows it."""
        response = self.http.post("/tokens", data={"csrf": self.csrf, "name": name, "role": role})
        assert response.status_code == 200, (response.status_code, response.text[:300])
        return re.search(r"Token (pia_\S+)", messages(response.text)["notice"]).group(1)


def api(base_url: str, token: str, tls: ssl.SSLContext) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=tls,
    )


def findings(report: dict[str, object]) -> dict[str, dict[str, str]]:
    """A reachability report's findings by key (name, address, certificate, ...)."""
    return {f["key"]: f for f in report["findings"]}  # type: ignore[attr-defined,index]
