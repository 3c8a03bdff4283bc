"""Bad options stop the playbook before it changes anything, with a message naming them;
a configuration ejabberd would reject never replaces the running one."""

from __future__ import annotations

import pytest

from playbook_run import converge

DOMAIN_FILE = "/etc/pi-im/domain"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"ejabberd_max_users": "lots"},
            "argument 'ejabberd_max_users' is of type str and we were unable to convert to int",
        ),
        (
            {"ejabberd_listeners": ["c2s", "xmpp"]},
            "value of ejabberd_listeners must be one or more of: c2s, s2s, http",
        ),
        (
            {"rabbitmq_amqp_port": "5672/tcp"},
            "argument 'rabbitmq_amqp_port' is of type str",
        ),
    ],
    ids=["non-integer-user-count", "unknown-listener", "non-integer-port"],
)
def test_invalid_option_fails_before_any_change(extra: dict[str, object], message: str) -> None:
    run = converge(extra)
    assert run.returncode != 0
    assert run.messages.startswith("Invalid options, nothing was changed:")
    assert message in run.messages
    assert run.stats["changed"] == 0
    assert run.stats["failures"] == 1
    # Nothing past the validation play ran: no facts gathered, no role started.
    assert run.tasks == ["Validate the options of every role", "Stop on invalid options"]


def test_rejected_ejabberd_config_keeps_the_running_server(host, beam_pid: int) -> None:
    before = host.file("/etc/ejabberd/ejabberd.yml").content_string
    # Passes the option types (an int) but ejabberd itself refuses a negative stanza size.
    run = converge({"ejabberd_max_stanza_size": -1})
    assert run.returncode != 0
    assert "invalid ejabberd configuration" in run.messages
    assert "max_stanza_size" in run.messages
    assert host.file("/etc/ejabberd/ejabberd.yml").content_string == before
    pid = int(host.check_output("pgrep -f -- '-sname ejabberd@localhost'").split()[0])
    assert pid == beam_pid
    assert host.service("ejabberd").is_running


def test_bad_sysctl_override_stops_before_the_kernel_settings(host) -> None:
    before = host.file("/etc/sysctl.d/60-pi-im.conf").content_string
    run = converge({"tuning_sysctl_overrides": {"net.ipv4.tcp_keepalive_time; reboot": 60}})
    assert run.returncode != 0
    assert "tuning_sysctl_overrides takes names like net.ipv4.tcp_keepalive_time" in run.messages
    assert run.stats["changed"] == 0
    assert host.file("/etc/sysctl.d/60-pi-im.conf").content_string == before


def test_modules_written_for_another_ejabberd_stop_the_play(host, ejabberd_version: str) -> None:
    """Modules said to be written for other releases than the device's ejabberd stop the play
    at the check, saying what to do, before anything of ejabberd changes."""
    settings = host.file("/etc/pi-im/ejabberd.env").content_string
    run = converge({"__ejabberd_modules_written_for": ["22.05", "25.03"]})
    assert run.returncode != 0
    said = f"were written for ejabberd 22.05 and 25.03; this device has ejabberd {ejabberd_version}"
    assert said in run.messages
    assert "port the modules" in run.messages
    assert run.stats["changed"] == 0
    assert run.tasks[-1].endswith("Check the modules were written for this ejabberd")
    assert host.file("/etc/pi-im/ejabberd.env").content_string == settings


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"ejabberd_upload_quota": "lots"}, 'ejabberd_upload_quota "lots"'),
        (
            {"ejabberd_upload_max_file_size": "64 MiB", "ejabberd_upload_quota": "32 MiB"},
            "hold one file of the largest size",
        ),
        (
            {"ejabberd_web_client_origins": ["https://chat.example.org", "javascript:alert(1)"]},
            "an origin such as https://chat.example.org (javascript:alert(1))",
        ),
        ({"ejabberd_domain": "Chat_Pi!"}, "the domain must be a lower-case DNS name (Chat_Pi!)"),
        (
            {"ejabberd_listeners": ["c2s"], "ejabberd_upload": False},
            "the web chat (ejabberd_web_chat) needs the web listener",
        ),
        ({"ejabberd_https_port": 5222}, "(and ejabberd_https_port, unless 0, a port none of them)"),
        (
            {"ejabberd_domain": "", "ejabberd_listeners": ["c2s", "s2s", "http"]},
            "federation (s2s) needs ejabberd_domain set to a public domain",
        ),
        ({"ejabberd_turn_relay_ports": "62000-61000"}, "first not above last"),
        ({"ejabberd_turn_relay_ports": "5000-6000"}, "holding none of the appliance's own ports"),
        ({"ejabberd_turn_relay_ports": "61000"}, "a range FIRST-LAST within 1025-65535"),
        (
            {"ejabberd_turn_address": "300.1.2.3"},
            'ejabberd_turn_address empty or an IPv4 address: "300.1.2.3"',
        ),
        (
            {"ejabberd_federation_with": ["push.example.org", "push.example.org:5269"]},
            "each of ejabberd_federation_with a lower-case DNS name (push.example.org:5269)",
        ),
    ],
    ids=[
        "quota-not-a-size",
        "quota-below-one-file",
        "origin-not-an-origin",
        "domain-not-a-dns-name",
        "web-chat-without-the-web-listener",
        "standard-https-port-taken",
        "federation-without-a-domain",
        "relay-range-reversed",
        "relay-range-overlapping",
        "relay-range-not-a-range",
        "relay-address-not-ipv4",
        "federation-peer-not-a-name",
    ],
)
def test_inconsistent_ejabberd_option_stops_before_ejabberd_changes(
    host, extra: dict[str, object], said: str
) -> None:
    """Types pass the first check; what only makes sense together is checked by the role,
    before anything of ejabberd changes."""
    before = [
        host.file(path).content_string for path in ("/etc/ejabberd/ejabberd.yml", DOMAIN_FILE)
    ]
    run = converge(extra)
    assert run.returncode != 0
    assert said in run.messages
    assert run.stats["changed"] == 0
    assert [
        host.file(path).content_string for path in ("/etc/ejabberd/ejabberd.yml", DOMAIN_FILE)
    ] == before


@pytest.mark.parametrize(
    ("extra", "said", "written"),
    [
        # Not a port: it would have opened every TCP port in the firewall's ruleset.
        (
            {"firewall_calls_udp_ports": ["3478", "1-65535 } accept; tcp dport 1-65535"]},
            "firewall_calls_udp_ports takes ports and ranges such as 3478",
            "/etc/pi-im/firewall.nft",
        ),
        # Not an address: a name would need DNS to find DNS, and a line break would write a
        # setting of its own into the console's environment.
        (
            {"admin_service_dns_servers": ["9.9.9.9", "dns.example.org\nPI_IM_ADMIN_X=1"]},
            "admin_service_dns_servers takes IP addresses of DNS servers",
            "/etc/pi-im/admin.env",
        ),
    ],
    ids=["udp-port-not-a-port", "dns-server-not-an-address"],
)
def test_a_bad_value_never_reaches_the_file_it_would_be_written_to(
    host, extra: dict[str, object], said: str, written: str
) -> None:
    before = host.file(written).content_string
    run = converge(extra)
    assert run.returncode != 0
    assert said in run.messages
    assert run.stats["changed"] == 0
    assert host.file(written).content_string == before
