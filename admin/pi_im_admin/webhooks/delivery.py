"""One HTTP POST of one event to one endpoint, and what its outcome means."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum

import httpx

from . import signing, targets

USER_AGENT = "pi-im-webhooks/1"
# What a receiver says back is kept short: a status line's worth for the deliveries page.
ERROR_CHARS = 300


class Verdict(StrEnum):
    DELIVERED = "delivered"
    # Worth another attempt later: the receiver was down, slow, overloaded or not trusted yet.
    RETRY = "retry"
    # The receiver refused this event (4xx): another attempt would be refused the same.
    REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    http_status: int | None
    error: str
    seconds: float


def client(timeout: float) -> httpx.AsyncClient:
    """The system's CAs (Debian's, plus any the owner added); redirects are not followed: a
    signed event goes to the URL an operator registered, nowhere else."""
    return httpx.AsyncClient(
        verify=ssl.create_default_context(),
        follow_redirects=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"User-Agent": USER_AGENT},
        # Addresses are checked before each delivery (targets.refusal); no proxy in between.
        trust_env=False,
    )


def _reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"no answer in time ({type(error).__name__})"
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return f"{type(error).__name__}: {error}"[:ERROR_CHARS]


async def post(
    http: httpx.AsyncClient,
    url: str,
    secret: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> Outcome:
    started = time.monotonic()
    refused = await asyncio.to_thread(targets.refusal, url)
    if refused:
        return Outcome(Verdict.RETRY, None, refused, 0.0)
    timestamp = int(time.time())
    signed = {
        "Content-Type": "application/json",
        signing.TIMESTAMP: str(timestamp),
        signing.SIGNATURE: signing.signature(secret, timestamp, body),
        **headers,
    }
    try:
        # The whole exchange within the timeout (a receiver trickling its answer out byte by
        # byte holds no delivery longer); streamed and closed unread: what the receiver
        # answers is its status alone.
        async with asyncio.timeout(timeout):
            async with http.stream("POST", url, content=body, headers=signed) as response:
                status, phrase = response.status_code, response.reason_phrase
                location = response.headers.get("location", "")[:200]
    except TimeoutError:
        return Outcome(Verdict.RETRY, None, "no answer in time", time.monotonic() - started)
    except httpx.HTTPError as error:
        return Outcome(Verdict.RETRY, None, _reason(error), time.monotonic() - started)
    seconds = time.monotonic() - started
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, status, "", seconds)
    said = f"HTTP {status} {phrase}".strip()
    if 300 <= status < 400:
        return Outcome(Verdict.RETRY, status, f"{said}: redirected to {location}", seconds)
    if status in (408, 425, 429) or status >= 500:
        return Outcome(Verdict.RETRY, status, said, seconds)
    return Outcome(Verdict.REFUSED, status, said, seconds)
