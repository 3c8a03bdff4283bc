#!/usr/bin/python3
"""Per-device provisioning of RabbitMQ: vhost, administrator, the event bus (its exchange,
ejabberd as its publisher, the console's webhook dispatcher), no guest.

Runs on the device (from Ansible today, from the first-boot unit when baked into an image).
The password is generated here and reaches the broker as a salted hash through
`rabbitmqctl import_definitions` from a file only the broker's user can read, removed at
once: it never appears on a command line. (RabbitMQ 4.0's CLI hangs reading definitions
from standard input when run through Debian's `su` wrapper.)
Prints one JSON object: {"changed": bool, "actions": [...]}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

# Written by the rabbitmq role (vhost, administrator, its secret's name, the management API's
# URL); the environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_RABBITMQ_SETTINGS", "/etc/pi-im/rabbitmq.json"))


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "--quiet", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def import_definitions(document: str) -> None:
    """Through a file readable by the broker's user alone (rabbitmqctl runs as that user)."""
    broker = pwd.getpwnam("rabbitmq")
    with tempfile.NamedTemporaryFile("w", prefix="pi-im-definitions.", suffix=".json") as file:
        os.fchown(file.fileno(), broker.pw_uid, broker.pw_gid)
        file.write(document)
        file.flush()
        rabbitmqctl("import_definitions", file.name)


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


def hash_matches(stored: str, password: str) -> bool:
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError:
        return False
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


PERMISSIONS = ("configure", "write", "read")


def publisher_rights(exchange: str) -> dict[str, str]:
    """ejabberd's: publish to the events exchange, nothing else (no queue, no read)."""
    return {"configure": "^$", "write": f"^{re.escape(exchange)}$", "read": "^$"}


# The webhook dispatcher's queues: each webhook's pi-im.webhook.N and its .wait and .retry
# (pi_im_admin.webhooks.topology), pi-im.moderation, what moderation did, for the console,
# and pi-im.assistant, what people write to the assistant.
DISPATCHER_QUEUES = r"pi\-im\.(webhook\.[0-9]+(\.wait|\.retry)?|moderation|assistant)"


def webhooks_rights(exchange: str) -> dict[str, str]:
    """The webhook dispatcher's: its own queues (the webhooks', moderation's records), bound
    to the events exchange (read on it), the default exchange to park an event for its next
    attempt (write on amq.default), and the events exchange for the console's own events (an
    invitation used). It reads no other queue and declares nothing else."""
    return {
        "configure": f"^{DISPATCHER_QUEUES}$",
        "write": f"^({DISPATCHER_QUEUES}|amq\\.default|{re.escape(exchange)})$",
        "read": f"^({DISPATCHER_QUEUES}|{re.escape(exchange)})$",
    }


class ManagementApi:
    """The broker's state as its administrator sees it over the management API on loopback.

    Each `rabbitmqctl` call starts an Erlang node (about a second); these checks are HTTP
    requests to the running broker, so a device that is already provisioned costs one CLI call.
    """

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}

    def get(self, path: str) -> dict[str, object] | None:
        """The JSON answer, or None for 401/404 (not signed in, no such thing)."""
        request = urllib.request.Request(self.url + path, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code in (401, 404):
                return None
            raise
        except urllib.error.URLError as error:
            sys.exit(f"RabbitMQ's management API at {self.url} does not answer: {error.reason}")

    def administers(self, vhost: str, user: str) -> bool:
        """The user signs in with this password, is tagged administrator, may do all in vhost."""
        whoami = self.get("/api/whoami")
        if whoami is None or "administrator" not in whoami.get("tags", []):
            return False
        rights = self.get(f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}")
        return rights is not None and all(rights.get(k) == ".*" for k in PERMISSIONS)

    def has_user(self, user: str) -> bool:
        return self.get(f"/api/users/{quote(user, safe='')}") is not None

    def has_exchange(self, vhost: str, exchange: str) -> bool:
        """The exchange is there as made: a durable topic exchange."""
        found = self.get(f"/api/exchanges/{quote(vhost, safe='')}/{quote(exchange, safe='')}")
        return found is not None and (found.get("type"), found.get("durable")) == ("topic", True)

    def has_account(
        self, vhost: str, user: str, password: str, permissions: dict[str, str]
    ) -> bool:
        """The user signs in with this password and has exactly these rights in vhost."""
        account = self.get(f"/api/users/{quote(user, safe='')}")
        if account is None or not hash_matches(str(account.get("password_hash")), password):
            return False
        rights = self.get(f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}")
        return rights is not None and all(rights.get(k) == v for k, v in permissions.items())


def user(name: str, password: str, tags: list[str]) -> dict[str, object]:
    """A user as definitions carry one: the salted hash, never the password."""
    return {
        "name": name,
        "password_hash": password_hash(password),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": tags,
        "limits": {},
    }


def definitions(vhost: str, admin: str, password: str) -> dict[str, object]:
    return {
        "users": [user(admin, password, ["administrator"])],
        "vhosts": [{"name": vhost}],
        "permissions": [{"user": admin, "vhost": vhost} | dict.fromkeys(PERMISSIONS, ".*")],
    }


def account(vhost: str, name: str, password: str, rights: dict[str, str]) -> dict[str, object]:
    """A user with no tags (no management UI) and these rights in vhost alone."""
    return {
        "users": [user(name, password, [])],
        "permissions": [{"user": name, "vhost": vhost} | rights],
    }


def event_bus(vhost: str, exchange: str, publisher: str, password: str) -> dict[str, object]:
    """The durable topic exchange ejabberd publishes the events to, and its publisher."""
    return account(vhost, publisher, password, publisher_rights(exchange)) | {
        "exchanges": [
            {
                "name": exchange,
                "vhost": vhost,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
    }


def main() -> int:
    settings = json.loads(SETTINGS.read_text())
    vhost, admin = settings["vhost"], settings["admin_user"]
    password = secret(settings["admin_secret"])
    rabbitmqctl("await_startup", "--timeout", "120")
    api = ManagementApi(settings["management_url"], admin, password)
    actions: list[str] = []

    if not api.administers(vhost, admin):
        document = json.dumps(definitions(vhost, admin, password))
        import_definitions(document)
        actions.append(f"imported vhost {vhost} and administrator {admin}")
    events = settings["events"]
    exchange, publisher = events["exchange"], events["publisher"]
    publisher_password = secret(events["publisher_secret"])
    if not api.has_exchange(vhost, exchange) or not api.has_account(
        vhost, publisher, publisher_password, publisher_rights(exchange)
    ):
        import_definitions(json.dumps(event_bus(vhost, exchange, publisher, publisher_password)))
        actions.append(f"imported exchange {exchange} and publisher {publisher}")
    dispatcher = events["webhooks"]
    dispatcher_password = secret(events["webhooks_secret"])
    rights = webhooks_rights(exchange)
    if not api.has_account(vhost, dispatcher, dispatcher_password, rights):
        import_definitions(json.dumps(account(vhost, dispatcher, dispatcher_password, rights)))
        actions.append(f"imported the webhook dispatcher {dispatcher}")
    if api.has_user("guest"):
        rabbitmqctl("delete_user", "guest")
        actions.append("deleted guest")

    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
