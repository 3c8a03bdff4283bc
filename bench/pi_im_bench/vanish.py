"""How long a client that vanished without a word (a phone off Wi-Fi, a pulled cable)
still shows online: log one account in, drop its packets on the target, and time until the
server ends the session.

ejabberd turns TCP keepalive on for client sockets and, with mod_ping's defaults, sends no
XMPP pings of its own, so the kernel's keepalive settings decide: the session ends after
`tcp_keepalive_time + tcp_keepalive_intvl * tcp_keepalive_probes` seconds of silence.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass

from .accounts import Account
from .scram import SaltedPasswordCache
from .target import Target, TargetError
from .xmpp import Endpoint, Session, SessionError, client_tls_context

KEEPALIVE = ("tcp_keepalive_time", "tcp_keepalive_intvl", "tcp_keepalive_probes")
POLL_SECONDS = 5.0


def predicted(keepalive: dict[str, int]) -> int:
    """Seconds of silence before the kernel gives the connection up."""
    k = keepalive
    return k["tcp_keepalive_time"] + k["tcp_keepalive_intvl"] * k["tcp_keepalive_probes"]


@dataclass(frozen=True)
class Vanished:
    keepalive: dict[str, int]
    seconds: float | None  # None: still online when the limit ran out


def keepalive_settings(target: Target) -> dict[str, int]:
    """The values in the server's own network namespace (per namespace since Linux 4.x)."""
    paths = [f"/proc/sys/net/ipv4/{name}" for name in KEEPALIVE]
    values = target.run(["cat", *paths]).split()
    return {name: int(value) for name, value in zip(KEEPALIVE, values, strict=True)}


def split_peer(text: str) -> tuple[str, int]:
    """`[::ffff:172.17.0.1]:46060` or `10.0.2.2:5000` → (IPv4 address, port)."""
    host, _, port = text.rpartition(":")
    address = ipaddress.ip_address(host.strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(port)


def only_client(target: Target, device_port: int) -> tuple[str, int]:
    """The one client connection on the device's XMPP port: ours."""
    lines = target.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{device_port} )"]
    ).splitlines()
    if len(lines) != 1:
        raise TargetError(
            f"{target.name}: expected only this benchmark's connection on port "
            f"{device_port}, found {len(lines)}"
        )
    return split_peer(lines[0].decode().split()[-1])


def drop_rules(peer: tuple[str, int], device_port: int) -> list[list[str]]:
    """Both directions: the peer's packets never arrive, the server's probes go nowhere.
    Each rule is the command that inserts it without its -I/-D (ip6tables for IPv6)."""
    address, port = peer
    tool = "ip6tables" if ":" in address else "iptables"
    return [
        [tool, "INPUT", "-p", "tcp", "-s", address, "--sport", str(port),
         "--dport", str(device_port)],
        [tool, "OUTPUT", "-p", "tcp", "-d", address, "--dport", str(port),
         "--sport", str(device_port)],
    ]  # fmt: skip


def online(target: Target, user: str, domain: str) -> bool:
    return bool(target.run(["ejabberdctl", "user_resources", user, domain]).strip())


async def log_in(target: Target, domain: str, account: Account, cafile: str | None) -> Session:
    endpoint = Endpoint(target.host, target.port, domain, client_tls_context(cafile))
    session = Session(endpoint, account.name, account.password, SaltedPasswordCache())
    try:
        await asyncio.wait_for(session.login("vanish", roster=True), 60)
    except (SessionError, TimeoutError) as error:
        raise TargetError(f"{target.name}: {account.name} could not log in: {error}") from error
    return session


async def measure_vanish(
    target: Target,
    domain: str,
    account: Account,
    cafile: str | None,
    device_port: int,
    limit: float,
) -> Vanished:
    settings = keepalive_settings(target)
    expected = predicted(settings)
    session = await log_in(target, domain, account, cafile)
    dropping: list[list[str]] = []
    try:
        for rule in drop_rules(only_client(target, device_port), device_port):
            tool, *spec = rule
            target.run([tool, "-I", *spec, "-j", "DROP"])
            dropping.append(rule)
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < limit:
            if not online(target, account.name, domain):
                return Vanished(settings, elapsed)
            print(
                f"\r[{elapsed:6.0f}s] {account.name} still online "
                f"(keepalive predicts {expected} s)",
                end="",
                flush=True,
            )
            await asyncio.sleep(POLL_SECONDS)
        return Vanished(settings, None)
    finally:
        print(flush=True)
        for tool, *spec in dropping:
            target.run([tool, "-D", *spec, "-j", "DROP"])
        session.abort()
        await asyncio.sleep(0)
