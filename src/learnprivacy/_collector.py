"""Pausing Python's cyclic garbage collector around a batch of work, restored as found.

Building thousands of objects (rows, records) in a loop sets off collections of the young
generations every 700 allocations and, as the survivors pile up, full collections of the
whole heap; reference counting frees the short-lived ones anyway. A batch built with the
collector paused pays for one collection afterwards instead of dozens during it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the ``with`` block, then restore it.

    The collector is turned back on when the block ends, normally or by an error, only if
    it was on when the block began. The pause is process-wide: other threads run without
    collection for as long as the block lasts, so keep blocks to one batch.
    """
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
