"""Process settings for serving: the garbage collector's pace.

A large GraphQL response keeps tens of thousands of objects alive until it is written (rows,
result dicts, graphql-core's bookkeeping). CPython's default pace runs a full collection —
a walk over every object in the process — every few hundred thousand of them, about six
times while a 1,000-person nested page is built, which more than doubled its time
(`benchmarks/graph_api.py` measures it). Almost all of that garbage is freed by reference
counting anyway; cycles are rare, so full collections can be rarer.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 1_000
"""Collections of the middle generation between two full collections (CPython's default: 10)."""


def pace_garbage_collector() -> None:
    """Keep CPython's young-generation pace; make full collections a hundred times rarer."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
