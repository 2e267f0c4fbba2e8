"""The worker's garbage-collector setting: one home, for the worker and for in-process runs of
its batch handler (``evaluate --offline``), whose CPU figures should be a worker's."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def tune_garbage_collector(young_threshold: int) -> None:
    """Collect cyclic garbage after ``young_threshold`` net allocations (Python's: 700).

    A stream worker allocates a few dozen short-lived objects per message, nearly all freed
    by reference counting, yet at Python's threshold the collector ran a young pass every
    ~20 messages, each walking every object still alive from the last one: 8-10% of the
    worker's CPU (measured side by side, 3 of 3 runs). What exists at start (modules, Faust's
    app, the model) is frozen out of every future collection. 0 leaves Python's settings.

    >>> import gc
    >>> before = gc.get_threshold()
    >>> tune_garbage_collector(50_000); gc.get_threshold()[0]
    50000
    >>> gc.unfreeze(); gc.set_threshold(*before)
    """
    if young_threshold <= 0:
        return
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


@contextmanager
def worker_collector(young_threshold: int) -> Iterator[None]:
    """:func:`tune_garbage_collector` for the duration of the block, Python's setting after.

    >>> before = gc.get_threshold()
    >>> with worker_collector(50_000):
    ...     gc.get_threshold()[0]
    50000
    >>> gc.get_threshold() == before
    True
    """
    before = gc.get_threshold()
    tune_garbage_collector(young_threshold)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
