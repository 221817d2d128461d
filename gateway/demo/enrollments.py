"""The demo's enrollments: students in their subjects' classes, then teachers, TAs, designers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from gateway.demo.district import SCHOOLS, SUBJECTS
from gateway.demo.ids import stable_id
from gateway.demo.people import People
from gateway.demo.plan import Plan, PlannedClass
from gateway.demo.rows import RowMaker
from gateway.demo.school_year import AS_OF, TERMS, YEAR

_ENROLLMENT_STATUS = {"ACTIVE": "active", "COMPLETED": "inactive", "INACTIVE": "inactive",
                      "DROPPED": "tobedeleted"}  # fmt: skip


def enrollment_rows(plan: Plan, rows: RowMaker, people: People) -> Iterator[dict[str, Any]]:
    """Every enrollment; `people` must have built its rows (their ids are enrolled here)."""
    rng = rows.rng
    turn: Counter[tuple[int, str | None, int]] = Counter()
    district = {
        (s, j)
        for s, school in enumerate(SCHOOLS)
        for j, subject in enumerate(SUBJECTS[school.kind])
        if subject.course == "district"
    }
    for i, person_id in enumerate(people.student_ids):
        s = plan.school[i]
        for j in plan.subjects[i]:
            unit_key = (s, None if (s, j) in district else plan.grade[i], j)
            unit = plan.units[unit_key]
            cls = unit[turn[unit_key] % len(unit)]
            turn[unit_key] += 1
            yield _enrollment(rows, f"enrollment:{cls.key}:{i}", person_id, cls, "STUDENT",
                              student=True)  # fmt: skip
        if i in plan.dual_students:
            cls = plan.dual_students[i]
            yield _enrollment(rows, f"enrollment:{cls.key}:{i}", person_id, cls, "STUDENT",
                              student=True)  # fmt: skip
    teachers = people.person_ids.get("TEACHER", [])
    for cls in plan.classes:
        yield _enrollment(rows, f"enrollment:{cls.key}:teacher", teachers[cls.teacher], cls,
                          "TEACHER", student=False)  # fmt: skip
    for role, most in (("TA", 3), ("DESIGNER", 2)):
        for k, person_id in enumerate(people.person_ids.get(role, [])):
            pool = plan.by_school[k % len(SCHOOLS)]
            for cls in rng.sample(pool, min(len(pool), rng.randint(1, most))):
                yield _enrollment(rows, f"enrollment:{cls.key}:{role.lower()}:{k}", person_id,
                                  cls, role, student=False)  # fmt: skip


def _enrollment(
    rows: RowMaker, key: str, person_id: str, cls: PlannedClass, role: str, *, student: bool
) -> dict[str, Any]:
    # The hot path of a large demo (about six rows per student): one dict, few calls.
    rng = rows.rng
    serial = rows.next_serial()
    start, end = YEAR if cls.semester is None else TERMS[cls.semester]
    state = "COMPLETED" if cls.semester == 0 else "ACTIVE"
    section = None
    if student:
        roll = rng.random()
        if state == "ACTIVE" and roll < 0.03:
            state = "DROPPED"
            end = start + timedelta(days=1 + int(roll * 1000) % (AS_OF - start).days)
        elif state == "ACTIVE" and roll < 0.04:
            state = "INACTIVE"
        if cls.sections and rng.random() < 0.7:
            section = cls.sections[int(rng.random() * len(cls.sections))]
    sis = f"ENR-{serial:08d}"
    created, updated = rows.stamps[int(rng.random() * len(rows.stamps))]
    return {
        "id": stable_id(key),
        "source_id": rows.source_id,
        "created_date": created,
        "updated_date": updated,
        "identifiers": [{"type": "sis_id", "value": sis}],
        "properties": {"status": _ENROLLMENT_STATUS[state]},
        "person_id": person_id,
        "class_id": cls.id,
        "section_id": section,
        "role": role,
        "primary": role == "TEACHER",
        "state": state,
        "start_date": start,
        "end_date": end,
    }
