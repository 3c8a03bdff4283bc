"""Run inside the appliance's network namespace (see the `netns` fixture) to reach services
bound to the device's loopback with real client libraries. Reads the password on stdin and
prints one JSON result.

    netns_client.py whoami USER          management API: HTTP status of /api/whoami
    netns_client.py amqp USER VHOST      AMQP publish + consume round trip
    netns_client.py signin USER CERT     the console's sign-in from the device's loopback
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from pathlib import Path

import httpx
import pika

from pi_im_admin.ejabberd import trusting


def whoami(user: str, password: str) -> dict[str, object]:
    response = httpx.get("http://127.0.0.1:15672/api/whoami", auth=(user, password), timeout=10)
    return {"status": response.status_code}


def signin(user: str, password: str, cert: str) -> dict[str, object]:
    with httpx.Client(
        base_url="https://127.0.0.1:8080", verify=trusting(Path(cert)), timeout=30
    ) as console:
        form = console.get("/signin").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        response = console.post(
            "/signin", data={"username": user, "password": password, "csrf": csrf}
        )
    return {"status": response.status_code}


def amqp_round_trip(user: str, password: str, vhost: str) -> dict[str, object]:
    parameters = pika.ConnectionParameters(
        host="127.0.0.1",
        port=5672,
        virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=3,
    )
    with pika.BlockingConnection(parameters) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        sent = f"round trip {secrets.token_hex(6)}"
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=sent.encode(),
            properties=pika.BasicProperties(delivery_mode=2),
        )
        for method, _properties, body in channel.consume(queue, inactivity_timeout=10):
            if method is None:
                return {"sent": sent, "received": None}
            channel.basic_ack(method.delivery_tag)
            channel.cancel()
            return {"sent": sent, "received": body.decode()}
    return {"sent": sent, "received": None}


def main() -> None:
    password = sys.stdin.read().strip()
    command, user, *rest = sys.argv[1:]
    commands = {"whoami": whoami, "amqp": amqp_round_trip, "signin": signin}
    result = commands[command](user, password, *rest)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
