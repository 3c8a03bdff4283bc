"""RabbitMQ: the generated administrator works, guest does not, AMQP round-trips."""

from __future__ import annotations

import json

from conftest import run_in_netns, secret


def test_administrator_can_use_management_api(host, netns: list[str]) -> None:
    password = secret(host, "rabbitmq-admin-password")
    assert run_in_netns(netns, password, "whoami", "admin") == {"status": 200}


def test_wrong_password_refused(host, netns: list[str]) -> None:
    password = secret(host, "rabbitmq-admin-password")
    assert run_in_netns(netns, password + "x", "whoami", "admin") == {"status": 401}


def test_guest_is_gone(host, netns: list[str]) -> None:
    assert run_in_netns(netns, "guest", "whoami", "guest") == {"status": 401}
    users = json.loads(host.check_output("rabbitmqctl -q list_users --formatter json"))
    assert [u["user"] for u in users] == ["admin"]


def test_amqp_round_trip(host, netns: list[str]) -> None:
    password = secret(host, "rabbitmq-admin-password")
    result = run_in_netns(netns, password, "amqp", "admin", "pi-im")
    assert result["received"] == result["sent"]


def test_limits_are_absolute(host) -> None:
    conf = host.file("/etc/rabbitmq/rabbitmq.conf").content_string
    assert "vm_memory_high_watermark.absolute" in conf
    assert "disk_free_limit.absolute" in conf
    status = host.check_output("rabbitmqctl -q status --formatter json")
    memory_limit = json.loads(status)["vm_memory_high_watermark_limit"]
    assert memory_limit >= 256 * 1024 * 1024
