"""Settings from environment variables (PI_IM_ADMIN_*), set by the systemd unit."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PI_IM_ADMIN_{name}", default)


def _list(name: str, default: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _env(name, default).split(",") if item.strip())


def _ports() -> dict[str, str]:
    """The ports the device opens to its network, by what they are for ("c2s=5222,...")."""
    pairs = (item.partition("=") for item in _list("PORTS", ""))
    return {role.strip(): port.strip() for role, _, port in pairs if role.strip() and port.strip()}


def _credential(name: str) -> Path | None:
    """A file the unit handed the service in its runtime directory, readable by it alone."""
    directory = _env("CREDENTIALS", "")
    return Path(directory, name) if directory and Path(directory, name).exists() else None


def _domain() -> str:
    """The XMPP domain: as configured, else the one the device settled (at first boot, for an
    image: from the host name given in Raspberry Pi Imager)."""
    configured = _env("XMPP_DOMAIN", "")
    if configured:
        return configured
    try:
        return (
            Path(_env("XMPP_DOMAIN_FILE", "/etc/pi-im/domain")).read_text().strip() or "localhost"
        )
    except OSError:
        return "localhost"


def _host_names() -> tuple[str, ...]:
    """The names configured, and those the device has now: an image learns its host name and
    its domain at first boot, after its settings were written."""
    host = socket.gethostname().lower()
    names = [*_list("ALLOWED_HOSTS", "localhost"), host, f"{host}.local", _domain()]
    return tuple(dict.fromkeys(name.lower() for name in names if name))


@dataclass(frozen=True)
class Settings:
    database: Path = field(
        default_factory=lambda: Path(_env("DATABASE", "/var/lib/pi-im-admin/admin.db"))
    )
    ejabberd_api: str = field(
        default_factory=lambda: _env("EJABBERD_API", "https://127.0.0.1:5281/api")
    )
    # The console's own account on ejabberd's admin API, which answers nobody else.
    ejabberd_api_user: str = field(default_factory=lambda: _env("EJABBERD_API_USER", ""))
    ejabberd_api_password_file: Path | None = field(
        default_factory=lambda: _credential("ejabberd-api-password")
    )
    xmpp_domain: str = field(default_factory=_domain)
    # The device's certificate and key (one PEM): the console serves HTTPS with it, and
    # trusts it on ejabberd's admin API.
    tls_pem: Path | None = field(default_factory=lambda: _credential("tls.pem"))
    session_hours: int = field(default_factory=lambda: int(_env("SESSION_HOURS", "12")))
    sample_seconds: int = field(default_factory=lambda: int(_env("SAMPLE_SECONDS", "60")))
    # The XMPP account broadcasts are sent from (it must be an ejabberd admin).
    announce_from: str = field(default_factory=lambda: _env("ANNOUNCE_FROM", "admin"))
    # Accounts the console never changes: every one in ejabberd's admin ACL, and its own.
    protected_accounts: tuple[str, ...] = field(
        default_factory=lambda: _list("PROTECTED_ACCOUNTS", "admin")
    )
    # The names the console answers to (Host header); IP addresses are always accepted.
    allowed_hosts: tuple[str, ...] = field(default_factory=_host_names)
    # No request body is larger: the largest form is a 10,000-character broadcast.
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", "65536")))
    public_url: str = field(default_factory=lambda: _env("PUBLIC_URL", ""))
    # Whether ejabberd talks to other servers (shown on the dashboard).
    federation: bool = field(default_factory=lambda: _env("FEDERATION", "false") == "true")
    # The only servers it federates with (the apps' push services, say); empty: any.
    federation_with: tuple[str, ...] = field(default_factory=lambda: _list("FEDERATION_WITH", ""))
    # What the device's last attempt to get its certificate from an ACME CA came to (the acme
    # role's pi-im-acme writes it; absent when the device does not use one).
    acme_status: Path = field(
        default_factory=lambda: Path(_env("ACME_STATUS", "/var/lib/pi-im/acme/status.json"))
    )
    # The last backup's outcome (the backup role's pi-im-backup writes it).
    backup_status: Path = field(
        default_factory=lambda: Path(_env("BACKUP_STATUS", "/var/lib/pi-im/backup/status.json"))
    )
    # The backups page: what pi-im-backup publishes for it, the console's own spool of
    # requests to it (requests/, answers/), and the download it makes (readable by the group).
    backup_console_state: Path = field(
        default_factory=lambda: Path(
            _env("BACKUP_CONSOLE_STATE", "/var/lib/pi-im/backup/console.json")
        )
    )
    backup_spool: Path = field(
        default_factory=lambda: Path(_env("BACKUP_SPOOL", "/var/lib/pi-im-admin/backup"))
    )
    backup_export_dir: Path = field(
        default_factory=lambda: Path(_env("BACKUP_EXPORT_DIR", "/var/lib/pi-im/backup/export"))
    )
    # The last nightly run of Debian's updates (the updates role's pi-im-updates-status), and
    # the last check of an ejabberd or Erlang update (the ejabberd role's package check).
    updates_status: Path = field(
        default_factory=lambda: Path(_env("UPDATES_STATUS", "/var/lib/pi-im/updates/status.json"))
    )
    ejabberd_update_status: Path = field(
        default_factory=lambda: Path(
            _env("EJABBERD_UPDATE_STATUS", "/var/lib/pi-im/updates/ejabberd.json")
        )
    )
    # Which release of the appliance the device runs (the release role writes it).
    release_file: Path = field(
        default_factory=lambda: Path(_env("RELEASE_FILE", "/etc/pi-im/release.json"))
    )
    # The last time the device applied a newer release to itself (pi-im-update).
    appliance_update_status: Path = field(
        default_factory=lambda: Path(
            _env("APPLIANCE_UPDATE_STATUS", "/var/lib/pi-im/updates/appliance.json")
        )
    )
    # Where the device keeps its state (ejabberd's, RabbitMQ's, the console's): the dashboard
    # watches the file systems holding them. Below `storage_low_mb` free it warns; below
    # `storage_full_mb` (RabbitMQ's disk limit, where it stops taking messages) it says full.
    storage_paths: tuple[str, ...] = field(
        default_factory=lambda: _list(
            "STORAGE_PATHS", "/var/lib/ejabberd,/var/lib/rabbitmq,/var/lib/pi-im-admin"
        )
    )
    storage_low_mb: int = field(default_factory=lambda: int(_env("STORAGE_LOW_MB", "2048")))
    storage_full_mb: int = field(default_factory=lambda: int(_env("STORAGE_FULL_MB", "512")))
    # The port of the device's web chat (ejabberd's web listener), 0 when it has none.
    web_chat_port: int = field(default_factory=lambda: int(_env("WEB_CHAT_PORT", "0")))

    # The DNS servers the reachability page asks (none: the device's own, /etc/resolv.conf).
    dns_servers: tuple[str, ...] = field(default_factory=lambda: _list("DNS_SERVERS", ""))
    # The certificate authorities the reachability page checks the certificate against.
    ca_roots: Path = field(
        default_factory=lambda: Path(_env("CA_ROOTS", "/etc/ssl/certs/ca-certificates.crt"))
    )
    # What the device listens on for the internet, by role (c2s, s2s, https, web, turn,
    # relay, acme-http, console), and the address its call relay announces ("": its own).
    ports: dict[str, str] = field(default_factory=_ports)
    turn_address: str = field(default_factory=lambda: _env("TURN_ADDRESS", ""))

    @property
    def cookie_secure(self) -> bool:
        """Cookies carry the Secure flag whenever the console serves HTTPS."""
        return self.tls_pem is not None
