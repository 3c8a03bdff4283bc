"""Receiving events: a durable queue bound to the keys wanted, each delivery acknowledged only
after the handler returned, so an event a consumer crashed on comes again."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

import aio_pika

from .event import Event, EventError, parse

EXCHANGE = "pi-im.events"
log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]


class Seen:
    """The ids of the last `size` events: delivery is at least once, so after a reconnect an
    event may come again; `first(event)` is False for one already handled."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first(self, event: Event) -> bool:
        if event.id in self._ids:
            return False
        self._ids[event.id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


async def consume(
    url: str,
    queue: str,
    keys: Iterable[str],
    handler: Handler,
    *,
    prefetch: int = 100,
    max_length: int | None = None,
    stop_after: int | None = None,
    idle_seconds: float | None = None,
) -> int:
    """Bind `queue` (durable; at most `max_length` events kept while nobody reads, the oldest
    dropped first) to `keys` and hand each new event to `handler`, in order. A body that is not
    an event is logged and dropped (it would come back forever); a handler that raises leaves
    its event unacknowledged and ends the loop. Returns how many events were handled: runs
    until cancelled, or `stop_after` events, or `idle_seconds` without one."""
    arguments = {"x-max-length": max_length} if max_length else None
    seen = Seen()
    handled = 0
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        bound = await channel.declare_queue(queue, durable=True, arguments=arguments)
        for key in keys:
            await bound.bind(exchange, routing_key=key)
        async with bound.iterator(timeout=idle_seconds) as deliveries:
            try:
                async for delivery in deliveries:
                    try:
                        event = parse(delivery.body)
                    except EventError as error:
                        log.warning("dropped a delivery that is not an event: %s", error)
                        await delivery.reject(requeue=False)
                        continue
                    if seen.first(event):
                        await handler(event)
                        handled += 1
                    await delivery.ack()
                    if stop_after is not None and handled >= stop_after:
                        break
            except TimeoutError:
                pass
    return handled
