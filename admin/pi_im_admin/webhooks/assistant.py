"""The assistant's side in the dispatcher: what people write to it, from its queue on the bus,
answered by the OpenAI-compatible chat-completions service the owner named
(services.assistant), the answer left in bot_replies for the console to send.

One question at a time, acknowledged once its answer is written: a restart loses none, and
one may be asked twice. Each person may ask `per_hour` questions an hour (past that they are
told, and the service is not asked) and the assistant remembers the last `turns` exchanges
with each, for at most MAX_PEOPLE people (the longest silent forgotten first); a restart
forgets all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

import httpx
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from ..db import Database
from ..security import AttemptLimiter
from ..services import bots
from ..services.assistant import stored
from ..validation import writable
from . import delivery, targets

log = logging.getLogger(__name__)
QUEUE = "pi-im.assistant"
BOUND = 1000
# How long the service may think: a model on small hardware is slow.
ANSWER_SECONDS = 60.0
MAX_PEOPLE = 1000
# What the service may answer; what of a question goes to it, and of each remembered turn.
MAX_ANSWER = 10_000
MAX_TURN_CHARS = 4_000
ENCRYPTED = (
    "I cannot read end-to-end encrypted messages: the server never sees their text. Write to "
    "me with encryption off for this chat."
)


@dataclass(frozen=True)
class Settings:
    bot: str
    url: str
    model: str
    prompt: str
    per_hour: int
    turns: int
    key: str


def settings(db: Database, key_file: Path) -> Settings | None:
    rows = stored(db)
    if rows is None:
        return None
    key = key_file.read_text().strip() if key_file.exists() else ""
    return Settings(
        bot=rows["bot"],
        url=rows["url"],
        model=rows["model"],
        prompt=rows.get("prompt", ""),
        per_hour=int(rows.get("per_hour", 20)),
        turns=int(rows.get("turns", 10)),
        key=key,
    )


class Memory:
    """The last exchanges with each person, bounded in turns, characters and people."""

    def __init__(self) -> None:
        self.people: OrderedDict[str, deque[dict[str, str]]] = OrderedDict()

    def of(self, person: str, turns: int) -> list[dict[str, str]]:
        kept = self.people.get(person)
        return list(kept)[-2 * turns :] if kept and turns else []

    def add(self, person: str, turns: int, question: str, answer: str) -> None:
        if not turns:
            return
        kept = self.people.pop(person, deque(maxlen=2 * turns))
        if kept.maxlen != 2 * turns:
            kept = deque(kept, maxlen=2 * turns)
        kept.append({"role": "user", "content": question[:MAX_TURN_CHARS]})
        kept.append({"role": "assistant", "content": answer[:MAX_TURN_CHARS]})
        self.people[person] = kept
        while len(self.people) > MAX_PEOPLE:
            self.people.popitem(last=False)


class AssistantError(Exception):
    pass


async def ask(
    http: httpx.AsyncClient, chosen: Settings, history: list[dict[str, str]], question: str
) -> str:
    """The service's answer, or AssistantError saying why there is none."""
    refusal = targets.refusal(chosen.url)
    if refusal:
        raise AssistantError(refusal)
    messages = ([{"role": "system", "content": chosen.prompt}] if chosen.prompt else []) + [
        *history,
        {"role": "user", "content": question},
    ]
    headers = {"Authorization": f"Bearer {chosen.key}"} if chosen.key else {}
    try:
        response = await http.post(
            chosen.url.rstrip("/") + "/chat/completions",
            json={"model": chosen.model, "messages": messages},
            headers=headers,
        )
    except httpx.HTTPError as error:
        raise AssistantError(f"the service did not answer ({type(error).__name__})") from None
    if response.status_code != 200:
        raise AssistantError(f"the service answered {response.status_code}")
    try:
        answer = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AssistantError("the service's answer is not a chat completion") from None
    said = writable(answer, MAX_ANSWER) if isinstance(answer, str) else ""
    if not said:
        raise AssistantError("the service answered nothing")
    return said


class Assistant:
    def __init__(self, db: Database, key_file: Path, http: httpx.AsyncClient) -> None:
        self.db, self.key_file, self.http = db, key_file, http
        self.memory = Memory()
        self.asked: dict[int, AttemptLimiter] = {}

    def limiter(self, per_hour: int) -> AttemptLimiter:
        return self.asked.setdefault(per_hour, AttemptLimiter(per_hour, window=3600))

    async def answer(self, event: dict[str, object]) -> tuple[str, str, str] | None:
        """(from which bot, to whom, what) for one bot.message event, or None when there is
        nothing to say."""
        chosen = await asyncio.to_thread(settings, self.db, self.key_file)
        data = event.get("data")
        if chosen is None or not isinstance(data, dict) or data.get("bot") != chosen.bot:
            return None
        person, question = str(data.get("from", "")), data.get("text")
        if not person:
            return None
        if not isinstance(question, str):
            return chosen.bot, person, ENCRYPTED
        question = question[:MAX_TURN_CHARS]
        if not self.limiter(chosen.per_hour).spend(person):
            return (
                chosen.bot,
                person,
                (
                    f"You have asked {chosen.per_hour} questions in the last hour, as many as this "
                    "server allows: ask again later."
                ),
            )
        try:
            answer = await ask(self.http, chosen, self.memory.of(person, chosen.turns), question)
        except AssistantError as error:
            log.warning("the assistant could not answer: %s", error)
            return chosen.bot, person, f"I could not answer just now: {error}. Try again later."
        self.memory.add(person, chosen.turns, question, answer)
        return chosen.bot, person, answer

    async def take(self, message: AbstractIncomingMessage) -> None:
        try:
            event = json.loads(message.body)
        except ValueError:
            log.warning("a message on %s that is not an event, dropped", QUEUE)
            await message.ack()
            return
        said = await self.answer(event)
        if said is not None:
            await asyncio.to_thread(bots.leave_reply, self.db, *said)
        await message.ack()


async def run(
    connection: AbstractConnection, exchange: str, db: Database, key_file: Path, bot: str
) -> None:
    """Answer for `bot` until cancelled (the dispatcher starts another when the assistant's
    name changes)."""
    channel = await connection.channel()
    try:
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(
            QUEUE, durable=True, arguments={"x-max-length": BOUND, "x-overflow": "drop-head"}
        )
        await queue.bind(exchange, routing_key=targets.bot_key(bot))
        await asyncio.to_thread(
            db.run,
            "UPDATE bots SET bound_at = ? WHERE name = ? AND bound_at IS NULL",
            time.time(),
            bot,
        )
        async with delivery.client(ANSWER_SECONDS) as http:
            assistant = Assistant(db, key_file, http)
            async with queue.iterator() as messages:
                async for message in messages:
                    await assistant.take(message)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
