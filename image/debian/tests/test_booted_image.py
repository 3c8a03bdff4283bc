"""The real arm64 image, booted under QEMU with Imager's customisation on its boot partition:
first boot applied the customisation, grew the card, made the device's own secrets, and the
appliance answers XMPP clients and the admin console through loopback forwards."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shlex
import socket
import ssl
import time
from pathlib import Path

import httpx
import slixmpp

from pi_im_admin.ejabberd import trusting

from conftest import Booted

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_no_failed_appliance_units(booted: Booted) -> None:
    units = [
        "pi-im-provision-early", "pi-im-provision-late", "pi-im-firewall", "ssh", "ejabberd",
        "rabbitmq-server", "pi-im-admin", "pi-im-webhooks", "systemd-networkd",
        "systemd-resolved", "docker",
    ]  # fmt: skip
    states = booted.root(f"systemctl is-active {' '.join(units)} || true").split()
    assert dict(zip(units, states, strict=True)) == dict.fromkeys(units, "active")
    failed = booted.root("systemctl list-units --failed --plain --no-legend | awk '{print $1}'")
    assert failed == ""
    # systemd breaks an ordering cycle by dropping a job, silently for the unit it drops.
    assert booted.root("journalctl -b -o cat | grep -i 'ordering cycle' || true") == ""


def test_imager_customisation_applied(booted: Booted) -> None:
    wanted = booted.customisation
    assert booted.user("hostname") == wanted.hostname
    assert booted.user("whoami") == wanted.user  # logged in with the Imager SSH key
    assert "sudo" in booted.user("id -nG").split()
    # The Imager password works for sudo.
    sudo = booted.user.run("sudo -S -k -p '' whoami", stdin=wanted.password + "\n")
    assert sudo.stdout.strip() == "root"
    assert booted.root("readlink /etc/localtime").endswith(wanted.timezone)
    instance = json.loads(booted.root("cat /run/cloud-init/instance-data.json"))
    assert instance["v1"]["instance_id"] == wanted.instance_id
    assert booted.root("cloud-init query v1.platform") == "nocloud"


def test_xmpp_domain_named_after_the_imager_host_name(booted: Booted) -> None:
    """No domain was set at build: the one Imager's host name gives (on the home network's
    mDNS), settled before ejabberd first started and named by the device's certificate."""
    domain = f"{booted.customisation.hostname}.local"
    assert booted.domain == domain
    assert booted.root("cat /etc/pi-im/domain") == domain
    names = booted.root("openssl x509 -noout -ext subjectAltName -in /etc/ejabberd/tls/device.pem")
    assert f"DNS:{domain}," in names
    journal = booted.root("journalctl -b -u pi-im-provision-early -o cat")
    assert f"XMPP domain {domain} (from the host name on the home network)" in journal


def test_imager_wifi_rendered_for_netplan(booted: Booted) -> None:
    wanted = booted.customisation
    netplan = booted.root("cat /etc/netplan/50-cloud-init.yaml")
    assert wanted.wifi_ssid in netplan
    assert wanted.wifi_psk() in netplan
    assert "wpa-wlan0" in booted.root("ls /run/netplan || true")
    assert "DE" in netplan


def test_sysconf_applied_and_blanked(booted: Booted) -> None:
    assert booted.root("whoami") == "root"  # the sysconf.txt key let us in
    sysconf = booted.root("cat /boot/firmware/sysconf.txt")
    assert "root_authorized_key=\n" in sysconf + "\n"
    assert booted.root_key.split()[1] not in sysconf
    # Imager's files on the FAT partition (a password hash among them) are root's only...
    assert booted.user.run("cat /boot/firmware/user-data", check=False).returncode != 0


def test_imager_secrets_left_the_boot_partition(booted: Booted) -> None:
    """...and, once applied, gone from it: whoever holds the card reads no hash, no Wi-Fi key."""
    booted.root("systemctl is-active pi-im-imager-cleanup.service || true")
    user_data = booted.root("cat /boot/firmware/user-data")
    assert "passwd" not in user_data
    assert user_data.startswith("#cloud-config")
    assert booted.root("test -e /boot/firmware/network-config && echo kept || echo gone") == "gone"


def test_root_filesystem_grown_to_the_card(booted: Booted) -> None:
    size = int(booted.root("findmnt -bno SIZE /"))
    assert size > 0.8 * booted.card_bytes, size
    assert booted.root("findmnt -no SOURCE,FSTYPE /").split()[1] == "ext4"
    assert booted.root("findmnt -no FSTYPE /boot/firmware") == "vfat"


def test_device_made_its_own_secrets(booted: Booted) -> None:
    checks = {
        "machine-id": "test -s /etc/machine-id",
        "ssh host key": "ls /etc/ssh/ssh_host_ed25519_key",
        "ejabberd cookie": "test -s /var/lib/ejabberd/.erlang.cookie",
        "rabbitmq cookie": "test -s /var/lib/rabbitmq/.erlang.cookie",
        "tls certificate": "test -s /etc/ejabberd/tls/device.pem",
        "owner password": "pi-im-secret show admin-owner-password | grep -q .",
    }
    missing = [
        name for name, command in checks.items() if booted.root.run(command, check=False).returncode
    ]
    assert missing == []


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cert: Path) -> None:
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context(cafile=str(cert))
        self.started: asyncio.Future[str] = asyncio.get_event_loop().create_future()
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_all_auth", lambda _: self._settle("auth failed"))
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(str(m["body"])))

    def _settle(self, outcome: str) -> None:
        if not self.started.done():
            self.started.set_result(outcome)

    async def _started(self, _event: object) -> None:
        self.send_presence()
        mechanism = self.plugin["feature_mechanisms"].mech.name
        self._settle(
            f"encrypted={isinstance(self.socket, ssl.SSLObject | ssl.SSLSocket)} {mechanism}"
        )


def test_xmpp_login_and_message_through_the_forward(booted: Booted, tmp_path: Path) -> None:
    cert = tmp_path / "device.crt"
    cert.write_text(booted.root("openssl x509 -in /etc/ejabberd/tls/device.pem"))
    accounts = {name: secrets.token_urlsafe(12) for name in ("alice", "bob")}
    for name, password in accounts.items():
        booted.root(f"ejabberdctl register {name} {booted.domain} {password}")
    port = booted.device.ports["xmpp"]

    async def exchange() -> tuple[list[str], str, str]:
        clients = {}
        for name, password in accounts.items():
            client = Client(f"{name}@{booted.domain}", password, cert)
            client.connect(host="127.0.0.1", port=port)
            clients[name] = client
        outcomes = [await asyncio.wait_for(c.started, 60) for c in clients.values()]
        body = f"hello from QEMU {secrets.token_hex(4)}"
        clients["alice"].send_message(mto=f"bob@{booted.domain}", mbody=body, mtype="chat")
        received = await asyncio.wait_for(clients["bob"].inbox.get(), 30)
        for client in clients.values():
            client.disconnect()
        return outcomes, body, received

    outcomes, sent, received = asyncio.run(exchange())
    assert all(o.startswith("encrypted=True SCRAM-SHA") for o in outcomes), outcomes
    assert received == sent
    # Both copies archived by the group-commit backend the device compiled on first boot.
    assert (
        booted.root.run(
            "test -s /usr/local/lib/pi-im/pi_im_ejabberd/ebin/mod_mam_sql_grouped.beam", check=False
        ).returncode
        == 0
    )
    archived_by = (
        "import sqlite3, sys\n"
        'db = sqlite3.connect("file:/var/lib/ejabberd/pi-im.db?mode=ro", uri=True)\n'
        'rows = db.execute("select username from archive where txt = ? order by username",'
        " (sys.argv[1],))\n"
        "print(*(user for (user,) in rows))"
    )
    owners = booted.root(f"python3 -c {shlex.quote(archived_by)} {shlex.quote(sent)}")
    assert owners.split() == ["alice", "bob"]


def test_admin_console_signs_the_owner_in(booted: Booted, tmp_path: Path) -> None:
    password = booted.root("pi-im-secret show admin-owner-password")
    base = f"https://127.0.0.1:{booted.device.ports['admin']}"
    cert = tmp_path / "device.crt"
    cert.write_text(booted.root("openssl x509 -in /etc/ejabberd/tls/device.pem") + "\n")
    # Addressed by the name the owner gave in Imager, as a browser on the home network does.
    named = {"Host": f"{booted.domain}:8080"}
    with httpx.Client(base_url=base, timeout=60, verify=trusting(cert), headers=named) as http:
        form = http.get("/signin")
        assert form.status_code == 200
        csrf = CSRF.search(form.text)
        assert csrf, form.text[:300]
        signed_in = http.post(
            "/signin", data={"username": "owner", "password": password, "csrf": csrf.group(1)}
        )
        assert signed_in.status_code == 303
        dashboard = http.get("/")
        assert dashboard.status_code == 200
        assert "owner (owner)" in dashboard.text
        assert booted.domain in dashboard.text  # the dashboard says which domain is in use
        # Live numbers from the device's own services.
        assert "<td>ejabberd</td>" in dashboard.text
        assert "<td>rabbitmq</td>" in dashboard.text


# Answers every connection with one line, on all addresses of the device.
PROBE_LISTENER = """
import socket
with socket.create_server(("0.0.0.0", 8081)) as server:
    while True:
        peer, _ = server.accept()
        peer.sendall(b"open\\n")
        peer.close()
"""

PROBE_FROM_THE_DEVICE = """
import socket
print(socket.create_connection(("127.0.0.1", 8081), 10).recv(16))
"""


def first_line_through(port: int) -> bytes:
    """What a LAN peer reads from the device's port 8081 (slirp's forward); b"" if nothing."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            return sock.recv(16)
    except OSError:  # timed out or reset: the forward got no answer from the device
        return b""


def test_firewall_drops_what_it_does_not_allow(booted: Booted) -> None:
    """A service listening on every address but not in the allow list is out of the LAN's
    reach; the same listener answers once the firewall lets its port in."""
    rules = booted.root("nft list table inet pi_im_firewall")
    assert "policy drop;" in rules
    booted.root(
        "systemd-run --unit=pi-im-firewall-probe --collect "
        f"python3 -c {shlex.quote(PROBE_LISTENER)}"
    )
    try:
        reach = f"python3 -c {shlex.quote(PROBE_FROM_THE_DEVICE)} || true"
        deadline = time.monotonic() + 60
        while "open" not in booted.root(reach) and time.monotonic() < deadline:
            time.sleep(2)
        # It answers on the device itself (if not, why: the listener's unit and its log).
        why = "systemctl status pi-im-firewall-probe; journalctl -b -u pi-im-firewall-probe; true"
        assert "open" in booted.root(reach), booted.root(why)
        assert first_line_through(booted.device.ports["closed"]) == b""
        booted.root("nft insert rule inet pi_im_firewall input tcp dport 8081 accept")
        assert first_line_through(booted.device.ports["closed"]) == b"open\n"
    finally:
        booted.root("systemctl stop pi-im-firewall-probe; systemctl restart pi-im-firewall")
    assert booted.root("nft list table inet pi_im_firewall") == rules


def test_pi_boot_files_on_the_fat_partition(booted: Booted) -> None:
    """What the Pi 4's firmware reads (QEMU -M virt does not): kept right by raspi-firmware."""
    files = booted.root("ls /boot/firmware").split()
    assert {"start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb"} <= set(files)
    config = booted.root("cat /boot/firmware/config.txt")
    kernel = re.search(r"^kernel=(\S+)$", config, re.MULTILINE)
    assert kernel
    assert kernel.group(1) in files
    for line in ("arm_64bit=1", "enable_uart=1", "core_freq=360"):
        assert line in config.splitlines()
    cmdline = booted.root("cat /boot/firmware/cmdline.txt").split()
    assert {"console=tty0", "console=ttyS1,115200", "root=LABEL=RASPIROOT", "rootwait"} <= set(
        cmdline
    )
    assert not any(arg.startswith("cma=") for arg in cmdline)
