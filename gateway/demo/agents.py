"""The demo's agents: each household's parents and guardians, then aides and case workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.demo.district import SCHOOLS
from gateway.demo.people import People
from gateway.demo.plan import Plan
from gateway.demo.rows import RowMaker

_AGENT_FLAGS = ("primary_contact", "emergency_contact", "lives_with", "pickup_authorized",
                "receives_mail")  # fmt: skip


def agent_rows(plan: Plan, rows: RowMaker, people: People) -> Iterator[dict[str, Any]]:
    """Every agent; `people` must have built its rows (observers and targets are theirs)."""
    rng = rows.rng
    by_household: dict[int, list[str]] = {}
    for i, h in enumerate(plan.household):
        by_household.setdefault(h, []).append(people.student_ids[i])
    for observer, role, h, primary in people.household_contacts:
        for target in by_household.get(h, ()):
            flags = [f for f in _AGENT_FLAGS[1:] if rng.random() < 0.6]
            yield _agent(rows, observer, target, role, ["primary_contact"] * primary + flags)
    by_school: list[list[str]] = [[] for _ in SCHOOLS]
    for i, s in enumerate(plan.school):
        by_school[s].append(people.student_ids[i])
    for role, relationship, most in (("AIDE", "AIDE", 3), ("OBSERVER", "OTHER", 1)):
        for k, observer in enumerate(people.person_ids.get(role, [])):
            pool = by_school[k % len(SCHOOLS)] or people.student_ids
            for target in rng.sample(pool, min(len(pool), rng.randint(1, most))):
                yield _agent(rows, observer, target, relationship, [])


def _agent(
    rows: RowMaker, observer: str, target: str, relationship: str, flags: list[str]
) -> dict[str, Any]:
    sis = f"CT-{rows.next_serial():07d}"
    row = rows.base(f"agent:{observer}:{target}", [{"type": "sis_id", "value": sis}])
    row["properties"] = {
        "relationshipCode": relationship.lower(),
        "contactPriority": 1 if "primary_contact" in flags else 2,
    }
    row.update(observer_id=observer, target_id=target, relationship=relationship, flags=flags)
    return row
