"""Certificates from an ACME CA, for real against Debian's pebble: issued by HTTP-01 and
served on every TLS port, renewed without a restart, kept when the CA fails (and the failure
recorded for the console), issued by DNS-01 through RFC 2136 updates to the domain's DNS, and
bad options refused before anything changes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from admin_console import messages
from conftest import (
    CA,
    DEVICE,
    DOMAIN,
    PEM,
    REPO,
    TLS_PORTS,
    dns_credentials,
    owner_console,
    renew,
    served,
    status,
)
from playbook_run import converge as site

# The names the certificate is asked for: the domain, and where its group chats are.
NAMES = f"{DOMAIN}, conference.{DOMAIN}"


def verifies(chain: str, root: Path) -> bool:
    """Whether a served chain leads from the leaf, through what the device sent, to root."""
    leaf, *intermediates = re.findall(PEM, chain, re.DOTALL)
    (root.parent / "leaf.pem").write_text(leaf)
    untrusted = root.parent / "untrusted.pem"
    untrusted.write_text("".join(intermediates))
    done = subprocess.run(
        ["openssl", "verify", "-CAfile", str(root), "-untrusted", str(untrusted),
         "-verify_hostname", DOMAIN, str(root.parent / "leaf.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@pytest.mark.parametrize("port", sorted(TLS_PORTS))
def test_every_tls_port_serves_the_cas_certificate(
    device_address: str, pebble_root: Path, port: int
) -> None:
    chain = served(device_address, port)
    assert "Pebble Intermediate" in chain.issuer
    assert f"DNS:{DOMAIN}" in chain.names
    assert verifies(chain.chain, pebble_root)


def test_issued_by_http01_with_port_80_open_for_the_ca(
    host, device_address: str, pebble_root: Path
) -> None:
    assert status(host)["state"] in ("issued", "kept")
    assert status(host)["challenge"] == "http-01"
    assert "tcp dport { 22, 80, 443," in host.check_output("nft list table inet pi_im_firewall")
    assert host.service("pi-im-acme.timer").is_enabled
    # The appliance's timer renews; Debian's would renew without recording it.
    assert not host.service("certbot.timer").is_enabled
    shown = " ".join(dashboard(host, device_address, pebble_root).split())
    assert f"The certificate for {NAMES} comes from the CA (http-01)" in shown


@pytest.fixture
def due(host) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The certificate is due: certbot renews earlier than 100 days before the end (a fresh
    one has 90), as it does 30 days before on its own."""
    conf = "/etc/letsencrypt/renewal/pi-im.conf"
    host.run(f"sed -i 's/^# renew_before_expiry = .*/renew_before_expiry = 100 days/' {conf}")
    yield
    host.run(f"sed -i 's/^renew_before_expiry = 100 days/# renew_before_expiry = 30 days/' {conf}")


@pytest.mark.usefixtures("due")
def test_a_due_renewal_by_the_timers_unit_is_served_at_once_without_a_restart(
    host, device_address: str
) -> None:
    before = {port: served(device_address, port).serial for port in TLS_PORTS}
    ejabberd = host.check_output("systemctl show -P MainPID ejabberd")
    # What the timer starts, in its sandbox.
    assert host.run("systemctl start pi-im-acme.service").rc == 0
    assert status(host)["state"] == "issued"
    after = {port: served(device_address, port).serial for port in TLS_PORTS}
    assert len(set(after.values())) == 1
    assert set(after.values()).isdisjoint(before.values())
    # ejabberd took it up by reloading: its sessions stay.
    assert host.check_output("systemctl show -P MainPID ejabberd") == ejabberd


def test_a_certificate_not_due_is_kept(host) -> None:
    rc, outcome = renew(host, force=False)
    assert (rc, outcome["state"], outcome["changed"]) == (0, "kept", False)
    rc, outcome = renew(host)  # --force: renewed now, whatever is left
    assert (rc, outcome["state"], outcome["changed"]) == (0, "issued", True)


def test_the_renewal_unit_is_no_more_exposed_than_recorded(host) -> None:
    """As root, certbot's unit keeps only what renewing needs (docs/security.md)."""
    recorded = re.search(
        r"^\| `pi-im-acme\.service` \| ([0-9.]+) \|",
        (REPO / "docs/security.md").read_text(),
        re.MULTILINE,
    )
    assert recorded
    report = host.check_output("systemd-analyze security --no-pager pi-im-acme.service")
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report)
    assert level
    assert float(level.group(1)) <= float(recorded.group(1))


@pytest.fixture
def ca_down(host) -> Iterator[None]:  # type: ignore[no-untyped-def]
    subprocess.run(["docker", "exec", CA, "systemctl", "stop", "pebble"], check=True)
    yield
    subprocess.run(["docker", "exec", CA, "systemctl", "start", "pebble"], check=True)
    # pebble forgets its accounts when it stops; Let's Encrypt does not.
    host.run("rm -rf /etc/letsencrypt/accounts")


def converge(extra_vars: dict[str, object], tags: str = ""):  # type: ignore[no-untyped-def]
    """site.yml against the device with other options (the default scenario's runner)."""
    return site(extra_vars, host=DEVICE, tags=tags)


def dashboard(host, address: str, root: Path) -> str:  # type: ignore[no-untyped-def]
    """The console's dashboard as the owner sees it, over the CA's certificate."""
    return owner_console(host, address, root).get("/").text


@pytest.mark.usefixtures("ca_down")
def test_a_failed_renewal_keeps_the_certificate_and_says_why(
    host, device_address: str, pebble_root: Path
) -> None:
    before = {port: served(device_address, port).serial for port in TLS_PORTS}
    rc, outcome = renew(host)
    assert rc == 1
    assert outcome["state"] == "failed"
    assert "Connection refused" in str(outcome["message"])
    assert {port: served(device_address, port).serial for port in TLS_PORTS} == before
    recorded = status(host)
    assert recorded["state"] == "failed"
    assert recorded["message"] == outcome["message"]
    assert int(recorded["expires"]) > int(recorded["attempted"])  # still valid, and until when
    # The console says so to the operators.
    shown = " ".join(messages(dashboard(host, device_address, pebble_root))["error"].split())
    assert f"Getting the certificate for {NAMES} from the CA failed" in shown
    assert "Connection refused" in shown
    assert "The device keeps the certificate it has, valid until" in shown


def test_issued_by_dns01_through_the_domains_dns(host, device_address: str) -> None:
    before = served(device_address, 443).serial
    run = converge({"acme_challenge": "dns-01", "acme_dns_credentials": dns_credentials()}, "acme")
    assert run.returncode == 0, run.messages
    rc, outcome = renew(host)
    assert (rc, outcome["state"]) == (0, "issued"), outcome
    assert status(host)["challenge"] == "dns-01"
    assert served(device_address, 443).serial != before
    # The CA read the TXT record certbot wrote to the domain's DNS with the TSIG key.
    log = subprocess.run(
        ["docker", "exec", CA, "journalctl", "-u", "named", "--no-pager"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"adding an RR at '_acme-challenge.{DOMAIN}' TXT" in log
    # The credentials are root's alone on the device.
    credentials = host.file("/etc/pi-im/secrets/acme-dns.ini")
    assert (credentials.user, credentials.mode) == ("root", 0o600)
    # Back to HTTP-01: the credentials leave the device.
    assert converge({}, "acme").returncode == 0
    assert not host.file("/etc/pi-im/secrets/acme-dns.ini").exists


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"ejabberd_domain": "kitchen.local"}, "not a .local one"),
        ({"acme_challenge": "dns-01", "acme_dns_credentials": {}}, "for dns-01"),
        ({"acme_server": "http://pi-im-acme-ca:14000/dir"}, "acme_server an https URL"),
        ({"acme_email": "not an address"}, 'acme_email empty or an address ("not an address")'),
        ({"ejabberd_tls_certfile": "/etc/ssl/mine.pem"}, "no certificate of the owner's"),
    ],
    ids=[
        "local-domain",
        "dns-01-without-credentials",
        "plain-http-server",
        "bad-email",
        "own-certificate",
    ],
)
def test_bad_acme_options_change_nothing(extra: dict[str, object], said: str) -> None:
    run = converge(extra)
    assert run.returncode != 0
    assert said in run.messages
    assert run.stats["changed"] == 0
