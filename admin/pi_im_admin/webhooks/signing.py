"""Each delivery is signed: HMAC-SHA256 over "<timestamp>.<body>" with the webhook's secret,
sent as X-Pi-Im-Signature: v1=<hex> beside X-Pi-Im-Timestamp (Unix seconds, the time of that
attempt). A receiver recomputes it and refuses old timestamps (docs/webhooks.md)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TIMESTAMP = "X-Pi-Im-Timestamp"
SIGNATURE = "X-Pi-Im-Signature"
SCHEME = "v1"


def new_secret() -> str:
    """256 bits, shown to the operator once."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"
