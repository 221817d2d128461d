"""What every demo row draws from: the seeded generator, a pool of timestamps, a serial number."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from gateway.demo.ids import stable_id
from gateway.demo.school_year import CREATED, UPDATE_WINDOW


def stamps(rng: random.Random, count: int = 4096) -> list[tuple[datetime, datetime]]:
    """`count` (created, updated) pairs: rows draw from them instead of doing date arithmetic."""
    pairs = []
    for _ in range(count):
        created = CREATED + timedelta(seconds=int(rng.random() * 86_400 * 60))
        pairs.append((created, created + timedelta(seconds=int(rng.random() * UPDATE_WINDOW))))
    return pairs


def iso(value: datetime) -> str:
    """`value` as OneRoster writes dateLastModified (UTC with a Z)."""
    return value.isoformat().replace("+00:00", "Z")


class RowMaker:
    """The state rows of every table share, so that they draw from it in one fixed order."""

    def __init__(self, rng: random.Random, source_id: str) -> None:
        self.rng = rng
        self.source_id = source_id
        self.stamps = stamps(rng)
        self._serial = 0

    def next_serial(self) -> int:
        """The next number of the sequence that people's, enrollments' and agents' SIS ids share."""
        self._serial += 1
        return self._serial

    def base(self, key: str, identifiers: list[dict[str, str]]) -> dict[str, Any]:
        """The columns every graph row has: id (from `key`), source, stamps, identifiers."""
        created, updated = self.stamps[int(self.rng.random() * len(self.stamps))]
        return {
            "id": stable_id(key),
            "source_id": self.source_id,
            "created_date": created,
            "updated_date": updated,
            "identifiers": identifiers,
        }
