"""Every edge of the graph, declared once: which table it returns and how it joins its parent.

A `ManyEdge` is a nested connection; its parent key is either a foreign key on the child table
or the `parent` column of a link subquery (`parent`, `child`) built for the request's source.
A `OneEdge` follows a foreign key of the parent row to one object. The resolvers, the batched
loaders and any later compiled SQL read these declarations; none of them spells a join again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from gateway.access import scope

LinkBuilder = Callable[[str], sa.Subquery]


@dataclass(frozen=True, slots=True)
class ManyEdge:
    """A nested connection from a parent type to the rows of `table`."""

    name: str
    table: sa.Table
    parent_fk: str | None = None  # column of `table` holding the parent id
    link: LinkBuilder | None = None  # or a (parent, child) subquery, given the source id
    # When `link` reads one table's (parent, child) columns: that table and those columns, so
    # a statement for one parent can look its children up by index instead of joining `link`.
    pairs: tuple[sa.Table, str, str] | None = None


@dataclass(frozen=True, slots=True)
class OneEdge:
    """A to-one edge: the parent row's `fk` column points to a row of `table`."""

    name: str
    table: sa.Table
    fk: str


def _pairs(table: sa.Table, parent: str, child: str) -> LinkBuilder:
    def build(source_id: str) -> sa.Subquery:
        return (
            sa.select(table.c[parent].label("parent"), table.c[child].label("child"))
            .where(table.c.source_id == source_id)
            .distinct()
            .subquery()
        )

    return build


def _agent_links(source_id: str) -> sa.Subquery:
    a = scope.agents
    return sa.union(
        sa.select(a.c.observer_id.label("parent"), a.c.id.label("child")).where(
            a.c.source_id == source_id
        ),
        sa.select(a.c.target_id.label("parent"), a.c.id.label("child")).where(
            a.c.source_id == source_id
        ),
    ).subquery()


def _many(name: str, table: sa.Table, fk: str) -> ManyEdge:
    return ManyEdge(name, table, parent_fk=fk)


def _linked(name: str, table: sa.Table, link: LinkBuilder) -> ManyEdge:
    return ManyEdge(name, table, link=link)


def _paired(name: str, table: sa.Table, pairs: sa.Table, parent: str, child: str) -> ManyEdge:
    return ManyEdge(name, table, link=_pairs(pairs, parent, child), pairs=(pairs, parent, child))


s = scope
DISTRICT_SCHOOLS = _many("District.schools", s.schools, "district_id")
DISTRICT_SESSIONS = _many("District.sessions", s.sessions, "district_id")
DISTRICT_PEOPLE = _many("District.people", s.people, "district_id")
SCHOOL_SESSIONS = _many("School.sessions", s.sessions, "school_id")
SCHOOL_COURSES = _many("School.courses", s.courses, "school_id")
SCHOOL_CLASSES = _many("School.classes", s.classes, "school_id")
SCHOOL_PEOPLE = _paired("School.people", s.people, s.person_schools, "school_id", "person_id")
COURSE_CLASSES = _many("Course.classes", s.classes, "course_id")
CLASS_SESSIONS = _paired("Class.sessions", s.sessions, s.class_sessions, "class_id", "session_id")
CLASS_SECTIONS = _many("Class.sections", s.sections, "class_id")
CLASS_ENROLLMENTS = _many("Class.enrollments", s.enrollments, "class_id")
CLASS_PEOPLE = _paired("Class.people", s.people, s.enrollments, "class_id", "person_id")
SECTION_ENROLLMENTS = _many("Section.enrollments", s.enrollments, "section_id")
PERSON_SCHOOLS = _paired("Person.schools", s.schools, s.person_schools, "person_id", "school_id")
PERSON_ENROLLMENTS = _many("Person.enrollments", s.enrollments, "person_id")
PERSON_CLASSES = _paired("Person.classes", s.classes, s.enrollments, "person_id", "class_id")
PERSON_AGENTS = _linked("Person.agents", s.agents, _agent_links)

SCHOOL_DISTRICT = OneEdge("School.district", s.districts, "district_id")
SESSION_DISTRICT = OneEdge("Session.district", s.districts, "district_id")
SESSION_SCHOOL = OneEdge("Session.school", s.schools, "school_id")
COURSE_DISTRICT = OneEdge("Course.district", s.districts, "district_id")
COURSE_SCHOOL = OneEdge("Course.school", s.schools, "school_id")
COURSE_SESSION = OneEdge("Course.session", s.sessions, "session_id")
CLASS_SCHOOL = OneEdge("Class.school", s.schools, "school_id")
CLASS_COURSE = OneEdge("Class.course", s.courses, "course_id")
SECTION_CLASS = OneEdge("Section.class", s.classes, "class_id")
PERSON_DISTRICT = OneEdge("Person.district", s.districts, "district_id")
ENROLLMENT_PERSON = OneEdge("Enrollment.person", s.people, "person_id")
ENROLLMENT_CLASS = OneEdge("Enrollment.class", s.classes, "class_id")
ENROLLMENT_SECTION = OneEdge("Enrollment.section", s.sections, "section_id")
AGENT_OBSERVER = OneEdge("Agent.observer", s.people, "observer_id")
AGENT_TARGET = OneEdge("Agent.target", s.people, "target_id")

# GraphQL type name → table, for root connections, lookups and `node`.
TABLES: dict[str, sa.Table] = {
    "District": s.districts,
    "School": s.schools,
    "Session": s.sessions,
    "Course": s.courses,
    "Class": s.classes,
    "Section": s.sections,
    "Person": s.people,
    "Enrollment": s.enrollments,
    "Agent": s.agents,
}
