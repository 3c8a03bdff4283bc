"""Settings from environment variables (PI_IM_ADMIN_*), set by the systemd unit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PI_IM_ADMIN_{name}", default)


@dataclass(frozen=True)
class Settings:
    database: Path = field(
        default_factory=lambda: Path(_env("DATABASE", "/var/lib/pi-im-admin/admin.db"))
    )
    ejabberd_api: str = field(
        default_factory=lambda: _env("EJABBERD_API", "http://127.0.0.1:5281/api")
    )
    xmpp_domain: str = field(default_factory=lambda: _env("XMPP_DOMAIN", "localhost"))
    # Cookies carry the Secure flag only behind HTTPS; the console is plain HTTP on a LAN.
    cookie_secure: bool = field(default_factory=lambda: _env("COOKIE_SECURE", "false") == "true")
    session_hours: int = field(default_factory=lambda: int(_env("SESSION_HOURS", "12")))
    sample_seconds: int = field(default_factory=lambda: int(_env("SAMPLE_SECONDS", "60")))
    # The XMPP account broadcasts are sent from (it must be an ejabberd admin).
    announce_from: str = field(default_factory=lambda: _env("ANNOUNCE_FROM", "admin"))
    public_url: str = field(default_factory=lambda: _env("PUBLIC_URL", ""))
