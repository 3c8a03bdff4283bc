"""Minimal XMPP clients for the framed transports: WebSocket (RFC 7395) and BOSH (XEP-0206).

slixmpp, used for the TCP/STARTTLS tests, speaks neither, so these speak just enough of
both to log in with SCRAM-SHA-1 (the benchmark's SCRAM, checked against the RFC examples),
bind a resource and exchange messages with a real server.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect

from pi_im_bench.scram import SaltedPasswordCache, ScramClient, ScramError

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"
NS_HTTPBIND = "http://jabber.org/protocol/httpbind"
NS_XBOSH = "urn:xmpp:xbosh"

T = TypeVar("T")


class AuthenticationFailed(Exception):
    """The server answered the SASL exchange with <failure/>."""


class Transport(Protocol):
    def open_stream(self, domain: str, restart: bool) -> list[ET.Element]: ...
    def send(self, *elements: str) -> list[ET.Element]: ...
    def receive(self) -> list[ET.Element]: ...
    def close(self) -> None: ...


class WebSocketTransport:
    """websockets' asyncio client on a loop of its own: one thread drives the TLS socket.

    Its sync client reads in a second thread while the first writes, which OpenSSL does not
    allow on one connection: with TLS 1.3 the reader handling the server's session tickets
    sometimes swallows the upgrade request (it never reaches the wire; about 1 in 100).
    """

    def __init__(
        self, url: str, tls: ssl.SSLContext | None = None, origin: str | None = None
    ) -> None:
        """`origin`: the page a browser would say it opens the socket from (none: an app)."""
        self.loop = asyncio.new_event_loop()
        try:
            self.ws: ClientConnection = self._run(
                connect(
                    url,
                    subprotocols=["xmpp"],
                    open_timeout=10,
                    ping_interval=None,
                    ssl=tls,
                    origin=origin,  # type: ignore[arg-type]
                )
            )
        except BaseException:
            self.loop.close()
            raise
        self.domain = ""

    def _run(self, step: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, 10))

    def _frames_until(self, tag: str) -> list[ET.Element]:
        frames: list[ET.Element] = []
        while not frames or frames[-1].tag != tag:
            frames.append(ET.fromstring(self._run(self.ws.recv())))
        return frames

    def open_stream(self, domain: str, restart: bool) -> list[ET.Element]:
        self.domain = domain
        self._run(self.ws.send(f'<open xmlns="{NS_FRAMING}" to="{domain}" version="1.0"/>'))
        return self._frames_until(f"{{{NS_STREAMS}}}features")

    def send(self, *elements: str) -> list[ET.Element]:
        for element in elements:
            self._run(self.ws.send(element))
        return []

    def receive(self) -> list[ET.Element]:
        return [ET.fromstring(self._run(self.ws.recv()))]

    def drop(self) -> None:
        """End the TCP connection with no close frame and no </close>, as a browser tab that is
        closed or loses its network does. The loop runs once more: asyncio closes the socket
        on its next turn."""
        self.ws.transport.abort()
        try:
            self.loop.run_until_complete(asyncio.sleep(0.2))
        finally:
            self.loop.close()

    def close(self) -> None:
        try:
            self._run(self.ws.send(f'<close xmlns="{NS_FRAMING}"/>'))
            self._run(self.ws.close())
        finally:
            self.loop.close()


class BoshTransport:
    def __init__(self, url: str, tls: ssl.SSLContext | None = None) -> None:
        self.url = url
        self.http = httpx.Client(timeout=30, verify=tls or True)
        self.rid = secrets.randbelow(2**40)
        self.sid = ""

    def _post(self, attrs: str, payload: str = "", closing: bool = False) -> list[ET.Element]:
        self.rid += 1
        sid = f' sid="{self.sid}"' if self.sid else ""
        body = (
            f'<body xmlns="{NS_HTTPBIND}" xmlns:xmpp="{NS_XBOSH}" rid="{self.rid}"{sid} '
            f"{attrs}>{payload}</body>"
        )
        response = self.http.post(
            self.url, content=body, headers={"Content-Type": "text/xml; charset=utf-8"}
        )
        response.raise_for_status()
        root = ET.fromstring(response.content)
        if root.get("type") == "terminate" and not closing:
            raise ConnectionError(f"BOSH session terminated: {root.get('condition')}")
        self.sid = self.sid or root.get("sid", "")
        return list(root)

    def open_stream(self, domain: str, restart: bool) -> list[ET.Element]:
        if restart:
            children = self._post(f'to="{domain}" xml:lang="en" xmpp:restart="true"')
        else:
            children = self._post(
                f'to="{domain}" content="text/xml; charset=utf-8" hold="1" wait="5" '
                f'ver="1.6" xml:lang="en" xmpp:version="1.0"'
            )
        while not any(c.tag == f"{{{NS_STREAMS}}}features" for c in children):
            children = self._post("")
        return children

    def send(self, *elements: str) -> list[ET.Element]:
        return self._post("", "".join(elements))

    def receive(self) -> list[ET.Element]:
        return self._post("")

    def close(self) -> None:
        self._post(
            'type="terminate"', f'<presence xmlns="{NS_CLIENT}" type="unavailable"/>', closing=True
        )
        self.http.close()


class FramedClient:
    """Log in with SCRAM-SHA-1, bind, send presence, exchange messages."""

    def __init__(self, transport: Transport, jid: str, password: str) -> None:
        self.transport = transport
        self.user, self.domain = jid.split("@", 1)
        self.password = password
        self.pending: list[ET.Element] = []
        self.mechanisms: list[str] = []
        self.features: list[str] = []
        self.bound_features: list[str] = []
        self.jid = ""

    def _next(self, tag: str) -> ET.Element:
        for _ in range(20):
            for index, element in enumerate(self.pending):
                if element.tag == tag or element.tag == f"{{{NS_SASL}}}failure":
                    return self.pending.pop(index)
            self.pending.extend(self.transport.receive())
        raise TimeoutError(f"no {tag} from the server")

    def _sasl_step(self, element: str, expected: str) -> ET.Element:
        """Send one SASL element; the server's answer, or AuthenticationFailed."""
        self.pending.extend(self.transport.send(element))
        answer = self._next(f"{{{NS_SASL}}}{expected}")
        if answer.tag != f"{{{NS_SASL}}}{expected}":
            raise AuthenticationFailed(ET.tostring(answer).decode())
        return answer

    def login(self, resource: str = "framed") -> None:
        features = self.transport.open_stream(self.domain, restart=False)
        mechanisms = next(f for f in features if f.tag == f"{{{NS_STREAMS}}}features")
        self.mechanisms = [m.text or "" for m in mechanisms.iter(f"{{{NS_SASL}}}mechanism")]
        self.features = [child.tag for child in mechanisms]
        scram = ScramClient("SCRAM-SHA-1", self.user, self.password, SaltedPasswordCache())
        challenge = self._sasl_step(
            f'<auth xmlns="{NS_SASL}" mechanism="SCRAM-SHA-1">{_b64(scram.first())}</auth>',
            "challenge",
        )
        try:
            response = scram.final(base64.b64decode(challenge.text or ""))
            outcome = self._sasl_step(
                f'<response xmlns="{NS_SASL}">{_b64(response)}</response>', "success"
            )
            scram.verify(base64.b64decode(outcome.text or ""))
        except ScramError as error:
            raise AuthenticationFailed(str(error)) from error
        restarted = self.transport.open_stream(self.domain, restart=True)
        bound = [e for e in restarted if e.tag == f"{{{NS_STREAMS}}}features"]
        # What the stream offers once authenticated (stream management, CSI, caps...).
        self.bound_features = [child.tag for element in bound for child in element]
        self.pending = [e for e in restarted if e.tag != f"{{{NS_STREAMS}}}features"]
        self.pending.extend(
            self.transport.send(
                f'<iq xmlns="{NS_CLIENT}" type="set" id="bind1"><bind xmlns="{NS_BIND}">'
                f"<resource>{resource}</resource></bind></iq>"
            )
        )
        bound = self._next(f"{{{NS_CLIENT}}}iq")
        self.jid = bound.findtext(f".//{{{NS_BIND}}}jid") or ""
        self.pending.extend(self.transport.send(f'<presence xmlns="{NS_CLIENT}"/>'))
        self._own_presence()

    def _own_presence(self) -> None:
        """Wait until the server has taken the session's presence: it sends it back to this
        resource (RFC 6121 4.2.2). Until then the session is not available, and a message to
        the bare address is not for it (8.5.2.1): a message sent at once could go offline."""
        others: list[ET.Element] = []
        try:
            while True:
                presence = self._next(f"{{{NS_CLIENT}}}presence")
                if presence.get("from") == self.jid:
                    return
                others.append(presence)
        finally:
            self.pending[:0] = others

    def send_message(self, to: str, body: str) -> None:
        message = ET.Element("message", {"xmlns": NS_CLIENT, "to": to, "type": "chat"})
        ET.SubElement(message, "body").text = body
        self.pending.extend(self.transport.send(ET.tostring(message, encoding="unicode")))

    def receive_message(self) -> tuple[str, str]:
        """The next chat message with a body: (sender, body)."""
        for _ in range(20):
            message = self._next(f"{{{NS_CLIENT}}}message")
            body = message.findtext(f"{{{NS_CLIENT}}}body")
            if body is not None:
                return message.get("from", ""), body
        raise TimeoutError("no chat message arrived")

    def close(self) -> None:
        self.transport.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
