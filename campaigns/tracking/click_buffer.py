"""Clicks written in bulk: a per-process buffer flushed by a background thread.

The redirect appends each click to `BUFFER` (a list append, no I/O) and a
daemon thread writes what gathered every FLUSH_EVERY_S seconds in one INSERT.
Nothing is lost when the process ends: `flush()` runs at interpreter exit
(atexit) and from gunicorn's worker_exit hook (config/gunicorn.conf.py), so
a worker replaced after max_requests or stopped with SIGTERM writes its
buffer first. A write that fails keeps the clicks for the next round.

A click whose short link was deleted meanwhile (the person was erased) is
dropped at the flush: nothing of an erased person is written back.
"""

import atexit
import logging
import threading
from datetime import datetime

from django.db import close_old_connections, connection, connections

from campaigns.models import Click, ShortLink

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.5
# (code, link id, campaign id, recipient id, is_test, is_preview, agent, at)
Entry = tuple[int, int, int, int, bool, bool, str, datetime]

_lock = threading.Lock()
_buffer: list[Entry] = []
_thread: threading.Thread | None = None
_pid_started: int | None = None
_stopping = threading.Event()


def add(entry: Entry) -> None:
    """Keep one click for the next flush (starts the flusher if needed)."""
    _buffer.append(entry)  # atomic under the GIL
    if _thread is None or not _thread.is_alive():
        _start()


def pending() -> int:
    return len(_buffer)


def flush() -> int:
    """Write every buffered click now; how many were written."""
    global _buffer
    with _lock:
        taken, _buffer = _buffer, []
        if not taken:
            return 0
        try:
            return _write(taken)
        except Exception:
            log.exception("clicks not written yet: kept for the next flush")
            _buffer = taken + _buffer
            close_old_connections()
            connection.close()
            return 0


def _write(entries: list[Entry]) -> int:
    if connection.vendor == "postgresql":
        return _write_postgresql(entries)
    codes = {e[0] for e in entries}
    alive = set(ShortLink.objects.filter(code__in=codes).values_list("code", flat=True))
    rows = [
        Click(
            link_id=e[1],
            campaign_id=e[2],
            recipient_id=e[3],
            is_test=e[4],
            is_preview=e[5],
            agent=e[6],
            clicked_at=e[7],
        )
        for e in entries
        if e[0] in alive
    ]
    Click.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _write_postgresql(entries: list[Entry]) -> int:
    """One statement, little Python: the flusher holds the GIL (which the
    worker's request threads need) as briefly as it can. The columns go as
    binary arrays (%b, psycopg's own cursor): Django's cursor quotes every
    value into the SQL text in Python, which was most of the flush's GIL."""
    import psycopg

    click, short = Click._meta.db_table, ShortLink._meta.db_table
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        cur.execute(
            f"INSERT INTO {click} (link_id, campaign_id, recipient_id, is_test, "
            "is_preview, agent, clicked_at) SELECT c.link_id, c.campaign_id, "
            "c.recipient_id, c.is_test, c.is_preview, c.agent, c.clicked_at FROM "
            "unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], "
            "%b::boolean[], %b::boolean[], %b::text[], %b::timestamptz[]) AS "
            "c(code, link_id, campaign_id, recipient_id, is_test, is_preview, "
            f"agent, clicked_at) WHERE EXISTS (SELECT 1 FROM {short} s "
            "WHERE s.code = c.code)",
            [list(column) for column in zip(*entries, strict=True)],
        )
        return cur.rowcount


def _run() -> None:
    try:
        while not _stopping.wait(FLUSH_EVERY_S):
            if _buffer:
                flush()
    finally:
        connections.close_all()  # this thread's own connection


def stop() -> None:
    """Stop the flusher thread (its connection closed) and write the rest."""
    global _thread
    thread = _thread
    if thread is not None:
        _stopping.set()
        thread.join(10)
        _stopping.clear()
        _thread = None
    flush()


def _start() -> None:
    global _thread, _pid_started
    import os

    with _lock:
        if _thread is not None and _thread.is_alive() and _pid_started == os.getpid():
            return
        _thread = threading.Thread(target=_run, name="click-flusher", daemon=True)
        _pid_started = os.getpid()
        _thread.start()


atexit.register(flush)
