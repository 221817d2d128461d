"""Helpers for the administration tests: a source with a school, course and class, admin keys,
and the live server with the admin API routed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.access import views
from gateway.admin import service
from gateway.admin.keys import CreatedAdminKey, create_admin_key
from tests.conftest import run_db

ADMIN_PATH = "/admin/graphql"


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
    await conn.execute(sa.insert(models.table_of(type(row))).values(row.model_dump()))
    return str(row.model_dump()["id"])


async def add_orgs(conn: AsyncConnection, source: str, name: str = "Springfield") -> Orgs:
    """A district, two schools, a course and a class in the existing source `source`."""
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
    await views.refresh_source(conn, source)
    return Orgs(source, district, school, course, class_, other)


async def make_orgs(conn: AsyncConnection, name: str = "Springfield") -> Orgs:
    """A source named `name` with a district, two schools, a course and a class."""
    return await add_orgs(conn, (await service.create_source(conn, name)).id, name)


async def make_orgs_in(engine: AsyncEngine, name: str = "Springfield") -> Orgs:
    """`make_orgs` in its own committed transaction."""
    async with engine.begin() as conn:
        return await make_orgs(conn, name)


def make_admin_key(db_url: str, name: str = "ops") -> CreatedAdminKey:
    """A new admin key in the database at `db_url`."""

    async def create(engine: AsyncEngine) -> CreatedAdminKey:
        async with engine.begin() as conn:
            return await create_admin_key(conn, name)

    return run_db(db_url, create)


def graphql(
    client: httpx.Client,
    query: str,
    variables: dict[str, Any] | None = None,
    path: str = ADMIN_PATH,
) -> httpx.Response:
    """POST one GraphQL operation to `path`."""
    return client.post(path, json={"query": query, "variables": variables or {}})
