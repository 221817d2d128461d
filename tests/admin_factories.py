"""Deterministic rows for the administration tests: a source with a school, course and class."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.admin import service


@dataclass(frozen=True)
class Orgs:
    """A source and one organisation of each kind that can be a target."""

    source: str
    district: str
    school: str
    course: str
    class_: str
    other_school: str


async def _insert(conn: AsyncConnection, row: models.SQLModel) -> str:
    await conn.execute(sa.insert(type(row).__table__).values(row.model_dump()))
    return str(row.model_dump()["id"])


async def make_orgs(conn: AsyncConnection, name: str = "Springfield") -> Orgs:
    """A source named `name` with a district, two schools, a course and a class."""
    source = (await service.create_source(conn, name)).id
    district = await _insert(conn, models.District(source_id=source, name=f"{name} District"))
    school = await _insert(
        conn, models.School(source_id=source, district_id=district, name=f"{name} High")
    )
    other = await _insert(
        conn, models.School(source_id=source, district_id=district, name=f"{name} Elementary")
    )
    course = await _insert(
        conn,
        models.Course(source_id=source, district_id=district, school_id=school, name="Algebra"),
    )
    class_ = await _insert(
        conn,
        models.Class(source_id=source, school_id=school, course_id=course, name="Algebra 1A"),
    )
    return Orgs(source, district, school, course, class_, other)


async def make_orgs_in(engine: AsyncEngine, name: str = "Springfield") -> Orgs:
    """`make_orgs` in its own committed transaction."""
    async with engine.begin() as conn:
        return await make_orgs(conn, name)
