"""Two chunks at a time on PostgreSQL: one written, the next resolved.

A thread sends one chunk's writes and commits them on one connection while
the importer reads the next batch and resolves it on a second connection, in
that chunk's own transaction: its identities found and locked, its ids
taken, its rows made into COPY text (plan.ChunkPlan.prepare). The database
writes while Python works, and the lookups of one chunk no longer wait for
the writes of the one before.

The two chunks share nothing the database would have to order: a file names
each (channel, identity) once, so they never lock or write one identity. What
the next chunk needs of the one being written is the contacts it creates, by
external id (Importer.created_in_flight); its writes go out only once that
chunk has committed, so those rows exist by then. Its lease, checkpoint and
report lines are saved when it is written, in order (Importer.close_chunk).
The next chunk does not wait for a row lock while one is written (NOWAIT):
a number on another channel, which the chunk being written locked, is
resolved again after that chunk's commit.

A chunk the database refuses (an IntegrityError: something changed under the
import) is written again row by row, as on the serial path; the next chunk,
resolved against what the refused one was to create, is rolled back first
(its locks with it) and resolved again. Any other error rolls back what is
not committed, and the run stops there, as it would have serially.

Only on PostgreSQL (SQLite has one writer, and its read snapshot cannot
become a write once another connection has committed), and only when the
import runs in no transaction of its caller (the second connection would not
see what that transaction holds).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    OperationalError,
    connection,
    connections,
)
from django.db.transaction import Atomic, atomic

from config.lib.shared_connection import quick_switches
from contacts.importing.plan import ChunkPlan
from contacts.importing.reader import Batch

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from contacts.importing.importer import Importer

log = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for FOR UPDATE NOWAIT


def usable() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


@dataclass(eq=False)
class _Chunk:
    batch: Batch
    last: int  # its last line: the checkpoint
    db: BaseDatabaseWrapper
    transaction: Atomic | None = None  # open from resolving to commit
    plan: ChunkPlan | None = None
    write: Callable[[], None] | None = None
    thread: threading.Thread | None = None
    refused: bool = False  # the database refused the chunk: row by row
    failed: BaseException | None = None  # rolled back


def write_chunks(
    importer: Importer,
    chunks: Iterable[tuple[Batch, int]],
    read_ahead: Callable[[], None],
) -> None:
    """Write `chunks` ((batch, last line), in file order) two at a time;
    `read_ahead` reads the next batch while a chunk is written."""
    pair = [connections.create_connection(DEFAULT_DB_ALIAS) for _ in range(2)]
    for db in pair:
        db.inc_thread_sharing()  # each chunk is resolved here, written there
    live: list[_Chunk] = []  # not committed yet, in file order
    try:
        with quick_switches():
            for n, (batch, last) in enumerate(chunks):
                chunk = _Chunk(batch, last, pair[n % 2])
                live.append(chunk)
                if not _resolve(importer, chunk, wait=len(live) == 1):
                    # A row the chunk being written holds: after its commit.
                    _land(importer, live[0], following=None)
                    live.pop(0)
                    _resolve(importer, chunk, wait=True)
                if len(live) == 2:
                    _land(importer, live[0], following=chunk)
                    live.pop(0)
                _start(importer, chunk)
                read_ahead()
            if live:
                _land(importer, live[0], following=None)
                live.pop(0)
    finally:
        for chunk in live:
            _abandon(importer, chunk)
        importer.created_in_flight = {}
        for db in pair:
            db.close()
            db.dec_thread_sharing()


@contextlib.contextmanager
def _using(db: BaseDatabaseWrapper):
    """`db` as this thread's default connection, for the while."""
    before = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = db
    try:
        yield
    finally:
        connections[DEFAULT_DB_ALIAS] = before


def _resolve(importer: Importer, chunk: _Chunk, *, wait: bool) -> bool:
    """Open the chunk's transaction and make its writes ready. Without
    `wait` (a chunk is being written), a stored identity locked by another
    transaction is not waited for: that may be the chunk being written, whose
    commit can need this thread (_land). Returns False then, rolled back."""
    with _using(chunk.db):
        chunk.transaction = atomic()
        chunk.transaction.__enter__()
        try:
            if chunk.batch.rows:
                importer.erased.refresh()  # owners erased since, as serially
                chunk.plan = ChunkPlan(importer, chunk.batch.rows, wait=wait)
                chunk.write = chunk.plan.prepare()
        except OperationalError as exc:
            _end(chunk, *sys.exc_info())
            if wait or getattr(exc.__cause__, "sqlstate", "") != LOCK_NOT_AVAILABLE:
                raise
            chunk.plan = chunk.write = None
            return False
        except BaseException:
            _end(chunk, *sys.exc_info())
            raise
    return True


def _start(importer: Importer, chunk: _Chunk) -> None:
    """The chunk's writes and commit, in a thread."""
    importer.created_in_flight = chunk.plan.created if chunk.plan else {}
    chunk.thread = threading.Thread(
        target=_write_and_commit,
        args=(importer, chunk),
        name="import-chunk-writer",
        daemon=True,
    )
    chunk.thread.start()


def _write_and_commit(importer: Importer, chunk: _Chunk) -> None:
    connections[DEFAULT_DB_ALIAS] = chunk.db  # this thread's, for the while
    try:
        problems: dict[int, str] = {}
        if chunk.plan is not None:
            try:
                with atomic():  # a savepoint: the chunk's locks stay held
                    chunk.write()
            except IntegrityError:
                chunk.refused = True  # written row by row (_land)
                return
            importer.count(chunk.plan)
            problems = chunk.plan.problems
        importer.close_chunk(chunk.batch, chunk.last, problems)
        _end(chunk, None, None, None)
    except BaseException as exc:
        chunk.failed = exc
        if chunk.transaction is not None:
            _end(chunk, *sys.exc_info())
    finally:
        del connections[DEFAULT_DB_ALIAS]  # not closed: write_chunks closes it


def _land(importer: Importer, chunk: _Chunk, following: _Chunk | None) -> None:
    """Wait for the chunk's commit. A chunk the database refused is written
    row by row first, after `following` (resolved meanwhile, maybe against
    what the refused chunk was to create) has been rolled back; `following`
    is then resolved again."""
    chunk.thread.join()
    if chunk.failed is not None:
        raise chunk.failed
    if chunk.refused:
        if following is not None:
            _end(following, IntegrityError, None, None)
        importer.created_in_flight = {}  # what it was to create is not there
        with _using(chunk.db):
            problems = importer.row_by_row(chunk.batch.rows)
            importer.close_chunk(chunk.batch, chunk.last, problems)
        _end(chunk, None, None, None)
        if following is not None:
            following.plan = following.write = None
            _resolve(importer, following, wait=True)
    importer.chunk_done()


def _end(chunk: _Chunk, kind, exc, traceback) -> None:
    """Commit the chunk's transaction, or roll it back (`kind` given)."""
    transaction, chunk.transaction = chunk.transaction, None
    if transaction is None:
        return
    if threading.current_thread() is chunk.thread:
        transaction.__exit__(kind, exc, traceback)  # on the thread's mapping
    else:
        with _using(chunk.db):
            transaction.__exit__(kind, exc, traceback)


def _abandon(importer: Importer, chunk: _Chunk) -> None:
    """After an error elsewhere (the file cannot be read on, say): the
    chunk's thread waited for; what it committed counted, as it is in the
    database, and what it did not rolled back."""
    if chunk.thread is not None:
        chunk.thread.join()
        if chunk.transaction is None and chunk.failed is None and not chunk.refused:
            importer.committed = dict(importer.counts)
    try:
        _end(chunk, RuntimeError, None, None)
    except Exception:
        log.exception("rolling back an unfinished import chunk failed")
