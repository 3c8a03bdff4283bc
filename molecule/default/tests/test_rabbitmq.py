"""RabbitMQ: the generated administrator works, guest does not, AMQP round-trips."""

from __future__ import annotations

import json
import shlex

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
    # The administrator, the events' publisher (test_event_bus.py) and the webhook
    # dispatcher (test_webhooks.py).
    assert sorted(u["user"] for u in users) == ["admin", "ejabberd", "webhooks"]


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


def test_command_line_tools_listen_on_loopback_only(host) -> None:
    """Each rabbitmqctl command runs an Erlang node of its own with a distribution port
    (35672-35682); by default Erlang binds it to every address for as long as the command
    runs. Watched while one command sleeps inside that node."""
    watch = (
        "(rabbitmqctl eval 'timer:sleep(6000).' >/dev/null 2>&1 &); "
        "for i in $(seq 1 60); do "
        "  ss -Htln | grep -Eq ':356(7[2-9]|8[0-2]) ' && break; sleep 0.2; "
        "done; ss -Htln"
    )
    local = [
        line.split()[3] for line in host.check_output(f"bash -c {shlex.quote(watch)}").splitlines()
    ]
    cli = [address for address in local if 35672 <= int(address.rsplit(":", 1)[1]) <= 35682]
    assert cli, "rabbitmqctl's node was never seen listening"
    assert all(address.startswith("127.0.0.1:") for address in cli), cli


def test_its_syslog_socket_is_on_loopback(host) -> None:
    """RabbitMQ starts Erlang's syslog application at times (found bound to 0.0.0.0 on a
    random UDP port by the listening-socket test); started here on purpose."""
    host.check_output("rabbitmqctl eval 'application:ensure_all_started(syslog).'")
    addresses = host.check_output(
        "rabbitmqctl eval '[inet:sockname(P) || P <- erlang:ports(),"
        ' erlang:port_info(P, name) == {name, "udp_inet"}].\''
    )
    assert "{ok,{{127,0,0,1}," in addresses.replace(" ", ""), addresses
    assert "{0,0,0,0}" not in addresses.replace(" ", ""), addresses


def test_provisioning_repairs_what_was_undone_then_changes_nothing(host, netns: list[str]) -> None:
    """The provisioning checks through the management API; what it finds missing it restores
    with rabbitmqctl. Undone here on purpose: the administrator's rights, and a guest user."""
    host.check_output("rabbitmqctl -q clear_permissions -p pi-im admin")
    host.check_output("rabbitmqctl -q add_user guest guest")
    repaired = json.loads(host.check_output("/usr/local/sbin/pi-im-rabbitmq-provision"))
    assert repaired == {
        "changed": True,
        "actions": ["imported vhost pi-im and administrator admin", "deleted guest"],
    }
    password = secret(host, "rabbitmq-admin-password")
    result = run_in_netns(netns, password, "amqp", "admin", "pi-im")
    assert result["received"] == result["sent"]
    again = json.loads(host.check_output("/usr/local/sbin/pi-im-rabbitmq-provision"))
    assert again == {"changed": False, "actions": []}
