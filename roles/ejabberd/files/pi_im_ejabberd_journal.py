#!/usr/bin/python3
"""Put ejabberd's SQLite file in the given journal mode before ejabberd opens it.

    pi-im-ejabberd-journal DATABASE wal|delete

Runs as ExecStartPre (as the ejabberd user, nothing else has the file open). A missing or
empty file is left for ejabberd, which creates its tables when it finds none.
"""

import sqlite3
import sys
from pathlib import Path


def main() -> int:
    database, mode = Path(sys.argv[1]), sys.argv[2]
    if mode not in ("wal", "delete"):
        print(f"journal mode must be wal or delete, not {mode}", file=sys.stderr)
        return 2
    if not database.exists() or database.stat().st_size == 0:
        return 0
    with sqlite3.connect(database, timeout=60) as db:
        (current,) = db.execute("PRAGMA journal_mode").fetchone()
        if current != mode:
            (current,) = db.execute(f"PRAGMA journal_mode={mode}").fetchone()
            print(f"{database}: journal mode {current}")
    return 0 if current == mode else 1


if __name__ == "__main__":
    sys.exit(main())
