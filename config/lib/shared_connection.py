"""Database work in a second thread, on this thread's connection and in its
transaction, while this thread does something else that needs no database.

A thread waiting for the database holds no lock of Python's: while the
database writes what `work` sent, this thread runs `meanwhile` (an import
reads and validates its next chunk). Only one of the two threads uses the
connection at any time: `meanwhile` must not touch the database.
"""

import threading
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections


def run_beside(work: Callable[[], None], meanwhile: Callable[[], None]) -> None:
    """Run `work` in a thread on this thread's default connection while
    `meanwhile` runs here; returns when both are done, raising what `work`
    raised (as if it had run here)."""
    shared = connections[DEFAULT_DB_ALIAS]
    failed: list[BaseException] = []

    def in_thread() -> None:
        connections[DEFAULT_DB_ALIAS] = shared  # this thread's, for the while
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)
        finally:
            del connections[DEFAULT_DB_ALIAS]  # not closed: it is the caller's

    shared.inc_thread_sharing()
    thread = threading.Thread(target=in_thread, name="database-work", daemon=True)
    thread.start()
    try:
        meanwhile()
    finally:
        thread.join()
        shared.dec_thread_sharing()
    if failed:
        raise failed[0]
