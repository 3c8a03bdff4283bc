"""RabbitMQ's management API on loopback, as the device's administrator
(/etc/pi-im/rabbitmq.json)."""

from __future__ import annotations

import base64
import json
import urllib.request

from .settings import Settings


def definitions(settings: Settings, upload: bytes | None = None) -> bytes:
    """GET the broker's definitions, or POST `upload` (added to what the broker has)."""
    config = json.loads(settings.rabbitmq.read_text())
    password = (settings.secrets_dir / config["admin_secret"]).read_text().strip()
    token = base64.b64encode(f"{config['admin_user']}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{config['management_url']}/api/definitions",
        data=upload,
        method="POST" if upload is not None else "GET",
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()
