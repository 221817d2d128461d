"""The demo's calendar: the 2025-26 school year as it stood on 20 January 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime

AS_OF = date(2026, 1, 20)  # the demo's "today": it decides which sessions are active
CREATED = datetime(2025, 7, 1, 6, 0, tzinfo=UTC)
YEAR = (date(2025, 8, 18), date(2026, 6, 5))
TERMS = ((date(2025, 8, 18), date(2025, 12, 19)), (date(2026, 1, 6), date(2026, 6, 5)))
QUARTERS = (
    (date(2025, 8, 18), date(2025, 10, 17)),
    (date(2025, 10, 20), date(2025, 12, 19)),
    (date(2026, 1, 6), date(2026, 3, 13)),
    (date(2026, 3, 23), date(2026, 6, 5)),
)
UPDATE_WINDOW = int((datetime(2026, 1, 19, tzinfo=UTC) - CREATED).total_seconds()) - 86_400 * 61


def session_state(start: date, end: date) -> str:
    """COMPLETED, ACTIVE or UPCOMING, as a session from `start` to `end` stands on AS_OF."""
    if end < AS_OF:
        return "COMPLETED"
    return "UPCOMING" if start > AS_OF else "ACTIVE"
