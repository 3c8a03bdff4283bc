"""The pi-im appliance's events, as a consumer receives them from RabbitMQ (docs/events.md)."""

from .consumer import EXCHANGE, Seen, consume
from .event import (
    Account,
    Dropped,
    Event,
    EventError,
    Message,
    Room,
    Session,
    parse,
    schema,
)

__all__ = [
    "EXCHANGE",
    "Account",
    "Dropped",
    "Event",
    "EventError",
    "Message",
    "Room",
    "Seen",
    "Session",
    "consume",
    "parse",
    "schema",
]
