"""Run inside the appliance's network namespace (see the `netns` fixture) to reach services
bound to the device's loopback with real client libraries. Reads the password on stdin and
prints one JSON result.

    netns_client.py whoami USER          management API: HTTP status of /api/whoami
    netns_client.py amqp USER VHOST      AMQP publish + consume round trip
"""

from __future__ import annotations

import json
import secrets
import sys

import httpx
import pika


def whoami(user: str, password: str) -> dict[str, object]:
    response = httpx.get("http://127.0.0.1:15672/api/whoami", auth=(user, password), timeout=10)
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
    result = (
        whoami(user, password) if command == "whoami" else amqp_round_trip(user, password, *rest)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
