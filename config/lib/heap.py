"""Long bulk runs (an import, a launch's freeze, its drain loops, a pre-send
check) with the objects alive before them left out of the cyclic garbage
collector's full passes.

Such a run allocates a few objects per row for a million rows, and every full
pass walked the whole heap again: Django, the modules, the app's state. Frozen
(gc.freeze), a pass walks only what the run itself made. Nothing alive before
is freed by the collector meanwhile; objects it allocated are collected as
usual, and unfreezing at the end gives the collector the rest back.
"""

import contextlib
import gc


@contextlib.contextmanager
def frozen_heap():
    """A context manager, or a decorator (@frozen_heap())."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
