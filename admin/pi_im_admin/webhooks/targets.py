"""Where a webhook may point: HTTPS anywhere, plain HTTP only on the local network, never
the device's own loopback (where its private services listen: RabbitMQ, ejabberd's API)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from ..errors import Problem

# What ejabberd publishes (docs/events.md), the notice of events it had to drop, and what
# the console publishes itself.
EVENT_TYPES = (
    "message.chat",
    "message.groupchat",
    "user.login",
    "user.logout",
    "user.created",
    "user.deleted",
    "room.created",
    "room.destroyed",
    "events.dropped",
    "invitation.used",
    "moderation.blocked",
    "moderation.masked",
    "moderation.report",
)
MAX_URL = 2048
# Names that only a local network resolves (RFC 6762 .local, RFC 8375 home.arpa, common others).
LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal", ".localdomain")
# The local network: private IPv4 (RFC 1918), link-local, and IPv6 unique and link-local.
LAN = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


def bot_key(bot: str) -> str:
    """The routing key of a bot's messages (mod_bots)."""
    return f"bot.message.{bot}"


def event_types(raw: list[str]) -> list[str]:
    """The types asked for, in a stable order; a Problem naming any unknown one."""
    unknown = sorted({kind for kind in raw if kind not in EVENT_TYPES})
    if unknown:
        raise Problem(
            f"Unknown event type {', '.join(unknown)}: use some of {', '.join(EVENT_TYPES)}."
        )
    if not raw:
        raise Problem(f"Choose at least one event type: {', '.join(EVENT_TYPES)}.")
    return [kind for kind in EVENT_TYPES if kind in raw]


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _local_name(host: str) -> bool:
    return "." not in host or host.endswith(LOCAL_SUFFIXES)


def _lan(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in LAN)


def _split(raw: str) -> SplitResult:
    if len(raw) > MAX_URL:
        raise Problem(f"The URL is {len(raw)} characters long: at most {MAX_URL}.")
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - raises for a port that is not a number or out of range
    except ValueError as error:
        raise Problem(f"{raw!r} is not a URL: {error}.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Problem(f"{raw!r} is not an http:// or https:// URL with a host.")
    return parts


def check_url(raw: str) -> str:
    """The URL to store, or a Problem saying what is wrong with it."""
    parts = _split(raw)
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None:
        raise Problem(
            "Leave the name and password out of the URL: a URL is shown on the console and "
            "logged by servers. Deliveries are signed instead (check X-Pi-Im-Signature)."
        )
    address = _address(host)
    if (
        host == "localhost"
        or host.endswith(".localhost")
        or (address and (address.is_loopback or address.is_unspecified))
    ):
        raise Problem(
            f"{host} is the device itself, where its private services listen; point the "
            "webhook at a service on another machine or in a container on the device."
        )
    if (
        parts.scheme == "http"
        and not (address and _lan(address))
        and not (address is None and _local_name(host))
    ):
        raise Problem(
            f"Plain http:// is for the local network only, and {host} is not on it: use "
            "https:// so that the events cannot be read on their way."
        )
    return parts._replace(fragment="").geturl()


def refusal(url: str) -> str | None:
    """At delivery: why the URL's host may not be sent to now (it resolves to the device's
    loopback, or a plain-HTTP host resolves outside the local network), or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as error:
        return f"{host} does not resolve: {error.strerror or error}"
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    if any(address.is_loopback or address.is_unspecified for address in addresses):
        return f"{host} resolves to the device itself"
    if parts.scheme == "http" and not all(_lan(address) for address in addresses):
        return f"{host} resolves outside the local network, and plain http:// stays on it"
    return None
