"""RabbitMQ's provisioning script: the password reaches the broker only as the salted hash
RabbitMQ's rabbit_password_hashing_sha256 checks (the broker itself is exercised by Molecule)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import runpy
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "roles/rabbitmq/files/pi_im_rabbitmq_provision.py"
provision = runpy.run_path(str(SCRIPT))


def test_the_hash_is_rabbitmqs_salted_sha256() -> None:
    encoded = provision["password_hash"]("correct horse battery")
    raw = base64.b64decode(encoded)
    salt, digest = raw[:4], raw[4:]
    assert digest == hashlib.sha256(salt + b"correct horse battery").digest()
    assert "correct horse" not in encoded


def test_each_hash_has_its_own_salt() -> None:
    hashes = {provision["password_hash"]("same password") for _ in range(8)}
    assert len(hashes) == 8


def test_the_definitions_give_the_administrator_everything_in_its_vhost_only() -> None:
    document = provision["definitions"]("pi-im", "admin", "correct horse battery")
    assert document["vhosts"] == [{"name": "pi-im"}]
    assert document["permissions"] == [
        {"user": "admin", "vhost": "pi-im", "configure": ".*", "write": ".*", "read": ".*"}
    ]
    (user,) = document["users"]
    assert user["tags"] == ["administrator"]
    assert "correct horse" not in json.dumps(document)


def test_the_events_publisher_may_write_to_its_exchange_and_nothing_else() -> None:
    document = provision["event_bus"]("pi-im", "pi-im.events", "ejabberd", "correct horse battery")
    assert document["permissions"] == [
        {
            "user": "ejabberd",
            "vhost": "pi-im",
            "configure": "^$",
            "write": r"^pi\-im\.events$",
            "read": "^$",
        }
    ]
    (exchange,) = document["exchanges"]
    assert (exchange["type"], exchange["durable"], exchange["auto_delete"]) == (
        "topic",
        True,
        False,
    )
    (user,) = document["users"]
    assert user["tags"] == []
    assert provision["hash_matches"](user["password_hash"], "correct horse battery")
    assert not provision["hash_matches"](user["password_hash"], "correct horse battery!")
    assert not provision["hash_matches"]("not base64 at all!", "correct horse battery")
    assert "correct horse" not in json.dumps(document)


def test_the_webhook_dispatcher_may_use_its_own_queues_and_nothing_more() -> None:
    rights = provision["webhooks_rights"]("pi-im.events")
    document = provision["account"]("pi-im", "webhooks", "correct horse battery", rights)
    assert document["permissions"] == [{"user": "webhooks", "vhost": "pi-im"} | rights]
    assert document["users"][0]["tags"] == []

    def may(right: str, resource: str) -> bool:
        # RabbitMQ matches with Erlang's re, whose syntax these patterns share with Python's.
        return re.search(rights[right], resource) is not None

    for queue in (
        "pi-im.webhook.7",
        "pi-im.webhook.7.wait",
        "pi-im.webhook.12.retry",
        "pi-im.moderation",
        "pi-im.assistant",
    ):
        assert may("configure", queue)
        assert may("write", queue)
        assert may("read", queue)
    assert may("read", "pi-im.events")
    assert may("write", "amq.default")
    for resource in (
        "pi-im.events",
        "amq.default",
        "pi-im-bench-events",
        "pi-im.webhook.x",
        "other",
    ):
        assert not may("configure", resource)
    assert may("write", "pi-im.events")  # the console's own events
    assert not may("write", "pi-im.eventsx")
    assert not may("read", "pi-im-bench-events")
    assert not may("read", "pi-im.webhook.7.retry.extra")
    assert not may("read", "pi-im.moderation.other")
    assert not may("read", "pi-im.assistants")
