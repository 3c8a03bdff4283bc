"""Whether apps away from home, push services and other servers can reach the device, as far
as the device can tell from inside: its name in DNS, the SRV records clients and servers look
up, the certificate it serves, the ports it listens on. Each finding says what the owner still
has to do; the router's port forwards are listed for them to set, since no device sees its
router's forwarding from inside. Nothing is sent anywhere but to DNS."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..reach import certificate, names, ports
from ..reach.names import Answer, Resolver, Service

if TYPE_CHECKING:
    from ..context import Context

State = Literal["ok", "todo", "note"]
# Names only a home network knows (mDNS, routers' own zones): never in public DNS.
LOCAL_SUFFIXES = (".local", ".lan", ".home", ".internal", ".home.arpa", ".localdomain")
# A fresh check at most this often; a page load in between shows the last one.
REUSE_SECONDS = 30.0
# How many days before its end a certificate is called due (certbot renews 30 days before).
DUE_DAYS = 14


@dataclass(frozen=True)
class Finding:
    key: str
    state: State
    title: str
    found: str
    todo: str = ""


@dataclass(frozen=True)
class Forward:
    protocol: str
    ports: str
    purpose: str


@dataclass(frozen=True)
class Report:
    domain: str
    public_name: bool
    lan_address: str
    checked_at: float
    findings: tuple[Finding, ...]
    forwards: tuple[Forward, ...] = field(default=())


def lan_address() -> str:
    """The device's address on its network: the source of its default route. Connecting a
    UDP socket only looks the route up; nothing is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return ""
        return str(probe.getsockname()[0])


def is_public_name(domain: str) -> bool:
    return "." in domain and not domain.lower().endswith(LOCAL_SUFFIXES)


def _name(domain: str) -> Finding:
    if is_public_name(domain):
        return Finding("name", "ok", "Domain", f"{domain} can be a name in public DNS.")
    return Finding(
        "name", "todo", "Domain",
        f"{domain} is a name only your home network knows: apps at home find the device, "
        "apps away from home, push services and other servers cannot.",
        "Give the device a domain in public DNS (such as chat.example.org: a name under a "
        f"domain you own) with ejabberd_domain, and run the playbook. Accounts made on {domain} "
        "stay there: change it before your members join.",
    )  # fmt: skip


def _addresses(domain: str, answer: Answer[str]) -> Finding:
    title = f"Address of {domain}"
    if answer.unanswered:
        return Finding("address", "note", title, f"DNS could not be asked: {answer.problem}.")
    if not answer.records:
        return Finding(
            "address", "todo", title, f"DNS has no address for {domain} ({answer.problem}).",
            f"At your DNS provider, add an A record for {domain} with your router's public "
            "IPv4 address (and an AAAA record with the Pi's IPv6 address, if it has a public "
            "one).",
        )  # fmt: skip
    shown = ", ".join(answer.records)
    scopes = {names.scope(a) for a in answer.records}
    if "public" in scopes:
        return Finding("address", "ok", title, f"{domain} has the public address {shown}.")
    if "shared" in scopes:
        return Finding(
            "address", "todo", title,
            f"{domain} has {shown}, in a provider's shared address space (carrier-grade NAT): "
            "no port forward on your router reaches the device from the internet there.",
            "Ask your internet provider for a public IPv4 address, or give the name the Pi's "
            "public IPv6 address (AAAA).",
        )  # fmt: skip
    return Finding(
        "address", "todo", title,
        f"{domain} has {shown}, an address of a home network (or of the device itself): "
        "apps find the device at home only.",
        f"Give {domain} your router's public address in public DNS. If your home DNS answers "
        "for the name on purpose, set admin_service_dns_servers to a public resolver so this "
        "page sees what the internet sees.",
    )  # fmt: skip


async def _service_records(
    resolver: Resolver, domain: str, service: str, port: int, what: str
) -> Finding:
    """An SRV record is optional on the standard port; where there is one, it must lead to
    the device's port and to a name with an address."""
    name = f"{service}._tcp.{domain}"
    key = service.lstrip("_")
    title = f"SRV {name}"
    answer = await resolver.services(name)
    if answer.unanswered:
        return Finding(key, "note", title, f"DNS could not be asked: {answer.problem}.")
    if not answer.records:
        if port == {"_xmpp-client": 5222, "_xmpp-server": 5269}[service]:
            return Finding(
                key, "ok", title,
                f"None: {what} connect to {domain}:{port}, the standard port (the record is "
                "optional).",
            )  # fmt: skip
        return Finding(
            key, "todo", title, f"None, and the device serves {what} on port {port}, not the "
            "standard one.", f"Add the SRV record {name} 0 5 {port} {domain}.",
        )  # fmt: skip
    problems = [await _srv_problem(resolver, record, port) for record in answer.records]
    shown = ", ".join(f"{r.target}:{r.port}" for r in answer.records)
    wrong = [p for p in problems if p]
    if not wrong:
        return Finding(key, "ok", title, f"{what.capitalize()} are sent to {shown}.")
    return Finding(
        key, "todo", title, f"{what.capitalize()} are sent to {shown}: " + "; ".join(wrong) + ".",
        f"Correct the record to {name} 0 5 {port} {domain}, or remove it (the standard port "
        "needs none).",
    )  # fmt: skip


async def _srv_problem(resolver: Resolver, record: Service, port: int) -> str:
    if record.target in ("", "."):
        return "the record says the service does not exist"
    if record.port != port:
        return f"port {record.port}, where the device listens on {port}"
    target = await resolver.addresses(record.target)
    if not target.records and not target.unanswered:
        return f"{record.target} has no address"
    return ""


async def _direct_tls(resolver: Resolver, domain: str) -> Finding | None:
    """The device offers STARTTLS, not XMPP over direct TLS (XEP-0368): an _xmpps-client
    record would send apps to a port that does not speak it."""
    name = f"_xmpps-client._tcp.{domain}"
    answer = await resolver.services(name)
    if not answer.records or all(r.target in ("", ".") for r in answer.records):
        return None
    shown = ", ".join(f"{r.target}:{r.port}" for r in answer.records)
    return Finding(
        "xmpps-client", "todo", f"SRV {name}",
        f"Apps are sent to {shown} for XMPP over direct TLS, which the device does not serve "
        "(it offers STARTTLS on its XMPP port).",
        "Remove the record: apps then use the _xmpp-client record or the standard port.",
    )  # fmt: skip


async def _rooms(resolver: Resolver, domain: str) -> Finding:
    """Group chats are at conference.DOMAIN: other servers look that name up too."""
    rooms = f"conference.{domain}"
    title = f"Group chats ({rooms})"
    found = await resolver.addresses(rooms)
    if found.records:
        return Finding("rooms", "ok", title, f"{rooms} has the address {', '.join(found.records)}.")
    if (await resolver.services(f"_xmpp-server._tcp.{rooms}")).records:
        return Finding("rooms", "ok", title, f"{rooms} has an _xmpp-server SRV record.")
    return Finding(
        "rooms", "todo", title,
        f"DNS has no address for {rooms}: people on other servers cannot join its group chats.",
        f"Add a CNAME record {rooms} → {domain}.",
    )  # fmt: skip


def _certificate(ctx: Context) -> Finding:
    domain = ctx.ejabberd.domain
    title = "Certificate"
    pem = ctx.settings.tls_pem
    if pem is None:
        return Finding("certificate", "note", title, "The console is not given the device's "
                       "certificate, so it cannot look at it.")  # fmt: skip
    try:
        cert = certificate.read(pem, domain, ctx.settings.ca_roots)
    except (OSError, ValueError) as error:
        return Finding("certificate", "todo", title, f"The device's certificate cannot be "
                       f"read: {error}.", "Run the playbook again.")  # fmt: skip
    until = time.strftime("%Y-%m-%d", time.gmtime(cert.not_after))
    days = int((cert.not_after - time.time()) // 86400)
    named = ", ".join(cert.names) or "no names"
    acme = "Turn on acme_enabled (Let's Encrypt) once the name is in public DNS."
    if days < 0:
        return Finding("certificate", "todo", title, f"It ran out on {until}.", acme)
    if cert.self_signed:
        return Finding(
            "certificate", "todo", title,
            f"The device's own (self-signed) certificate for {named}, until {until}: apps ask "
            "members to accept it once, Monal and Siskin refuse it, and push services and "
            "other servers do not connect.", acme,
        )  # fmt: skip
    if not certificate.covers(cert.names, domain):
        return Finding("certificate", "todo", title, f"It names {named}, not {domain}.", acme)
    if cert.untrusted:
        from_acme = ctx.settings.acme_status.exists()
        return Finding(
            "certificate", "todo", title,
            f"Issued by {cert.issuer} for {named}, until {until}; none of the certificate "
            "authorities phones trust vouches for it.",
            "The device gets it from the CA in acme_server: leave that at Let's Encrypt's "
            "(its default)." if from_acme else acme,
        )  # fmt: skip
    rooms = f"conference.{domain}"
    if ctx.settings.federation and not certificate.covers(cert.names, rooms):
        return Finding(
            "certificate", "todo", title,
            f"Issued by {cert.issuer} for {named}, until {until}; it does not name {rooms}, so "
            "other servers refuse its group chats.",
            f"Add {rooms} to acme_extra_names (or to your own certificate).",
        )  # fmt: skip
    if days < DUE_DAYS:
        return Finding(
            "certificate", "todo", title,
            f"Issued by {cert.issuer} for {named}; it runs out in {days} days ({until}).",
            "See the Certificate section of the dashboard for the last renewal attempt.",
        )  # fmt: skip
    return Finding(
        "certificate", "ok", title,
        f"Issued by {cert.issuer} for {named}, until {until} ({days} days); trusted by the "
        "certificate authorities phones trust.",
    )  # fmt: skip


@dataclass(frozen=True)
class Opening:
    """A port the device may open to the internet: what for, and whether something listens
    on it all the time (the relay's ports open for a call, port 80 while the CA checks)."""

    protocol: str
    purpose: str
    always: bool = True


# By role as the admin_service role names them (PI_IM_ADMIN_PORTS), in the router's order.
# The console's own port is never forwarded, so it is not here.
OPENINGS = {
    "c2s": Opening("TCP", "apps (XMPP)"),
    "s2s": Opening("TCP", "other servers and push services (federation)"),
    "https": Opening("TCP", "the web chat and XMPP discovery"),
    "web": Opening("TCP", "shared files, web clients and the web chat"),
    "turn": Opening("UDP", "calls (STUN/TURN)"),
    "relay": Opening("UDP", "calls' relayed audio and video", always=False),
    "acme-http": Opening("TCP", "Let's Encrypt's HTTP-01 check", always=False),
}


def _openings(ctx: Context) -> list[tuple[Opening, str]]:
    """The device's openings with their ports, in OPENINGS' order."""
    ports_by_role = ctx.settings.ports
    return [(o, ports_by_role[role]) for role, o in OPENINGS.items() if role in ports_by_role]


def _listening(ctx: Context) -> Finding:
    found = ports.listening()
    watched = [(o, port) for o, port in _openings(ctx) if o.always]
    missing, local = [], []
    for opening, port in watched:
        reach = ports.best(found, opening.protocol.lower(), int(port))
        label = f"{opening.protocol} {port} ({opening.purpose})"
        if reach is None:
            missing.append(label)
        elif reach == "loopback":
            local.append(label)
    title = "Listening"
    if missing or local:
        said = []
        if missing:
            said.append("nothing listens on " + ", ".join(missing))
        if local:
            said.append("only the device itself reaches " + ", ".join(local))
        return Finding(
            "listening", "todo", title, "; ".join(said).capitalize() + ".",
            "Look at the services on the dashboard (ejabberd may be starting or stopped) and "
            "at ejabberd_listen_address.",
        )  # fmt: skip
    shown = ", ".join(f"{o.protocol} {port}" for o, port in watched)
    return Finding("listening", "ok", title, f"The device listens on {shown} on every address.")


def _calls(ctx: Context, lan: str) -> Finding | None:
    if "turn" not in ctx.settings.ports:
        return None
    announced = ctx.settings.turn_address or lan
    if announced and names.scope(announced) == "public":
        return Finding("calls", "ok", "Calls", f"The relay announces {announced}.")
    relay = ctx.settings.ports.get("relay", "")
    return Finding(
        "calls", "note", "Calls",
        f"The relay announces {announced or 'no address yet'}, the device's address at home: "
        "calls through it work on your home network.",
        f"For calls with members away from home, forward UDP {ctx.settings.ports['turn']} and "
        f"{relay} and set ejabberd_turn_address to your router's public address.",
    )  # fmt: skip


def _federation(ctx: Context, public_name: bool) -> Finding:
    if ctx.settings.federation and ctx.settings.federation_with:
        return Finding(
            "federation", "ok", "Federation and push",
            f"Federation is on with {', '.join(ctx.settings.federation_with)} only: push "
            "notifications through those push services work once TCP 5269 is forwarded to "
            "the device; chats with other servers do not.",
        )  # fmt: skip
    if ctx.settings.federation:
        return Finding(
            "federation", "ok", "Federation and push",
            "Federation is on: the push services of Conversations, Monal and Siskin and other "
            "servers can reach the device once TCP 5269 is forwarded to it.",
        )  # fmt: skip
    return Finding(
        "federation", "todo" if public_name else "note", "Federation and push",
        "Federation is off: apps' push notifications (their push services are servers of "
        "their own) and chats with other servers need it.",
        "Once the name and the certificate above are in order, add s2s to ejabberd_listeners "
        "and run the playbook.",
    )  # fmt: skip


def _forwards(ctx: Context) -> tuple[Forward, ...]:
    return tuple(Forward(o.protocol, port, o.purpose) for o, port in _openings(ctx))


async def _records(ctx: Context, resolver: Resolver, domain: str) -> list[Finding | None]:
    """What DNS says of the name and its services; when DNS does not answer, one note."""
    address = await resolver.addresses(domain)
    found: list[Finding | None] = [_addresses(domain, address)]
    if address.unanswered:
        return found
    if c2s := ctx.settings.ports.get("c2s"):
        found.append(await _service_records(resolver, domain, "_xmpp-client", int(c2s), "apps"))
        found.append(await _direct_tls(resolver, domain))
    if (s2s := ctx.settings.ports.get("s2s")) and ctx.settings.federation:
        found.append(await _service_records(resolver, domain, "_xmpp-server", int(s2s), "servers"))
        found.append(await _rooms(resolver, domain))
    return found


async def check(ctx: Context) -> Report:
    domain = ctx.ejabberd.domain
    lan = lan_address()
    public_name = is_public_name(domain)
    findings: list[Finding | None] = [_name(domain)]
    if public_name:
        findings += await _records(ctx, Resolver(ctx.settings.dns_servers), domain)
    findings += [
        _certificate(ctx),
        _listening(ctx),
        _calls(ctx, lan),
        _federation(ctx, public_name),
    ]
    return Report(
        domain=domain,
        public_name=public_name,
        lan_address=lan,
        checked_at=time.time(),
        findings=tuple(f for f in findings if f is not None),
        forwards=_forwards(ctx) if public_name else (),
    )


class Checks:
    """The last report, shared by every page load and API call for REUSE_SECONDS (a busy
    console asks DNS a few times a minute at most); one check at a time."""

    def __init__(self) -> None:
        self._last: Report | None = None
        self._lock = asyncio.Lock()

    async def report(self, ctx: Context, fresh: bool = False) -> Report:
        async with self._lock:
            if fresh or self._last is None or time.time() - self._last.checked_at > REUSE_SECONDS:
                self._last = await check(ctx)
            return self._last
