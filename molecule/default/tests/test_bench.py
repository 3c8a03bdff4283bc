"""The load generator (bench/) against the appliance: a small real run end to end, and its
bulk account path refusing what is not its own. The full benchmark is `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DOMAIN, api
from containers import address_of, inspect

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations


def bench(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pi_im_bench", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
    )


@pytest.fixture(scope="module")
def smoke(container: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    done = bench(
        "run",
        "smoke-50",
        "--target",
        f"docker:{container}",
        "--out",
        str(out),
        "--state",
        str(out / "state"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        "result": json.loads((out / "result.json").read_text()),
        "out": out,
        "stdout": done.stdout,
    }


def test_every_session_logged_in_and_every_message_arrived(smoke: dict) -> None:
    (step,) = smoke["result"]["steps"]
    assert step["sessions_up"] == 50
    assert step["login_failures"] == {}
    assert step["dropped"] == {}
    assert step["sent"] > 0
    assert step["received"] == step["sent"]
    assert step["lost"] == 0
    assert step["latency_ms"]["count"] == step["sent"]
    assert step["verdict"] == "ok"


def test_server_was_sampled_on_the_device(smoke: dict) -> None:
    result = smoke["result"]
    assert result["server"]["server"] == "ejabberd"
    assert result["server"]["cmdline"].count("-sname ejabberd") == 1
    samples = [p for p in result["timeline"] if p["server_rss_kb"]]
    assert samples, "no server-side sample"
    assert all(p["erlang_total"] for p in samples), "Erlang memory not read through erl_call"
    # Memory is too noisy at 50 sessions to show them, and the VM's process count moves by a few
    # with transient work; ejabberd's session count, read on the device, shows each of them.
    (step,) = result["steps"]
    assert step["erlang_after_login"]["sessions"] >= 50


def test_every_message_became_one_event_and_rabbitmq_was_sampled(host, smoke: dict) -> None:
    """The appliance's event bus under the run: a queue of the benchmark's own, bound for
    message.chat, held one event per message sent; RabbitMQ's CPU is beside ejabberd's."""
    (step,) = smoke["result"]["steps"]
    assert step["sent"] > 0
    assert smoke["result"]["events"] == {
        "sent": step["sent"],
        "published": step["sent"],
        "lost": 0,
        "repeated": 0,
    }
    assert step["traffic_broker_cpu_s"] is not None
    assert step["traffic_broker_cpu_s"] >= 0
    assert "events:" in (smoke["out"] / "summary.md").read_text()
    # The queue was the run's alone: gone after it.
    assert "pi-im-bench-events" not in host.check_output("rabbitmqctl -q list_queues -p pi-im name")


def test_reports_are_written(smoke: dict) -> None:
    out: Path = smoke["out"]
    summary = (out / "summary.md").read_text()
    assert "| 50/50 |" in summary
    assert (out / "timeline.png").read_bytes().startswith(b"\x89PNG")
    assert "benchmark accounts removed" in smoke["stdout"]


def test_accounts_are_gone_after_the_run(host, smoke: dict) -> None:
    info = json.loads(host.check_output("pi-im-bench-accounts info"))
    assert info["accounts"] == 0
    users = api(host, "registered_users", {"host": DOMAIN})
    assert not [u for u in users if u.startswith("bench-")]


def test_helper_refuses_an_account_it_did_not_make(host) -> None:
    api(host, "register", {"user": "bench-99999", "host": DOMAIN, "password": "not-ours-1"})
    try:
        row = json.dumps(
            {
                "user": "bench-99999",
                "stored_key": "a",
                "server_key": "b",
                "salt": "c",
                "iterations": 4096,
            }
        )
        done = host.run(f"echo '{row}' | pi-im-bench-accounts create")
        assert done.rc != 0
        assert "was not made by this tool" in done.stderr
        assert api(host, "check_account", {"user": "bench-99999", "host": DOMAIN}) == 0
        removed = json.loads(host.check_output("pi-im-bench-accounts remove"))
        assert removed == {"removed": 0}
        assert api(host, "check_account", {"user": "bench-99999", "host": DOMAIN}) == 0
    finally:
        api(host, "unregister", {"user": "bench-99999", "host": DOMAIN})


def test_helper_refuses_names_outside_its_namespace(host) -> None:
    row = json.dumps(
        {"user": "admin", "stored_key": "a", "server_key": "b", "salt": "c", "iterations": 4096}
    )
    done = host.run(f"echo '{row}' | pi-im-bench-accounts create")
    assert done.rc != 0
    assert "not a benchmark name" in done.stderr


def test_traffic_only_goes_to_loopback_or_local_containers() -> None:
    done = bench("run", "smoke-50", "--target", "ssh:pi@192.0.2.10", "--xmpp", "192.0.2.10:5222")
    assert done.returncode == 2
    assert "neither loopback nor a container on this machine" in done.stderr


@pytest.fixture
def published(container: str) -> Iterator[tuple[str, str]]:
    """A container whose XMPP port is published on loopback the way the demo's is, through
    Docker's userland proxy: (the loopback port, the container's own address)."""
    image = inspect(container, "{{.Config.Image}}")
    name = "pi-im-bench-published"
    run = ["docker", "run", "-d", "--rm", "--name", name, "-p", "127.0.0.1::5222"]
    subprocess.run(
        [*run, "--entrypoint", "sleep", image, "infinity"],
        check=True,
        capture_output=True,
    )
    try:
        port = (
            subprocess.run(
                ["docker", "port", name, "5222/tcp"], check=True, capture_output=True, text=True
            )
            .stdout.split(":")[-1]
            .strip()
        )
        yield port, address_of(name)
    finally:
        subprocess.run(["docker", "rm", "--force", name], check=False, capture_output=True)


def test_a_run_beyond_what_dockers_userland_proxy_carries_is_refused(published) -> None:
    port, own_address = published
    through_proxy = ["--target", "ssh:nobody@127.0.0.1", "--xmpp", f"127.0.0.1:{port}"]
    done = bench("run", "seed-4000", *through_proxy)
    assert done.returncode == 2
    assert f"127.0.0.1:{port} is Docker's userland proxy" in done.stderr
    assert f"--xmpp {own_address}:{port}" not in done.stderr
    assert f"--xmpp {own_address}:5222" in done.stderr
    # 50 sessions are within what the proxy carries: not refused for it (SSH fails instead).
    small = bench("run", "smoke-50", *through_proxy)
    assert small.returncode != 0
    assert "userland proxy" not in small.stderr


@pytest.fixture
def quick_keepalive(netns: list[str]) -> Iterator[None]:
    """The appliance's network namespace with keepalive in seconds instead of minutes (the
    role writes the device's values; a container shares the host's kernel and gets none)."""
    sysctl = [*netns, "sysctl"]
    quick = {"tcp_keepalive_time": "3", "tcp_keepalive_intvl": "1", "tcp_keepalive_probes": "3"}
    keys = [f"net.ipv4.{name}" for name in quick]
    before = subprocess.run([*sysctl, "-n", *keys], check=True, capture_output=True, text=True)
    previous = dict(zip(keys, before.stdout.split(), strict=True))
    subprocess.run([*sysctl, "-qw", *(f"net.ipv4.{k}={v}" for k, v in quick.items())], check=True)
    yield
    subprocess.run([*sysctl, "-qw", *(f"{k}={v}" for k, v in previous.items())], check=True)


@pytest.mark.usefixtures("quick_keepalive")
def test_a_client_that_vanished_goes_offline_after_the_keepalive_time(
    host, container: str, tmp_path: Path
) -> None:
    """ejabberd keeps client sockets with TCP keepalive and sends no pings of its own: the
    kernel's keepalive decides how long a phone that left without a word shows online."""
    done = bench(
        "vanish", "--target", f"docker:{container}", "--limit", "90", "--state", str(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "keepalive 3 + 1 x 3 = 6 s" in done.stdout
    seconds = int(done.stdout.rsplit("ended the session after ", 1)[1].split()[0])
    assert 5 <= seconds <= 20
    # The packet filter is as it was: the drop rules went with the measurement.
    assert "DROP" not in host.check_output("iptables -S INPUT; iptables -S OUTPUT")
