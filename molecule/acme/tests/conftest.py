"""The device with an ACME certificate and its CA (pebble, bind9): addresses, what the device
serves on each TLS port, its ACME status, and site.yml run again with other options."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
DOMAIN: str = yaml.safe_load((SCENARIO / "inventory/group_vars/im_servers.yml").read_text())[
    "ejabberd_domain"
]
DEVICE, CA = "pi-im-acme-device", "pi-im-acme-ca"
# The default scenario's client of the console (admin_console.py), after this directory.
sys.path.append(str(REPO / "molecule/default/tests"))
PEM = r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n"
# The TLS ports and how a client starts TLS on each.
TLS_PORTS = {
    5222: ["-starttls", "xmpp", "-xmpphost", DOMAIN],
    5269: ["-starttls", "xmpp-server", "-xmpphost", DOMAIN],
    5280: [],
    443: [],
    8080: [],
}


def address_of(container: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", '{{(index .NetworkSettings.Networks "pi-im-acme").IPAddress}}',
         container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="session")
def device_address() -> str:
    return address_of(DEVICE)


@dataclass(frozen=True)
class Served:
    issuer: str
    serial: str
    names: str
    chain: str


def served(address: str, port: int) -> Served:
    """The certificate chain a client gets on a port of the device (waiting for a service
    that is starting again: the console restarts to take up a new certificate)."""
    for _ in range(60):
        shown = subprocess.run(
            ["openssl", "s_client", "-connect", f"{address}:{port}", "-servername", DOMAIN,
             "-showcerts", *TLS_PORTS[port]],
            input="", capture_output=True, text=True, timeout=30, check=False,
        ).stdout  # fmt: skip
        chain = "".join(re.findall(PEM, shown, re.DOTALL))
        if chain:
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"no certificate on port {port}")
    leaf = subprocess.run(
        ["openssl", "x509", "-noout", "-issuer", "-serial", "-ext", "subjectAltName"],
        input=chain, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    fields = dict(
        line.split("=", 1) for line in leaf.splitlines() if line.startswith(("issuer", "serial"))
    )
    return Served(fields["issuer"].strip(), fields["serial"].strip(), leaf, chain)


def status(host) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return json.loads(host.file("/var/lib/pi-im/acme/status.json").content_string)


def renew(host, force: bool = True) -> tuple[int, dict[str, object]]:  # type: ignore[no-untyped-def]
    """The device's certificate step, as its timer runs it (forced: renew now)."""
    done = host.run("/usr/local/sbin/pi-im-acme obtain" + (" --force" if force else ""))
    return done.rc, json.loads(done.stdout)


def dns_credentials() -> dict[str, object]:
    """The RFC 2136 credentials create.yml made for the CA's bind9."""
    ephemeral = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    return json.loads((ephemeral / "acme-dns-credentials.json").read_text())


@pytest.fixture(scope="module")
def pebble_root(host, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The root pebble issues under (a new one at every start of pebble), from its management
    API, asked from the device with pebble's TLS checked against the CA the device trusts."""
    root = tmp_path_factory.mktemp("pebble") / "root.pem"
    root.write_text(
        host.check_output(
            "curl -sSf --cacert /etc/pi-im/acme-ca.pem https://pi-im-acme-ca:15000/roots/0"
        )
        + "\n"
    )
    return root


def owner_console(host, address: str, root: Path):  # type: ignore[no-untyped-def]
    """The console signed in as its owner, over the CA's certificate."""
    from admin_console import Console

    tls = ssl.create_default_context(cafile=str(root))
    tls.check_hostname = False  # reached by address; the chain is checked
    console = Console(f"https://{address}:8080", tls)
    password = host.check_output("pi-im-secret show admin-owner-password")
    assert console.sign_in("owner", password).status_code == 303
    return console
