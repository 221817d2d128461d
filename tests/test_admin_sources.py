"""Showing and destroying a source: its integrations (tokens refused at once), its graph rows,
their stored views and audit entries go in one transaction, and nothing else moves; a failure
part way leaves everything as it was. Run on both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from gateway import models
from gateway.access import views
from gateway.access.authentication import load_grant, load_grant_by_id
from gateway.access.grant import Scope
from gateway.admin import audit, service, sources
from gateway.demo import load_demo
from gateway.errors import ValidationFailed
from tests.admin_factories import make_orgs_in
from tests.conftest import run_db

MISSING = "00000000-0000-4000-8000-000000000000"
COUNTED = (
    "districts",
    "schools",
    "sessions",
    "courses",
    "classes",
    "sections",
    "people",
    "enrollments",
    "agents",
)


async def dump(conn: AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    found = {}
    for table in SQLModel.metadata.sorted_tables:
        query = sa.select(table).order_by(*table.primary_key.columns)
        found[table.name] = [tuple(row) for row in await conn.execute(query)]
    return found


def _owned_by(rows: dict[str, list[tuple[Any, ...]]], source: str) -> dict[str, int]:
    """How many rows of each table that has a source_id belong to `source`."""
    owned = {}
    for table in SQLModel.metadata.sorted_tables:
        if "source_id" in table.c:
            at = list(table.c.keys()).index("source_id")
            owned[table.name] = sum(1 for row in rows[table.name] if row[at] == source)
    return owned


class World:
    """The demo (20 people, its eight integrations) and a bystander source with a SELECTED
    integration, which a destruction of the demo source must not touch."""

    demo: str
    demo_tokens: list[str]
    bystander: str
    bystander_integration: str


async def make_world(engine: AsyncEngine) -> World:
    world = World()
    loaded = await load_demo(engine, people=20)
    world.demo, world.demo_tokens = loaded.source_id, [i.token for i in loaded.integrations]
    other = await make_orgs_in(engine, "Shelbyville")
    async with engine.begin() as conn:
        made = await service.create_integration(
            conn,
            source_id=other.source,
            scope=Scope.SELECTED,
            permissions=["people:read"],
            targets=[other.school],
        )
    world.bystander, world.bystander_integration = other.source, made.id
    return world


def test_show_counts_what_a_source_holds(any_db_url: str) -> None:
    async def body(engine: AsyncEngine) -> tuple[World, Any]:
        world = await make_world(engine)
        async with engine.connect() as conn:
            return world, await sources.describe_source(conn, world.demo)

    world, shown = run_db(any_db_url, body)
    value = shown.as_json()
    assert value["id"] == world.demo
    assert list(value["counts"]) == list(COUNTED)
    assert value["counts"]["districts"] == 1
    assert min(value["counts"].values()) > 0
    assert [i["name"] for i in value["integrations"]] == [
        "all",
        "selected-schools",
        "selected-courses",
        "selected-classes",
        "partial-permissions",
        "inactive",
        "disabled",
        "scheduled",
    ]


def test_destroy_removes_the_source_its_integrations_rows_and_views_and_audits_it(
    any_db_url: str,
) -> None:
    async def body(engine: AsyncEngine) -> None:
        world = await make_world(engine)
        async with engine.connect() as conn:
            before = await dump(conn)
            shown = await sources.describe_source(conn, world.demo)
        async with engine.begin() as conn:
            destroyed = await sources.destroy_source(conn, world.demo)
        assert destroyed == shown
        async with engine.connect() as conn:
            after = await dump(conn)
            for token in world.demo_tokens:
                assert await load_grant(conn, token) is None
            assert await service.require_source(conn, world.bystander) == world.bystander
            with pytest.raises(ValidationFailed, match=f"source {world.demo} does not exist"):
                await service.require_source(conn, world.demo)
            bystander = await service.require_integration(conn, world.bystander_integration)
            grant = await load_grant_by_id(conn, bystander.id)
            assert grant is not None
            for table in views.GRAPH_TABLES:
                assert await views.stored_ids(conn, bystander.id, table) == await views.closure_ids(
                    conn, grant, table
                )
            log = await audit.list_entries(conn, first=500)

        assert set(_owned_by(after, world.demo).values()) == {0}
        assert _owned_by(after, world.bystander) == _owned_by(before, world.bystander)
        stored_views = [view.name for view in models.VISIBLE_TABLES.values()]
        for name in (*stored_views, "integration_targets", "integration_permissions"):
            assert [
                r for r in after[name] if r[0] in _ids(before["integrations"], world.demo)
            ] == []
            kept = [r for r in before[name] if r[0] not in _ids(before["integrations"], world.demo)]
            assert after[name] == kept
        assert [r[0] for r in after["sources"]] == [world.bystander]
        assert len(after["teams"]) == len(after["entities"]) == 1  # the demo's own went too
        assert after["providers"] == before["providers"]  # shared by sources of a kind

        newest = log.entries[: 1 + len(world.demo_tokens)]
        assert [(e.action, e.subject_id) for e in newest] == [
            ("source.destroy", world.demo),
            *[("integration.destroy", i["id"]) for i in reversed(shown.as_json()["integrations"])],
        ]
        assert newest[0].before == shown.as_json()
        assert newest[0].after is None

    run_db(any_db_url, body)


def _ids(integrations: list[tuple[Any, ...]], source: str) -> set[str]:
    table = models.table_of(models.Integration)
    at = list(table.c.keys()).index("source_id")
    return {row[0] for row in integrations if row[at] == source}


_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_district_delete BEFORE DELETE ON districts "
        "BEGIN SELECT RAISE(ABORT, 'districts are kept'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_delete() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'districts are kept'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_district_delete BEFORE DELETE ON districts "
        "FOR EACH ROW EXECUTE FUNCTION refuse_delete()",
    ],
}


def test_a_destroy_that_fails_part_way_leaves_everything_as_it_was(any_db_url: str) -> None:
    # The database itself refuses the last graph deletion (a trigger), after the integrations,
    # their views and every other graph row were already deleted in the transaction.
    async def body(engine: AsyncEngine) -> None:
        world = await make_world(engine)
        async with engine.begin() as conn:
            for statement in _REFUSE[conn.dialect.name]:
                await conn.exec_driver_sql(statement)
        async with engine.connect() as conn:
            before = await dump(conn)
        with pytest.raises(sa.exc.DBAPIError, match="districts are kept"):
            async with engine.begin() as conn:
                await sources.destroy_source(conn, world.demo)
        async with engine.connect() as conn:
            assert await dump(conn) == before
            assert await load_grant(conn, world.demo_tokens[0]) is not None

    run_db(any_db_url, body)


def test_an_unknown_source_is_named(db_url: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            with pytest.raises(ValidationFailed, match=f"source {MISSING} does not exist"):
                await sources.destroy_source(conn, MISSING)
            with pytest.raises(ValidationFailed, match="source 'x' is not a UUID"):
                await sources.describe_source(conn, "x")

    run_db(db_url, body)


def test_two_transactions_creating_one_source_name_make_one_source(any_db_url: str) -> None:
    """Two `sources create` of one name at once, and two first imports into one new name: the
    second waits for the first's commit, then finds its source. On PostgreSQL both found none
    and made two namesakes, beyond any import by that name after."""
    from gateway.db import write_transaction
    from gateway.importers.oneroster import find_or_create_source

    async def body(engine: AsyncEngine) -> None:
        async def hold(name: str, made: asyncio.Event, release: asyncio.Event) -> str:
            async with write_transaction(engine) as conn:
                source, created = await find_or_create_source(conn, name, "OneRoster")
                assert created
                made.set()
                await release.wait()  # the transaction stays open meanwhile
                return source.id

        async def create(name: str) -> str:
            async with write_transaction(engine) as conn:
                return (await service.create_source(conn, name)).id

        async def find(name: str) -> tuple[str, bool]:
            async with write_transaction(engine) as conn:
                source, created = await find_or_create_source(conn, name, "OneRoster")
                return source.id, created

        for name, second in (("Created", create), ("Imported", find)):
            made, release = asyncio.Event(), asyncio.Event()
            first = asyncio.create_task(hold(name, made, release))
            await made.wait()
            racing = asyncio.create_task(second(name))
            await asyncio.sleep(0.5)  # the second is waiting by now (else it had won)
            assert not racing.done()
            release.set()
            first_id = await first
            if second is create:
                with pytest.raises(ValidationFailed, match="exists already"):
                    await racing
            else:
                assert await racing == (first_id, False)
            async with engine.connect() as conn:
                table = models.table_of(models.Source)
                named = sa.select(sa.func.count()).where(table.c.name == name)
                assert (await conn.execute(named)).scalar() == 1

    run_db(any_db_url, body)
