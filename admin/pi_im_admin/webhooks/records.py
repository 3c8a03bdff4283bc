"""Moderation's records: what ejabberd's mod_moderation blocked and masked and the spam
reports it passed on (moderation.* events), taken from the bus into the console's database.

One durable queue of the dispatcher's own, bound to moderation.#: the records wait there
while the dispatcher is down. They are written in batches (one transaction for a burst) and
acknowledged once written, so a record is never lost between the two, and written once
(the event's id) if RabbitMQ brings it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from ..db import Database
from ..services import moderation

log = logging.getLogger(__name__)
QUEUE = "pi-im.moderation"
# Bounded like the webhooks' queues (the oldest go first): a dispatcher down for long under
# a flood of blocked messages cannot fill the card.
BOUND = 100000
BATCH = 500
GATHER_SECONDS = 0.2


async def run(connection: AbstractConnection, exchange: str, db: Database) -> None:
    channel = await connection.channel()
    try:
        await channel.set_qos(prefetch_count=BATCH)
        queue = await channel.declare_queue(
            QUEUE, durable=True, arguments={"x-max-length": BOUND, "x-overflow": "drop-head"}
        )
        await queue.bind(exchange, routing_key="moderation.#")
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(inbox.put)
        while True:
            batch = [await inbox.get()]
            await asyncio.sleep(GATHER_SECONDS)  # a burst goes in one transaction
            while not inbox.empty() and len(batch) < BATCH:
                batch.append(inbox.get_nowait())
            rows = []
            for message in batch:
                try:
                    rows.append(moderation.record_row(json.loads(message.body)))
                except ValueError as error:
                    log.warning("a message on %s that is not a record, dropped: %s", QUEUE, error)
            await asyncio.to_thread(moderation.record, db, rows)
            await batch[-1].ack(multiple=True)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
