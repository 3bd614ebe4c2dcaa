"""A disk-backed set of keys with the line each was first seen on.

Duplicate detection over a million-row file must not hold every key in
memory; a throw-away SQLite file keeps memory flat whatever the file size.
The keys are phone numbers: the file is unlinked as soon as it is open (the
open connection keeps using it), so that a worker killed mid-import leaves no
copy of them behind, out of erasure's reach.
"""

import os
import sqlite3
import tempfile


class SeenKeys:
    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="import-seen-", suffix=".sqlite3")
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;"
            "CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID;"
        )
        os.unlink(self.path)

    def check_and_add(self, items: list[tuple[str, int]]) -> list[int | None]:
        """Add (key, line) pairs; for each, the line its key was first seen on.

        The result is aligned with `items`: None for a key seen for the first
        time, else the earlier line (also for repeats inside `items`).
        """
        earlier: dict[str, int] = {}
        keys = [k for k, _ in items]
        for start in range(0, len(keys), 900):
            part = keys[start : start + 900]
            marks = ",".join("?" * len(part))
            earlier.update(
                self.db.execute(
                    f"SELECT key, line FROM seen WHERE key IN ({marks})", part
                ).fetchall()
            )
        result: list[int | None] = []
        fresh: list[tuple[str, int]] = []
        for key, line in items:
            result.append(earlier.get(key))
            if key not in earlier:
                earlier[key] = line
                fresh.append((key, line))
        self.db.executemany("INSERT INTO seen VALUES (?, ?)", fresh)
        return result

    def close(self) -> None:
        self.db.close()
