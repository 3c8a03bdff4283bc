"""SCRAM (RFC 5802 / RFC 7677) for both ends of the benchmark.

The client side keeps the salted password per account, as real clients do after their
first login: logging in then costs a few HMACs, not 4,096 PBKDF2 rounds, so the load the
benchmark puts on the server is the server's share of a login, not the client's.
The server side derives the keys ejabberd and Prosody store, which is what lets the bulk
account path skip the server's own (slow, pure-Erlang) hashing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

#: Mechanism name -> hashlib name, strongest first (the order a client prefers).
MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}
ITERATIONS = 4096
GS2_HEADER = "n,,"


class ScramError(Exception):
    """The exchange broke the protocol, or the server could not prove it knows the keys."""


def salted_password(digest: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)


@dataclass(frozen=True)
class StoredKeys:
    """What a server keeps for one account: never the password itself."""

    digest: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, digest: str, salted: bytes, salt: bytes, iterations: int) -> StoredKeys:
        client_key = hmac.digest(salted, b"Client Key", digest)
        return cls(
            digest=digest,
            salt=salt,
            iterations=iterations,
            stored_key=hashlib.new(digest, client_key).digest(),
            server_key=hmac.digest(salted, b"Server Key", digest),
        )


@dataclass
class SaltedPasswordCache:
    """(digest, salt, iterations, password) -> salted password, filled once per account."""

    entries: dict[tuple[str, bytes, int, str], bytes] = field(default_factory=dict)
    computed: int = 0

    def get(self, digest: str, password: str, salt: bytes, iterations: int) -> bytes:
        key = (digest, salt, iterations, password)
        salted = self.entries.get(key)
        if salted is None:
            salted = salted_password(digest, password, salt, iterations)
            self.entries[key] = salted
            self.computed += 1
        return salted

    def put(self, digest: str, password: str, salt: bytes, iterations: int, salted: bytes) -> None:
        self.entries[(digest, salt, iterations, password)] = salted


def _attributes(message: str) -> dict[str, str]:
    try:
        return dict(part.split("=", 1) for part in message.split(","))
    except ValueError as error:
        raise ScramError(f"malformed SCRAM message {message!r}") from error


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    """One SCRAM exchange without channel binding (the server offers no -PLUS over STARTTLS
    that every peer supports alike, so all targets are measured the same way)."""

    def __init__(
        self,
        mechanism: str,
        user: str,
        password: str,
        cache: SaltedPasswordCache,
        nonce: str | None = None,
    ):
        if mechanism not in MECHANISMS:
            raise ScramError(f"unsupported mechanism {mechanism}")
        self.mechanism = mechanism
        self.digest = MECHANISMS[mechanism]
        self.password = password
        self.cache = cache
        self.nonce = nonce or secrets.token_urlsafe(18)
        self.first_bare = f"n={_saslname(user)},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> bytes:
        return f"{GS2_HEADER}{self.first_bare}".encode()

    def final(self, server_first_raw: bytes) -> bytes:
        server_first = server_first_raw.decode()
        attrs = _attributes(server_first)
        if not attrs.get("r", "").startswith(self.nonce) or attrs["r"] == self.nonce:
            raise ScramError("server nonce does not extend ours")
        try:
            salt = base64.b64decode(attrs["s"], validate=True)
            iterations = int(attrs["i"])
        except (KeyError, ValueError) as error:
            raise ScramError(f"bad salt or iteration count in {server_first!r}") from error
        salted = self.cache.get(self.digest, self.password, salt, iterations)
        keys = StoredKeys.derive(self.digest, salted, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", self.digest)
        without_proof = f"c={base64.b64encode(GS2_HEADER.encode()).decode()},r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(keys.stored_key, auth_message, self.digest)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.server_signature = hmac.digest(keys.server_key, auth_message, self.digest)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final_raw: bytes) -> None:
        attrs = _attributes(server_final_raw.decode())
        if "e" in attrs:
            raise ScramError(f"server refused: {attrs['e']}")
        if not hmac.compare_digest(base64.b64decode(attrs.get("v", "")), self.server_signature):
            raise ScramError("server signature does not match: not the server holding the keys")
