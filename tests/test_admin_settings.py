"""The console's settings that the device decides at first boot: its XMPP domain and the names
it answers to."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pi_im_admin.settings import Settings


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
