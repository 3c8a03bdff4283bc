"""The event bus's side of a run, ON the target (`python3 - COMMAND` with this file on stdin).

Standard library only, as root on the appliance. A durable queue of the benchmark's own,
bound to message.chat on the pi-im.events exchange, counts the events ejabberd published for
the run's messages:

    bind      declare the queue (empty), bind it; {"available": false} without an event bus
    count N   wait up to N seconds for the count to stop moving; {"events": count}
    remove    delete the queue

The administrator's password is read from its device secret and sent only to the
management API on loopback, in a header.
"""

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SETTINGS = Path("/etc/pi-im/rabbitmq.json")
BASE = Path("/etc/pi-im/base.json")
QUEUE = "pi-im-bench-events"


def api(method, path, body=None):
    settings = json.loads(SETTINGS.read_text())
    secrets_dir = Path(json.loads(BASE.read_text())["secrets_dir"])
    password = (secrets_dir / settings["admin_secret"]).read_text().strip()
    token = base64.b64encode(f"{settings['admin_user']}:{password}".encode()).decode()
    request = urllib.request.Request(
        settings["management_url"] + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def vhost_path(kind, *names):
    settings = json.loads(SETTINGS.read_text())
    quoted = [urllib.request.quote(n, safe="") for n in (settings["vhost"], *names)]
    return f"/api/{kind}/" + "/".join(quoted)


def count():
    """Messages in the queue, from the queue itself (the management API's figures lag)."""
    settings = json.loads(SETTINGS.read_text())
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            settings["vhost"],
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


def main():
    command = sys.argv[1]
    if command == "bind":
        if not SETTINGS.exists():
            print(json.dumps({"available": False}))
            return 0
        exchange = json.loads(SETTINGS.read_text()).get("events", {}).get("exchange")
        if not exchange:
            print(json.dumps({"available": False}))
            return 0
        try:
            api("DELETE", vhost_path("queues", QUEUE))
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        api("PUT", vhost_path("queues", QUEUE), {"durable": True, "auto_delete": False})
        api(
            "POST",
            vhost_path("bindings", "e", exchange, "q", QUEUE),
            {"routing_key": "message.chat"},
        )
        print(json.dumps({"available": True}))
    elif command == "count":
        deadline = time.monotonic() + float(sys.argv[2])
        last = count()
        while time.monotonic() < deadline:
            time.sleep(2)
            now = count()
            if now == last:
                break
            last = now
        print(json.dumps({"events": last}))
    elif command == "remove":
        api("DELETE", vhost_path("queues", QUEUE))
        print(json.dumps({"removed": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
