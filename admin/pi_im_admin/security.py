"""Operator passwords (argon2), server-side sessions, CSRF tokens, API tokens and the
limits on failed attempts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .db import Database
from .errors import StorageFull
from .permissions import RANK, Role

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
    """Who is asking: an operator signed in to the console, or an API token acting for the
    operator who made it (never with more than that operator's role today)."""

    name: str
    role: Role
    operator_id: int | None = None
    csrf: str = ""
    # An API token's own end: tokens it makes end no later.
    expires_at: float | None = None


def _capped(token_role: str, operator_role: str) -> Role:
    return min(Role(token_role), Role(operator_role), key=RANK.__getitem__)


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

    def flash(self, token: str | None, kind: str, text: str) -> None:
        """Keep one message for the session's next page: messages never travel in a URL,
        so nobody can put words on the console's pages with a link."""
        if token:
            self.db.run(
                "UPDATE sessions SET flash = ? WHERE id_hash = ?",
                json.dumps({kind: text[:2000]}),
                digest(token),
            )

    def take_flash(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        flash = None
        # Shown even when a full disk keeps it from being cleared (then it shows once more).
        with contextlib.suppress(StorageFull), self.db.transaction() as conn:
            row = conn.execute(
                "SELECT flash FROM sessions WHERE id_hash = ?", (digest(token),)
            ).fetchone()
            flash = row["flash"] if row else None
            if flash:
                conn.execute("UPDATE sessions SET flash = NULL WHERE id_hash = ?", (digest(token),))
        return dict(json.loads(flash)) if flash else {}

    def end(self, token: str | None) -> None:
        if token:
            self.db.run("DELETE FROM sessions WHERE id_hash = ?", digest(token))


class ApiTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def lookup(self, token: str) -> Principal | None:
        """The token's principal while it has not expired and its maker still exists (a
        deleted operator's tokens go with it), at the lower of its role and the maker's."""
        row = self.db.one(
            "SELECT t.id, t.name, t.role, t.expires_at, o.id AS operator_id, "
            "o.role AS operator_role FROM api_tokens t JOIN operators o ON o.id = t.operator_id "
            "WHERE t.token_hash = ? AND t.expires_at > ?",
            digest(token),
            time.time(),
        )
        if row is None:
            return None
        # Bookkeeping: a full disk must not lock the owner out of the console that says so.
        with contextlib.suppress(StorageFull):
            self.db.run(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", time.time(), row["id"]
            )
        return Principal(
            f"token:{row['name']}",
            _capped(row["role"], row["operator_role"]),
            row["operator_id"],
            expires_at=row["expires_at"],
        )


class AttemptLimiter:
    """Failed attempts allowed per key in `window` seconds. Its memory is bounded: keys whose
    failures have all aged out are dropped, and past `max_keys` the oldest key goes first."""

    def __init__(self, limit: int, window: float = 900, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] < time.monotonic() - self.window:
            failures.popleft()
        return failures

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def spend(self, key: str) -> bool:
        """As a rate limit: whether `key` may go once more now (and if so, counted)."""
        if self.blocked(key):
            return False
        self.failed(key)
        return True

    def failed(self, key: str) -> None:
        failures = self._recent(key)
        failures.append(time.monotonic())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        self._prune()

    def _prune(self) -> None:
        for key in [k for k, v in self._failures.items() if not self._recent(k)]:
            del self._failures[key]
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)


class Throttle:
    """Several AttemptLimiters side by side: an attempt is refused when any of its keys has
    failed too often. Sign-ins count per address and per user name at that address, so a
    correct password from an address that has not been guessing always gets in and nobody
    can lock an operator out from elsewhere."""

    def __init__(self, window: float = 900, **limits: int) -> None:
        self.limiters = {kind: AttemptLimiter(limit, window) for kind, limit in limits.items()}

    def blocked(self, **keys: str) -> bool:
        return any(self.limiters[kind].blocked(key) for kind, key in keys.items())

    def failed(self, **keys: str) -> None:
        for kind, key in keys.items():
            self.limiters[kind].failed(key)
