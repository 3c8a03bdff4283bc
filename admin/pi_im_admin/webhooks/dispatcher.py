"""The dispatcher: one worker per webhook, each taking its queue's events one at a time.

A worker delivers an event (delivery.post). Delivered: the next. Refused by the receiver
(a 4xx): recorded as failed, the next. Anything else (a 5xx, no answer, a connection or TLS
failure): the event waits in the webhook's wait queue for its back-off delay and comes back
through RabbitMQ (topology); meanwhile the worker takes nothing new, so order holds. After
the last attempt it is failed. `pause_after` failed events in a row pause the webhook.
The console's changes are read from its database every `poll` seconds, and its own events
(the outbox) published to the events exchange. Moderation's records come in beside
(records), and the questions people ask the assistant (assistant). A bot's webhook is a
webhook like any other, bound to the bot's routing key alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from ..db import Database
from . import assistant, delivery, records, store, topology
from .config import Config
from .delivery import Verdict

log = logging.getLogger(__name__)
ATTEMPTS_HEADER = "x-pi-im-attempts"
# How often deliveries are written to the database: one transaction for all of them.
RECORD_SECONDS = 1.0
RECONNECT_SECONDS = (1, 2, 5, 10)


class Recorder:
    """Deliveries kept in memory and written together (the card is written once a second
    at most, however many events go out)."""

    def __init__(self, db: Database, kept: int) -> None:
        self.db, self.kept = db, kept
        self.pending: list[store.Attempt] = []

    def add(self, attempt: store.Attempt) -> None:
        self.pending.append(attempt)

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            await asyncio.to_thread(store.record, self.db, batch, self.kept)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(RECORD_SECONDS)
            try:
                await self.flush()
            except Exception:  # a full disk, say: the next flush tries again
                log.exception("deliveries not recorded")


class Worker:
    def __init__(
        self,
        endpoint: store.Endpoint,
        config: Config,
        db: Database,
        recorder: Recorder,
        http: httpx.AsyncClient,
    ) -> None:
        self.endpoint, self.config, self.db = endpoint, config, db
        self.recorder, self.http = recorder, http
        self.failing = False

    async def run(self, connection: AbstractConnection) -> None:
        endpoint = self.endpoint
        channel = await connection.channel(publisher_confirms=True)
        try:
            queues = await topology.declare(
                channel, endpoint.id, self.config.exchange, endpoint.events, self.config.queue_bound
            )
            # One event at a time: the next is not even sent to the dispatcher before this one
            # is settled. (After declare, which may have had to reopen the channel.)
            await channel.set_qos(prefetch_count=1)
            await asyncio.to_thread(store.bound, self.db, endpoint.id)
            if endpoint.paused:
                # Events gather in the queue (up to its bound) until the console resumes it.
                await asyncio.Event().wait()
            waiting = await topology.waiting(queues) > 0
            while True:
                waiting = await self.take_one(channel, queues, waiting)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def take_one(
        self, channel: AbstractChannel, queues: topology.Queues, waiting: bool
    ) -> bool:
        """Deliver from the queue the worker is on, until it must change queue (an event
        waits, or the one that waited is settled); whether it waits now."""
        source = queues.retry if waiting else queues.main
        async with source.iterator() as messages:
            async for message in messages:
                verdict = await self.deliver(channel, queues, message)
                if verdict is Verdict.RETRY:
                    return True
                if waiting:
                    return False
        return waiting

    async def deliver(
        self, channel: AbstractChannel, queues: topology.Queues, message: AbstractIncomingMessage
    ) -> Verdict:
        endpoint, config = self.endpoint, self.config
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0) or 0) + 1
        try:
            envelope = json.loads(message.body)
            event_id, event_type = str(envelope["id"]), str(envelope["type"])
        except (ValueError, KeyError, TypeError):
            log.warning("webhook %s: a message that is not an event, dropped", endpoint.id)
            await message.ack()
            return Verdict.REFUSED
        outcome = await delivery.post(
            self.http,
            endpoint.url,
            endpoint.secret,
            message.body,
            {
                "X-Pi-Im-Event": event_type,
                "X-Pi-Im-Event-Id": event_id,
                "X-Pi-Im-Attempt": str(attempts),
                "X-Pi-Im-Webhook": str(endpoint.id),
            },
            config.timeout,
        )
        verdict = outcome.verdict
        if verdict is Verdict.RETRY and attempts < config.attempts:
            status = "retrying"
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers={ATTEMPTS_HEADER: attempts},
                    expiration=config.delay(attempts),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                ),
                routing_key=queues.wait.name,
            )
        elif verdict is Verdict.DELIVERED:
            status = "delivered"
        else:
            status, verdict = "failed", Verdict.REFUSED
        await message.ack()
        self.recorder.add(
            store.Attempt(
                endpoint.id,
                event_id,
                event_type,
                status,
                attempts,
                outcome.http_status,
                outcome.error,
                time.time(),
            )
        )
        if status == "delivered" and self.failing:
            self.failing = False
            await asyncio.to_thread(store.succeeded, self.db, endpoint.id)
        elif status == "failed":
            self.failing = True
            log.warning(
                "webhook %s: event %s not delivered: %s", endpoint.id, event_id, outcome.error
            )
            paused = await asyncio.to_thread(
                store.failed, self.db, endpoint.id, endpoint.name, outcome.error, config.pause_after
            )
            if paused:
                log.warning("webhook %s paused", endpoint.id)
                await asyncio.Event().wait()  # until the console's change restarts the worker
        return verdict


class Dispatcher:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = Database(config.database)
        self.recorder = Recorder(self.db, config.kept)

    async def run(self) -> None:
        recording = asyncio.create_task(self.recorder.run())
        failures = 0
        try:
            while True:
                try:
                    connection = await aio_pika.connect(
                        host=self.config.amqp_host,
                        port=self.config.amqp_port,
                        login=self.config.user,
                        password=self.config.password,
                        virtualhost=self.config.vhost,
                        timeout=10,
                    )
                except (TimeoutError, aio_pika.exceptions.AMQPError, OSError) as error:
                    delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                    failures += 1
                    log.warning(
                        "RabbitMQ does not take the dispatcher (%s); again in %s s",
                        type(error).__name__,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                log.info("connected to RabbitMQ")
                async with connection:
                    await self.serve(connection)
                log.warning("RabbitMQ closed the connection")
        finally:
            recording.cancel()
            await self.recorder.flush()

    async def serve(self, connection: AbstractConnection) -> None:
        """Until the connection is lost: a worker per webhook as the console has them now."""
        workers: dict[int, tuple[store.Endpoint, asyncio.Task[None]]] = {}
        closed = asyncio.Event()
        connection.close_callbacks.add(lambda *_: closed.set())
        recording: asyncio.Task[None] | None = None
        answering: tuple[str, asyncio.Task[None]] | None = None
        async with delivery.client(self.config.timeout) as http:
            try:
                while not closed.is_set():
                    if recording is None or recording.done():
                        if recording is not None and not recording.cancelled():
                            log.warning("moderation records: %s", recording.exception())
                        recording = asyncio.create_task(
                            records.run(connection, self.config.exchange, self.db)
                        )
                    answering = await self.answering(connection, answering)
                    current = await asyncio.to_thread(store.endpoints, self.db)
                    await self.settle(connection, http, workers, current)
                    await self.publish_outbox(connection)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(closed.wait(), self.config.poll)
            finally:
                tasks = [task for _, task in workers.values()] + [
                    task for task in (recording, answering and answering[1]) if task
                ]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def answering(
        self, connection: AbstractConnection, running: tuple[str, asyncio.Task[None]] | None
    ) -> tuple[str, asyncio.Task[None]] | None:
        """The assistant's task for the bot the console names now (none without one)."""
        chosen = await asyncio.to_thread(assistant.settings, self.db, self.config.assistant_key)
        bot = chosen.bot if chosen else None
        if running is not None:
            name, task = running
            if name == bot and not task.done():
                return running
            task.cancel()
            if task.done() and not task.cancelled() and task.exception():
                log.warning("the assistant: %s", task.exception())
        if bot is None:
            return None
        return bot, asyncio.create_task(
            assistant.run(connection, self.config.exchange, self.db, self.config.assistant_key, bot)
        )

    async def publish_outbox(self, connection: AbstractConnection) -> None:
        """The console's own events onto the bus, each removed once RabbitMQ confirms it."""
        pending = await asyncio.to_thread(store.outbox, self.db)
        if not pending:
            return
        channel = await connection.channel(publisher_confirms=True)
        async with channel:
            exchange = await channel.get_exchange(self.config.exchange, ensure=False)
            for row_id, kind, body in pending:
                await exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=kind,
                )
                await asyncio.to_thread(store.published, self.db, [row_id])

    async def settle(
        self,
        connection: AbstractConnection,
        http: httpx.AsyncClient,
        workers: dict[int, tuple[store.Endpoint, asyncio.Task[None]]],
        current: list[store.Endpoint],
    ) -> None:
        wanted = {endpoint.id: endpoint for endpoint in current}
        for webhook_id, (endpoint, task) in list(workers.items()):
            if wanted.get(webhook_id) != endpoint or task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                if task.done() and not task.cancelled() and task.exception():
                    log.warning("webhook %s: %s", webhook_id, task.exception())
                del workers[webhook_id]
        for endpoint in current:
            if endpoint.deleted:
                channel = await connection.channel()
                async with channel:
                    await topology.remove(channel, endpoint.id)
                await asyncio.to_thread(store.forget, self.db, endpoint.id)
                log.info("webhook %s deleted: its queues are gone", endpoint.id)
            elif endpoint.id not in workers:
                worker = Worker(endpoint, self.config, self.db, self.recorder, http)
                workers[endpoint.id] = (endpoint, asyncio.create_task(worker.run(connection)))
