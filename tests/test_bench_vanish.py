"""How the vanish measurement finds the one client on the device and cuts it off."""

from __future__ import annotations

import pytest

from pi_im_bench.vanish import drop_rules, predicted, split_peer


@pytest.mark.parametrize(
    ("text", "peer"),
    [
        ("[::ffff:172.17.0.1]:46060", ("172.17.0.1", 46060)),
        ("10.0.2.2:5000", ("10.0.2.2", 5000)),
        ("[2001:db8::7]:5222", ("2001:db8::7", 5222)),
    ],
)
def test_peer_addresses_as_ss_prints_them(text: str, peer: tuple[str, int]) -> None:
    assert split_peer(text) == peer


def test_both_directions_are_dropped_for_that_connection_only() -> None:
    inbound, outbound = drop_rules(("172.17.0.1", 46060), 5222)
    assert inbound == [
        "iptables", "INPUT", "-p", "tcp", "-s", "172.17.0.1", "--sport", "46060",
        "--dport", "5222",
    ]  # fmt: skip
    assert outbound == [
        "iptables", "OUTPUT", "-p", "tcp", "-d", "172.17.0.1", "--dport", "46060",
        "--sport", "5222",
    ]  # fmt: skip


def test_an_ipv6_client_is_dropped_by_ip6tables() -> None:
    rules = drop_rules(split_peer("[2001:db8::7]:5000"), 5222)
    assert [rule[0] for rule in rules] == ["ip6tables", "ip6tables"]
    assert "2001:db8::7" in rules[0]


def test_prediction_is_idle_time_plus_every_probe() -> None:
    shipped = {"tcp_keepalive_time": 300, "tcp_keepalive_intvl": 30, "tcp_keepalive_probes": 5}
    kernel = {"tcp_keepalive_time": 7200, "tcp_keepalive_intvl": 75, "tcp_keepalive_probes": 9}
    assert predicted(shipped) == 450
    assert predicted(kernel) == 7875
