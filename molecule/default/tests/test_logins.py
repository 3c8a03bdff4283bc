"""How today's clients log in to ejabberd 24.12 (trixie): SASL2 with Bind2, SCRAM bound to the
TLS connection (channel binding, XEP-0440), and FAST token logins (XEP-0484).

go-sendxmpp (Debian's, installed on the device as a test tool) is the third-party client: it
binds with tls-exporter on TLS 1.3 and keeps a FAST token between runs. The benchmark's own
client (bench/pi_im_bench/xmpp.py) proves tls-server-end-point and tls-unique, which Python's
ssl module can compute, and that a wrong binding or token is refused."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pi_im_bench.scram import SaltedPasswordCache, TokenCache
from pi_im_bench.xmpp import Endpoint, Session, SessionError, client_tls_context

from conftest import DOMAIN, Account, ejabberd_log

TLS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# What the server may advertise: every type it can compute on that TLS version (RFC 9266:
# tls-unique is undefined on TLS 1.3).
ADVERTISED = {
    "1.2": ["tls-exporter", "tls-server-end-point", "tls-unique"],
    "1.3": ["tls-exporter", "tls-server-end-point"],
}
# On the device, beside nothing of the appliance: the client, its settings, its token store.
CLIENT_HOME = "/var/tmp/pi-im-go-sendxmpp"


def tls(version: str, cert: str) -> ssl.SSLContext:
    context = client_tls_context(cert)
    context.check_hostname = False  # reached by address; the certificate itself is checked
    context.minimum_version = context.maximum_version = TLS[version]
    return context


def endpoint(address: str, context: ssl.SSLContext, **options: object) -> Endpoint:
    return Endpoint(address, 5222, DOMAIN, context, **options)  # type: ignore[arg-type]


async def log_in(account: Account, where: Endpoint, tokens: TokenCache | None = None) -> Session:
    session = Session(
        where, account.jid.split("@")[0], account.password, SaltedPasswordCache(), tokens
    )
    await asyncio.wait_for(session.login(f"r{secrets.token_hex(3)}", roster=False), 30)
    return session


@pytest.fixture
def logins_logged(host) -> Iterator[None]:
    """ejabberd names an accepted login's mechanism in its log only at `info`; the device
    logs warnings (decision 0017), so a test that reads them raises the level for itself."""
    shipped = host.check_output("ejabberdctl get_loglevel").strip()
    host.check_output("ejabberdctl set_loglevel info")
    yield
    host.check_output(f"ejabberdctl set_loglevel {shipped}")


def accepted(host, jid: str, count: int) -> list[str]:
    """The mechanisms of `jid`'s accepted logins as ejabberd logged them, oldest first; waits
    (ejabberd writes its log a moment after the login) until there are `count` of them."""
    lines = ejabberd_log(host, f"authentication for {jid} by ", count)  # not "… from": failed
    return re.findall(r"Accepted c2s (\S+) authentication", "\n".join(lines))


@pytest.mark.parametrize("version", TLS)
def test_the_advertised_channel_bindings_are_the_ones_the_tls_version_has(
    accounts, device_cert, address: str, version: str
) -> None:
    async def features() -> list[str]:
        session = await log_in(accounts[0], endpoint(address, tls(version, str(device_cert))))
        await session.close()
        return session.binding_types()

    assert sorted(asyncio.run(features())) == ADVERTISED[version]


BINDINGS = [("1.3", "tls-server-end-point"), ("1.2", "tls-server-end-point"), ("1.2", "tls-unique")]


@pytest.mark.parametrize("sasl2", [True, False], ids=["sasl2", "sasl1"])
@pytest.mark.parametrize(("version", "binding"), BINDINGS, ids=[f"{v}-{b}" for v, b in BINDINGS])
@pytest.mark.usefixtures("logins_logged")
def test_scram_plus_binds_to_the_connection(
    host, accounts, device_cert, address: str, version: str, binding: str, sasl2: bool
) -> None:
    where = endpoint(
        address,
        tls(version, str(device_cert)),
        mechanism="SCRAM-SHA-1-PLUS",
        sasl2=sasl2,
        channel_binding=binding,
    )

    async def bound() -> str:
        session = await log_in(accounts[0], where)
        await session.close()
        return session.jid

    assert asyncio.run(bound()).startswith(accounts[0].jid + "/")
    assert accepted(host, accounts[0].jid, 1) == ["SCRAM-SHA-1-PLUS"]


class ElsewhereSession(Session):
    """Binds to data of another connection, as a relaying man in the middle would."""

    def _binding_data(self, kind: str) -> bytes:
        return bytes(b ^ 0xFF for b in super()._binding_data(kind))


def test_a_binding_to_another_connection_is_refused(accounts, device_cert, address: str) -> None:
    where = endpoint(
        address, tls("1.3", str(device_cert)), mechanism="SCRAM-SHA-1-PLUS", sasl2=True
    )
    account = accounts[0]

    async def relayed() -> None:
        session = ElsewhereSession(
            where, account.jid.split("@")[0], account.password, SaltedPasswordCache()
        )
        try:
            await asyncio.wait_for(session.login("relay", roster=False), 30)
        finally:
            session.abort()

    with pytest.raises(SessionError, match="expected success"):
        asyncio.run(relayed())


@pytest.mark.usefixtures("logins_logged")
def test_fast_token_logins_follow_the_first_and_a_wrong_token_is_refused(
    host, accounts, device_cert, address: str
) -> None:
    where = endpoint(address, tls("1.3", str(device_cert)), sasl2=True, fast=True)
    account, tokens = accounts[0], TokenCache()
    user = account.jid.split("@")[0]

    async def three_logins() -> list[str]:
        used = []
        for _ in range(3):
            session = await log_in(account, where, tokens)
            used.append(session.mechanism_used)
            await session.close()
        return used

    assert asyncio.run(three_logins()) == ["SCRAM-SHA-1", "HT-SHA-256-NONE", "HT-SHA-256-NONE"]
    assert accepted(host, account.jid, 3) == ["SCRAM-SHA-1", "HT-SHA-256-NONE", "HT-SHA-256-NONE"]

    token = tokens.get(user)
    assert token is not None
    tokens.put(user, bytes(reversed(token)))
    with pytest.raises(SessionError, match="expected success"):
        asyncio.run(log_in(account, where, tokens))
    assert tokens.get(user) is None  # forgotten: the next login uses the password again


@pytest.fixture(scope="module")
def go_sendxmpp(host):
    """Debian's go-sendxmpp on the device, its own home for settings and FAST tokens."""
    host.check_output(
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq install -y "
        "--no-install-recommends go-sendxmpp"
    )
    host.check_output(
        f"rm -rf {CLIENT_HOME} && install -d -m 0700 {CLIENT_HOME} && "
        f"openssl x509 -in /etc/ejabberd/tls/device.pem -out {CLIENT_HOME}/device.crt"
    )
    yield CLIENT_HOME
    host.run(f"rm -rf {CLIENT_HOME}")


def send(host, home: str, sender: Account, recipient: Account, address: str, body: str) -> str:
    """go-sendxmpp's debug output (the XML it exchanged) for one message, TLS 1.3 at least.
    The password is in its settings file, not on its command line."""
    host.check_output(
        f"printf 'username: %s\\npassword: %s\\n' {sender.jid} '{sender.password}' "
        f"> {home}/sendxmpprc && chmod 0600 {home}/sendxmpprc"
    )
    done = host.run(
        f"echo {body} | HOME={home} SSL_CERT_FILE={home}/device.crt go-sendxmpp --debug "
        f"--suppress-root-warning -f {home}/sendxmpprc -j {address}:5222 --tls-version 13 "
        f"{recipient.jid}"
    )
    assert done.rc == 0, done.stdout[-2000:] + done.stderr
    return done.stdout


def authenticate(debug: str) -> tuple[str, str]:
    """The SASL2 mechanism go-sendxmpp chose and its decoded initial response."""
    sent = re.search(
        r"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='([^']+)'>"
        r"<initial-response>([^<]*)</initial-response>",
        debug,
    )
    assert sent, debug[-3000:]
    return sent[1], base64.b64decode(sent[2]).decode("latin-1")


@pytest.mark.usefixtures("logins_logged")
def test_go_sendxmpp_binds_to_tls_1_3_with_tls_exporter_then_logs_in_with_its_token(
    host, go_sendxmpp: str, accounts, address: str
) -> None:
    sender, recipient = accounts
    offline = f"ejabberdctl get_offline_count {recipient.jid.split('@')[0]} {DOMAIN}"
    before = int(host.check_output(offline))

    first = send(host, go_sendxmpp, sender, recipient, address, "first")
    mechanism, response = authenticate(first)
    assert mechanism == "SCRAM-SHA-1-PLUS"
    assert response.startswith("p=tls-exporter,,n=")
    # FAST: a token for the next login, valid for ejabberd's default 30 days.
    expiry = re.search(r"<token token='[^']+' expiry='([^']+)'", first)
    assert expiry, first[-3000:]
    lifetime = datetime.fromisoformat(expiry[1]) - datetime.now(UTC)
    assert timedelta(days=29) < lifetime <= timedelta(days=30)

    second = send(host, go_sendxmpp, sender, recipient, address, "second")
    mechanism, _ = authenticate(second)
    assert mechanism == "HT-SHA-256-EXPR"  # the token, itself bound with tls-exporter
    assert "<success xmlns='urn:xmpp:sasl:2'>" in second

    assert accepted(host, sender.jid, 2) == ["SCRAM-SHA-1-PLUS", "HT-SHA-256-EXPR"]
    assert int(host.check_output(offline)) == before + 2


def test_fast_tokens_survive_a_restart(host, go_sendxmpp: str, accounts, address: str) -> None:
    sender, recipient = accounts
    send(host, go_sendxmpp, sender, recipient, address, "before")
    host.check_output("systemctl restart ejabberd && ejabberdctl started")
    after = send(host, go_sendxmpp, sender, recipient, address, "after")
    assert authenticate(after)[0] == "HT-SHA-256-EXPR"
