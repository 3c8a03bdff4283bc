"""One benchmark session speaking what real clients speak on the wire: a TCP stream,
STARTTLS, SASL SCRAM, resource binding, roster, presence, one-to-one chat (RFC 6120/6121);
or, as today's mobile clients do, SASL2 with Bind2 and FAST token logins (XEP-0388, 0386,
0484), and SCRAM-*-PLUS bound to the TLS connection (tls-server-end-point, RFC 5929).

Raw XML over asyncio streams with expat underneath (XMLPullParser): thousands of these fit
in one process, where one slixmpp object per session would not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .scram import (
    FAST_MECHANISM,
    MECHANISMS,
    ChannelBinding,
    FastClient,
    SaltedPasswordCache,
    ScramClient,
    ScramError,
    TokenCache,
    tls_server_end_point,
)

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"
NS_ROSTER = "jabber:iq:roster"
NS_PING = "urn:xmpp:ping"
NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_FAST = "urn:xmpp:fast:0"
NS_CHANNEL_BINDING = "urn:xmpp:sasl-cb:0"
READ_CHUNK = 16384


class SessionError(Exception):
    """A session failed; `kind` names the step, for the error counts in the report."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    domain: str
    tls: ssl.SSLContext
    mechanism: str | None = None  # None: the strongest SCRAM the server offers
    # SASL2 with Bind2 (no stream restart, no bind round trip); fast: ask for a token at the
    # first login and log in with it after (needs sasl2).
    sasl2: bool = False
    fast: bool = False
    # For the -PLUS mechanisms: tls-server-end-point (any TLS version) or tls-unique (TLS 1.2
    # only). Python's ssl module cannot export keying material, so no tls-exporter here.
    channel_binding: str = "tls-server-end-point"


def client_tls_context(cafile: str | None) -> ssl.SSLContext:
    """Verify against `cafile` when given (the device's own certificate); otherwise accept
    the device's self-signed certificate, as a first-time client that trusts it would."""
    context = ssl.create_default_context(cafile=cafile)
    if cafile is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class StreamReader:
    """Turns bytes of one XML stream into complete top-level elements (stanzas)."""

    def __init__(self) -> None:
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root: ET.Element | None = None
        self.opened = False
        self.closed = False

    def feed(self, data: bytes) -> list[ET.Element]:
        try:
            self._parser.feed(data)
            events = list(self._parser.read_events())  # parse errors surface here
        except ET.ParseError as error:
            raise SessionError("xml", str(error)) from error
        stanzas = []
        for event, element in events:
            if event == "start":
                self._depth += 1
                if self._depth == 1:
                    self._root = element
                    self.opened = True
            else:
                self._depth -= 1
                if self._depth == 1 and self._root is not None:
                    stanzas.append(element)
                    self._root.remove(element)
                elif self._depth == 0:
                    self.closed = True
        return stanzas


def stream_header(domain: str, sender: str = "") -> bytes:
    """`sender`: the account's bare JID, which servers want before they offer SASL2."""
    origin = f" from={quoteattr(sender)}" if sender else ""
    return (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='{NS_STREAMS}' to={quoteattr(domain)}{origin} version='1.0' xml:lang='en'>"
    ).encode()


MessageHandler = Callable[[str, int], None]


class Session:
    """A logged-in client: `login()` once, then `send_chat()`; incoming chat bodies go to
    `on_message(body, received_ns)`."""

    def __init__(
        self,
        endpoint: Endpoint,
        user: str,
        password: str,
        cache: SaltedPasswordCache,
        tokens: TokenCache | None = None,
        user_agent: str | None = None,
    ):
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.cache = cache
        self.tokens = tokens if tokens is not None else TokenCache()
        # FAST ties a token to the client that asked for it (XEP-0388's user-agent id).
        self.user_agent = user_agent or str(uuid.uuid5(uuid.NAMESPACE_URL, f"pi-im-bench:{user}"))
        self.jid = ""
        self.mechanism_used = ""
        self.features: ET.Element | None = None
        self.on_message: MessageHandler | None = None
        self.on_closed: Callable[[Session, SessionError | None], None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._stream = StreamReader()
        self._pending: list[ET.Element] = []
        self._read_task: asyncio.Task[None] | None = None
        self._answers: dict[str, asyncio.Future[ET.Element]] = {}
        self._closing = False

    # -- login ---------------------------------------------------------------------------

    async def login(self, resource: str, roster: bool) -> None:
        endpoint = self.endpoint
        try:
            self._reader, self._writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        except OSError as error:
            raise SessionError("connect", str(error)) from error
        features = await self._open_stream()
        if features.find(f"{{{NS_TLS}}}starttls") is None:
            raise SessionError("starttls", "server does not offer STARTTLS")
        self._write(f"<starttls xmlns='{NS_TLS}'/>")
        answer = await self._next("starttls")
        if answer.tag != f"{{{NS_TLS}}}proceed":
            raise SessionError("starttls", f"server answered {answer.tag}")
        try:
            await self._writer.start_tls(endpoint.tls, server_hostname=endpoint.domain)
        except (OSError, ssl.SSLError) as error:
            raise SessionError("tls", str(error)) from error
        features = await self._open_stream(identify=endpoint.sasl2)
        self.features = features
        if endpoint.sasl2:
            await self._authenticate_sasl2(features, resource)
        else:
            await self._authenticate(features)
            await self._bind(resource)
        if roster:
            self._write(f"<iq type='get' id='roster'><query xmlns='{NS_ROSTER}'/></iq>")
            await self._result("roster")
        self._write("<presence/>")
        self._read_task = asyncio.get_running_loop().create_task(self._read_forever())

    async def _bind(self, resource: str) -> None:
        features = await self._open_stream()
        if features.find(f"{{{NS_BIND}}}bind") is None:
            raise SessionError("bind", "server does not offer resource binding")
        self._write(
            f"<iq type='set' id='bind'><bind xmlns='{NS_BIND}'>"
            f"<resource>{escape(resource)}</resource></bind></iq>"
        )
        bound = await self._result("bind")
        jid = bound.findtext(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid")
        if not jid:
            raise SessionError("bind", "no JID in the bind result")
        self.jid = jid

    async def _open_stream(self, identify: bool = False) -> ET.Element:
        self._stream = StreamReader()
        sender = f"{self.user}@{self.endpoint.domain}" if identify else ""
        self._write_raw(stream_header(self.endpoint.domain, sender))
        features = await self._next("stream")
        if features.tag != f"{{{NS_STREAMS}}}features":
            raise SessionError("stream", f"expected stream features, got {features.tag}")
        return features

    def _choose(self, offered: set[str]) -> str:
        wanted = [self.endpoint.mechanism] if self.endpoint.mechanism else list(MECHANISMS)
        mechanism = next((m for m in wanted if m in offered), None)
        if mechanism is None:
            raise SessionError("auth", f"no common mechanism in {sorted(map(str, offered))}")
        self.mechanism_used = mechanism
        return mechanism

    def binding_types(self) -> list[str]:
        """The channel-binding types the server said it can do (XEP-0440)."""
        if self.features is None:
            return []
        found = self.features.iter(f"{{{NS_CHANNEL_BINDING}}}channel-binding")
        return [str(binding.get("type")) for binding in found]

    def _scram(self, mechanism: str) -> ScramClient:
        binding = None
        if mechanism.endswith("-PLUS"):
            kind = self.endpoint.channel_binding
            if kind not in self.binding_types():
                raise SessionError("auth", f"server does not offer {kind}")
            binding = ChannelBinding(kind, self._binding_data(kind))
        return ScramClient(mechanism, self.user, self.password, self.cache, binding=binding)

    def _binding_data(self, kind: str) -> bytes:
        assert self._writer is not None
        connection: ssl.SSLObject = self._writer.get_extra_info("ssl_object")
        if kind == "tls-server-end-point":
            return tls_server_end_point(connection.getpeercert(binary_form=True) or b"")
        data = connection.get_channel_binding(kind) if kind == "tls-unique" else None
        if not data:
            raise SessionError("auth", f"no {kind} data on this connection")
        return data

    async def _authenticate(self, features: ET.Element) -> None:
        offered = {str(m.text) for m in features.iter(f"{{{NS_SASL}}}mechanism")}
        mechanism = self._choose(offered)
        if mechanism == "PLAIN":
            await self._authenticate_plain()
            return
        scram = self._scram(mechanism)
        self._write(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{_b64(scram.first())}</auth>")
        await self._answer_challenge(scram, NS_SASL)
        success = await self._next("auth")
        self._expect_sasl(success, "success")
        try:
            scram.verify(base64.b64decode(success.text or ""))
        except ScramError as error:
            raise SessionError("auth", str(error)) from error

    async def _authenticate_sasl2(self, features: ET.Element, resource: str) -> None:
        """SASL2 with Bind2 inline: one exchange authenticates and binds, no stream restart.
        With FAST, a known token logs in at once; otherwise SCRAM, asking for a token."""
        offer = features.find(f"{{{NS_SASL2}}}authentication")
        if offer is None:
            raise SessionError("auth", "server does not offer SASL2")
        inline = (
            f"<user-agent id={quoteattr(self.user_agent)}><software>pi-im-bench</software>"
            f"</user-agent><bind xmlns='{NS_BIND2}'><tag>{escape(resource)}</tag></bind>"
        )
        token = self.tokens.get(self.user) if self.endpoint.fast else None
        if token is not None:
            fast = FastClient(self.user, token)
            self.mechanism_used = FAST_MECHANISM
            self._write(
                f"<authenticate xmlns='{NS_SASL2}' mechanism='{FAST_MECHANISM}'>"
                f"<initial-response>{_b64(fast.initial_response())}</initial-response>"
                f"{inline}<fast xmlns='{NS_FAST}'/></authenticate>"
            )
            success = await self._sasl2_outcome(fast.verify)
        else:
            offered = {str(m.text) for m in offer.findall(f"{{{NS_SASL2}}}mechanism")}
            scram = self._scram(self._choose(offered))
            request = (
                f"<request-token xmlns='{NS_FAST}' mechanism='{FAST_MECHANISM}'/>"
                if self.endpoint.fast
                else ""
            )
            self._write(
                f"<authenticate xmlns='{NS_SASL2}' mechanism='{scram.mechanism}'>"
                f"<initial-response>{_b64(scram.first())}</initial-response>"
                f"{inline}{request}</authenticate>"
            )
            await self._answer_challenge(scram, NS_SASL2)
            success = await self._sasl2_outcome(scram.verify)
        issued = success.find(f"{{{NS_FAST}}}token")
        if issued is not None and issued.get("token"):
            self.tokens.put(self.user, str(issued.get("token")).encode())
        jid = success.findtext(f"{{{NS_SASL2}}}authorization-identifier")
        if not jid or success.find(f"{{{NS_BIND2}}}bound") is None:
            raise SessionError("bind", "SASL2 success without a bound resource")
        self.jid = jid

    async def _answer_challenge(self, scram: ScramClient, namespace: str) -> None:
        """SCRAM's middle step, the same in SASL and SASL2 but for the namespace."""
        challenge = await self._next("auth")
        self._expect(challenge, namespace, "challenge")
        try:
            response = scram.final(base64.b64decode(challenge.text or ""))
        except ScramError as error:
            raise SessionError("auth", str(error)) from error
        self._write(f"<response xmlns='{namespace}'>{_b64(response)}</response>")

    async def _sasl2_outcome(self, verify: Callable[[bytes], None]) -> ET.Element:
        """The server's success, its proof (additional data) checked by `verify`."""
        outcome = await self._next("auth")
        if outcome.tag == f"{{{NS_SASL2}}}failure" and self.mechanism_used == FAST_MECHANISM:
            # An expired or revoked token: the next login uses the password again.
            self.tokens.forget(self.user)
        self._expect(outcome, NS_SASL2, "success")
        try:
            verify(base64.b64decode(outcome.findtext(f"{{{NS_SASL2}}}additional-data", "")))
        except ScramError as error:
            raise SessionError("auth", str(error)) from error
        return outcome

    async def _authenticate_plain(self) -> None:
        """PLAIN (RFC 4616), only to measure what it costs a server that stores SCRAM keys."""
        token = f"\0{self.user}\0{self.password}".encode()
        self._write(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{_b64(token)}</auth>")
        self._expect_sasl(await self._next("auth"), "success")

    @staticmethod
    def _expect_sasl(element: ET.Element, name: str) -> None:
        Session._expect(element, NS_SASL, name)

    @staticmethod
    def _expect(element: ET.Element, namespace: str, name: str) -> None:
        if element.tag != f"{{{namespace}}}{name}":
            condition = next((child.tag.split("}")[-1] for child in element), element.tag)
            raise SessionError("auth", f"expected {name}, got {condition}")

    async def _result(self, iq_id: str) -> ET.Element:
        while True:
            element = await self._next(iq_id)
            if element.tag == f"{{{NS_CLIENT}}}iq" and element.get("id") == iq_id:
                if element.get("type") != "result":
                    raise SessionError(iq_id, ET.tostring(element, encoding="unicode")[:200])
                return element

    async def _next(self, step: str) -> ET.Element:
        while not self._pending:
            if self._stream.closed:
                raise SessionError(step, "server closed the stream")
            data = await self._read(step)
            self._pending.extend(self._stream.feed(data))
        element = self._pending.pop(0)
        if element.tag == f"{{{NS_STREAMS}}}error":
            condition = next((child.tag.split("}")[-1] for child in element), "unknown")
            raise SessionError(step, f"stream error {condition}")
        return element

    async def _read(self, step: str) -> bytes:
        assert self._reader is not None
        try:
            data = await self._reader.read(READ_CHUNK)
        except (OSError, ssl.SSLError) as error:
            raise SessionError(step, str(error)) from error
        if not data:
            raise SessionError(step, "connection closed")
        return data

    # -- after login ---------------------------------------------------------------------

    async def _read_forever(self) -> None:
        failure: SessionError | None = None
        try:
            while not self._stream.closed:
                data = await self._read("session")
                received_ns = time.monotonic_ns()
                for stanza in self._stream.feed(data):
                    self._dispatch(stanza, received_ns)
        except SessionError as error:
            failure = error
        except asyncio.CancelledError:
            return
        if self._closing:
            return
        if failure is None:
            failure = SessionError("dropped", "server closed the stream")
        if self.on_closed:
            self.on_closed(self, failure)

    def _dispatch(self, stanza: ET.Element, received_ns: int) -> None:
        tag = stanza.tag
        if tag == f"{{{NS_CLIENT}}}message":
            body = stanza.findtext(f"{{{NS_CLIENT}}}body")
            if body is not None and self.on_message:
                self.on_message(body, received_ns)
        elif tag == f"{{{NS_CLIENT}}}iq" and stanza.get("type") in ("get", "set"):
            self._answer_iq(stanza)
        elif tag == f"{{{NS_CLIENT}}}iq" and stanza.get("id") in self._answers:
            answer = self._answers[stanza.get("id", "")]
            if answer.done():
                pass
            elif stanza.get("type") == "result":
                answer.set_result(stanza)
            else:
                detail = ET.tostring(stanza, encoding="unicode")[:200]
                answer.set_exception(SessionError("iq", detail))
        elif tag == f"{{{NS_STREAMS}}}error":
            condition = next((child.tag.split("}")[-1] for child in stanza), "unknown")
            raise SessionError("dropped", f"stream error {condition}")

    def _answer_iq(self, iq: ET.Element) -> None:
        to = quoteattr(iq.get("from", self.endpoint.domain))
        iq_id = quoteattr(iq.get("id", ""))
        if iq.find(f"{{{NS_PING}}}ping") is not None:
            self._write(f"<iq type='result' to={to} id={iq_id}/>")
        else:
            self._write(
                f"<iq type='error' to={to} id={iq_id}><error type='cancel'>"
                "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "</error></iq>"
            )

    async def ask(self, iq_id: str, payload: str, timeout: float = 20) -> ET.Element:
        """An iq get to the server once logged in, and its result (SessionError if refused)."""
        answer = asyncio.get_running_loop().create_future()
        self._answers[iq_id] = answer
        try:
            self._write(
                f"<iq type='get' to={quoteattr(self.endpoint.domain)} id={quoteattr(iq_id)}>"
                f"{payload}</iq>"
            )
            return await asyncio.wait_for(answer, timeout)
        finally:
            del self._answers[iq_id]

    def send_chat(self, to: str, body: str, message_id: str) -> None:
        self._write(
            f"<message type='chat' to={quoteattr(to)} id={quoteattr(message_id)}>"
            f"<body>{escape(body)}</body></message>"
        )

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def close(self) -> None:
        """End the stream politely, then the connection."""
        self._closing = True
        writer = self._writer
        if writer is None:
            return
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            if not writer.is_closing():
                writer.write(b"</stream:stream>")
                await asyncio.wait_for(writer.drain(), 5)
        if self._read_task is not None:
            self._read_task.cancel()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)

    def abort(self) -> None:
        self._closing = True
        if self._read_task is not None:
            self._read_task.cancel()
        if self._writer is not None:
            self._writer.transport.abort()

    def _write(self, text: str) -> None:
        self._write_raw(text.encode())

    def _write_raw(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise SessionError("send", "connection closed")
        self._writer.write(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
