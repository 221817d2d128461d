"""The demo's determinism: the seed of its one generator, and ids derived from structural keys."""

from __future__ import annotations

import hashlib
import uuid

SEED = 20250818
NAMESPACE = uuid.UUID("8393ff03-8c86-4510-9bc4-8de98a143dab")


def stable_id(key: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, key))`, computed without the UUID objects (hot path)."""
    digest = hashlib.sha1(NAMESPACE.bytes + key.encode(), usedforsecurity=False).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 3]
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"
