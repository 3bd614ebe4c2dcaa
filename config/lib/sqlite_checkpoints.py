"""SQLite's checkpoints on another core while one connection writes a lot.

In WAL mode a commit appends the changed pages to the write-ahead log, and
every so many pages (`wal_autocheckpoint`) the committing connection copies
the log back into the database file itself, in the middle of its own work: 5 %
of a 1,000,000-row import's time (py-spy, native frames), on the one core
SQLite's writing keeps busy. `checkpoints_alongside` copies the log back from
a thread with its own connection instead, every INTERVAL_S (a PASSIVE
checkpoint waits for nobody and holds nobody up; the sqlite3 module lets go
of the GIL while SQLite works), so the writer's log stays short and its own
checkpoints rarely come due. The writer's `wal_autocheckpoint` stays as it was:
if the thread falls behind, the writer still checkpoints itself.

Nothing on other databases, or on a SQLite database that is not a file in
WAL mode (an in-memory one: another connection would not see it).
"""

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator

from django.db import connection

log = logging.getLogger(__name__)

# Each round copies back the pages committed since the last; a page a
# writer changes again and again (a table's or an index's growing end) is
# copied once per round, so rounds far apart cost less: at 0.05 s a
# 1,000,000-row import used 6-10 % more CPU on two cores.
INTERVAL_S = 0.5


@contextlib.contextmanager
def checkpoints_alongside() -> Iterator[None]:
    """For the block: the log copied back by a thread of its own."""
    path = _wal_file_database()
    if path is None:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(
        target=_checkpoint_until, args=(path, stop), name="sqlite-checkpoints"
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _wal_file_database() -> str | None:
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0].lower() != "wal":
            return None
        cursor.execute("PRAGMA database_list")
        path = next(row[2] for row in cursor.fetchall() if row[1] == "main")
    return path or None


def _checkpoint_until(path: str, stop: threading.Event) -> None:
    try:
        db = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error as exc:  # the writer checkpoints itself, as before
        log.warning("no checkpoints alongside the writer: %s", exc)
        return
    try:
        while not stop.wait(INTERVAL_S):
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.OperationalError as exc:  # busy: the next round
                log.debug("checkpoint skipped: %s", exc)
    finally:
        db.close()
