"""What an integration can be scoped to: a source's schools, courses and classes, by name.

`list_targets` answers "which ids can I pass as a target" (`gateway targets list`, the admin
API's `targets` query); `describe_targets` names the targets an integration already has, so
every place that shows an integration shows what its targets are, not bare UUIDs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.errors import ValidationFailed

_schools = models.table_of(models.School)
_courses = models.table_of(models.Course)
_classes = models.table_of(models.Class)


class TargetKind(enum.StrEnum):
    """The kinds of rows a SELECTED integration's targets may name (DESIGN §4)."""

    SCHOOL = "SCHOOL"
    COURSE = "COURSE"
    CLASS = "CLASS"


def parse_kind(value: str) -> TargetKind:
    """`school` / `course` / `class` (any case) as a TargetKind, or ValidationFailed."""
    try:
        return TargetKind(value.strip().upper())
    except ValueError:
        raise ValidationFailed(f"kind {value!r} is not school, course or class") from None


@dataclass(frozen=True, slots=True)
class Target:
    """A school, course or class with its name and, for a course or class, its school's name.

    `name` is None for a target that no longer exists (an import removed it from the source);
    `school` is None for a school, and for a course that belongs to the district, not a school.
    """

    id: str
    kind: TargetKind
    name: str | None
    school: str | None

    def as_json(self) -> dict[str, Any]:
        """`{"id", "kind", "name", "school"}`."""
        return {"id": self.id, "kind": self.kind.value, "name": self.name, "school": self.school}

    def title(self) -> str:
        """For people: `Algebra 1A (class, Springfield High)`."""
        where = self.kind.value.lower() + (f", {self.school}" if self.school else "")
        return f"{self.name or '(removed)'} ({where})"

    def label(self) -> str:
        """The title and the id: `Algebra 1A (class, Springfield High) 3f2b…`."""
        return f"{self.title()} {self.id}"


def _selects(
    source_id: str | None, ids: list[str] | None
) -> dict[TargetKind, sa.Select[tuple[Any, Any, Any]]]:
    """One SELECT of `(id, name, school name)` per kind, restricted to a source or to ids."""
    course_school = _schools.alias("course_school")
    class_school = _schools.alias("class_school")
    selects: dict[TargetKind, sa.Select[tuple[Any, Any, Any]]] = {
        TargetKind.SCHOOL: sa.select(
            _schools.c.id, _schools.c.name, sa.null().label("school")
        ).select_from(_schools),
        TargetKind.COURSE: sa.select(
            _courses.c.id, _courses.c.name, course_school.c.name.label("school")
        ).select_from(
            _courses.outerjoin(course_school, course_school.c.id == _courses.c.school_id)
        ),
        TargetKind.CLASS: sa.select(
            _classes.c.id, _classes.c.name, class_school.c.name.label("school")
        ).select_from(_classes.join(class_school, class_school.c.id == _classes.c.school_id)),
    }
    tables = {TargetKind.SCHOOL: _schools, TargetKind.COURSE: _courses, TargetKind.CLASS: _classes}
    for kind, table in tables.items():
        if source_id is not None:
            selects[kind] = selects[kind].where(table.c.source_id == source_id)
        if ids is not None:
            selects[kind] = selects[kind].where(table.c.id.in_(ids))
    return selects


async def list_targets(
    conn: AsyncConnection,
    source_id: str,
    *,
    kind: TargetKind | None = None,
    search: str | None = None,
) -> list[Target]:
    """The schools, then the courses, then the classes of `source_id` (each by school name,
    name and id), only those of `kind` when given, only those whose name contains `search`
    (ignoring the case of ASCII letters) when given."""
    text = (search or "").strip().lower()
    found: list[Target] = []
    for each, select in _selects(source_id, None).items():
        if kind is not None and each is not kind:
            continue
        columns = select.selected_columns
        if text:
            select = select.where(sa.func.lower(columns.name).contains(text, autoescape=True))
        select = select.order_by(columns.school.nulls_first(), columns.name, columns.id)
        found.extend(
            Target(row.id, each, row.name, row.school) for row in await conn.execute(select)
        )
    return found


async def describe_targets(conn: AsyncConnection, kinds: Mapping[str, str]) -> dict[str, Target]:
    """Each of the targets `kinds` (id → SCHOOL, COURSE or CLASS, as stored with an integration)
    with its name; one that no longer exists keeps its kind and has no name."""
    described = {
        target_id: Target(target_id, TargetKind(kind), None, None)
        for target_id, kind in kinds.items()
    }
    if not described:
        return described
    for kind, select in _selects(None, list(described)).items():
        for row in await conn.execute(select):
            if described[row.id].kind is kind:
                described[row.id] = Target(row.id, kind, row.name, row.school)
    return described
