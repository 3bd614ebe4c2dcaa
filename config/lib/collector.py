"""Python's cyclic garbage collector paused during a whole-audience walk.

A walk (the pre-send check) makes a few container objects per member (its
row tuple, its CSV row, the safe copy of that row) that live for one chunk
and are freed by reference counting: none is part of a cycle. The cyclic
collector still runs every 700 new containers, and scans each chunk's rows
again and again as they survive into the older generations: about a fifth
of the check's time. So while a walk runs the collector is paused, and
`collect_young` (after each chunk) clears what cycles the chunk's own queries
may have left, which keeps memory where it was.

Walks may overlap (threads): the collector comes back on when the last one
ends, and only if it was on before the first one began.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_walks = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """Pause automatic collection for the block (the walk)."""
    global _walks, _was_enabled
    with _lock:
        if _walks == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _walks += 1
    try:
        yield
    finally:
        with _lock:
            _walks -= 1
            if _walks == 0 and _was_enabled:
                gc.enable()


def collect_young() -> None:
    """Collect the youngest generation: the objects made since the last
    collection, a chunk's worth (a millisecond or two)."""
    gc.collect(0)
