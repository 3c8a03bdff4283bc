"""Run inside the appliance's network namespace (see the `netns` fixture) to reach services
bound to the device's loopback with real client libraries. Reads the password on stdin and
prints one JSON result.

    netns_client.py whoami USER          management API: HTTP status of /api/whoami
    netns_client.py amqp USER VHOST      AMQP publish + consume round trip
    netns_client.py signin USER CERT     the console's sign-in from the device's loopback
    netns_client.py bind USER QUEUE KEY...   a durable queue bound to the events exchange
    netns_client.py take USER QUEUE COUNT SECONDS   up to COUNT events from it (acked), as JSON
    netns_client.py declare USER            whether USER may declare a queue of its own
    netns_client.py consume USER QUEUE COUNT SECONDS KEY...   events through pi_im_events.consume
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pika
from pi_im_events import Event, consume

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


def connection(user: str, password: str, vhost: str = "pi-im") -> pika.BlockingConnection:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            port=5672,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(user, password),
            connection_attempts=3,
        )
    )


def amqp_round_trip(user: str, password: str, vhost: str) -> dict[str, object]:
    with connection(user, password, vhost) as broker:
        channel = broker.channel()
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


EVENTS = "pi-im.events"


def bind(user: str, password: str, queue: str, *keys: str) -> dict[str, object]:
    with connection(user, password) as broker:
        channel = broker.channel()
        channel.queue_declare(queue=queue, durable=True)
        channel.queue_purge(queue)
        for key in keys:
            channel.queue_bind(queue=queue, exchange=EVENTS, routing_key=key)
    return {"queue": queue, "keys": list(keys)}


def take(user: str, password: str, queue: str, count: str, seconds: str) -> dict[str, object]:
    """Events as consumers get them: each with its routing key and AMQP properties."""
    events: list[dict[str, object]] = []
    with connection(user, password) as broker:
        channel = broker.channel()
        channel.basic_qos(prefetch_count=1000)
        for method, properties, body in channel.consume(queue, inactivity_timeout=float(seconds)):
            if method is None:
                break
            events.append(
                {
                    "routing_key": method.routing_key,
                    "persistent": properties.delivery_mode == 2,
                    "content_type": properties.content_type,
                    "redelivered": method.redelivered,
                    "event": json.loads(body),
                }
            )
            channel.basic_ack(method.delivery_tag)
            if len(events) >= int(count):
                break
        channel.cancel()
    return {"events": events}


def declare(user: str, password: str) -> dict[str, object]:
    try:
        with connection(user, password) as broker:
            broker.channel().queue_declare(queue="", exclusive=True)
    except pika.exceptions.AMQPError as error:
        return {"declared": False, "error": repr(error)}
    return {"declared": True}


def consume_events(
    user: str, password: str, queue: str, count: str, seconds: str, *keys: str
) -> dict[str, object]:
    """As an integrator's service receives them: the package's consumer, repeats skipped."""
    got: list[dict[str, object]] = []

    async def keep(event: Event) -> None:
        got.append({"id": event.id, "type": event.type, "data": event.data})

    url = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1/pi-im"
    asyncio.run(consume(url, queue, keys, keep, stop_after=int(count), idle_seconds=float(seconds)))
    return {"events": got}


def main() -> None:
    password = sys.stdin.read().strip()
    command, user, *rest = sys.argv[1:]
    commands = {
        "whoami": whoami,
        "amqp": amqp_round_trip,
        "signin": signin,
        "bind": bind,
        "take": take,
        "declare": declare,
        "consume": consume_events,
    }
    result = commands[command](user, password, *rest)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
