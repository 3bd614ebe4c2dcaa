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

# Two parameters a key: within SQLite's oldest limit of 999 a statement.
_KEYS_PER_STATEMENT = 499


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
        first: dict[str, int] = {}  # key -> the line to report for repeats
        repeats: list[tuple[int, str]] = []
        for pos, (key, line) in enumerate(items):
            if key in first:
                repeats.append((pos, key))
            else:
                first[key] = line
        # Adding is the look-up: the keys a statement did not add were there
        # already (few), and only their lines are read.
        added: set[str] = set()
        pairs = list(first.items())
        for start in range(0, len(pairs), _KEYS_PER_STATEMENT):
            part = pairs[start : start + _KEYS_PER_STATEMENT]
            rows = ",".join(["(?, ?)"] * len(part))
            added.update(
                key
                for (key,) in self.db.execute(
                    # "WHERE true": SQLite's parser needs it before ON CONFLICT.
                    f"INSERT INTO seen SELECT * FROM (VALUES {rows}) WHERE true "
                    "ON CONFLICT DO NOTHING RETURNING key",
                    [value for pair in part for value in pair],
                )
            )
        result: list[int | None] = [None] * len(items)
        known = [key for key in first if key not in added]
        if known:
            earlier = self._lines_of(known)
            first.update(earlier)
            for pos, (key, _) in enumerate(items):
                if key in earlier:
                    result[pos] = earlier[key]
        for pos, key in repeats:
            result[pos] = first[key]
        return result

    def _lines_of(self, keys: list[str]) -> dict[str, int]:
        """{key: the line it was first seen on} for keys already added."""
        lines: dict[str, int] = {}
        for start in range(0, len(keys), _KEYS_PER_STATEMENT):
            part = keys[start : start + _KEYS_PER_STATEMENT]
            marks = ",".join("?" * len(part))
            lines.update(
                self.db.execute(
                    f"SELECT key, line FROM seen WHERE key IN ({marks})", part
                )
            )
        return lines

    def close(self) -> None:
        self.db.close()
