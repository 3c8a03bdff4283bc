"""pi_im_events, the integrators' package: events read as ejabberd's mod_event_bus writes them
(its EUnit tests pin that side), bad bodies refused with the reason, repeats recognised. Its
consumer against the device's RabbitMQ: molecule/default/tests/test_event_bus.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from pi_im_events import (
    BotMessage,
    Dropped,
    Event,
    EventError,
    Invitation,
    Message,
    Moderated,
    Report,
    Seen,
    Session,
    parse,
    schema,
)

from pi_im_admin.services.events import envelope


def body(event_type: str, data: dict[str, object], **envelope: object) -> bytes:
    document = {
        "version": 1,
        "id": "0123456789abcdef0123456789abcdef",
        "type": event_type,
        "time": "2026-12-06T22:40:00.123456Z",
        "host": "chat.test",
        "data": data,
        **envelope,
    }
    return json.dumps(document).encode()


CHAT = {
    "from": "alice@chat.test/phone",
    "to": "bob@chat.test",
    "message_id": "m1",
    "origin_id": None,
    "stanza_id": "1765060800123456",
    "file": False,
    "encryption": None,
}


def test_a_chat_message_reads_as_a_typed_message() -> None:
    event = parse(body("message.chat", CHAT))
    assert event.time == datetime(2026, 12, 6, 22, 40, 0, 123456, tzinfo=UTC)
    assert event.details == Message(
        sender="alice@chat.test/phone",
        to="bob@chat.test",
        message_id="m1",
        origin_id=None,
        stanza_id="1765060800123456",
        file=False,
        encryption=None,
        body=None,
    )


def test_a_room_message_and_a_login_and_the_dropped_notice() -> None:
    room = parse(body("message.groupchat", {**CHAT, "room": "r@conference.chat.test", "nick": "a"}))
    assert isinstance(room.details, Message)
    assert (room.details.room, room.details.nick) == ("r@conference.chat.test", "a")
    login = parse(body("user.login", {"jid": "alice@chat.test/phone", "connection": "c2s_tls"}))
    assert login.details == Session(jid="alice@chat.test/phone", connection="c2s_tls")
    times = {"first": "2026-12-06T22:40:00.000000Z", "last": "2026-12-06T22:40:03.500000Z"}
    dropped = parse(body("events.dropped", {"count": 30, **times}))
    assert isinstance(dropped.details, Dropped)
    assert dropped.details.count == 30
    assert (dropped.details.last - dropped.details.first).total_seconds() == 3.5


def test_a_type_this_version_does_not_know_is_an_event_without_details() -> None:
    event = parse(body("someday.new", {"rule": 3}))
    assert event.details is None
    assert event.data == {"rule": 3}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (body("user.login", {}, version=2), "version 2: this package reads 1"),
        (body("", {}), "no type"),
        (body("user.login", {}, time="yesterday"), "not a time"),
        (body("user.login", {}).replace(b'"data": {}', b'"data": null'), "no data"),
        (b" " * (2 << 20), "larger than any event"),
    ],
)
def test_what_is_not_an_event_is_refused_with_the_reason(bad: bytes, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        parse(bad)


def test_an_event_missing_a_field_of_its_type_says_which() -> None:
    event = parse(body("user.login", {"jid": "alice@chat.test/phone"}))
    with pytest.raises(EventError, match="'connection'"):
        _ = event.details


def test_an_event_seen_again_is_recognised_and_the_memory_is_bounded() -> None:
    seen = Seen(size=3)
    events = [
        Event(id=str(n), type="user.login", time=datetime.now(UTC), host="h", data={})
        for n in range(5)
    ]
    assert [seen.first(e) for e in events[:3]] == [True, True, True]
    assert seen.first(events[1]) is False
    assert [seen.first(e) for e in events[3:]] == [True, True]
    # The oldest were forgotten: a repeat that late counts as new.
    assert seen.first(events[0]) is True


def test_the_schema_accepts_these_events_and_refuses_a_message_without_its_fields() -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(json.loads(body("message.chat", CHAT)))
    validator.validate(json.loads(body("room.created", {"room": "r@conference.chat.test"})))
    with pytest.raises(jsonschema.ValidationError, match="is a required property"):
        validator.validate(json.loads(body("message.chat", {"from": "a@b/c", "to": "d@e"})))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(json.loads(body("message.chat", {**CHAT, "encryption": "rot13"})))


def test_the_consoles_invitation_event_reads_typed_and_fits_the_schema() -> None:
    # As the console writes it (pi_im_admin.services.events), not a hand-made copy.
    written = envelope(
        "invitation.used",
        "chat.test",
        {"invitation": 7, "jid": "carol@chat.test", "created_by": "owner", "group": None},
    )
    event = parse(written.encode())
    assert event.details == Invitation(
        invitation=7, jid="carol@chat.test", created_by="owner", group=None
    )
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(json.loads(written))
    with pytest.raises(jsonschema.ValidationError, match="'group' is a required property"):
        validator.validate(
            json.loads(body("invitation.used", {"invitation": 7, "jid": "c@d", "created_by": "o"}))
        )


def test_moderation_events_read_typed_and_fit_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    blocked = {"from": "ann@chat.test", "to": "bob@chat.test", "kind": "chat", "rules": [3]}
    event = parse(body("moderation.blocked", blocked))
    assert event.details == Moderated(
        sender="ann@chat.test", to="bob@chat.test", kind="chat", rules=(3,)
    )
    validator.validate(json.loads(body("moderation.blocked", blocked)))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(json.loads(body("moderation.masked", {**blocked, "rules": []})))
    report = {"from": "ann@chat.test", "jid": "spam@x.example", "reason": "", "text": "pills"}
    assert parse(body("moderation.report", report)).details == Report(
        reporter="ann@chat.test", jid="spam@x.example", reason="", text="pills"
    )
    validator.validate(json.loads(body("moderation.report", report)))


def test_a_bots_message_reads_typed_and_fits_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    written = {
        "bot": "helpdesk",
        "from": "ann@chat.test",
        "to": "helpdesk@chat.test",
        "message_id": "m1",
        "text": "my printer is on fire",
        "encryption": None,
    }
    assert parse(body("bot.message", written)).details == BotMessage(
        bot="helpdesk",
        sender="ann@chat.test",
        to="helpdesk@chat.test",
        message_id="m1",
        text="my printer is on fire",
        encryption=None,
    )
    validator.validate(json.loads(body("bot.message", written)))
    validator.validate(
        json.loads(body("bot.message", {**written, "text": None, "encryption": "omemo"}))
    )
    for wrong in (
        {**written, "bot": "Help.Desk"},
        {k: v for k, v in written.items() if k != "text"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(json.loads(body("bot.message", wrong)))
