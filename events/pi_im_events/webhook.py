"""A webhook receiver's check that a delivery came from the device (docs/webhooks.md).

The device signs "<X-Pi-Im-Timestamp>.<body>" with HMAC-SHA256 under the webhook's secret and
sends "v1=<hex>" in X-Pi-Im-Signature. `verify` recomputes it over the body exactly as
received, compares in constant time, and refuses a timestamp further than `tolerance`
seconds from now (a replayed delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE = 300


class SignatureError(ValueError):
    """Not a delivery from the device, or too old; the message says which."""


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = TOLERANCE,
    now: float | None = None,
) -> None:
    """Return if `body` with these headers was signed with `secret` within `tolerance`
    seconds; SignatureError otherwise. Header names are matched whatever their case."""
    named = {name.lower(): value for name, value in headers.items()}
    stamp, signed = named.get("x-pi-im-timestamp", ""), named.get("x-pi-im-signature", "")
    if not stamp.isdigit() or not signed.startswith("v1="):
        raise SignatureError("no X-Pi-Im-Timestamp or X-Pi-Im-Signature (v1=) header")
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        raise SignatureError(f"timestamp {stamp} is more than {tolerance} s from now")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signed.removeprefix("v1=")):
        raise SignatureError("the signature does not match this body and secret")
