"""A small client of the admin console: a browser-like session (cookies, CSRF tokens from the
pages) and an API client, both over real HTTP to the deployed service."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """Signed in to the pages as one operator."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
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
        """Submit a form; (notice, error) from where the console sent us back."""
        response = self.http.post(path, data={"csrf": self.csrf, **fields})
        assert response.status_code == 303, (response.status_code, response.text[:300])
        query = parse_qs(urlparse(response.headers["location"]).query)
        return query.get("notice", [""])[0], query.get("error", [""])[0]

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def create_token(self, name: str, role: str) -> str:
        notice, error = self.post("/tokens", name=name, role=role)
        assert not error, error
        return re.search(r"Token (pia_\S+)", notice).group(1)


def api(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
