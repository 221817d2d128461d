"""The SELECTED-scope closure (DESIGN §4 step 5) as SQL predicates, one function per type.

`visible(grant, table)` is the predicate every graph statement carries: the row belongs to the
grant's source and, under SELECTED, to the closure of its targets. Nothing is filtered in Python.
"""

from __future__ import annotations

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


def _closure(grant: Grant, table: sa.Table) -> Predicate:
    t = grant.targets
    name = table.name
    if name == "districts":
        return sa.true()
    if name == "classes":
        return _class_rule(grant, table)
    if name in ("sections", "enrollments"):
        return table.c.class_id.in_(visible_class_ids(grant))
    if name == "schools":
        vc = classes.alias("vcs")
        tc = courses.alias("tcs")
        return sa.or_(
            table.c.id.in_(_ids(t.schools)),
            table.c.id.in_(
                sa.select(vc.c.school_id).where(
                    vc.c.source_id == grant.source_id, _class_rule(grant, vc)
                )
            ),
            table.c.id.in_(
                sa.select(tc.c.school_id).where(
                    tc.c.source_id == grant.source_id,
                    tc.c.id.in_(_ids(t.courses)),
                    tc.c.school_id.is_not(None),
                )
            ),
        )
    if name == "courses":
        return _course_rule(grant, table)
    if name == "sessions":
        cs = class_sessions.alias("vcs2")
        vco = courses.alias("vco")
        return sa.or_(
            table.c.school_id.in_(_ids(t.schools)),
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
    if name == "people":
        a = agents.alias("va")
        direct = _enrolled_or_member_ids(grant)
        return sa.or_(
            table.c.id.in_(direct),
            table.c.id.in_(
                sa.select(a.c.observer_id).where(
                    a.c.source_id == grant.source_id, a.c.target_id.in_(direct)
                )
            ),
        )
    if name == "agents":
        return table.c.target_id.in_(_enrolled_or_member_ids(grant))
    raise ValueError(f"no scope rule for table {name!r}")


def visible(grant: Grant, table: sa.Table) -> Predicate:
    """The predicate for rows of `table` that `grant` may see: its source, and its closure."""
    in_source = table.c.source_id == grant.source_id
    if grant.scope is Scope.ALL:
        return in_source
    return sa.and_(in_source, _closure(grant, table))
