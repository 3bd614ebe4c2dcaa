"""Reading the next chunk of a walk while the current one is worked on.

A whole-audience walk (the pre-send check) alternates between waiting for the
database (a chunk's query, its suppression and frequency-cap look-ups) and
Python work on the rows. `read_ahead` runs the chunk generator in a thread
with its own database connection, a chunk or two ahead: the drivers
(sqlite3, psycopg) let go of the GIL while the database works, so the two
overlap.

Another connection sees only committed data: inside a transaction (a test's
`db` fixture, a caller's `atomic`), the walk could not see its own rows from
the thread, so it runs in line instead, as before.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from django.db import connections, transaction

T = TypeVar("T")

# Chunks read ahead at most: memory stays a few chunks.
DEPTH = 2
_END = object()


def in_transaction() -> bool:
    """Whether this thread's connection is inside an atomic block (another
    connection would not see what it wrote)."""
    return transaction.get_connection().in_atomic_block


def read_ahead(chunks: Callable[[], Iterable[T]], depth: int = DEPTH) -> Iterator[T]:
    """The items of `chunks()`, produced by a thread `depth` items ahead.

    `chunks` is called in the thread, so its queries use the thread's own
    connection, which is closed when it ends. An error in the thread is
    raised here, at the point the failing chunk would have come; leaving
    the loop early (an error in the caller) stops the thread.
    """
    if in_transaction():
        yield from chunks()
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item) -> bool:
        """Put `item` in the queue; False when the reader has gone."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks():
                if not hand_over((chunk, None)):
                    return
            hand_over((_END, None))
        except BaseException as exc:  # handed to the reader, raised there
            hand_over((_END, exc))
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
