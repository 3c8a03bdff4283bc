"""The event bus's side of a run, ON the target (`python3 - COMMAND` with this file on stdin).

Standard library only, as root on the appliance. A durable queue of the benchmark's own,
bound to message.chat on the pi-im.events exchange, counts the events ejabberd published for
the run's messages:

    bind      declare the queue (empty), bind it; {"available": false} without an event bus,
              or when ejabberd publishes no message.chat events (nothing to count, none lost)
    count N   wait up to N seconds for the count to stop moving; {"events": count}
    remove    delete the queue

The administrator's password is read from its device secret (found by `pi-im-secret`) and
sent only to the management API on loopback, in a header.
"""

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SETTINGS = Path("/etc/pi-im/rabbitmq.json")
EJABBERD_CONFIG = Path("/etc/ejabberd/ejabberd.yml")
QUEUE = "pi-im-bench-events"


class Broker:
    """The management API as the administrator (the role's settings read once), and the
    queue's count from rabbitmqctl."""

    def __init__(self, settings):
        self.settings = settings
        # The appliance's own tool finds the secret; only its path passes through here.
        path = subprocess.run(
            ["pi-im-secret", "path", settings["admin_secret"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        password = Path(path).read_text().strip()
        token = base64.b64encode(f"{settings['admin_user']}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def path(self, kind, *names):
        quoted = [urllib.parse.quote(n, safe="") for n in (self.settings["vhost"], *names)]
        return f"/api/{kind}/" + "/".join(quoted)

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.settings["management_url"] + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=self.headers,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    def count(self):
        """Messages in the queue, from the queue itself (the management API's figures lag)."""
        out = subprocess.run(
            [
                "rabbitmqctl",
                "-q",
                "list_queues",
                "-p",
                self.settings["vhost"],
                "name",
                "messages",
                "--formatter",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        return next((int(q["messages"]) for q in json.loads(out) if q["name"] == QUEUE), 0)


def publishes_chat_events(config):
    """Whether ejabberd's configuration has mod_event_bus publish message.chat. The role writes
    the module's `events` as one JSON line right below it; without the module there are none.
    A module whose list this cannot read counts as publishing: the run then says what it found."""
    lines = [line.strip() for line in config.splitlines()]
    if "mod_event_bus:" not in lines:
        return False
    below = lines[lines.index("mod_event_bus:") + 1 :]
    if not below or not below[0].startswith("events:"):
        return True
    try:
        return "message.chat" in json.loads(below[0].split(":", 1)[1])
    except ValueError:
        return True


def main():
    command = sys.argv[1]
    exchange = None
    if SETTINGS.exists():
        settings = json.loads(SETTINGS.read_text())
        exchange = settings.get("events", {}).get("exchange")
    config = EJABBERD_CONFIG.read_text() if EJABBERD_CONFIG.exists() else ""
    if not exchange or not publishes_chat_events(config):
        print(json.dumps({"available": False}))
        return 0
    broker = Broker(settings)
    queue = broker.path("queues", QUEUE)
    if command == "bind":
        try:
            broker.call("DELETE", queue)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        broker.call("PUT", queue, {"durable": True, "auto_delete": False})
        binding = broker.path("bindings", "e", exchange, "q", QUEUE)
        broker.call("POST", binding, {"routing_key": "message.chat"})
        print(json.dumps({"available": True}))
    elif command == "count":
        deadline = time.monotonic() + float(sys.argv[2])
        last = broker.count()
        while time.monotonic() < deadline:
            time.sleep(2)
            now = broker.count()
            if now == last:
                break
            last = now
        print(json.dumps({"events": last}))
    elif command == "remove":
        broker.call("DELETE", queue)
        print(json.dumps({"removed": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
