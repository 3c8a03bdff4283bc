"""A baked image, booted: first boot made a working appliance, different on each device,
and the image itself holds no secret."""

from __future__ import annotations

import json
import secrets
import subprocess
import tarfile

import httpx
import pytest
import yaml

from conftest import IMAGE, SCENARIO
from containers import address_of
from device_api import device_tls, succeed
from xmpp_framed import FramedClient, WebSocketTransport

PER_DEVICE = {
    "ejabberd admin password": "cat /etc/pi-im/secrets/ejabberd-admin-password",
    "rabbitmq admin password": "cat /etc/pi-im/secrets/rabbitmq-admin-password",
    "console owner password": "cat /etc/pi-im/secrets/admin-owner-password",
    "ejabberd Erlang cookie": "cat /var/lib/ejabberd/.erlang.cookie",
    "rabbitmq Erlang cookie": "cat /var/lib/rabbitmq/.erlang.cookie",
    "SSH host key": "cat /etc/ssh/ssh_host_ed25519_key.pub",
    "TLS certificate": "openssl x509 -noout -fingerprint -sha256 -in /etc/ejabberd/tls/device.pem",
    "machine-id": "cat /etc/machine-id",
}


@pytest.mark.parametrize(
    "unit",
    [
        "pi-im-provision-early",
        "pi-im-provision-late",
        "ejabberd",
        "rabbitmq-server",
        "pi-im-admin",
        "pi-im-webhooks",
        "ssh",
    ],
)
def test_first_boot_brought_everything_up(host, unit: str) -> None:
    assert host.service(unit).is_running, host.run(f"journalctl -u {unit} -n 30").stdout


@pytest.mark.parametrize(("what", "command"), PER_DEVICE.items())
def test_each_device_has_its_own(devices, what: str, command: str) -> None:
    values = [device.check_output(command) for device in devices.values()]
    assert all(values), f"{what} missing"
    assert len(set(values)) == len(values), f"{what} is the same on both devices"


def test_each_device_named_its_domain_after_itself(devices) -> None:
    """No domain was set at build: first boot took the host name (.local on the home network),
    the certificate names it, and ejabberd serves it."""
    for name, device in devices.items():
        domain = f"{name}.local"
        assert device.file("/etc/pi-im/domain").content_string == domain + "\n"
        assert device.check_output("ejabberdctl registered_vhosts") == domain
        names = device.check_output(
            "openssl x509 -noout -ext subjectAltName -in /etc/ejabberd/tls/device.pem"
        )
        assert f"DNS:{domain}," in names


def test_first_boot_recorded_the_update_settings_for_the_dashboard(host) -> None:
    """Before its first night, a new device already says updates are installed unattended
    (and that none has run yet, unless apt's timer caught up at boot and the run said so)."""
    status = json.loads(host.file("/var/lib/pi-im/updates/status.json").content_string)
    assert status["result"] in ("not yet", "nothing", "installed"), status
    assert status["unattended"] is True
    assert "late/80-updates-status: ok" in host.check_output(
        "journalctl -u pi-im-provision-late -o cat --no-pager"
    )


def test_the_console_answers_to_the_name_chosen_at_first_boot(host) -> None:
    address, domain = address_of(host.backend.host), f"{host.backend.host}.local"
    tls = device_tls(host)
    for name, status in [(domain, 200), (host.backend.host, 200), ("elsewhere.example", 400)]:
        answer = httpx.get(
            f"https://{address}:8080/api/v1/health", headers={"Host": f"{name}:8080"}, verify=tls
        )
        assert answer.status_code == status, name


def test_xmpp_login_and_message(host) -> None:
    address, domain = address_of(host.backend.host), f"{host.backend.host}.local"
    tls = device_tls(host)
    admin = FramedClient(
        WebSocketTransport(f"wss://{address}:5280/websocket", tls),
        f"admin@{domain}",
        host.check_output("pi-im-secret show ejabberd-admin-password"),
    )
    admin.login()
    user, password = f"u{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    succeed(host, domain, "register", {"user": user, "host": domain, "password": password})
    friend = FramedClient(
        WebSocketTransport(f"wss://{address}:5280/websocket", tls), f"{user}@{domain}", password
    )
    friend.login()
    admin.send_message(f"{user}@{domain}", "welcome to the baked appliance")
    assert friend.receive_message() == (admin.jid, "welcome to the baked appliance")
    admin.close()
    friend.close()


def test_image_holds_no_secret(tmp_path) -> None:
    container = subprocess.run(
        ["docker", "create", IMAGE], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        archive = tmp_path / "rootfs.tar"
        subprocess.run(["docker", "export", "-o", str(archive), container], check=True)
    finally:
        subprocess.run(["docker", "rm", container], check=True, capture_output=True)
    with tarfile.open(archive) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        machine_id = tar.extractfile(members["etc/machine-id"]).read()
    baked = [
        name
        for name in members
        if name.startswith("etc/pi-im/secrets/")
        or name.startswith("etc/ssh/ssh_host_")
        or name.endswith(".erlang.cookie")
        or name.startswith("etc/ejabberd/tls/")
        or name == "etc/ejabberd/ejabberd.pem"
    ]
    assert baked == []
    assert machine_id == b""


def test_bulk_benchmark_accounts_are_off_by_default(devices) -> None:
    """The benchmark's bulk account helper writes straight into ejabberd's database: never
    on an appliance unless its operator turned it on (ejabberd_bench_accounts)."""
    for device in devices.values():
        assert not device.file("/usr/local/sbin/pi-im-bench-accounts").exists


def test_the_image_records_its_options_and_release_for_updating_itself(host) -> None:  # type: ignore[no-untyped-def]
    """The options the image was built with (molecule/bake/vars/bake.yml) are what a
    pi-im-update applies again; the release is the checkout's; Ansible is there to run it."""
    given = yaml.safe_load((SCENARIO / "vars" / "bake.yml").read_text())
    options = host.file("/etc/pi-im/site/options.json")
    assert (options.user, options.mode) == ("root", 0o600)
    assert json.loads(options.content_string) == given
    assert json.loads(host.file("/etc/pi-im/release.json").content_string)["commit"]
    assert "core 2.19" in host.check_output("ansible-playbook --version")
    assert json.loads(host.check_output("pi-im-update status")) == {"result": "never"}
