"""Operator passwords (argon2), server-side sessions, CSRF tokens, API tokens and the
sign-in rate limit."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .db import Database
from .permissions import Role

_hasher = PasswordHasher()
# Verifying against this keeps the time of a sign-in for an unknown name like a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    """Tokens are random and long: a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class Principal:
    """Who is asking: an operator signed in to the console, or an API token."""

    name: str
    role: Role
    operator_id: int | None = None
    csrf: str = ""


class Sessions:
    def __init__(self, db: Database, hours: int) -> None:
        self.db = db
        self.lifetime = hours * 3600

    def start(self, operator_id: int) -> str:
        token = new_token("s")
        self.db.run("DELETE FROM sessions WHERE expires_at < ?", time.time())
        self.db.run(
            "INSERT INTO sessions (id_hash, operator_id, csrf, expires_at) VALUES (?, ?, ?, ?)",
            digest(token),
            operator_id,
            secrets.token_urlsafe(24),
            time.time() + self.lifetime,
        )
        return token

    def lookup(self, token: str | None) -> Principal | None:
        if not token:
            return None
        row = self.db.one(
            "SELECT o.id, o.username, o.role, s.csrf FROM sessions s "
            "JOIN operators o ON o.id = s.operator_id WHERE s.id_hash = ? AND s.expires_at > ?",
            digest(token),
            time.time(),
        )
        if row is None:
            return None
        return Principal(row["username"], Role(row["role"]), row["id"], row["csrf"])

    def end(self, token: str | None) -> None:
        if token:
            self.db.run("DELETE FROM sessions WHERE id_hash = ?", digest(token))


class ApiTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def lookup(self, token: str) -> Principal | None:
        row = self.db.one(
            "SELECT id, name, role FROM api_tokens WHERE token_hash = ?", digest(token)
        )
        if row is None:
            return None
        self.db.run("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", time.time(), row["id"])
        return Principal(f"token:{row['name']}", Role(row["role"]))


class SignInLimiter:
    """Failed sign-ins allowed in `window` seconds: a few per user name (guessing one
    password), more per client address (a family or school shares one address)."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window: float = 900) -> None:
        self.limits = {"user": per_user, "ip": per_address}
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] < time.monotonic() - self.window:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(key)) >= self.limits[key.split(":", 1)[0]] for key in keys)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._recent(key).append(time.monotonic())
