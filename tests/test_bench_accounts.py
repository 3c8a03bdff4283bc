"""The benchmark account helper's logic, one backend per store: rows are refused whole, the
ledger decides what is ours, and clean/remove touch nothing else. ejabberd itself reads what this
writes in Molecule (test_bench.py) and the peers in `make bench-peers`."""

from __future__ import annotations

import base64
import getpass
import json
import os
import runpy
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[1] / "roles/ejabberd/files/pi_im_bench_accounts.py"
helper = runpy.run_path(str(SCRIPT))


def row(user: str, **changes: Any) -> str:
    item = {
        "user": user,
        "stored_key": base64.b64encode(b"stored " + user.encode()).decode(),
        "server_key": base64.b64encode(b"server").decode(),
        "salt": base64.b64encode(bytes([0, 7, 200, 34, 92])).decode(),
        "iterations": 4096,
    }
    return json.dumps({**item, **changes})


def test_rows_are_read_in_full() -> None:
    (account,) = helper["parse"]([row("bench-00001")])
    assert account.user == "bench-00001"
    assert account.iterations == 4096


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (row("admin"), "line 2: 'admin' is not a benchmark name"),
        (row("bench-1"), "line 2: 'bench-1' is not a benchmark name"),
        (row("bench-00002", iterations="many"), "line 2: not an account row"),
        (json.dumps({"user": "bench-00002"}), "line 2: not an account row"),
        ("{not json", "line 2: not an account row"),
    ],
)
def test_one_bad_row_refuses_them_all(line: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        helper["parse"]([row("bench-00001"), line])


@pytest.fixture
def sql(tmp_path: Path) -> Any:
    """A database with the columns of ejabberd's SQLite schema that the helper reads or writes,
    one account that is not the benchmark's, and an archive table (per-user rows)."""
    path = tmp_path / "ejabberd.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE users (username TEXT PRIMARY KEY, password TEXT NOT NULL, "
            "serverkey TEXT NOT NULL DEFAULT '', salt TEXT NOT NULL DEFAULT '', "
            "iterationcount INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute("CREATE TABLE archive (username TEXT NOT NULL, txt TEXT)")
        db.execute("CREATE TABLE sm (usec INTEGER, pid TEXT)")
        db.execute("INSERT INTO users (username, password) VALUES ('alice', 'x')")
        db.execute("INSERT INTO archive VALUES ('alice', 'hers')")
    return helper["EjabberdSql"](str(path), clear_cache=False)


def rows_of(store: Any, query: str) -> list[tuple[Any, ...]]:
    return list(store.db.execute(query))


def test_sql_writes_scram_rows_and_the_ledger_together(sql: Any) -> None:
    accounts = helper["parse"]([row("bench-00001"), row("bench-00002")])
    sql.create(accounts)
    assert sql.count() == 2
    assert rows_of(sql, "SELECT username, password, iterationcount FROM users ORDER BY 1") == [
        ("alice", "x", 0),
        ("bench-00001", accounts[0].stored_key, 4096),
        ("bench-00002", accounts[1].stored_key, 4096),
    ]


def test_sql_refuses_an_account_it_did_not_make(sql: Any, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "ejabberd.db") as db:
        db.execute("INSERT INTO users (username, password) VALUES ('bench-00009', 'theirs')")
    with pytest.raises(SystemExit, match="bench-00009 exists and was not made by this tool"):
        sql.create(helper["parse"]([row("bench-00001"), row("bench-00009")]))
    assert sql.count() == 0
    assert rows_of(sql, "SELECT username, password FROM users WHERE username LIKE 'bench-%'") == [
        ("bench-00009", "theirs")
    ]
    assert sql.remove() == 0
    assert rows_of(sql, "SELECT count(*) FROM users") == [(2,)]


def test_sql_clean_keeps_accounts_and_remove_takes_only_ours(sql: Any) -> None:
    sql.create(helper["parse"]([row("bench-00001")]))
    sql.create(helper["parse"]([row("bench-00001")]))  # a second run rewrites its own keys
    sql.db.execute("INSERT INTO archive VALUES ('bench-00001', 'a run left this')")
    assert sql.user_tables() == ["archive"]
    assert sql.clean() == 1
    assert rows_of(sql, "SELECT username FROM archive") == [("alice",)]
    assert rows_of(sql, "SELECT count(*) FROM users") == [(2,)]
    assert sql.remove() == 1
    assert rows_of(sql, "SELECT username FROM users") == [("alice",)]
    assert sql.count() == 0


@pytest.fixture
def prosody(tmp_path: Path) -> Any:
    ledger = helper["FileLedger"](tmp_path / "ledger/accounts")
    return helper["Prosody"](
        "chat.example.org", ledger, data=tmp_path / "prosody", owner=getpass.getuser()
    )


def test_prosody_account_files_are_what_prosody_writes(prosody: Any, tmp_path: Path) -> None:
    prosody.create(helper["parse"]([row("bench-00001")]))
    path = tmp_path / "prosody/chat%2eexample%2eorg/accounts/bench%2d00001.dat"
    assert path.read_text() == (
        "return {\n"
        '\t["iteration_count"] = 4096;\n'
        '\t["salt"] = "\\000\\007\\200\\034\\092";\n'
        f'\t["server_key"] = "{b"server".hex()}";\n'
        f'\t["stored_key"] = "{b"stored bench-00001".hex()}";\n'
        "};\n"
    )
    assert path.stat().st_mode & 0o777 == 0o640
    assert prosody.count() == 1


def test_prosody_keeps_what_is_not_ours(prosody: Any, tmp_path: Path) -> None:
    host = tmp_path / "prosody/chat%2eexample%2eorg"
    (host / "accounts").mkdir(parents=True)
    (host / "accounts/bench%2d00009.dat").write_text("theirs")
    with pytest.raises(SystemExit, match="bench-00009 exists and was not made by this tool"):
        prosody.create(helper["parse"]([row("bench-00009")]))
    prosody.create(helper["parse"]([row("bench-00001")]))
    (host / "offline").mkdir()
    (host / "offline/bench%2d00001.list").write_text("left by a run")
    (host / "offline/bench%2d00009.list").write_text("theirs")
    assert prosody.clean() == 1
    assert sorted(p.name for p in host.rglob("*.*")) == [
        "bench%2d00001.dat",
        "bench%2d00009.dat",
        "bench%2d00009.list",
    ]
    assert prosody.remove() == 1
    assert sorted(p.name for p in host.rglob("*.*")) == ["bench%2d00009.dat", "bench%2d00009.list"]
    assert prosody.count() == 0


def test_mnesia_records_are_ejabberds_passwd_records() -> None:
    """The Erlang the Mnesia backend sends, checked for shape here; the stock ejabberd peer
    accepts it in `make bench-peers`."""
    sent: list[str] = []

    class Recording(helper["EjabberdMnesia"]):  # type: ignore[misc]
        def erl(self, expression: str) -> str:
            sent.append(expression)
            return "{ok, []}"

    class Ledger:
        def names(self) -> list[str]:
            return []

        def add(self, names: list[str]) -> None:
            sent.append(f"ledger {names}")

    store = Recording("localhost", Ledger(), clear_cache=False)
    account = helper["parse"]([row("bench-00001")])[0]
    store.create([account])
    assert sent == [
        '[U || U <- [<<"bench-00001">>], ejabberd_auth:user_exists(U, <<"localhost">>)].',
        "ledger ['bench-00001']",
        f'[mnesia:dirty_write(R) || R <- [{{passwd, {{<<"bench-00001">>, <<"localhost">>}}, '
        f'{{scram, <<"{account.stored_key}">>, <<"{account.server_key}">>, '
        f'<<"{account.salt}">>, sha, 4096}}}}]], ok.',
    ]


def run_helper(
    settings: dict[str, str], tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bench-accounts.json"
    path.write_text(json.dumps(settings))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PI_IM_BENCH_ACCOUNTS_SETTINGS": str(path)},
    )


def test_an_unknown_backend_is_named(tmp_path: Path) -> None:
    done = run_helper({"backend": "mysql", "domain": "x"}, tmp_path, "info")
    assert done.returncode == 1
    assert "unknown backend 'mysql'" in done.stderr


def test_an_unknown_command_prints_the_usage(tmp_path: Path) -> None:
    done = run_helper({"backend": "prosody", "domain": "x"}, tmp_path, "drop-everything")
    assert done.returncode == 1
    assert "pi-im-bench-accounts remove" in done.stderr
