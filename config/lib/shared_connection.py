"""Database work in a second thread, on this thread's connection and in its
transaction, while this thread does something else that needs no database.

A thread waiting for the database holds no lock of Python's: while the
database writes what `work` sent, this thread runs `meanwhile` (an import
reads and validates its next chunk). Only one of the two threads uses the
connection at any time: `meanwhile` must not touch the database.

When the database answers, the waiting thread needs Python's lock back, and
gets it when the busy one hands it over: after 5 ms by default, for each of
the few dozen statements and COPY pieces of an import's chunk, which ate the
whole gain. While work runs beside, the hand-over comes after 0.5 ms.
"""

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterable

from django.db import DEFAULT_DB_ALIAS, connections

SWITCH_INTERVAL_S = 0.0005
_switching = threading.Lock()
_beside = {"runs": 0, "interval": 0.0}  # runs under way, the interval before


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
    _quick_switches(True)
    thread = threading.Thread(target=in_thread, name="database-work", daemon=True)
    thread.start()
    try:
        meanwhile()
    finally:
        thread.join()
        _quick_switches(False)
        shared.dec_thread_sharing()
    if failed:
        raise failed[0]


def run_streamed_beside(
    works: Iterable[Callable[[], None]], meanwhile: Callable[[], None]
) -> None:
    """run_beside for work made piece by piece: each piece of `works` runs
    in the thread as soon as it is made here (by iterating `works`), in
    order, while the next is made; `meanwhile` runs here once all are made.
    Making the pieces must not touch the database (the thread may be using
    the connection), except before the first piece is given."""
    pieces: queue.SimpleQueue = queue.SimpleQueue()

    def work() -> None:
        while (piece := pieces.get()) is not None:
            piece()

    def make_then_meanwhile() -> None:
        try:
            for piece in works:
                pieces.put(piece)
        finally:
            pieces.put(None)  # the thread ends, whatever happened here
        meanwhile()

    run_beside(work, make_then_meanwhile)


@contextlib.contextmanager
def quick_switches():
    """The short switch interval for the while (threads that hand each
    other the database's answers, as run_beside's)."""
    _quick_switches(True)
    try:
        yield
    finally:
        _quick_switches(False)


def _quick_switches(on: bool) -> None:
    """The shorter switch interval while any run_beside is under way (the
    setting is the process's), the one before once none is."""
    with _switching:
        if on:
            if not _beside["runs"]:
                _beside["interval"] = sys.getswitchinterval()
                sys.setswitchinterval(min(_beside["interval"], SWITCH_INTERVAL_S))
            _beside["runs"] += 1
        else:
            _beside["runs"] -= 1
            if not _beside["runs"]:
                sys.setswitchinterval(_beside["interval"])
