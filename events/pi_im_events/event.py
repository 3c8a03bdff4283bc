"""Events as typed values: `parse` reads one delivery's body (version 1) and refuses, with the
reason, what is not an event; `Event.details` gives the type's own fields as a dataclass."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

VERSION = 1
# An event is a few hundred bytes; a body with a long message text a few kilobytes.
MAX_BODY = 1 << 20


class EventError(ValueError):
    """Not an event this package reads; the message says why."""


@dataclass(frozen=True)
class Message:
    """message.chat and message.groupchat."""

    sender: str
    to: str
    message_id: str | None
    origin_id: str | None
    stanza_id: str | None
    file: bool
    encryption: str | None
    body: str | None
    room: str | None = None
    nick: str | None = None


@dataclass(frozen=True)
class Session:
    """user.login and user.logout."""

    jid: str
    connection: str | None


@dataclass(frozen=True)
class Account:
    """user.created and user.deleted."""

    jid: str


@dataclass(frozen=True)
class Room:
    """room.created and room.destroyed."""

    room: str


@dataclass(frozen=True)
class Dropped:
    """events.dropped: events the device dropped while its buffer was full."""

    count: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Invitation:
    """invitation.used: someone made an account with an invitation link (the console)."""

    invitation: int
    jid: str
    created_by: str
    group: str | None


@dataclass(frozen=True)
class Moderated:
    """moderation.blocked and moderation.masked: a message the moderation list stopped or
    masked (the text only while the device's owner keeps it)."""

    sender: str
    to: str
    kind: str
    rules: tuple[int, ...]
    room: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Report:
    """moderation.report: a user blocked someone and reported them (XEP-0377)."""

    reporter: str
    jid: str
    reason: str
    text: str


@dataclass(frozen=True)
class BotMessage:
    """bot.message: what a user wrote to a bot (routing key bot.message.<bot>); the reply goes
    through the console's API with the bot's token. No text when it was encrypted."""

    bot: str
    sender: str
    to: str
    message_id: str | None
    text: str | None
    encryption: str | None


Details = (
    Message | Session | Account | Room | Dropped | Invitation | Moderated | Report | BotMessage
)


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    time: datetime
    host: str
    data: dict[str, Any]

    @property
    def details(self) -> Details | None:
        """The type's fields, typed; None for a type this version does not know."""
        kind = self.type.split(".")[0]
        data = self.data
        try:
            if kind == "message":
                return Message(
                    sender=data["from"],
                    to=data["to"],
                    message_id=data["message_id"],
                    origin_id=data["origin_id"],
                    stanza_id=data["stanza_id"],
                    file=bool(data["file"]),
                    encryption=data["encryption"],
                    body=data.get("body"),
                    room=data.get("room"),
                    nick=data.get("nick"),
                )
            if self.type in ("user.login", "user.logout"):
                return Session(jid=data["jid"], connection=data["connection"])
            if self.type in ("user.created", "user.deleted"):
                return Account(jid=data["jid"])
            if kind == "room":
                return Room(room=data["room"])
            if self.type == "invitation.used":
                return Invitation(
                    invitation=int(data["invitation"]),
                    jid=data["jid"],
                    created_by=data["created_by"],
                    group=data["group"],
                )
            if self.type in ("moderation.blocked", "moderation.masked"):
                return Moderated(
                    sender=data["from"],
                    to=data["to"],
                    kind=data["kind"],
                    rules=tuple(int(rule) for rule in data["rules"]),
                    room=data.get("room"),
                    text=data.get("text"),
                )
            if self.type == "moderation.report":
                return Report(
                    reporter=data["from"], jid=data["jid"], reason=data["reason"], text=data["text"]
                )
            if self.type == "bot.message":
                return BotMessage(
                    bot=data["bot"],
                    sender=data["from"],
                    to=data["to"],
                    message_id=data["message_id"],
                    text=data["text"],
                    encryption=data["encryption"],
                )
            if self.type == "events.dropped":
                return Dropped(
                    count=int(data["count"]),
                    first=_time(data["first"]),
                    last=_time(data["last"]),
                )
        except KeyError as missing:
            raise EventError(f"{self.type} event {self.id} has no {missing}") from None
        return None


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise EventError(f"not a time: {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise EventError(f"not a time: {value!r}") from None


def parse(body: bytes) -> Event:
    """One delivery's body as an Event; EventError for anything else."""
    if len(body) > MAX_BODY:
        raise EventError(f"{len(body)} bytes: larger than any event ({MAX_BODY})")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EventError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise EventError("not a JSON object")
    if document.get("version") != VERSION:
        raise EventError(f"version {document.get('version')!r}: this package reads {VERSION}")
    fields = {name: document.get(name) for name in ("id", "type", "host")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise EventError(f"no {name}")
    data = document.get("data")
    if not isinstance(data, dict):
        raise EventError("no data")
    return Event(
        id=fields["id"],
        type=fields["type"],
        time=_time(document.get("time")),
        host=fields["host"],
        data=data,
    )


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of version 1 (draft 2020-12), as the repository's docs describe it."""
    text = resources.files(__package__).joinpath("schema/event-1.json").read_text()
    return json.loads(text)
