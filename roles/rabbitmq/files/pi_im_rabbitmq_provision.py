#!/usr/bin/python3
"""Per-device provisioning of RabbitMQ: vhost, administrator, no guest.

Runs on the device (from Ansible today, from the first-boot unit when baked into an image).
The password is generated here and reaches the broker as a salted hash through
`rabbitmqctl import_definitions` on standard input: it never appears on a command line.
Prints one JSON object: {"changed": bool, "actions": [...]}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

# Written by the rabbitmq role (vhost, administrator, its secret's name, the management API's
# URL); the environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_RABBITMQ_SETTINGS", "/etc/pi-im/rabbitmq.json"))


def rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["rabbitmqctl", "--quiet", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def listing(*args: str) -> list[dict[str, object]]:
    return json.loads(rabbitmqctl(*args, "--formatter", "json") or "[]")


def secret(name: str) -> str:
    subprocess.run(["pi-im-secret", "ensure", name], check=True, capture_output=True)
    path = subprocess.run(
        ["pi-im-secret", "path", name], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(path).read_text().strip()


def password_hash(password: str) -> str:
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def can_log_in(management: str, admin: str, password: str) -> bool:
    request = urllib.request.Request(f"{management}/api/whoami")
    token = base64.b64encode(f"{admin}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def main() -> int:
    settings = json.loads(SETTINGS.read_text())
    vhost, admin = settings["vhost"], settings["admin_user"]
    password = secret(settings["admin_secret"])
    rabbitmqctl("await_startup", "--timeout", "120")
    subprocess.run(
        ["rabbitmq-plugins", "--quiet", "is_enabled", "rabbitmq_management"],
        check=True,
        capture_output=True,
    )
    actions: list[str] = []

    users = {str(user["user"]) for user in listing("list_users")}
    vhosts = {str(vhost["name"]) for vhost in listing("list_vhosts")}
    rights = listing("list_permissions", "--vhost", vhost) if vhost in vhosts else []
    has_rights = any(
        p["user"] == admin and p["configure"] == p["write"] == p["read"] == ".*" for p in rights
    )
    logs_in = can_log_in(settings["management_url"], admin, password)
    if admin not in users or vhost not in vhosts or not has_rights or not logs_in:
        definitions = {
            "users": [
                {
                    "name": admin,
                    "password_hash": password_hash(password),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": ["administrator"],
                    "limits": {},
                }
            ],
            "vhosts": [{"name": vhost}],
            "permissions": [
                {"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
            ],
        }
        rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(definitions))
        actions.append(f"imported vhost {vhost} and administrator {admin}")
    if "guest" in users:
        rabbitmqctl("delete_user", "guest")
        actions.append("deleted guest")

    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
