"""Benchmark accounts: made in bulk on the target, remembered on the controller.

The admin API registers ~150 accounts/s because ejabberd hashes each password in pure
Erlang. Here the controller derives the SCRAM keys itself (OpenSSL's PBKDF2, all cores) and
hands only the derived keys to a helper on the device that writes them in one transaction:
the same rows ejabberd writes, at thousands per second. The salted passwords stay in the
manifest, as a real client's cache would. The helper exists only where the operator turned
it on (`ejabberd_bench_accounts: true`); it refuses names it did not create.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .scram import StoredKeys, salted_password

PREFIX = "bench-"


def account_name(index: int) -> str:
    return f"{PREFIX}{index:05d}"


@dataclass(frozen=True)
class Account:
    index: int
    password: str
    digest: str
    salt: bytes
    iterations: int
    salted: bytes | None = None

    @property
    def name(self) -> str:
        return account_name(self.index)


def _derive(args: tuple[int, str, int]) -> Account:
    index, digest, iterations = args
    password = secrets.token_urlsafe(12)
    salt = os.urandom(16)
    return Account(
        index,
        password,
        digest,
        salt,
        iterations,
        salted_password(digest, password, salt, iterations),
    )


def derive_accounts(indices: list[int], digest: str, iterations: int) -> list[Account]:
    """Fresh random passwords and salts; PBKDF2 on every core."""
    with ProcessPoolExecutor() as pool:
        jobs = [(index, digest, iterations) for index in indices]
        return list(pool.map(_derive, jobs, chunksize=256))


def helper_rows(accounts: list[Account]) -> bytes:
    """What the device helper reads: one JSON object per line, keys only (no passwords)."""
    lines = []
    for account in accounts:
        assert account.salted is not None
        keys = StoredKeys.derive(account.digest, account.salted, account.salt, account.iterations)
        lines.append(
            json.dumps(
                {
                    "user": account.name,
                    "stored_key": _b64(keys.stored_key),
                    "server_key": _b64(keys.server_key),
                    "salt": _b64(keys.salt),
                    "iterations": keys.iterations,
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Manifest:
    """The controller's record of the accounts on one target (passwords and salted
    passwords: a client's cache). Lives under .cache/, never in the repository."""

    path: Path
    domain: str
    digest: str
    iterations: int
    accounts: dict[int, Account]

    @classmethod
    def load(cls, path: Path, domain: str, digest: str, iterations: int) -> Manifest:
        if path.exists():
            data = json.loads(path.read_text())
            if (data["domain"], data["digest"], data["iterations"]) == (domain, digest, iterations):
                accounts = {
                    int(index): Account(
                        int(index),
                        password,
                        digest,
                        base64.b64decode(salt),
                        iterations,
                        base64.b64decode(salted),
                    )
                    for index, (password, salt, salted) in data["accounts"].items()
                }
                return cls(path, domain, digest, iterations, accounts)
        return cls(path, domain, digest, iterations, {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "domain": self.domain,
            "digest": self.digest,
            "iterations": self.iterations,
            "accounts": {
                str(a.index): [a.password, _b64(a.salt), _b64(a.salted or b"")]
                for a in self.accounts.values()
            },
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.touch(mode=0o600)
        temporary.write_text(json.dumps(data))
        temporary.replace(self.path)

    def missing(self, count: int) -> list[int]:
        return [index for index in range(count) if index not in self.accounts]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
