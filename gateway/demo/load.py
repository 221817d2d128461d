"""Loading the demo source in one transaction, finding it again (keeping its integrations), and
renewing its tokens on request."""

from __future__ import annotations

import random
import sys
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.admin.service import create_source
from gateway.db import refresh_statistics
from gateway.demo.agents import agent_rows
from gateway.demo.district import SOURCE_NAME
from gateway.demo.enrollments import enrollment_rows
from gateway.demo.ids import SEED
from gateway.demo.integrations import (
    DEMO_INTEGRATIONS,
    create_integrations,
    destroy_integrations,
    existing_integrations,
)
from gateway.demo.orgs import district_id, district_rows, school_rows
from gateway.demo.output import GRAPHQL_URL, print_integrations
from gateway.demo.people import People
from gateway.demo.plan import Plan
from gateway.demo.results import DemoResult
from gateway.demo.rows import RowMaker
from gateway.demo.schedule import Schedule
from gateway.demo.writer import insert, sqlite_page_cache
from gateway.errors import ValidationFailed

PROVIDER_NAME = "Demo SIS"
PROVIDER_APPLICATION = "demo"
DEFAULT_PEOPLE = 2000
MIN_PEOPLE = 20
MAX_PEOPLE = 1_000_000

_COUNTED = (
    models.District,
    models.School,
    models.Session,
    models.Course,
    models.Class,
    models.ClassSession,
    models.Section,
    models.Person,
    models.PersonSchool,
    models.Enrollment,
    models.Agent,
)


async def find_demo_source(conn: AsyncConnection) -> tuple[str, str] | None:
    """The id and name of the demo source (the owner of the demo district), or None."""
    districts, sources = models.table_of(models.District), models.table_of(models.Source)
    row = (
        await conn.execute(
            sa.select(sources.c.id, sources.c.name)
            .join(districts, districts.c.source_id == sources.c.id)
            .where(districts.c.id == district_id())
        )
    ).first()
    return None if row is None else (str(row.id), str(row.name))


async def count_rows(conn: AsyncConnection, source_id: str) -> dict[str, int]:
    """Rows per graph table of `source_id`."""
    counts: dict[str, int] = {}
    for model in _COUNTED:
        table = models.table_of(model)
        counts[table.name] = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.source_id == source_id)
            )
        ).scalar_one()
    return counts


async def load_demo(engine: AsyncEngine, *, people: int = DEFAULT_PEOPLE) -> DemoResult:
    """Create the demo source with `people` people and the eight demo integrations.

    Everything is one transaction: on any error (or when the demo source exists already, which
    raises ValidationFailed) the database is left as it was.
    """
    if not MIN_PEOPLE <= people <= MAX_PEOPLE:
        raise ValidationFailed(
            f"--people {people} is out of range; the demo needs {MIN_PEOPLE} to {MAX_PEOPLE:,}"
        )
    async with engine.connect() as conn, sqlite_page_cache(conn), conn.begin():
        existing = await find_demo_source(conn)
        if existing is not None:
            counts = await count_rows(conn, existing[0])
            raise ValidationFailed(
                f"this database already holds the demo source {existing[1]!r} (id {existing[0]}, "
                f"{counts['people']:,} people); the demo loads only into a database without it. "
                "To start over, point GATEWAY_DATABASE_URL at a new database (or delete the "
                "SQLite file); to get new demo tokens for the existing data, run "
                "`gateway serve --demo --new-demo-tokens`"
            )
        source = await create_source(
            conn,
            SOURCE_NAME,
            provider_name=PROVIDER_NAME,
            provider_application=PROVIDER_APPLICATION,
            team_name=SOURCE_NAME,
            entity_name=SOURCE_NAME,
            entity_type="DISTRICT",
        )
        written = await _write_rows(conn, source.id, people)
        await refresh_statistics(conn)
        integrations = await create_integrations(conn, source.id)
    counts = {models.table_of(m).name: written[models.table_of(m).name] for m in _COUNTED}
    return DemoResult(source.id, source.name, integrations, counts)


NEW_TOKENS_HINT = (
    "tokens are stored only as SHA-256 digests, so they cannot be shown again; to replace "
    "them with new ones (the old ones stop working), run `gateway serve --demo --new-demo-tokens`"
)


async def ensure_demo(
    engine: AsyncEngine, *, echo: bool, new_tokens: bool = False, graphql_url: str = GRAPHQL_URL
) -> DemoResult:
    """Load the demo when it is missing; else keep its integrations, ids and tokens (and create
    again only a demo integration that is gone), or with `new_tokens` destroy and recreate its
    eight integrations for new tokens (the old ones stop working).

    A kept integration has no token in the result (only its digest is stored). With `echo`,
    the integrations (and whatever tokens there are) go to standard error, with a curl line for
    the server at `graphql_url`.
    """
    async with engine.begin() as conn:
        existing = await find_demo_source(conn)
        result = None
        if existing is not None:
            source_id, source_name = existing
            if new_tokens:
                await destroy_integrations(conn, source_id)
            kept = await existing_integrations(conn, source_id)
            names = {i.name for i in kept}
            missing = [name for name in DEMO_INTEGRATIONS if name not in names]
            by_name = {i.name: i for i in kept}
            if missing:
                by_name.update(
                    {i.name: i for i in await create_integrations(conn, source_id, missing)}
                )
            integrations = [by_name[name] for name in DEMO_INTEGRATIONS]
            counts = await count_rows(conn, source_id)
            result = DemoResult(source_id, source_name, integrations, counts)
    if result is None:
        result = await load_demo(engine)
    if echo:
        print_integrations(result, graphql_url)
        if any(i.token is None for i in result.integrations):
            sys.stderr.write(
                f"The demo source {result.source_name!r} was already loaded: its integrations "
                f"and their tokens are kept; {NEW_TOKENS_HINT}.\n"
            )
    return result


async def _write_rows(conn: AsyncConnection, source_id: str, people: int) -> Counter[str]:
    """Every graph row of the demo, table by table in an order foreign keys accept.

    One seeded generator feeds them all, so the order of these calls is part of the data.
    """
    rng = random.Random(SEED)  # noqa: S311 (demo data is seeded on purpose)
    plan = Plan(rng, people)
    rows = RowMaker(rng, source_id)
    schedule = Schedule(plan, rows)
    persons = People(plan, rows)
    written: Counter[str] = Counter()
    await insert(conn, models.District, district_rows(rows), written)
    await insert(conn, models.School, school_rows(rows), written)
    await insert(conn, models.Session, schedule.session_rows(), written)
    courses, classes = schedule.course_and_class_rows()
    await insert(conn, models.Course, courses, written)
    await insert(conn, models.Class, classes, written)
    await insert(conn, models.ClassSession, schedule.class_sessions, written)
    await insert(conn, models.Section, schedule.sections, written)
    await insert(conn, models.Person, persons.students(), written)
    await insert(conn, models.Person, persons.staff(), written)
    await insert(conn, models.Person, persons.contacts(), written)
    await insert(conn, models.PersonSchool, persons.person_schools(), written)
    await insert(conn, models.Enrollment, enrollment_rows(plan, rows, persons), written)
    await insert(conn, models.Agent, agent_rows(plan, rows, persons), written)
    return written
