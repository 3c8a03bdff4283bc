"""What every request passes before any handler: a known Host, a bounded body, and an access
log line that never carries a secret."""

from __future__ import annotations

import ipaddress
import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("pi_im_admin.access")

# Paths whose last part is a secret (an invitation token): logged without it.
_SECRET_PATH = re.compile(r"^(/invite/)[^/]+")


async def _refuse(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


class BodyLimit:
    """Refuses a body over `max_bytes` (413) before any handler sees it: by its declared
    length, or, when it declares none, once that much has streamed in. What is allowed is
    small, so it is read here whole and handed on."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"A request body may be at most {self.max_bytes} bytes."
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit():
            await _refuse(send, 400, "The Content-Length header is not a number.")
            return
        if int(declared) > self.max_bytes:
            await _refuse(send, 413, too_large)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _refuse(send, 413, too_large)
                return
            if not message.get("more_body", False):
                break
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if handed:
                return await receive()
            handed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


class KnownHosts:
    """Answers only requests addressed to the device by one of its names or by an IP address:
    a page loaded from some other name (DNS rebinding) gets nothing from the console."""

    def __init__(self, app: ASGIApp, names: tuple[str, ...]) -> None:
        self.app = app
        self.names = {name.lower().rstrip(".") for name in names}

    def known(self, host: str) -> bool:
        if host.startswith("["):  # [IPv6]:port
            name = host[1:].split("]", 1)[0]
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        name = name.lower().rstrip(".")
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not self.known(host):
                await _refuse(send, 400, "This console does not answer to that host name.")
                return
        await self.app(scope, receive, send)


class AccessLog:
    """One line per request: method, path without its query or secret part, status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info(
                "%s %s %s %d %.0f ms",
                client[0],
                scope["method"],
                _SECRET_PATH.sub(r"\1…", scope["path"])[:200],
                status,
                (time.monotonic() - began) * 1000,
            )
