"""The dispatcher's settings, from the environment its unit sets (PI_IM_WEBHOOKS_*, and the
console's database from PI_IM_ADMIN_DATABASE)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PI_IM_WEBHOOKS_{name}", default)


def _password() -> str:
    """RabbitMQ's password for the dispatcher, handed over by its unit at each start."""
    directory = os.environ.get("PI_IM_WEBHOOKS_CREDENTIALS", "")
    path = Path(directory, "rabbitmq-password") if directory else None
    return path.read_text().strip() if path and path.exists() else ""


@dataclass(frozen=True)
class Config:
    database: Path = field(
        default_factory=lambda: Path(
            os.environ.get("PI_IM_ADMIN_DATABASE", "/var/lib/pi-im-admin/admin.db")
        )
    )
    amqp_host: str = field(default_factory=lambda: _env("AMQP_HOST", "127.0.0.1"))
    amqp_port: int = field(default_factory=lambda: int(_env("AMQP_PORT", "5672")))
    vhost: str = field(default_factory=lambda: _env("VHOST", "pi-im"))
    user: str = field(default_factory=lambda: _env("USER", "webhooks"))
    password: str = field(default_factory=_password, repr=False)
    exchange: str = field(default_factory=lambda: _env("EXCHANGE", "pi-im.events"))
    # Attempts per event; the first retry after `first_retry` seconds, each next one after
    # twice as long (capped at an hour).
    attempts: int = field(default_factory=lambda: int(_env("ATTEMPTS", "8")))
    first_retry: float = field(default_factory=lambda: float(_env("FIRST_RETRY_SECONDS", "5")))
    # This many events in a row not delivered pause the webhook.
    pause_after: int = field(default_factory=lambda: int(_env("PAUSE_AFTER", "3")))
    timeout: float = field(default_factory=lambda: float(_env("TIMEOUT_SECONDS", "10")))
    # Events a webhook's queue holds while it is paused or behind; past that the oldest go.
    queue_bound: int = field(default_factory=lambda: int(_env("QUEUE_BOUND", "10000")))
    # Deliveries kept per webhook for the deliveries page.
    kept: int = field(default_factory=lambda: int(_env("DELIVERIES_KEPT", "1000")))
    # How often the console's changes (a new webhook, a pause, a resume) are picked up.
    poll: float = field(default_factory=lambda: float(_env("POLL_SECONDS", "2")))

    @property
    def assistant_key(self) -> Path:
        """The assistant's key (services.assistant.key_file), beside the database."""
        return self.database.with_name("assistant-api-key")

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt, after `attempts` failed ones."""
        return min(self.first_retry * 2 ** (attempts - 1), 3600.0)
