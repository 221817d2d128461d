"""Typed filter inputs, one per graph type, each turned into SQL predicates (never Python)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import strawberry
from sqlalchemy.sql.elements import ColumnElement

from gateway.access import scope, views
from gateway.access.grant import Grant
from gateway.coltypes import as_utc, escape_like, tag_contains_any
from gateway.errors import BadUserInput
from gateway.graph import enums
from gateway.graph.directives import filter_gate

Predicate = ColumnElement[bool]


def _uuids(values: Sequence[strawberry.ID], argument: str) -> list[str]:
    """`values` as canonical UUIDs, each once (BAD_USER_INPUT for one that is not a UUID)."""
    out: dict[str, None] = {}
    for value in values:
        try:
            out[str(uuid.UUID(str(value)))] = None
        except ValueError:
            raise BadUserInput(
                f"`{argument}` holds {str(value)[:64]!r}, which is not a UUID "
                "(ids look like 3f2b8c1e-0d5a-4c6e-9b7a-1e2d3c4b5a69)",
                argument=argument,
            ) from None
    return list(out)


MAX_FILTER_TEXT = 1_000
"""Longest text a filter matches against (names, codes, emails are far shorter; SQLite refuses
LIKE patterns past 50,000 bytes)."""


def _text_value(value: str) -> str:
    if len(value) > MAX_FILTER_TEXT:
        raise BadUserInput(
            f"the filter text {value[:32]!r}… is {len(value):,} characters long; filter texts "
            f"are at most {MAX_FILTER_TEXT:,} characters",
            argument="filter",
        )
    # PostgreSQL text cannot hold U+0000, so its driver refuses the parameter (and SQLite's LIKE
    # stops at it); refuse it on every engine, so both answer alike.
    if "\x00" in value:
        raise BadUserInput(
            f"the filter text {value[:64]!r} holds the NUL character (U+0000), which no stored "
            "text contains",
            argument="filter",
        )
    return value


@strawberry.input(description="Match a text field; give one or more operators (all must hold).")
class StringFilter:
    equals: str | None = strawberry.field(default=None, description="Exactly this text.")
    starts_with: str | None = strawberry.field(
        default=None, description="Begins with this text (case-insensitive)."
    )
    contains: str | None = strawberry.field(
        default=None, description="Contains this text (case-insensitive)."
    )

    def predicates(self, column: Any) -> list[Predicate]:
        """The SQL conditions for `column`."""
        out: list[Predicate] = []
        if self.equals is not None:
            out.append(column == _text_value(self.equals))
        if self.starts_with is not None:
            pattern = escape_like(_text_value(self.starts_with)) + "%"
            out.append(column.ilike(pattern, escape="\\"))
        if self.contains is not None:
            pattern = "%" + escape_like(_text_value(self.contains)) + "%"
            out.append(column.ilike(pattern, escape="\\"))
        return out


def _utc(value: datetime, argument: str) -> datetime:
    """`value` in UTC (a time without an offset is taken as UTC)."""
    try:
        return as_utc(value)
    except OverflowError:
        raise BadUserInput(
            f"`{argument}` {value.isoformat()} falls outside the years 1 to 9999 once converted "
            "to UTC; give a moment within them",
            argument=argument,
        ) from None


def _common(
    table: sa.Table, ids: Sequence[strawberry.ID] | None, updated_after: datetime | None, what: str
) -> list[Predicate]:
    out: list[Predicate] = []
    if ids is not None:
        out.append(table.c.id.in_(_uuids(ids, f"filter.ids of {what}")))
    if updated_after is not None:
        out.append(table.c.updated_date > _utc(updated_after, "filter.updatedAfter"))
    return out


def _in(column: Any, values: Sequence[Any] | None) -> list[Predicate]:
    if values is None:
        return []
    return [column.in_(list(dict.fromkeys(v.value if hasattr(v, "value") else v for v in values)))]


def _ids_in(
    grant: Grant,
    column: Any,
    related: sa.Table,
    values: Sequence[strawberry.ID] | None,
    argument: str,
) -> list[Predicate]:
    """`column` (a reference to `related`) holds one of `values` that the grant sees."""
    if values is None:
        return []
    return [column.in_(views.visible_ids(grant, related, _uuids(values, argument)))]


def _tags(column: Any, values: Sequence[str] | None) -> list[Predicate]:
    if values is None:
        return []
    if not values:
        return [sa.false()]
    return [tag_contains_any(column, [_text_value(v) for v in values])]


def _text(column: Any, value: StringFilter | None) -> list[Predicate]:
    return value.predicates(column) if value is not None else []


_IDS = "Only these ids."
_UPDATED = "Only objects updated after this moment."
_NAME = "Match the name."


@strawberry.input(description="Narrow a list of districts.")
class DistrictFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    name: StringFilter | None = strawberry.field(default=None, description=_NAME)

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.districts
        return [*_common(t, self.ids, self.updated_after, "districts"), *_text(t.c.name, self.name)]


@strawberry.input(description="Narrow a list of schools.")
class SchoolFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    name: StringFilter | None = strawberry.field(default=None, description=_NAME)
    grade_levels: list[str] | None = strawberry.field(
        default=None, description="Schools that teach any of these grade levels (CEDS codes)."
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.schools
        return [
            *_common(t, self.ids, self.updated_after, "schools"),
            *_text(t.c.name, self.name),
            *_tags(t.c.grade_levels, self.grade_levels),
        ]


@strawberry.input(description="Narrow a list of sessions.")
class SessionFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    name: StringFilter | None = strawberry.field(default=None, description=_NAME)
    school_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Sessions of these schools.",
        directives=filter_gate("SessionFilter", "schoolIds"),
    )
    states: list[enums.SessionState] | None = strawberry.field(
        default=None, description="Sessions in any of these states."
    )
    types: list[enums.SessionType] | None = strawberry.field(
        default=None, description="Sessions of any of these types."
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.sessions
        return [
            *_common(t, self.ids, self.updated_after, "sessions"),
            *_text(t.c.name, self.name),
            *_ids_in(grant, t.c.school_id, scope.schools, self.school_ids, "filter.schoolIds"),
            *_in(t.c.state, self.states),
            *_in(t.c.type, self.types),
        ]


@strawberry.input(description="Narrow a list of courses.")
class CourseFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    name: StringFilter | None = strawberry.field(default=None, description=_NAME)
    code: StringFilter | None = strawberry.field(default=None, description="Match the code.")
    school_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Courses of these schools."
    )
    session_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Courses of these sessions.",
        directives=filter_gate("CourseFilter", "sessionIds"),
    )
    grade_levels: list[str] | None = strawberry.field(
        default=None, description="Courses for any of these grade levels."
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.courses
        return [
            *_common(t, self.ids, self.updated_after, "courses"),
            *_text(t.c.name, self.name),
            *_text(t.c.code, self.code),
            *_ids_in(grant, t.c.school_id, scope.schools, self.school_ids, "filter.schoolIds"),
            *_ids_in(grant, t.c.session_id, scope.sessions, self.session_ids, "filter.sessionIds"),
            *_tags(t.c.grade_levels, self.grade_levels),
        ]


@strawberry.input(description="Narrow a list of classes.")
class ClassFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    name: StringFilter | None = strawberry.field(default=None, description=_NAME)
    school_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Classes of these schools."
    )
    course_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Classes of these courses."
    )
    session_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Classes that run in any of these sessions.",
        directives=filter_gate("ClassFilter", "sessionIds"),
    )
    states: list[enums.ClassState] | None = strawberry.field(
        default=None, description="Classes in any of these states."
    )
    grade_levels: list[str] | None = strawberry.field(
        default=None, description="Classes for any of these grade levels."
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.classes
        out = [
            *_common(t, self.ids, self.updated_after, "classes"),
            *_text(t.c.name, self.name),
            *_ids_in(grant, t.c.school_id, scope.schools, self.school_ids, "filter.schoolIds"),
            *_ids_in(grant, t.c.course_id, scope.courses, self.course_ids, "filter.courseIds"),
            *_in(t.c.state, self.states),
            *_tags(t.c.grade_levels, self.grade_levels),
        ]
        if self.session_ids is not None:
            cs = scope.class_sessions.alias()
            wanted = views.visible_ids(
                grant, scope.sessions, _uuids(self.session_ids, "filter.sessionIds")
            )
            out.append(t.c.id.in_(sa.select(cs.c.class_id).where(cs.c.session_id.in_(wanted))))
        return out


@strawberry.input(description="Narrow a list of sections.")
class SectionFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    name: StringFilter | None = strawberry.field(default=None, description=_NAME)
    class_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Sections of these classes."
    )
    states: list[enums.SectionState] | None = strawberry.field(
        default=None, description="Sections in any of these states."
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.sections
        return [
            *_common(t, self.ids, self.updated_after, "sections"),
            *_text(t.c.name, self.name),
            *_ids_in(grant, t.c.class_id, scope.classes, self.class_ids, "filter.classIds"),
            *_in(t.c.state, self.states),
        ]


@strawberry.input(description="Narrow a list of people.")
class PersonFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    first_name: StringFilter | None = strawberry.field(
        default=None, description="Match the first name."
    )
    last_name: StringFilter | None = strawberry.field(
        default=None, description="Match the last name."
    )
    display_name: StringFilter | None = strawberry.field(
        default=None, description="Match the display name."
    )
    email: StringFilter | None = strawberry.field(
        default=None,
        description="Match the email address.",
        directives=filter_gate("PersonFilter", "email"),
    )
    phone: StringFilter | None = strawberry.field(
        default=None,
        description="Match the phone number.",
        directives=filter_gate("PersonFilter", "phone"),
    )
    roles: list[enums.Role] | None = strawberry.field(
        default=None, description="People who hold any of these roles."
    )
    school_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Members of any of these schools.",
        directives=filter_gate("PersonFilter", "schoolIds"),
    )
    class_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="People enrolled in any of these classes.",
        directives=filter_gate("PersonFilter", "classIds"),
    )
    grade_levels: list[str] | None = strawberry.field(
        default=None, description="People in any of these grade levels."
    )
    graduation_year: int | None = strawberry.field(
        default=None, description="People graduating in this year."
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.people
        out = [
            *_common(t, self.ids, self.updated_after, "people"),
            *_text(t.c.first_name, self.first_name),
            *_text(t.c.last_name, self.last_name),
            *_text(t.c.display_name, self.display_name),
            *_text(t.c.email, self.email),
            *_text(t.c.phone, self.phone),
            *_tags(t.c.roles, [r.value for r in self.roles] if self.roles is not None else None),
            *_tags(t.c.grade_levels, self.grade_levels),
        ]
        if self.graduation_year is not None:
            out.append(t.c.graduation_year == self.graduation_year)
        if self.school_ids is not None:
            ps = scope.person_schools.alias()
            wanted = views.visible_ids(
                grant, scope.schools, _uuids(self.school_ids, "filter.schoolIds")
            )
            out.append(t.c.id.in_(sa.select(ps.c.person_id).where(ps.c.school_id.in_(wanted))))
        if self.class_ids is not None:
            e = scope.enrollments.alias()
            wanted = views.visible_ids(
                grant, scope.classes, _uuids(self.class_ids, "filter.classIds")
            )
            out.append(t.c.id.in_(sa.select(e.c.person_id).where(e.c.class_id.in_(wanted))))
        return out


@strawberry.input(description="Narrow a list of enrollments.")
class EnrollmentFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    roles: list[enums.Role] | None = strawberry.field(
        default=None, description="Enrollments with any of these roles."
    )
    states: list[enums.EnrollmentState] | None = strawberry.field(
        default=None, description="Enrollments in any of these states."
    )
    primary: bool | None = strawberry.field(
        default=None, description="Only primary (true) or only non-primary (false) enrollments."
    )
    class_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Enrollments in these classes.",
        directives=filter_gate("EnrollmentFilter", "classIds"),
    )
    person_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Enrollments of these people.",
        directives=filter_gate("EnrollmentFilter", "personIds"),
    )
    section_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Enrollments in these sections.",
        directives=filter_gate("EnrollmentFilter", "sectionIds"),
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.enrollments
        out = [
            *_common(t, self.ids, self.updated_after, "enrollments"),
            *_in(t.c.role, self.roles),
            *_in(t.c.state, self.states),
            *_ids_in(grant, t.c.class_id, scope.classes, self.class_ids, "filter.classIds"),
            *_ids_in(grant, t.c.person_id, scope.people, self.person_ids, "filter.personIds"),
            *_ids_in(grant, t.c.section_id, scope.sections, self.section_ids, "filter.sectionIds"),
        ]
        if self.primary is not None:
            out.append(t.c.primary == self.primary)
        return out


@strawberry.input(description="Narrow a list of agents (guardian and aide relationships).")
class AgentFilter:
    ids: list[strawberry.ID] | None = strawberry.field(default=None, description=_IDS)
    updated_after: datetime | None = strawberry.field(default=None, description=_UPDATED)
    relationships: list[enums.AgentRelationship] | None = strawberry.field(
        default=None, description="Agents with any of these relationships."
    )
    observer_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Agents whose observer is one of these people.",
        directives=filter_gate("AgentFilter", "observerIds"),
    )
    target_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Agents whose target is one of these people.",
        directives=filter_gate("AgentFilter", "targetIds"),
    )

    def predicates(self, grant: Grant) -> list[Predicate]:
        """The SQL conditions of this filter."""
        t = scope.agents
        return [
            *_common(t, self.ids, self.updated_after, "agents"),
            *_in(t.c.relationship, self.relationships),
            *_ids_in(grant, t.c.observer_id, scope.people, self.observer_ids, "filter.observerIds"),
            *_ids_in(grant, t.c.target_id, scope.people, self.target_ids, "filter.targetIds"),
        ]
