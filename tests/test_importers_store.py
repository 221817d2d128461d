"""The import's Store: its driver-level bulk insert stores exactly what SQLAlchemy's `insert()`
stores, falls back to it where it does not apply, and a first import skips the lookup of
existing rows only for tables that held none of the source's rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.admin.service import create_source
from gateway.importers.properties import kept
from gateway.importers.run import DISTRICTS, ENROLLMENTS, PEOPLE, SESSIONS, Run
from gateway.importers.store import SEEN, Inserter, Store
from gateway.models import UUID
from tests.conftest import run_db

NOW = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def _person(source_id: str, district_id: str, n: int) -> dict[str, Any]:
    """A people row whose columns exercise every conversion: ids (one in upper case), JSON,
    tag lists, timestamps (one object shared by all rows, one per row) and NULLs."""
    return {
        "id": str(uuid.uuid4()).upper() if n % 2 else str(uuid.uuid4()),
        "source_id": source_id,
        "created_date": NOW,
        "updated_date": NOW + timedelta(seconds=n),
        "identifiers": [{"type": "sourcedId", "value": f"U{n}"}],
        "properties": {"givenName": f"Given {n}", "n": n} if n % 3 else None,
        "district_id": district_id,
        "first_name": f"Given {n}",
        "middle_name": None,
        "last_name": "Family",
        "display_name": f"Given {n} Family",
        "picture_url": None,
        "roles": ["STUDENT", "TEACHER"][: n % 3],
        "email": f"u{n}@example.org" if n % 2 else None,
        "phone": None,
        "locale": None,
        "time_zone": None,
        "graduation_year": 2030 + n if n % 2 else None,
        "grade_levels": ["09"] if n % 2 else [],
        "demographics": {"birthday": "2010-01-01", "races": ["Asian"]} if n % 2 else None,
        "address": None,
    }


async def _source(conn: AsyncConnection) -> tuple[str, str]:
    source = await create_source(conn, f"Store {uuid.uuid4()}")
    district_id = str(uuid.uuid4())
    await conn.execute(
        DISTRICTS.insert(),
        [
            {
                "id": district_id,
                "source_id": source.id,
                "created_date": NOW,
                "updated_date": NOW,
                "identifiers": [],
                "properties": None,
                "name": "District",
                "locale": None,
                "time_zone": None,
                "address": None,
            }
        ],
    )
    return source.id, district_id


async def _stored(conn: AsyncConnection, table: sa.Table, ids: list[str]) -> list[tuple[Any, ...]]:
    """The raw stored values (and SQLite storage classes) of rows `ids`, id left out."""
    columns = [c for c in table.columns if c.name != "id"]
    values: list[tuple[Any, ...]] = []
    for row_id in ids:
        query = sa.select(
            *[sa.type_coerce(c, sa.Text) for c in columns],
            *[sa.func.typeof(c) for c in columns],
        ).where(sa.type_coerce(table.c.id, sa.Text) == row_id.lower())
        values.append(tuple((await conn.execute(query)).one()))
    return values


def test_the_driver_insert_stores_what_sqlalchemy_stores(db_url: str) -> None:
    async def body(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
        async with engine.begin() as conn:
            source_id, district_id = await _source(conn)
            ours = [_person(source_id, district_id, n) for n in range(6)]
            theirs = [{**row, "id": str(uuid.uuid4())} for row in ours]
            await Store(conn, source_id, NOW).insert(PEOPLE, ours)
            await conn.execute(PEOPLE.insert(), theirs)
            return (
                await _stored(conn, PEOPLE, [r["id"] for r in ours]),
                await _stored(conn, PEOPLE, [r["id"] for r in theirs]),
            )

    ours, theirs = run_db(db_url, body)
    assert ours == theirs
    assert len(ours) == 6


def test_the_seen_rows_keep_their_booleans_and_lines(db_url: str) -> None:
    async def body(engine: AsyncEngine) -> list[tuple[Any, ...]]:
        async with engine.begin() as conn:
            source_id, _ = await _source(conn)
            store = Store(conn, source_id, NOW)
            await store.create_temp_tables()
            ids = [str(uuid.uuid4()) for _ in range(3)]
            await store.mark_seen("person", [(ids[0], 2, True), (ids[1], 3, False)])
            await store.mark_seen("class", [(ids[2], 9, True)])
            rows = (
                await conn.execute(
                    sa.select(SEEN.c.kind, SEEN.c.id, SEEN.c.line, SEEN.c.live).order_by(
                        SEEN.c.line
                    )
                )
            ).all()
            assert await store.seen_lines("person", ids) == {ids[0]: 2, ids[1]: 3}
            return [(r.kind, ids.index(r.id), r.line, r.live) for r in rows]

    assert run_db(db_url, body) == [
        ("person", 0, 2, True),
        ("person", 1, 3, False),
        ("class", 2, 9, True),
    ]


def test_the_driver_insert_applies_only_where_it_writes_the_same() -> None:
    every = tuple(c.name for c in ENROLLMENTS.columns)
    inserter = Inserter.of(sqlite.dialect(), ENROLLMENTS, every)
    assert inserter is not None
    assert inserter.sql.startswith("INSERT INTO enrollments (")
    assert sorted(inserter.columns) == sorted(every)
    # `id` has a Python-side default (a new UUID) that only SQLAlchemy's insert computes.
    assert Inserter.of(sqlite.dialect(), ENROLLMENTS, every[1:]) is None
    assert Inserter.of(sqlite.dialect(), ENROLLMENTS, (*every, "nonsense")) is None
    assert Inserter.of(postgresql.dialect(), ENROLLMENTS, every) is None


def test_insert_falls_back_to_sqlalchemy_on_any_engine(any_db_url: str) -> None:
    """Without `id` (PostgreSQL always, SQLite because of its default), rows still go in."""

    async def body(engine: AsyncEngine) -> list[str]:
        async with engine.begin() as conn:
            source_id, district_id = await _source(conn)
            rows = []
            for n in range(3):
                row = _person(source_id, district_id, n)
                del row["id"]
                rows.append(row)
            await Store(conn, source_id, NOW).insert(PEOPLE, rows)
            found = await conn.execute(
                sa.select(PEOPLE.c.first_name, PEOPLE.c.created_date)
                .where(PEOPLE.c.source_id == source_id)
                .order_by(PEOPLE.c.first_name)
            )
            return [f"{name} {created.isoformat()}" for name, created in found]

    assert run_db(any_db_url, body) == [f"Given {n} {NOW.isoformat()}" for n in range(3)]


def test_fetch_existing_skips_the_lookup_only_for_tables_that_were_empty(
    any_db_url: str,
) -> None:
    async def body(engine: AsyncEngine) -> tuple[set[str], set[str], set[str]]:
        async with engine.begin() as conn:
            source_id, district_id = await _source(conn)
            rows = [_person(source_id, district_id, n) for n in (0, 2)]  # lower-case ids
            ids = [r["id"] for r in rows]
            empty = Store(conn, source_id, NOW)
            await empty.note_empty([PEOPLE, DISTRICTS])
            await empty.insert(PEOPLE, rows)
            # Written by this import: `fetch` finds them, `fetch_existing` need not look.
            assert set(await empty.fetch(PEOPLE, ids)) == set(ids)
            skipped = set(await empty.fetch_existing(PEOPLE, ids))
            later = Store(conn, source_id, NOW)
            await later.note_empty([PEOPLE, DISTRICTS])
            found = set(await later.fetch_existing(PEOPLE, ids))
            districts = set(await later.fetch_existing(DISTRICTS, [district_id]))
            return skipped, found, districts

    skipped, found, districts = run_db(any_db_url, body)
    assert skipped == set()
    assert len(found) == 2
    assert len(districts) == 1


def test_each_value_is_converted_by_its_column() -> None:
    """Dates and timestamps get their own conversion per value, also when the previous row's
    value was another one (the remembered last value is only reused for the same object)."""
    every = tuple(c.name for c in SESSIONS.columns)
    sessions = Inserter.of(sqlite.dialect(), SESSIONS, every)
    assert sessions is not None
    first, second = date(2024, 8, 15), date(2025, 6, 15)
    rows = [
        dict.fromkeys(every) | {"start_date": first, "end_date": second, "created_date": NOW},
        dict.fromkeys(every) | {"start_date": second, "end_date": second, "created_date": NOW},
        dict.fromkeys(every) | {"start_date": first, "id": "ABC", "created_date": None},
    ]
    at = {c: i for i, c in enumerate(sessions.columns)}
    assert [
        (t[at["id"]], t[at["start_date"]], t[at["end_date"]], t[at["created_date"]])
        for t in sessions.tuples(rows)
    ] == [
        (None, "2024-08-15", "2025-06-15", "2025-03-04 05:06:07.891011"),
        (None, "2025-06-15", "2025-06-15", "2025-03-04 05:06:07.891011"),
        ("abc", "2024-08-15", None, None),
    ]


def test_a_list_or_dict_that_changed_is_converted_again() -> None:
    every = tuple(c.name for c in SESSIONS.columns)
    sessions = Inserter.of(sqlite.dialect(), SESSIONS, every)
    assert sessions is not None
    at = {c: i for i, c in enumerate(sessions.columns)}
    shared: dict[str, Any] = {"title": "Fall"}
    first = sessions.tuples([dict.fromkeys(every) | {"properties": shared, "identifiers": []}])
    shared["title"] = "Spring"
    second = sessions.tuples([dict.fromkeys(every) | {"properties": shared, "identifiers": []}])
    assert json.loads(first[0][at["properties"]]) == {"title": "Fall"}
    assert json.loads(second[0][at["properties"]]) == {"title": "Spring"}


def test_an_insert_of_one_column_gets_one_value_tuples() -> None:
    """itemgetter of one column gives the bare value: the inserter still hands tuples over."""
    inserter = Inserter.of(sqlite.dialect(), DISTRICTS, ("id",))
    assert inserter is None  # the other columns have no default: not this path
    single = sa.Table("single", sa.MetaData(), sa.Column("id", UUID, primary_key=True))
    inserter = Inserter.of(sqlite.dialect(), single, ("id",))
    assert inserter is not None
    assert inserter.tuples([{"id": "ABC"}, {"id": None}]) == [("abc",), (None,)]


def test_properties_keep_the_allowed_cells_in_file_order_for_any_header() -> None:
    first = {"sourcedId": "E1", "role": "student", "status": "active", "email": "x"}
    second = {"status": "tobedeleted", "sourcedId": "E2", "primary": "true", "role": "teacher"}
    for _ in range(2):  # the second time from the remembered columns of each header
        assert kept("enrollments", first) == {"role": "student", "status": "active"}
        assert kept("enrollments", second) == {
            "status": "tobedeleted",
            "primary": "true",
            "role": "teacher",
        }
    assert kept("users", first) == {"role": "student", "status": "active"}


def test_a_rows_own_id_is_the_same_whether_remembered_or_not() -> None:
    source_id = str(uuid.uuid4())
    run = Run(
        conn=None,  # type: ignore[arg-type]  # ids need no database
        store=None,  # type: ignore[arg-type]
        folder=None,  # type: ignore[arg-type]
        manifest=None,  # type: ignore[arg-type]
        warnings=None,  # type: ignore[arg-type]
        source_id=source_id,
        source_name="Ids",
        today=date(2025, 1, 1),
        batch_size=10,
        progress=None,
    )
    expected = str(uuid.uuid5(uuid.UUID(source_id), "enrollment:E1"))
    assert run.id("enrollment", "E1", remember=False) == expected
    assert run._ids == {}
    assert run.id("enrollment", "E1") == expected
    assert run._ids == {"enrollment:E1": expected}
    # every value of the variant digit, and sourcedIds that are not ASCII
    for sourced_id in [f"E{n}" for n in range(64)] + ["Zoë", "学生-7", ""]:
        assert run.id("person", sourced_id) == str(
            uuid.uuid5(uuid.UUID(source_id), f"person:{sourced_id}")
        )
