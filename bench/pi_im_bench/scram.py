"""SCRAM (RFC 5802 / RFC 7677) for both ends of the benchmark, and FAST tokens (XEP-0484).

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

from cryptography import x509
from cryptography.hazmat.primitives import hashes

#: Mechanism name -> hashlib name, strongest first (the order a client prefers).
MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}
#: The same with channel binding (RFC 5802 section 6): the exchange is tied to this TLS
#: connection, so a man in the middle holding another certificate cannot relay it.
PLUS_MECHANISMS = {f"{name}-PLUS": digest for name, digest in MECHANISMS.items()}
ITERATIONS = 4096
GS2_HEADER = "n,,"
#: The FAST mechanism the benchmark asks tokens for and logs in with (XEP-0484): no channel
#: binding, so the server's share of a token login is measured alone.
FAST_MECHANISM = "HT-SHA-256-NONE"


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


def tls_server_end_point(certificate_der: bytes) -> bytes:
    """RFC 5929's tls-server-end-point: the server certificate hashed with its own signature
    hash, SHA-256 in place of MD5 or SHA-1."""
    algorithm = x509.load_der_x509_certificate(certificate_der).signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return digest.finalize()


@dataclass(frozen=True)
class ChannelBinding:
    """A channel-binding type (RFC 5056 name) and this connection's data for it."""

    kind: str
    data: bytes


class ScramClient:
    """One SCRAM exchange, with channel binding for the -PLUS mechanisms. The benchmark's
    load runs without it (every peer it compares supports that alike); the tests bind."""

    def __init__(
        self,
        mechanism: str,
        user: str,
        password: str,
        cache: SaltedPasswordCache,
        nonce: str | None = None,
        binding: ChannelBinding | None = None,
    ):
        digest = MECHANISMS.get(mechanism) or PLUS_MECHANISMS.get(mechanism)
        if digest is None:
            raise ScramError(f"unsupported mechanism {mechanism}")
        if (mechanism in PLUS_MECHANISMS) != (binding is not None):
            raise ScramError(f"{mechanism} needs channel binding exactly when it ends in -PLUS")
        self.mechanism = mechanism
        self.digest = digest
        self.password = password
        self.cache = cache
        self.nonce = nonce or secrets.token_urlsafe(18)
        self.first_bare = f"n={_saslname(user)},r={self.nonce}"
        self.gs2_header = f"p={binding.kind},," if binding else GS2_HEADER
        self.binding_data = binding.data if binding else b""
        self.server_signature = b""

    def first(self) -> bytes:
        return f"{self.gs2_header}{self.first_bare}".encode()

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
        channel = base64.b64encode(self.gs2_header.encode() + self.binding_data).decode()
        without_proof = f"c={channel},r={attrs['r']}"
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


@dataclass
class TokenCache:
    """A FAST token per account, kept as a client keeps it between logins."""

    tokens: dict[str, bytes] = field(default_factory=dict)

    def get(self, user: str) -> bytes | None:
        return self.tokens.get(user)

    def put(self, user: str, token: bytes) -> None:
        self.tokens[user] = token

    def forget(self, user: str) -> None:
        self.tokens.pop(user, None)


class FastClient:
    """A token login (XEP-0484 HT-SHA-256-*): one HMAC each way, no salted password."""

    def __init__(self, user: str, token: bytes, binding_data: bytes = b""):
        self.user = user
        self.token = token
        self.binding_data = binding_data

    def initial_response(self) -> bytes:
        proof = hmac.digest(self.token, b"Initiator" + self.binding_data, "sha256")
        return self.user.encode() + b"\0" + proof

    def verify(self, additional_data: bytes) -> None:
        expected = hmac.digest(self.token, b"Responder" + self.binding_data, "sha256")
        if not hmac.compare_digest(additional_data, expected):
            raise ScramError("server's FAST proof does not match: not the server holding the token")
