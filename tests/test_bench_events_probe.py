"""bench/pi_im_bench/events_probe.py: a run counts events only when ejabberd publishes
message.chat, read from ejabberd.yml as the role renders it (a run with the bus carrying no
message events has nothing to lose, and must not report its messages as lost events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2 import Environment, StrictUndefined

from pi_im_bench import events_probe

ROLE = Path(__file__).resolve().parents[1] / "roles/ejabberd"


def module_block(events: list[str]) -> str:
    """mod_event_bus's lines as ejabberd.yml.j2 writes them, rendered from the template's own
    text for that block (the rest of the file needs the whole role's facts)."""
    template = (ROLE / "templates/ejabberd.yml.j2").read_text()
    start = template.index("  mod_event_bus:")
    block = template[start : template.index("{% endif %}", start)]
    environment = Environment(undefined=StrictUndefined)
    environment.filters["to_json"] = json.dumps
    environment.filters["bool"] = bool
    return environment.from_string(block).render(
        ejabberd_events=events,
        ejabberd_events_bodies=False,
        ejabberd_events_buffer=10000,
        ejabberd_events_stomp_port=61613,
        __ejabberd_events_password_file="/etc/pi-im/secrets/x",
    )


@pytest.mark.parametrize(
    ("events", "counted"),
    [
        (["message.chat", "user.login"], True),
        (["message.groupchat", "user.login"], False),
        ([], False),
    ],
    ids=["chat-on", "chat-off", "none"],
)
def test_events_are_counted_only_when_chat_messages_are_published(
    events: list[str], counted: bool
) -> None:
    config = "modules:\n  mod_mam: {}\n" + module_block(events) + "  mod_ping: {}\n"
    assert events_probe.publishes_chat_events(config) is counted


def test_no_module_no_events_and_an_unreadable_list_is_counted() -> None:
    assert not events_probe.publishes_chat_events("modules:\n  mod_mam: {}\n")
    assert events_probe.publishes_chat_events("modules:\n  mod_event_bus:\n    events: [oops\n")
