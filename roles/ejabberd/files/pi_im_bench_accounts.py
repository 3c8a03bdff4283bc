#!/usr/bin/python3
"""Bulk benchmark accounts for bench/, on the appliance or on a comparison server.

Installed only where an option asks for it (ejabberd_bench_accounts: true, or a bench peer).
The controller derives the SCRAM keys (no password reaches the device); this writes them as the
server itself stores a SCRAM account, thousands at a time, and keeps a ledger of the names it
made, so `remove` deletes those and nothing else.

    pi-im-bench-accounts info      JSON: server, domain, SCRAM hash, iterations, accounts made
    pi-im-bench-accounts create    JSON lines on stdin: user, stored_key, server_key, salt,
                                   iterations
    pi-im-bench-accounts clean     keep those accounts, delete what runs left (archive, offline)
    pi-im-bench-accounts remove    delete every account this tool made, with all its data

One backend per store: the appliance's ejabberd (SQLite), stock Debian ejabberd (Mnesia, through
erl_call into the running node) and Debian's Prosody (its account files).
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Written by the role that installs this (backend, the domain or the file the device keeps it
# in, and the database for "ejabberd-sql"); the environment variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_BENCH_ACCOUNTS_SETTINGS", "/etc/pi-im/bench-accounts.json"))
NAME = re.compile(r"^bench-[0-9]{5}$")
# Both servers keep SHA-1 SCRAM keys by default (ejabberd 23.01 without auth_scram_hash, Prosody).
DIGEST = "sha1"
ITERATIONS = 4096


@dataclass(frozen=True)
class Account:
    user: str
    stored_key: str
    server_key: str
    salt: str
    iterations: int


def parse(lines: list[str]) -> list[Account]:
    """The controller's rows, refused whole at the first one that is not a benchmark account."""
    accounts = []
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
            account = Account(
                str(item["user"]),
                str(item["stored_key"]),
                str(item["server_key"]),
                str(item["salt"]),
                int(item["iterations"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"line {number}: not an account row ({error})") from error
        if not NAME.match(account.user):
            raise SystemExit(
                f"line {number}: {account.user!r} is not a benchmark name (bench-NNNNN)"
            )
        accounts.append(account)
    return accounts


class Backend(Protocol):
    server: str
    service: str

    def count(self) -> int: ...
    def create(self, accounts: list[Account]) -> None: ...
    def clean(self) -> int: ...
    def remove(self) -> int: ...


class FileLedger:
    """The names this tool made, for stores that cannot hold a table of their own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def add(self, names: list[str]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.write_text("\n".join(sorted({*self.names(), *names})) + "\n")

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


def clear_ejabberd_cache() -> None:
    """ejabberd caches passwords and misses: forget them, or old keys would still log in."""
    # The node's cookie is in ejabberd's home, wherever this runs from.
    home = pwd.getpwnam("ejabberd").pw_dir
    subprocess.run(
        ["ejabberdctl", "clear_cache"],
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "HOME": home},
    )


class EjabberdStore:
    """What both ejabberd backends share: the node's caches forgotten after a change (tests
    without an ejabberd turn it off)."""

    clear_cache = True

    def _forget_cached(self) -> None:
        if self.clear_cache:
            clear_ejabberd_cache()


class EjabberdSql(EjabberdStore):
    """The appliance: ejabberd's SQLite database, the ledger a table in the same transaction."""

    server = service = "ejabberd"
    LEDGER = "pi_im_bench_accounts"

    def __init__(self, database: str, clear_cache: bool = True) -> None:
        # ejabberd holds the same file open; wait for its write lock rather than fail.
        self.db = sqlite3.connect(database, timeout=60, isolation_level=None)
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {self.LEDGER} (username TEXT PRIMARY KEY)")
        self.clear_cache = clear_cache

    def count(self) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {self.LEDGER}").fetchone()[0])

    def create(self, accounts: list[Account]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        ours = {name for (name,) in self.db.execute(f"SELECT username FROM {self.LEDGER}")}
        theirs = [
            a.user
            for a in accounts
            if a.user not in ours
            and self.db.execute("SELECT 1 FROM users WHERE username = ?", (a.user,)).fetchone()
        ]
        if theirs:
            self.db.execute("ROLLBACK")
            raise SystemExit(f"{theirs[0]} exists and was not made by this tool: nothing created")
        self.db.executemany(
            f"INSERT OR IGNORE INTO {self.LEDGER} (username) VALUES (?)",
            [(a.user,) for a in accounts],
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO users (username, password, serverkey, salt, iterationcount) "
            "VALUES (?, ?, ?, ?, ?)",
            [(a.user, a.stored_key, a.server_key, a.salt, a.iterations) for a in accounts],
        )
        self.db.execute("COMMIT")
        self._forget_cached()

    def user_tables(self) -> list[str]:
        """Every table with per-user rows (archive, offline spool, roster, last seen …)."""
        tables = self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [
            name
            for (name,) in tables
            if name not in (self.LEDGER, "users")
            and any(
                column[1] == "username" for column in self.db.execute(f"PRAGMA table_info({name})")
            )
        ]

    def _delete(self, tables: list[str]) -> int:
        self.db.execute("BEGIN IMMEDIATE")
        count = self.count()
        for table in tables:
            self.db.execute(
                f"DELETE FROM {table} WHERE username IN (SELECT username FROM {self.LEDGER})"
            )
        return count

    def clean(self) -> int:
        count = self._delete(self.user_tables())
        self.db.execute("COMMIT")
        return count

    def remove(self) -> int:
        count = self._delete([*self.user_tables(), "users"])
        self.db.execute(f"DELETE FROM {self.LEDGER}")
        self.db.execute("COMMIT")
        self._forget_cached()
        return count


def erlang_binaries(names: list[str]) -> str:
    return ",".join(f'<<"{name}">>' for name in names)


class EjabberdMnesia(EjabberdStore):
    """Stock Debian ejabberd: #passwd records written into the running node through erl_call."""

    server = service = "ejabberd"
    NODE = "ejabberd@localhost"
    COOKIE = Path("/var/lib/ejabberd/.erlang.cookie")
    ERL_CALL = "/usr/lib/erlang/bin/erl_call"
    CHUNK = 1000

    def __init__(self, domain: str, ledger: FileLedger, clear_cache: bool = True) -> None:
        self.domain = domain
        self.ledger = ledger
        self.clear_cache = clear_cache

    def erl(self, expression: str) -> str:
        # The expression goes on stdin, so no key is ever on a command line.
        done = subprocess.run(
            [self.ERL_CALL, "-sname", self.NODE, "-c", self.COOKIE.read_text().strip(), "-e"],
            input=expression + "\n",
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        if not done.stdout.startswith("{ok,"):
            raise SystemExit(f"ejabberd refused: {done.stdout[:300]}")
        return done.stdout

    def count(self) -> int:
        return len(self.ledger.names())

    def create(self, accounts: list[Account]) -> None:
        ours = set(self.ledger.names())
        new = [a.user for a in accounts if a.user not in ours]
        host = f'<<"{self.domain}">>'
        for start in range(0, len(new), self.CHUNK):
            found = self.erl(
                f"[U || U <- [{erlang_binaries(new[start : start + self.CHUNK])}], "
                f"ejabberd_auth:user_exists(U, {host})]."
            )
            if found.strip() != "{ok, []}":
                raise SystemExit(
                    f"{found.strip()} exist and were not made by this tool: nothing created"
                )
        self.ledger.add(new)
        for start in range(0, len(accounts), self.CHUNK):
            records = ",".join(
                f'{{passwd, {{<<"{a.user}">>, {host}}}, {{scram, <<"{a.stored_key}">>, '
                f'<<"{a.server_key}">>, <<"{a.salt}">>, sha, {a.iterations}}}}}'
                for a in accounts[start : start + self.CHUNK]
            )
            self.erl(f"[mnesia:dirty_write(R) || R <- [{records}]], ok.")
        self._forget_cached()

    def _each(self, call: str) -> int:
        names = self.ledger.names()
        for start in range(0, len(names), self.CHUNK):
            self.erl(
                f"[{call} || U <- [{erlang_binaries(names[start : start + self.CHUNK])}]], ok."
            )
        return len(names)

    def clean(self) -> int:
        # What a removed user's data hooks delete (offline messages, roster …), keeping the account.
        host = f'<<"{self.domain}">>'
        return self._each(f"ejabberd_hooks:run(remove_user, {host}, [U, {host}])")

    def remove(self) -> int:
        count = self._each(f'ejabberd_auth:remove_user(U, <<"{self.domain}">>)')
        self.ledger.drop()
        self._forget_cached()
        return count


def prosody_encode(name: str) -> str:
    """Prosody's datamanager file-name encoding: every non-alphanumeric byte as %xx."""
    return "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in name)


def lua_bytes(data: bytes) -> str:
    return "".join(f"\\{byte:03d}" for byte in data)


class Prosody:
    """Debian's Prosody (internal_hashed): the account files it reads at every login."""

    server = service = "prosody"

    def __init__(
        self,
        domain: str,
        ledger: FileLedger,
        data: Path = Path("/var/lib/prosody"),
        owner: str = "prosody",
    ) -> None:
        self.host = data / prosody_encode(domain)
        self.ledger = ledger
        self.owner = owner

    def count(self) -> int:
        return len(self.ledger.names())

    def account_file(self, name: str) -> Path:
        return self.host / "accounts" / f"{prosody_encode(name)}.dat"

    def create(self, accounts: list[Account]) -> None:
        ours = set(self.ledger.names())
        for account in accounts:
            if account.user not in ours and self.account_file(account.user).exists():
                raise SystemExit(
                    f"{account.user} exists and was not made by this tool: nothing created"
                )
        self.ledger.add([a.user for a in accounts])
        owner = pwd.getpwnam(self.owner)
        directory = self.host / "accounts"
        directory.mkdir(parents=True, exist_ok=True)
        for path in (self.host, directory):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        for account in accounts:
            path = self.account_file(account.user)
            path.write_text(
                "return {\n"
                f'\t["iteration_count"] = {account.iterations};\n'
                f'\t["salt"] = "{lua_bytes(base64.b64decode(account.salt))}";\n'
                f'\t["server_key"] = "{base64.b64decode(account.server_key).hex()}";\n'
                f'\t["stored_key"] = "{base64.b64decode(account.stored_key).hex()}";\n'
                "};\n"
            )
            os.chown(path, owner.pw_uid, owner.pw_gid)
            path.chmod(0o640)

    def user_files(self, name: str) -> list[Path]:
        if not self.host.exists():
            return []
        return [
            path
            for store in self.host.iterdir()
            if store.is_dir()
            for path in store.glob(f"{prosody_encode(name)}.*")
        ]

    def _forget(self, keep_account: bool) -> int:
        names = self.ledger.names()
        for name in names:
            for path in self.user_files(name):
                if keep_account and path.parent.name == "accounts":
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        return len(names)

    def clean(self) -> int:
        return self._forget(keep_account=True)

    def remove(self) -> int:
        count = self._forget(keep_account=False)
        self.ledger.drop()
        return count


def become(user: str) -> None:
    """Work as the server's user: a file root created would lock the server out of its store."""
    if os.geteuid() == 0:
        account = pwd.getpwnam(user)
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)


def backend(settings: dict[str, str]) -> Backend:
    ledger = FileLedger(Path("/var/lib/pi-im-bench/accounts"))
    kind = settings["backend"]
    if kind == "ejabberd-sql":
        become("ejabberd")
        return EjabberdSql(settings["database"])
    if kind == "ejabberd-mnesia":
        return EjabberdMnesia(settings["domain"], ledger)
    if kind == "prosody":
        return Prosody(settings["domain"], ledger)
    raise SystemExit(f"{SETTINGS}: unknown backend {kind!r}")


def run(command: str, store: Backend, domain: str) -> dict[str, object]:
    if command == "info":
        return {
            "server": store.server,
            "service": store.service,
            "domain": domain,
            "digest": DIGEST,
            "iterations": ITERATIONS,
            "accounts": store.count(),
        }
    if command == "create":
        accounts = parse([line for line in sys.stdin if line.strip()])
        store.create(accounts)
        return {"created": len(accounts)}
    if command == "clean":
        return {"cleaned": store.clean()}
    if command == "remove":
        return {"removed": store.remove()}
    raise SystemExit(__doc__)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("info", "create", "clean", "remove"):
        raise SystemExit(__doc__)
    settings = json.loads(SETTINGS.read_text())
    if "domain_file" in settings:
        settings["domain"] = Path(settings["domain_file"]).read_text().strip()
    print(json.dumps(run(command, backend(settings), settings["domain"])))


if __name__ == "__main__":
    main()
