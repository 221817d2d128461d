"""The SELECTED-scope closure (DESIGN §4 step 5) as SQL predicates, one function per type.

This is the one definition of what a SELECTED integration sees. Requests do not evaluate it:
`gateway.access.views` stores its result per integration (written by `closure`, one
`INSERT … SELECT` per type) and every graph statement reads that stored view. Tests compare
the two type by type. Nothing is filtered in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from gateway import models
from gateway.access.grant import Grant, Scope

districts = models.table_of(models.District)
schools = models.table_of(models.School)
sessions = models.table_of(models.Session)
courses = models.table_of(models.Course)
classes = models.table_of(models.Class)
class_sessions = models.table_of(models.ClassSession)
sections = models.table_of(models.Section)
people = models.table_of(models.Person)
person_schools = models.table_of(models.PersonSchool)
enrollments = models.table_of(models.Enrollment)
agents = models.table_of(models.Agent)

Predicate = ColumnElement[bool]


def _ids(values: frozenset[str]) -> list[str]:
    return sorted(values)


def _class_rule(grant: Grant, table: sa.FromClause) -> Predicate:
    t = grant.targets
    return sa.or_(
        table.c.school_id.in_(_ids(t.schools)),
        table.c.course_id.in_(_ids(t.courses)),
        table.c.id.in_(_ids(t.classes)),
    )


def visible_class_ids(grant: Grant) -> sa.Select[Any]:
    """Ids of the classes the grant sees (SELECTED: school, course or class is a target)."""
    c = classes.alias("vc")
    return sa.select(c.c.id).where(c.c.source_id == grant.source_id, _class_rule(grant, c))


def _course_rule(grant: Grant, table: sa.FromClause) -> Predicate:
    t = grant.targets
    vc = classes.alias("vcc")
    return sa.or_(
        table.c.id.in_(_ids(t.courses)),
        table.c.school_id.in_(_ids(t.schools)),
        table.c.id.in_(
            sa.select(vc.c.course_id).where(
                vc.c.source_id == grant.source_id,
                vc.c.course_id.is_not(None),
                _class_rule(grant, vc),
            )
        ),
    )


def _enrolled_or_member_ids(grant: Grant) -> sa.CompoundSelect[Any]:
    """People visible by the first two Person rules: enrolled in a visible class or in a target
    school."""
    e = enrollments.alias("ve")
    ps = person_schools.alias("vps")
    return sa.union(
        sa.select(e.c.person_id).where(
            e.c.source_id == grant.source_id, e.c.class_id.in_(visible_class_ids(grant))
        ),
        sa.select(ps.c.person_id).where(
            ps.c.source_id == grant.source_id, ps.c.school_id.in_(_ids(grant.targets.schools))
        ),
    )


def visible_districts(grant: Grant, table: sa.FromClause) -> Predicate:
    """District: the source's district is always visible."""
    return sa.true()


def visible_classes(grant: Grant, table: sa.FromClause) -> Predicate:
    """Class: its school is a target, or its course is a target, or it is a target."""
    return _class_rule(grant, table)


def visible_sections(grant: Grant, table: sa.FromClause) -> Predicate:
    """Section: its class is visible."""
    return table.c.class_id.in_(visible_class_ids(grant))


def visible_enrollments(grant: Grant, table: sa.FromClause) -> Predicate:
    """Enrollment: its class is visible."""
    return table.c.class_id.in_(visible_class_ids(grant))


def visible_schools(grant: Grant, table: sa.FromClause) -> Predicate:
    """School: a target, or the school of a visible class or of a target course."""
    vc = classes.alias("vcs")
    tc = courses.alias("tcs")
    return sa.or_(
        table.c.id.in_(_ids(grant.targets.schools)),
        table.c.id.in_(
            sa.select(vc.c.school_id).where(
                vc.c.source_id == grant.source_id, _class_rule(grant, vc)
            )
        ),
        table.c.id.in_(
            sa.select(tc.c.school_id).where(
                tc.c.source_id == grant.source_id,
                tc.c.id.in_(_ids(grant.targets.courses)),
                tc.c.school_id.is_not(None),
            )
        ),
    )


def visible_courses(grant: Grant, table: sa.FromClause) -> Predicate:
    """Course: a target, or of a target school, or the course of a visible class."""
    return _course_rule(grant, table)


def visible_sessions(grant: Grant, table: sa.FromClause) -> Predicate:
    """Session: of a target school, or a session of a visible class or of a visible course."""
    cs = class_sessions.alias("vcs2")
    vco = courses.alias("vco")
    return sa.or_(
        table.c.school_id.in_(_ids(grant.targets.schools)),
        table.c.id.in_(
            sa.select(cs.c.session_id).where(
                cs.c.source_id == grant.source_id,
                cs.c.class_id.in_(visible_class_ids(grant)),
            )
        ),
        table.c.id.in_(
            sa.select(vco.c.session_id).where(
                vco.c.source_id == grant.source_id,
                vco.c.session_id.is_not(None),
                _course_rule(grant, vco),
            )
        ),
    )


def visible_people(grant: Grant, table: sa.FromClause) -> Predicate:
    """Person: enrolled in a visible class, or a member of a target school, or the observer of
    a visible agent."""
    a = agents.alias("va")
    direct = _enrolled_or_member_ids(grant).cte("direct_people")
    observers = sa.select(a.c.observer_id).where(
        a.c.source_id == grant.source_id, a.c.target_id.in_(sa.select(direct.c.person_id))
    )
    return table.c.id.in_(sa.union(sa.select(direct.c.person_id), observers))


def visible_agents(grant: Grant, table: sa.FromClause) -> Predicate:
    """Agent: its target person is visible by the first two Person rules."""
    return table.c.target_id.in_(_enrolled_or_member_ids(grant))


CLOSURES: dict[str, Callable[[Grant, sa.FromClause], Predicate]] = {
    "districts": visible_districts,
    "schools": visible_schools,
    "sessions": visible_sessions,
    "courses": visible_courses,
    "classes": visible_classes,
    "sections": visible_sections,
    "people": visible_people,
    "enrollments": visible_enrollments,
    "agents": visible_agents,
}


def closure(grant: Grant, table: sa.Table) -> Predicate:
    """The rows of `table` that `grant` sees, derived from its targets: its source, and under
    SELECTED the closure rule of the table's type. What the stored view is written from."""
    in_source = table.c.source_id == grant.source_id
    if grant.scope is Scope.ALL:
        return in_source
    return sa.and_(in_source, CLOSURES[table.name](grant, table))
