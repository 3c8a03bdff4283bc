"""Print the device's events as they happen: run on the device (RabbitMQ listens on loopback).

sudo pi-im-secret show rabbitmq-admin-password | python3 print_events.py 'message.*' 'user.*'
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import quote

from pi_im_events import Message, Session, consume


async def show(event) -> None:  # type: ignore[no-untyped-def]
    details = event.details
    if isinstance(details, Message):
        print(f"{event.time:%H:%M:%S} {event.type} {details.sender} -> {details.to}")
    elif isinstance(details, Session):
        print(f"{event.time:%H:%M:%S} {event.type} {details.jid} ({details.connection})")
    else:
        print(f"{event.time:%H:%M:%S} {event.type} {event.data}")


def main() -> None:
    password = sys.stdin.readline().strip()  # never on the command line
    url = f"amqp://admin:{quote(password, safe='')}@127.0.0.1/pi-im"
    keys = sys.argv[1:] or ["#"]
    # A queue of its own, bounded: while this is not running, the newest 10,000 events wait.
    asyncio.run(consume(url, "print-events", keys, show, max_length=10_000))


if __name__ == "__main__":
    main()
