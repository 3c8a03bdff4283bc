"""The console's settings that the device decides at first boot: its XMPP domain and the names
it answers to."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from pi_im_admin.settings import Settings
from pi_im_admin.web import web_chat_url


@pytest.fixture
def device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    domain = tmp_path / "domain"
    domain.write_text("kitchen-pi.local\n")
    monkeypatch.delenv("PI_IM_ADMIN_XMPP_DOMAIN", raising=False)
    monkeypatch.setenv("PI_IM_ADMIN_XMPP_DOMAIN_FILE", str(domain))
    monkeypatch.setenv("PI_IM_ADMIN_ALLOWED_HOSTS", "localhost,Chat.Example.org")
    return domain


def test_the_domain_is_the_one_the_device_chose(device: Path) -> None:
    assert Settings().xmpp_domain == "kitchen-pi.local"


def test_a_configured_domain_wins(device: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PI_IM_ADMIN_XMPP_DOMAIN", "chat.example.org")
    assert Settings().xmpp_domain == "chat.example.org"


def test_no_domain_yet_is_localhost(device: Path) -> None:
    device.unlink()
    assert Settings().xmpp_domain == "localhost"


def test_the_console_answers_to_the_names_the_device_has_now(device: Path) -> None:
    host = socket.gethostname().lower()
    names = Settings().allowed_hosts
    assert set(names) == {
        "localhost",
        "chat.example.org",
        host,
        f"{host}.local",
        "kitchen-pi.local",
    }
    assert len(names) == len(set(names))


def test_no_web_chat_unless_the_device_has_one(
    device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().web_chat_port == 0
    monkeypatch.setenv("PI_IM_ADMIN_WEB_CHAT_PORT", "5280")
    assert Settings().web_chat_port == 5280


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("kitchen.local:8080", "https://kitchen.local:5280/"),
        ("192.168.1.20:8080", "https://192.168.1.20:5280/"),
        ("[fd00::20]:8080", "https://[fd00::20]:5280/"),
    ],
)
def test_the_web_chat_is_linked_by_the_name_the_browser_came_by(
    device: Path, monkeypatch: pytest.MonkeyPatch, host: str, url: str
) -> None:
    monkeypatch.setenv("PI_IM_ADMIN_WEB_CHAT_PORT", "5280")
    request = Request(
        {"type": "http", "scheme": "https", "path": "/", "headers": [(b"host", host.encode())]}
    )
    ctx = SimpleNamespace(settings=Settings())
    assert web_chat_url(request, ctx) == url  # type: ignore[arg-type]
    monkeypatch.setenv("PI_IM_ADMIN_WEB_CHAT_PORT", "0")
    assert web_chat_url(request, SimpleNamespace(settings=Settings())) == ""  # type: ignore[arg-type]
