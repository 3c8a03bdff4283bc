"""The pi-im appliance's events, as a consumer receives them from RabbitMQ (docs/events.md)."""

from .consumer import EXCHANGE, Seen, consume
from .event import (
    Account,
    BotMessage,
    Dropped,
    Event,
    EventError,
    Invitation,
    Message,
    Moderated,
    Report,
    Room,
    Session,
    parse,
    schema,
)
from .webhook import SignatureError, verify

__all__ = [
    "EXCHANGE",
    "Account",
    "BotMessage",
    "Dropped",
    "Event",
    "EventError",
    "Invitation",
    "Message",
    "Moderated",
    "Report",
    "Room",
    "Seen",
    "Session",
    "SignatureError",
    "consume",
    "parse",
    "schema",
    "verify",
]
