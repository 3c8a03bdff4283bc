"""DNS lookups for the reachability page (dnspython), and what kind of address an answer is.
Only the DNS servers the device uses (or those the owner named) are asked."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import dns.asyncresolver
import dns.exception
import dns.resolver

# A question is given this long in all, whichever server answers.
TIMEOUT_SECONDS = 4.0

Scope = Literal["public", "lan", "shared", "loopback"]
# RFC 6598's shared space: a provider's carrier-grade NAT, which no port forward gets through.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_LAN = [
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                "fc00::/7", "fe80::/10")
]  # fmt: skip


def scope(address: str) -> Scope:
    """Where an address can be reached from: anywhere, a home network only, a provider's
    network only (carrier-grade NAT), or the machine itself."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return "loopback"
    if ip in _SHARED:
        return "shared"
    if any(ip in net for net in _LAN):
        return "lan"
    return "public"


@dataclass(frozen=True)
class Service:
    """One SRV record: where a service of a domain is."""

    priority: int
    weight: int
    port: int
    target: str


T = TypeVar("T")


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What DNS said about a name: its records, or why there are none ("" when found)."""

    records: tuple[T, ...] = ()
    problem: str = ""
    # DNS itself could not be asked, as opposed to saying there is no such record.
    unanswered: bool = False


NO_SUCH_NAME = "no such name"


class Resolver:
    """Asks for one check: a name's addresses are asked once however many records lead to
    it (the domain, as the target of its SRV records, say)."""

    def __init__(self, servers: tuple[str, ...] = ()) -> None:
        # Without servers of its own: the device's (/etc/resolv.conf).
        self._resolver = dns.asyncresolver.Resolver(configure=not servers)
        if servers:
            self._resolver.nameservers = list(servers)
        self._resolver.lifetime = TIMEOUT_SECONDS
        self._addresses: dict[str, Answer[str]] = {}

    async def _ask(self, name: str, rdtype: str) -> Answer[object]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Answer(problem=NO_SUCH_NAME)
        except dns.resolver.NoAnswer:
            return Answer(problem=f"no {rdtype} record")
        except dns.resolver.NoNameservers as error:
            return Answer(problem=f"no answer from DNS ({error.msg or 'servers failed'})",
                          unanswered=True)  # fmt: skip
        except dns.exception.Timeout:
            return Answer(problem="no answer from DNS (timed out)", unanswered=True)
        except dns.exception.DNSException as error:
            return Answer(problem=f"no answer from DNS ({error})", unanswered=True)
        return Answer(tuple(answer))

    async def addresses(self, name: str) -> Answer[str]:
        """The IPv4 and IPv6 addresses of a name (a CNAME is followed)."""
        key = name.lower().rstrip(".")
        if key not in self._addresses:
            self._addresses[key] = await self._ask_addresses(key)
        return self._addresses[key]

    async def _ask_addresses(self, name: str) -> Answer[str]:
        answers = await asyncio.gather(self._ask(name, "A"), self._ask(name, "AAAA"))
        found = tuple(record.to_text() for a in answers for record in a.records)  # type: ignore[attr-defined]
        if found:
            return Answer(found)
        for answer in answers:
            if answer.unanswered or answer.problem == NO_SUCH_NAME:
                return Answer(problem=answer.problem, unanswered=answer.unanswered)
        return Answer(problem="no A or AAAA record")

    async def services(self, name: str) -> Answer[Service]:
        """The SRV records of a name, best first (RFC 2782: lowest priority, then weight)."""
        answer = await self._ask(name, "SRV")
        records = sorted(
            (
                Service(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
                for r in answer.records
            ),
            key=lambda s: (s.priority, -s.weight),
        )
        return Answer(tuple(records), answer.problem, answer.unanswered)
