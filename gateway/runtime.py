"""Process settings: the garbage collector's pace, for serving and for an import.

A large GraphQL response keeps tens of thousands of objects alive until it is written (rows,
result dicts, graphql-core's bookkeeping). CPython's default pace runs a full collection —
a walk over every object in the process — every few hundred thousand of them, about six
times while a 1,000-person nested page is built, which more than doubled its time
(`benchmarks/graph_api.py` measures it). Almost all of that garbage is freed by reference
counting anyway; cycles are rare, so full collections can be rarer.

An import makes millions of short-lived objects (cells, rows, parameter tuples), freed by
reference counting too; at the default pace the collector's walks took 1.5 of the 10 seconds of
the import benchmark at 20,000 users and 200,000 enrollments.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FULL_COLLECTION_EVERY = 1_000
"""Collections of the middle generation between two full collections (CPython's default: 10)."""


def pace_garbage_collector() -> None:
    """Keep CPython's young-generation pace; make full collections a hundred times rarer."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


IMPORT_YOUNG_COLLECTION_EVERY = 10_000
"""Objects made (net) between two young-generation collections during an import (CPython's
default: 700). Measured at 20,000 users and 200,000 enrollments: the collector's time 1.5 s at
the default pace, 0.45 s with full collections rarer alone, 0.27 s with this as well. At 50,000
it was 0.06 s, but the peak RSS at 100,000 users and 1,000,000 enrollments rose from 217 MiB to
232 MiB (garbage cycles wait longer); at 10,000 it stays at 217 MiB, and no slower there."""


_imports = {"running": 0}
_before: list[tuple[int, int, int]] = []


@contextmanager
def paced_for_import() -> Iterator[None]:
    """Pace the collector for an import while the block runs: young collections rarer, full
    ones as rare as `pace_garbage_collector` makes them; the pace before is restored when the
    last of the imports running at once (in this process's event loop) ends."""
    if _imports["running"] == 0:
        young, middle, full = gc.get_threshold()
        _before.append((young, middle, full))
        gc.set_threshold(
            max(young, IMPORT_YOUNG_COLLECTION_EVERY), middle, max(full, FULL_COLLECTION_EVERY)
        )
    _imports["running"] += 1
    try:
        yield
    finally:
        _imports["running"] -= 1
        if _imports["running"] == 0:
            gc.set_threshold(*_before.pop())
