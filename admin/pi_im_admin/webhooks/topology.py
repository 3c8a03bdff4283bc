"""Each webhook's three queues on RabbitMQ.

    pi-im.webhook.N        bound to the events exchange by the webhook's event types; bounded
                           (the oldest go first) so a paused webhook cannot fill the card
    pi-im.webhook.N.wait   the one event waiting for its next attempt: it expires after the
                           back-off delay (per message) and RabbitMQ dead-letters it into
    pi-im.webhook.N.retry  where the dispatcher takes it back from

One event at a time waits: until it is delivered or given up, the webhook takes nothing new,
so events reach a receiver in the order they happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from .targets import EVENT_TYPES

log = logging.getLogger(__name__)


def main_name(webhook_id: int) -> str:
    return f"pi-im.webhook.{webhook_id}"


@dataclass
class Queues:
    main: AbstractQueue
    wait: AbstractQueue
    retry: AbstractQueue


async def declare(
    channel: AbstractChannel, webhook_id: int, exchange: str, events: tuple[str, ...], bound: int
) -> Queues:
    name = main_name(webhook_id)
    try:
        main = await channel.declare_queue(
            name, durable=True, arguments={"x-max-length": bound, "x-overflow": "drop-head"}
        )
    except aio_pika.exceptions.ChannelPreconditionFailed:
        # Made with another bound (the option changed): kept as it is, events and all.
        log.warning("%s keeps the bound it was made with", name)
        await channel.reopen()
        main = await channel.declare_queue(name, passive=True)
    wait = await channel.declare_queue(
        f"{name}.wait",
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{name}.retry"},
    )
    retry = await channel.declare_queue(f"{name}.retry", durable=True)
    for kind in dict.fromkeys((*EVENT_TYPES, *events)):
        # Unbinding what is not bound is no error: the bindings become the webhook's types
        # (a bot's webhook: its own routing key, bot.message.<bot>).
        if kind in events:
            await main.bind(exchange, routing_key=kind)
        else:
            await main.unbind(exchange, routing_key=kind)
    return Queues(main, wait, retry)


async def waiting(queues: Queues) -> int:
    """Events between attempts (after a restart: whether the webhook was waiting)."""
    total = 0
    for queue in (queues.wait, queues.retry):
        declared = await queue.channel.declare_queue(queue.name, passive=True)
        total += declared.declaration_result.message_count or 0
    return total


async def remove(channel: AbstractChannel, webhook_id: int) -> None:
    name = main_name(webhook_id)
    for queue in (name, f"{name}.wait", f"{name}.retry"):
        await channel.queue_delete(queue)
