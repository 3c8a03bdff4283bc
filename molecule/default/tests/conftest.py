"""Shared fixtures: the appliance under test, its address, and throw-away XMPP accounts."""

from __future__ import annotations

import contextlib
import datetime
import functools
import ipaddress
import json
import re
import secrets
import shlex
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pi_im_admin.ejabberd import trusting

import device_api
from admin_console import Console
from admin_console import api as console_api
from containers import address_of, inspect

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
GROUP_VARS = yaml.safe_load((SCENARIO / "inventory/group_vars/im_servers.yml").read_text())
DOMAIN: str = GROUP_VARS["ejabberd_domain"]
EJABBERD_CONFIG = "/etc/ejabberd/ejabberd.yml"


# It recreates the device (test_demo_container.py): whatever else runs, it runs last.
LAST = "test_demo_container.py"


def pytest_configure(config: pytest.Config) -> None:
    # The default and operations scenarios share these tests and split them by this mark, so
    # that each runs on a device of its own, in a lane of its own (scripts/run_scenarios.py).
    config.addinivalue_line(
        "markers",
        "operations: what a device goes through (updates, faults, a full disk, load, the demo "
        "container recreated): the operations scenario's, not default's",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name == LAST)


@dataclass(frozen=True)
class Account:
    jid: str
    password: str


def api_call(host, command: str, body: dict[str, str], user: str = "pi-im-console"):  # type: ignore[no-untyped-def]
    return device_api.call(host, DOMAIN, command, body, user)


def api(host, command: str, body: dict[str, str]) -> object:
    return device_api.succeed(host, DOMAIN, command, body)


@pytest.fixture(scope="module")
def container(host) -> str:
    return host.backend.host


@pytest.fixture(scope="module")
def ejabberd_version(host) -> str:
    """The device's ejabberd package (23.01… on bookworm, 24.12… on trixie)."""
    return host.check_output("dpkg-query --showformat='${Version}' --show ejabberd")


@pytest.fixture(scope="module")
def address(container: str) -> str:
    return address_of(container)


@pytest.fixture(scope="module")
def beam_pid(host) -> int:
    return int(host.check_output("pgrep -f -- '-sname ejabberd@localhost'").split()[0])


@pytest.fixture(scope="module")
def netns(container: str) -> list[str]:
    """Command prefix that runs a host program inside the container's network namespace,
    so real client libraries can reach services bound to the device's loopback."""
    pid = inspect(container, "{{.State.Pid}}")
    return ["nsenter", f"--net=/proc/{pid}/ns/net"]


def run_in_netns(netns: list[str], password: str, *args: str) -> dict[str, object]:
    """netns_client.py inside the device's network namespace, the password on its stdin."""
    result = subprocess.run(
        [*netns, sys.executable, str(Path(__file__).with_name("netns_client.py")), *args],
        input=password,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def device_cert(host, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The certificate part of the device's PEM, to verify TLS against (never the key)."""
    pem = host.check_output("openssl x509 -in /etc/ejabberd/tls/device.pem")
    path = tmp_path_factory.mktemp("tls") / "device.crt"
    path.write_text(pem + "\n")
    return path


@pytest.fixture(scope="module")
def device_tls(device_cert: Path) -> ssl.SSLContext:
    """TLS that trusts the device's own certificate (tests reach it by address, not name)."""
    return trusting(device_cert)


@pytest.fixture
def accounts(host) -> Iterator[list[Account]]:
    """Two fresh accounts created through the admin API, removed afterwards."""
    created = []
    for _ in range(2):
        user = f"t{secrets.token_hex(5)}"
        password = secrets.token_urlsafe(16)
        assert api(host, "register", {"user": user, "host": DOMAIN, "password": password})
        created.append(Account(f"{user}@{DOMAIN}", password))
    yield created
    for account in created:
        api(host, "unregister", {"user": account.jid.split("@")[0], "host": DOMAIN})


def secret(host, name: str) -> str:
    return host.check_output(f"pi-im-secret show {name}")


# The console, as its owner


@pytest.fixture(scope="module")
def base_url(address: str) -> str:
    return f"https://{address}:8080"


@pytest.fixture(scope="module")
def owner(host, base_url: str, device_tls: ssl.SSLContext) -> Console:
    console = Console(base_url, device_tls)
    response = console.sign_in("owner", secret(host, "admin-owner-password"))
    assert response.status_code == 303
    return console


@pytest.fixture(scope="module")
def owner_api(owner: Console, base_url: str, device_tls: ssl.SSLContext) -> httpx.Client:
    """The REST API with a fresh owner's token."""
    token = owner.create_token(f"tests-{secrets.token_hex(3)}", "owner")
    return console_api(base_url, token, device_tls)


def new_name(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def strong() -> str:
    return secrets.token_urlsafe(16)


def create_user(owner_api: httpx.Client, group: str = "") -> Account:
    """A fresh XMPP account made through the console's API (failing loudly here, not later)."""
    name, password = new_name(), strong()
    response = owner_api.post(
        "/users", json={"username": name, "password": password, "group": group}
    )
    assert response.status_code == 201, response.text
    return Account(f"{name}@{DOMAIN}", password)


def eventually(check: Callable[[], object], seconds: float = 30) -> object:
    """What `check` returns once it is true, asked every half second; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.5)
    return result


EJABBERD_LOG = "/var/log/ejabberd/ejabberd.log"


def ejabberd_log_size(host) -> int:
    """Where ejabberd's log ends now: pass it as `since` to read only what comes after."""
    return int(host.check_output(f"stat -c %s {EJABBERD_LOG}"))


def ejabberd_log(host, needle: str, count: int = 1, since: int = 0) -> list[str]:
    """The lines of ejabberd's log (from byte `since` on) that hold `needle`; waits up to 10 s,
    as ejabberd writes its log a moment after what it logs, until there are `count`."""
    command = f"tail -c +{since + 1} {EJABBERD_LOG} | grep -F -- {shlex.quote(needle)} || true"
    for _ in range(50):
        lines = host.check_output(command).splitlines()
        if len(lines) >= count:
            break
        time.sleep(0.2)
    return lines


def on_ejabberd(host, expression: str) -> str:
    """Evaluate Erlang expressions on the running ejabberd node; what they return, printed
    (erl_call's `{ok, Value}` unwrapped; anything else, an exception among them, fails)."""
    cookie = host.file("/var/lib/ejabberd/.erlang.cookie").content_string.strip()
    answer = host.run(
        f"printf '%s\\n' {shlex.quote(expression)} | /usr/lib/erlang/bin/erl_call "
        f"-sname ejabberd@localhost -c {cookie} -e"
    )
    assert answer.rc == 0, answer.stderr
    printed = answer.stdout.strip()
    assert printed.startswith("{ok, "), printed
    assert printed.endswith("}"), printed
    return printed[len("{ok, ") : -1]


PROBE_SOURCE = Path(__file__).with_name("erlang") / "pi_im_probe.erl"
# Outside ejabberd's private /tmp, readable by it, and not part of the appliance.
PROBE_EBIN = "/usr/local/lib/pi-im-test/ebin"


@functools.cache
def build_probe(container: str) -> None:
    """pi_im_probe.erl compiled on the device, once per container: the node loads it from
    PROBE_EBIN on first call, again after any restart."""
    subprocess.run(["docker", "exec", container, "mkdir", "-p", PROBE_EBIN], check=True)
    subprocess.run(["docker", "cp", str(PROBE_SOURCE), f"{container}:{PROBE_EBIN}/"], check=True)
    subprocess.run(
        ["docker", "exec", "-w", PROBE_EBIN, container, "erlc", "-Werror", "pi_im_probe.erl"],
        check=True,
    )


def erlang_binary(text: str) -> str:
    """Any text as an Erlang binary literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'<<"{escaped}"/utf8>>'


def probe(host, function: str, *args: str) -> str:
    """Call pi_im_probe:function(args) (Erlang terms, as text) on the running node."""
    build_probe(host.backend.host)
    call = f"pi_im_probe:{function}({', '.join(args)})."
    return on_ejabberd(host, f'code:add_patha("{PROBE_EBIN}"), {call}')


def fields(answer: str) -> dict[str, str]:
    """A probe's map of simple values (`#{key => value, ...}`), as text."""
    return dict(re.findall(r"(\w+) => (\w+)", answer))


@contextlib.contextmanager
def ejabberd_configured(host, replacements: dict[str, str]) -> Iterator[None]:
    """Lines of ejabberd.yml replaced as an owner would edit them and the configuration
    reloaded, for the length of a `with` block; then the file as it was, reloaded. Each key
    is a pattern a whole line must match (a basic regular expression: `.*` at most), its value
    the line that replaces it."""
    config = host.file(EJABBERD_CONFIG).content_string.splitlines()
    for pattern in replacements:
        assert any(re.fullmatch(pattern, line) for line in config), (
            f"no line {pattern!r} in {EJABBERD_CONFIG}"
        )
    edits = " ".join(f"-e {shlex.quote(f's/^{old}$/{new}/')}" for old, new in replacements.items())
    saved = f"{EJABBERD_CONFIG}.before-test"
    host.check_output(f"cp -p {EJABBERD_CONFIG} {saved}")
    try:
        host.check_output(f"sed -i {edits} {EJABBERD_CONFIG} && ejabberdctl reload_config")
        yield
    finally:
        host.check_output(f"mv {saved} {EJABBERD_CONFIG} && ejabberdctl reload_config")


@pytest.fixture
def archive_waits_for_disk(host) -> Iterator[None]:
    """The live node with `wait_for_disk: true`, set as a user would, and put back
    afterwards."""
    with ejabberd_configured(host, {"    wait_for_disk: .*": "    wait_for_disk: true"}):
        assert probe(host, "module_option", "mod_mam_sql_grouped", "wait_for_disk") == "true"
        yield
    assert probe(host, "module_option", "mod_mam_sql_grouped", "wait_for_disk") == "false"


@pytest.fixture(scope="module")
def receiver_tls(address: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA of its own and a certificate it issued for the device's address."""
    directory = tmp_path_factory.mktemp("receiver-tls")
    now = datetime.datetime.now(datetime.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("pi-im webhook test CA"))
        .issuer_name(name("pi-im webhook test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(address))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        # What Python 3.13's strict verification asks of a certificate a CA issued.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": directory / "ca.crt",
        "cert": directory / "leaf.crt",
        "key": directory / "leaf.key",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
