"""The database layer on each engine: schema creation by processes starting at once, and one
consistent snapshot per request."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.util import greenlet_spawn

import gateway.db
from gateway import models
from gateway.access.authentication import (
    _GRANTS,
    _grant_of_row,
    _prepared,
    gated_select,
    gated_statement,
    load_grant,
    request_grant,
)
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import CATALOG
from gateway.access.tokens import digest
from gateway.coltypes import utcnow
from gateway.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_MMAP_BYTES,
    SQLITE_PAGE_SIZE,
    create_engine,
    create_schema,
    engine_for,
    write_transaction,
)
from gateway.db_problems import DatabaseUnavailable
from gateway.errors import RequestTimeout
from gateway.request_db import CALLS, DEADLINE, Prepared, RequestDB
from tests.conftest import ENGINES, fresh_database, run_db
from tests.factories import make_integration, make_source

TEAMS = models.table_of(models.Team)


def test_processes_starting_at_once_create_the_schema_once(any_db_url: str) -> None:
    # `serve --workers N`, or several machines on one PostgreSQL, all start on an empty database.
    async def body() -> list[int]:
        engines = [create_engine(any_db_url) for _ in range(6)]
        try:
            await asyncio.gather(*(create_schema(engine) for engine in engines))
            async with engines[0].connect() as conn:
                table = models.table_of(models.Permission)
                return list((await conn.execute(sa.select(sa.func.count(table.c.id)))).scalars())
        finally:
            for engine in engines:
                await engine.dispose()

    assert asyncio.run(body()) == [len(CATALOG)]


def test_a_request_reads_one_snapshot(any_db_url: str) -> None:
    # Nested levels of one GraphQL response must agree even while an import commits.
    async def body() -> tuple[int, int, int]:
        async with engine_for(any_db_url) as engine:
            count = sa.select(sa.func.count()).select_from(TEAMS)
            db = RequestDB(engine)
            try:
                before = (await db.execute(count)).scalar_one()
                async with engine.begin() as conn:
                    now = utcnow().replace(
                        microsecond=0
                    )  # a whole second: its text has a fraction all the same
                    await conn.execute(
                        TEAMS.insert().values(
                            id=models.new_id(), name="Late", created_date=now, updated_date=now
                        )
                    )
                during = (await db.execute(count)).scalar_one()
            finally:
                await db.close()
            db = RequestDB(engine)
            try:
                after = (await db.execute(count)).scalar_one()
            finally:
                await db.close()
            return before, during, after

    assert asyncio.run(body()) == (0, 0, 1)


# Statements that run for minutes unless interrupted.
RUNAWAY = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000)"
    " SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(600)",
}


def test_the_request_deadline_interrupts_a_running_statement(any_db_url: str) -> None:
    """GATEWAY_REQUEST_TIMEOUT_SECONDS bounds the database work itself (SQLite's progress
    handler, PostgreSQL's statement_timeout), not only the wait for it; the connection goes
    back to the pool without the deadline."""

    async def body() -> int:
        async with engine_for(any_db_url) as engine:
            runaway = sa.text(RUNAWAY[engine.dialect.name])
            db = RequestDB(engine, timeout=0.3)
            try:
                with pytest.raises(RequestTimeout) as refused:
                    await db.execute(runaway)
                with pytest.raises(RequestTimeout):
                    await db.execute(sa.select(1))  # past the deadline: nothing more runs
            finally:
                await db.close()
            assert refused.value.extensions["limit"] == "requestTimeout"
            assert "GATEWAY_REQUEST_TIMEOUT_SECONDS" in refused.value.message
            db = RequestDB(engine)
            try:
                counted = sa.text(RUNAWAY["sqlite"].replace("2000000000", "300000"))
                if engine.dialect.name == "postgresql":
                    counted = sa.text("SELECT count(*) FROM generate_series(1, 300000)")
                return int((await db.execute(counted)).scalar_one())
            finally:
                await db.close()

    assert asyncio.run(body()) == 300000


def test_reads_on_the_driver_share_the_snapshot_and_the_deadline(db_url: str) -> None:
    """`RequestDB.read` (SQLite's driver, several statements per call into its thread) reads
    the same snapshot as the request's SQLAlchemy statements, converts results as SQLAlchemy
    does, and is stopped by the request's deadline like any other statement."""
    teams = models.table_of(models.Team)
    dialect = sqlite_dialect()
    count = sa.select(sa.func.count()).select_from(teams)
    counted = Prepared.of(count, dialect)
    created = Prepared.of(
        sa.select(teams.c.created_date).where(teams.c.name == sa.bindparam("name")),
        dialect,
        ("name",),
    )
    loop = (
        sa.text(RUNAWAY["sqlite"].replace("count(*)", "count(*) AS n"))
        .columns(sa.column("n", sa.Integer))
        .subquery()
    )
    runaway = Prepared.of(sa.select(loop.c.n), dialect)
    path = db_url.removeprefix("sqlite+aiosqlite:///")

    def add_team(name: str) -> None:
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute(
                "INSERT INTO teams (id, name, created_date, updated_date) VALUES (?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    name,
                    "2026-01-02 03:04:05.000000",
                    "2026-01-02 03:04:05.000000",
                ),
            )

    async def body() -> tuple[list[Any], Any]:
        async with engine_for(db_url) as engine:
            add_team("first")
            seen: list[Any] = []
            db = RequestDB(engine, timeout=30)
            assert db.on_driver
            try:
                (rows,) = await db.read([(counted, None)])
                seen.append(rows[0][0])
                add_team("second")  # committed elsewhere, after the snapshot was taken
                rows, dates = await db.read([(counted, None), (created, {"name": "first"})])
                seen.append(rows[0][0])
                seen.append((await db.execute(count)).scalar_one())
            finally:
                await db.close()
            fresh = RequestDB(engine)
            try:
                (rows,) = await fresh.read([(counted, None)])
                seen.append(rows[0][0])
            finally:
                await fresh.close()
            stopped = RequestDB(engine, timeout=0.3)
            try:
                with pytest.raises(RequestTimeout):
                    await stopped.read([(runaway, None)])
            finally:
                await stopped.close()
            return seen, dates[0][0]

    seen, date = asyncio.run(body())
    assert seen == [1, 1, 1, 2]  # one snapshot per request, the next request sees the commit
    assert date == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # as SQLAlchemy's column type reads it


def test_an_end_on_the_driver_and_the_pool_rolls_back_only_an_open_read(
    db_url: str,
) -> None:
    """`read(end=True)` ends the read transaction, so the pool has nothing to roll back when the
    connection returns; without it the transaction stays open, a connection returned in the
    middle of a read is rolled back, and the next request reads the latest commit."""
    teams = models.table_of(models.Team)
    dialect = sqlite_dialect()
    count = Prepared.of(sa.select(sa.func.count()).select_from(teams), dialect)
    path = db_url.removeprefix("sqlite+aiosqlite:///")

    def add_team(name: str) -> None:
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute(
                "INSERT INTO teams (id, name, created_date, updated_date) VALUES (?, ?, ?, ?)",
                (str(uuid.uuid4()), name, "2026-01-02 03:04:05", "2026-01-02 03:04:05"),
            )

    async def in_transaction(db: RequestDB) -> bool:
        conn = await db._checkout()
        raw = await conn.get_raw_connection()
        return bool(raw.driver_connection._conn.in_transaction)

    async def body() -> list[Any]:
        seen: list[Any] = []
        async with engine_for(db_url) as engine:
            db = RequestDB(engine)
            try:
                seen.append(await db.read([(count, None), (count, None)]))
                seen.append(await in_transaction(db))  # still open: nothing said to end it
            finally:
                await db.close()  # rolled back by the pool (`_reset_sqlite`)
            add_team("first")  # a writer would wait on a read left open; the next one sees it
            db = RequestDB(engine)
            try:
                assert not await in_transaction(db)
                seen.append(await db.read([(count, None), (count, None)], end=True))
                seen.append(await in_transaction(db))  # ended with the statements
            finally:
                await db.close()
        return seen

    seen = asyncio.run(body())
    assert seen == [[[(0,)], [(0,)]], True, [[(1,)], [(1,)]], False]


def test_concurrent_requests_reuse_their_sqlite_connections(db_url: str) -> None:
    """Ten requests at once, again and again, open their connections once (with the pool's
    default of five, the other five were closed and reopened every time, several calls into a
    thread each)."""
    teams = models.table_of(models.Team)
    count = Prepared.of(sa.select(sa.func.count()).select_from(teams), sqlite_dialect())
    opened: list[object] = []

    async def body() -> None:
        async with engine_for(db_url) as engine:
            sa.event.listen(engine.sync_engine, "connect", lambda *args: opened.append(args))

            async def request() -> None:
                db = RequestDB(engine)
                try:
                    await db.read([(count, None)], end=True)
                    await asyncio.sleep(0.01)  # all ten hold their connection at once
                finally:
                    await db.close()

            await asyncio.gather(*(request() for _ in range(10)))
            assert opened  # the first ten opened what the pool lacked
            opened.clear()
            for _ in range(4):
                await asyncio.gather(*(request() for _ in range(10)))

    asyncio.run(body())
    assert opened == []


def test_a_request_that_only_reads_gives_its_connection_back_without_the_driver(
    db_url: str,
) -> None:
    """A request that only `read`s takes the pooled DBAPI connection itself: once its read has
    ended, giving it back takes no call into the driver's thread; a read left open is rolled
    back on the way (the next request sees the latest commit); with more requests at once than
    the pool keeps, the extra connections are closed, none leaked; and in-memory SQLite (a
    pool of its own kind) reads the same way."""
    count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), sqlite_dialect())
    path = db_url.removeprefix("sqlite+aiosqlite:///")

    def add_team() -> None:
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute(
                "INSERT INTO teams (id, name, created_date, updated_date) VALUES (?, ?, ?, ?)",
                (str(uuid.uuid4()), "t", "2026-01-02 03:04:05", "2026-01-02 03:04:05"),
            )

    async def body(url: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with engine_for(url) as engine:
            pool: Any = engine.sync_engine.pool
            db = RequestDB(engine, timeout=30)
            await db.read([(count, None)], end=True)
            await db.close()
            if url != db_url:
                seen["memory"] = (await _read_once(engine, count), engine.sync_engine.pool)
                return seen
            kept = pool.checkedin()

            db = RequestDB(engine, timeout=30)
            await db.read([(count, None)], end=True)
            pooled: Any = db._pooled
            deadline = pooled.info[DEADLINE]
            seen["bound"] = deadline.at is not None
            driver = pooled.driver_connection
            calls: list[object] = []
            real = driver._execute

            async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
                calls.append(fn)
                return await real(fn, *args, **kwargs)

            driver._execute = counted
            try:
                await db.close()
            finally:
                del driver._execute
            seen["calls"], seen["kept"] = calls, pool.checkedin() == kept
            seen["unbound"] = deadline.at is None

            db = RequestDB(engine)
            await db.read([(count, None)])  # not ended
            pooled = db._pooled
            seen["open"] = pooled is not None and pooled.driver_connection._conn.in_transaction
            await db.close()
            add_team()
            db = RequestDB(engine)
            seen["after"] = await db.read([(count, None)], end=True)
            seen["reused"] = db._pooled is not None and db._pooled.driver_connection is driver
            await db.close()

            # a pooled connection invalidated (closed by SQLAlchemy) is opened again on checkout,
            # which calls into the driver: through a greenlet
            db = RequestDB(engine)
            await db.read([(count, None)], end=True)
            assert db._pooled is not None
            await greenlet_spawn(db._pooled.invalidate)
            db._pooled = None
            seen["reopened"] = await _read_once(engine, count)

            dbs = [RequestDB(engine) for _ in range(gateway.db.SQLITE_POOL_SIZE + 3)]
            await asyncio.gather(*(d.read([(count, None)], end=True) for d in dbs))
            drivers: list[Any] = [d._pooled.driver_connection for d in dbs if d._pooled]
            for d in dbs:
                await d.close()
            seen["pool"] = (pool.checkedin(), pool.checkedout())
            # the ones the pool had no room for are closed (their threads stopped)
            seen["closed"] = sum(driver._connection is None for driver in drivers)
        return seen

    seen = asyncio.run(body(db_url))
    assert seen == {
        "bound": True,
        "calls": [],
        "kept": True,
        "unbound": True,
        "open": True,
        "after": [[(1,)]],
        "reused": True,  # rolled back, not thrown away
        "reopened": [[(1,)]],
        "pool": (gateway.db.SQLITE_POOL_SIZE, 0),
        "closed": 3,
    }
    memory = asyncio.run(body("sqlite+aiosqlite:///:memory:"))["memory"]
    assert memory[0] == [[(0,)]]
    assert not isinstance(memory[1], sa.pool.QueuePool)  # the other kind of pool was tried


async def _read_once(engine: Any, statement: Prepared) -> list[list[tuple[Any, ...]]]:
    db = RequestDB(engine)
    try:
        return await db.read([(statement, None)], end=True)
    finally:
        await db.close()


def _pooled_calls(engine: Any) -> list[Any]:
    """The DriverCalls of each connection in the pool."""
    pool: Any = engine.sync_engine.pool
    return [record.info[CALLS] for record in list(pool._pool._queue._queue)]


def test_a_short_read_runs_on_the_event_loops_thread_and_a_long_one_in_the_drivers(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`read` runs a short statement on the sqlite3 connection from the event loop's own thread
    (no call into aiosqlite's thread) once it is prepared on the connection (its first run, in
    the driver's thread); one that runs past INLINE_SECONDS is stopped there and run again,
    whole, in the driver's thread, with the same answer; it then goes straight there
    INLINE_RETRY times before it is tried on the event loop's thread again. The connection's
    busy timeout and deadline handler are as before every time. A statement whose SQL is
    longer than INLINE_SQL_MOST (preparing it cannot be stopped) never runs there."""
    import gateway.request_db as request_db

    monkeypatch.setattr(request_db, "INLINE_RETRY", 2)
    dialect = sqlite_dialect()
    count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), dialect)
    loop = (
        sa.text(RUNAWAY["sqlite"].replace("2000000000", "3000000").replace("(*)", "(*) AS n"))
        .columns(sa.column("n", sa.Integer))
        .subquery()
    )
    long = Prepared.of(sa.select(loop.c.n), dialect)  # some 0.3 s: far past INLINE_SECONDS
    padding = "x" * request_db.INLINE_SQL_MOST
    wordy_text = sa.text(f"SELECT length('{padding}') AS n").columns(n=sa.Integer).subquery()
    wordy = Prepared.of(sa.select(wordy_text.c.n), dialect)

    async def body() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with engine_for(db_url) as engine:
            await _read_once(engine, count)  # the pool's one connection, opened
            (calls,) = _pooled_calls(engine)
            given = calls.given
            seen["short"] = await _read_once(engine, count)
            seen["calls for the short one"] = calls.given - given
            wordy_calls = []
            for _ in range(3):
                given = calls.given
                assert await _read_once(engine, wordy) == [[(request_db.INLINE_SQL_MOST,)]]
                wordy_calls.append(calls.given - given)
            seen["calls for the wordy one"] = wordy_calls
            runs = []
            for _ in range(5):
                given = calls.given
                (rows,) = await _read_once(engine, long)
                # its rows, how many more times it goes straight to the driver's thread, and
                # how many calls into that thread it took
                runs.append((rows, request_db._overran.get(long.sql), calls.given - given))
            seen["long"] = runs
            db = RequestDB(engine)
            try:
                conn = await db.connection()
                seen["busy timeout"] = (
                    await conn.exec_driver_sql("PRAGMA busy_timeout")
                ).scalar_one()
            finally:
                await db.close()
        return seen

    seen = asyncio.run(body())
    done = [(3000000,)]
    assert seen["short"] == [[(0,)]]
    assert seen["calls for the short one"] == 0
    assert seen["calls for the wordy one"] == [1, 1, 1]
    # prepared in the driver's thread; stopped on the event loop's (then run in the driver's),
    # twice straight in the driver's thread, tried again and stopped again
    assert seen["long"] == [
        (done, None, 1),
        (done, 2, 1),
        (done, 1, 1),
        (done, None, 1),
        (done, 2, 1),
    ]
    assert seen["busy timeout"] == gateway.db.SQLITE_BUSY_TIMEOUT_MS


def test_a_read_on_the_event_loops_thread_waits_for_no_lock_and_every_other_use_does(
    db_url: str,
) -> None:
    """A read on the event loop's thread runs with no busy timeout (waiting for a lock there
    would stop the whole event loop) and leaves the connection so, for the next such read; any
    other use gives it its own timeout back first: a read in the driver's thread, the same
    request going on through SQLAlchemy, and whoever takes the connection from the pool next,
    a change that must wait for another writer among them."""
    import gateway.request_db as request_db

    dialect = sqlite_dialect()
    timeout = sa.text("SELECT timeout AS ms FROM pragma_busy_timeout").columns(ms=sa.Integer)
    busy = Prepared.of(sa.select(timeout.subquery().c.ms), dialect)
    padding = "x" * request_db.INLINE_SQL_MOST  # too long for the event loop's thread
    wordy_text = sa.text(f"SELECT timeout + length('{padding}') AS ms FROM pragma_busy_timeout")
    wordy = Prepared.of(sa.select(wordy_text.columns(ms=sa.Integer).subquery().c.ms), dialect)
    full = gateway.db.SQLITE_BUSY_TIMEOUT_MS
    path = db_url.removeprefix("sqlite+aiosqlite:///")

    async def body() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with engine_for(db_url) as engine:
            await _read_once(engine, busy)  # prepared on the pool's one connection
            (calls,) = _pooled_calls(engine)
            given = calls.given
            seen["inline"] = [await _read_once(engine, busy) for _ in range(3)]
            seen["calls"] = calls.given - given
            seen["driver"] = await _read_once(engine, wordy)
            seen["inline again"] = await _read_once(engine, busy)
            db = RequestDB(engine)
            try:
                seen["read"] = await db.read([(busy, None)])
                result = await db.execute(sa.text("PRAGMA busy_timeout"))
                seen["then through SQLAlchemy"] = result.scalar_one()
            finally:
                await db.close()
            await _read_once(engine, busy)  # none again
            async with engine.connect() as conn:
                seen["taken"] = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
            await _read_once(engine, busy)
            writer = sqlite3.connect(path, isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")  # another writer, done in 0.3 s
            try:
                asyncio.get_running_loop().call_later(0.3, writer.commit)
                started = time.monotonic()
                async with write_transaction(engine) as conn:
                    await conn.exec_driver_sql("SELECT 1")
                seen["change waited"] = time.monotonic() - started >= 0.25
            finally:
                writer.close()
            db = RequestDB(engine)
            try:  # SQLAlchemy first, then a read on the event loop's thread, then SQLAlchemy
                await db.execute(sa.text("SELECT 1"))
                seen["mixed read"] = await db.read([(busy, None)])
                result = await db.execute(sa.text("PRAGMA busy_timeout"))
                seen["mixed then"] = result.scalar_one()
            finally:
                await db.close()
            seen["connections"] = len(_pooled_calls(engine))
        return seen

    assert asyncio.run(body()) == {
        "inline": [[[(0,)]]] * 3,
        "calls": 0,
        "driver": [[(full + request_db.INLINE_SQL_MOST,)]],
        "inline again": [[(0,)]],
        "read": [[(0,)]],
        "then through SQLAlchemy": full,
        "taken": full,
        "change waited": True,
        "mixed read": [[(0,)]],
        "mixed then": full,
        "connections": 1,
    }


def test_a_read_checkout_in_one_thread_does_not_spare_another_threads_checkout(
    db_url: str,
) -> None:
    """A connection taken from the pool for a read on the event loop's thread keeps no busy
    timeout (the pool's listener is told so for that checkout alone); a checkout in another
    thread at that very moment, of another event loop and engine, still gets its timeout back."""
    import gateway.request_db as request_db

    dialect = sqlite_dialect()
    count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), dialect)

    read, taking = threading.Event(), threading.Event()

    async def other_thread() -> int:
        async with engine_for(db_url) as engine:
            await _read_once(engine, count)
            await _read_once(engine, count)  # on the event loop's thread: no busy timeout now
            read.set()
            taking.wait(10)
            async with engine.connect() as conn:
                return int((await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one())

    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(asyncio.run(other_thread())))
    worker.start()
    assert read.wait(10)
    request_db._checkout.reading = True  # as while this thread takes a connection for a read
    try:
        taking.set()
        worker.join(30)
    finally:
        request_db._checkout.reading = False
    assert seen == [gateway.db.SQLITE_BUSY_TIMEOUT_MS]


def test_the_reads_of_one_request_share_their_time_on_the_event_loops_thread(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All the reads of one request (a batch reads once per operation) run on the event loop's
    thread for INLINE_REQUEST_SECONDS together at most, each for what is left: then in the
    driver's thread, with the same answers."""
    import gateway.request_db as request_db

    count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), sqlite_dialect())
    budgets: list[float] = []
    real = request_db._run_inline

    def watched(*args: Any) -> Any:
        budgets.append(args[5])  # its seconds
        return real(*args)

    monkeypatch.setattr(request_db, "_run_inline", watched)

    async def body() -> tuple[list[Any], int, float]:
        async with engine_for(db_url) as engine:
            await _read_once(engine, count)  # prepared on the pool's one connection
            (calls,) = _pooled_calls(engine)
            db = RequestDB(engine)
            try:
                answers = [await db.read([(count, None)])]
                left = db._inline_left
                db._inline_left = 0.0005  # as if the request's earlier reads had taken the rest
                answers.append(await db.read([(count, None)]))
                db._inline_left = 0.0  # used up
                given = calls.given
                answers.append(await db.read([(count, None)]))
                return answers, calls.given - given, left
            finally:
                await db.close()

    answers, thread_calls, left = asyncio.run(body())
    assert answers == [[[(0,)]]] * 3
    assert 0 < left < request_db.INLINE_REQUEST_SECONDS  # the first read's time, counted
    assert budgets == [request_db.INLINE_SECONDS, 0.0005]  # none for the third read
    assert thread_calls == 1


def test_a_read_that_meets_a_lock_waits_for_it_off_the_event_loop(db_url: str) -> None:
    """A read that would wait for a lock is not kept on the event loop's thread, where waiting
    stops every other request: it waits in the driver's thread, up to the busy timeout, while
    the event loop goes on. (A WAL database's readers wait only in rare moments; a database
    in rollback-journal mode, which the gateway never sets, makes one at will: a writer's
    exclusive lock.)"""
    path = db_url.removeprefix("sqlite+aiosqlite:///")
    count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), sqlite_dialect())

    async def body() -> tuple[list[list[tuple[Any, ...]]], int]:
        async with engine_for(db_url) as engine:
            await engine.dispose()
            with contextlib.closing(sqlite3.connect(path)) as alone:
                alone.execute("PRAGMA journal_mode = DELETE")
            await _read_once(engine, count)  # a pooled connection, open and idle
            holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            holder.execute("BEGIN EXCLUSIVE")
            # released in half a second by a thread of its own, whatever the event loop does
            threading.Timer(0.5, holder.close).start()
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            await asyncio.sleep(0.05)
            before = ticks
            rows = await _read_once(engine, count)
            ticker.cancel()
            return rows, ticks - before

    rows, ticks = asyncio.run(body())
    assert rows == [[(0,)]]
    assert ticks >= 10  # about 45 while the read waited: the event loop went on


def test_the_calls_into_the_drivers_thread_are_counted_until_they_end(db_url: str) -> None:
    """DriverCalls counts a call until the driver's thread has ended it, even when its caller
    was cancelled before (it runs on): only then may a statement of the connection run on the
    event loop's thread."""
    release = threading.Event()

    async def body() -> list[bool]:
        seen = []
        async with engine_for(db_url) as engine:
            count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), sqlite_dialect())
            await _read_once(engine, count)
            pool: Any = engine.sync_engine.pool
            (record,) = list(pool._pool._queue._queue)
            calls = record.info[CALLS]
            driver = record.dbapi_connection.driver_connection
            seen.append(calls.idle())
            call = asyncio.ensure_future(driver._execute(release.wait, 5))
            await asyncio.sleep(0.05)
            seen.append(calls.idle())
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            seen.append(calls.idle())  # cancelled, but still running in the thread
            release.set()
            await driver._execute(lambda: None)  # queued behind it: both have ended
            seen.append(calls.idle())
        return seen

    assert asyncio.run(body()) == [True, False, False, True]


def test_the_drivers_grant_is_sqlalchemys_for_every_kind_of_integration(db_url: str) -> None:
    """The token lookup on SQLite's driver (one row, permissions and targets as JSON) gives the
    Grant that the SQLAlchemy lookup (a row per permission and target) gives: every status, a
    scheduled start, no permission at all, targets of each kind, and an unknown token."""
    later = datetime(2999, 1, 1, tzinfo=UTC)
    earlier = datetime(2001, 1, 1, tzinfo=UTC)

    async def body() -> list[tuple[Any, Any]]:
        async with engine_for(db_url) as engine:
            graph = await make_source(engine, 3, "grants")
            sid = graph.source.id
            every = [graph.ids(t)[0] for t in ("schools", "courses", "classes")]
            tokens = [
                await make_integration(engine, sid),
                await make_integration(engine, sid, permissions=[]),
                await make_integration(engine, sid, permissions=["people:read", "emails:read"]),
                await make_integration(engine, sid, scope=Scope.SELECTED, targets=every),
                await make_integration(engine, sid, scope=Scope.SELECTED, targets=every[:1]),
                await make_integration(engine, sid, status=IntegrationStatus.DISABLED),
                await make_integration(engine, sid, status=IntegrationStatus.INACTIVE),
                await make_integration(
                    engine, sid, status=IntegrationStatus.INACTIVE, start_date=later
                ),
                await make_integration(engine, sid, start_date=earlier),
                "not-a-token-of-anyone",
            ]
            pairs = []
            for token in tokens:
                db = RequestDB(engine)
                try:
                    assert db.on_driver
                    on_driver = await request_grant(db, token)
                finally:
                    await db.close()
                async with engine.connect() as conn:
                    pairs.append((on_driver, await load_grant(conn, token)))
            return pairs

    pairs = asyncio.run(body())
    assert [a for a, _ in pairs] == [b for _, b in pairs]
    assert pairs[-1] == (None, None)
    assert all(a is not None for a, _ in pairs[:-1])
    selected = pairs[3][0]  # the one with a target of each kind
    assert selected is not None
    assert selected.targets.classes  # targets were read


@pytest.mark.parametrize("engine", ENGINES)
def test_the_gated_statement_reads_the_plans_only_for_the_grant_they_were_proven_for(
    engine: str, tmp_path: Path
) -> None:
    """`gated_statement` (SQLite) and `gated_select` (PostgreSQL) read a token's grant row and,
    behind a `CASE`, the statements proven for one grant: they run (a probe function counts
    them) only while the row is still that grant, which a start date that has passed leaves
    it; any other change to it (status, a start date still to come, permissions, scope, source,
    the integration holding the token) or an unknown token reads the row alone, and the grant
    row is the one the plain token lookup reads."""
    with fresh_database(engine, tmp_path, "gated") as db_url:
        _gated_statement_reads_the_plans_only_for_their_grant(engine, db_url)


def _gated_statement_reads_the_plans_only_for_their_grant(engine: str, db_url: str) -> None:
    dialect: sa.Dialect = sqlite_dialect() if engine == "sqlite" else asyncpg_dialect()
    probes = [sa.select(sa.func.gw_probe(sa.literal(value, sa.Integer))) for value in (7, 8)]

    async def setup() -> tuple[str, str, str, Any]:
        async with engine_for(db_url) as engine:
            graph = await make_source(engine, 3, "gated")
            other = await make_source(engine, 4, "gated-other")
            token = await make_integration(
                engine, graph.source.id, permissions=["people:read", "emails:read"]
            )
            spare = await make_integration(
                engine, graph.source.id, permissions=["people:read", "emails:read"]
            )
            async with engine.connect() as conn:
                grant = await load_grant(conn, token)
                spare_grant = await load_grant(conn, spare)
            assert grant is not None
            assert spare_grant is not None
            return token, spare_grant.integration_id, other.source.id, grant

    token, spare_id, other_source, grant = asyncio.run(setup())
    if engine == "sqlite":
        gated = gated_statement(dialect, grant, [Prepared.of(p, dialect) for p in probes])
    else:
        gated = gated_select(dialect, grant, probes)
    plain = _prepared(dialect)
    me = grant.integration_id
    now = utcnow().replace(microsecond=0)  # a whole second: its text has a fraction all the same
    column_type = models.table_of(models.Integration).c.start_date.type
    stored_time = column_type.dialect_impl(dialect).bind_processor(dialect)
    if engine == "sqlite":
        assert stored_time is not None
    else:  # an ISO 8601 literal, which `timestamptz` reads exactly

        def stored_time(value: datetime) -> str:
            return value.isoformat()

    just_now = stored_time(now - timedelta(microseconds=1))
    in_a_moment = stored_time(now + timedelta(microseconds=1))
    email = "(SELECT id FROM permissions WHERE slug = 'emails:read')"
    changes = {
        "nothing": ("SELECT 1", "SELECT 1"),
        "disabled": (
            f"UPDATE integrations SET status = 'DISABLED' WHERE id = '{me}'",
            f"UPDATE integrations SET status = 'ACTIVE' WHERE id = '{me}'",
        ),
        "inactive": (
            f"UPDATE integrations SET status = 'INACTIVE' WHERE id = '{me}'",
            f"UPDATE integrations SET status = 'ACTIVE' WHERE id = '{me}'",
        ),
        "a start date, passed": (
            f"UPDATE integrations SET start_date = '2001-01-01 00:00:00.000000' WHERE id = '{me}'",
            f"UPDATE integrations SET start_date = NULL WHERE id = '{me}'",
        ),
        "inactive, with a start date that passed a moment ago": (
            f"UPDATE integrations SET status = 'INACTIVE', start_date = '{just_now}' "
            f"WHERE id = '{me}'",
            f"UPDATE integrations SET status = 'ACTIVE', start_date = NULL WHERE id = '{me}'",
        ),
        "a start date that passes at this very moment": (
            f"UPDATE integrations SET start_date = '{stored_time(now)}' WHERE id = '{me}'",
            f"UPDATE integrations SET start_date = NULL WHERE id = '{me}'",
        ),
        "a start date to come": (
            f"UPDATE integrations SET start_date = '{in_a_moment}' WHERE id = '{me}'",
            f"UPDATE integrations SET start_date = NULL WHERE id = '{me}'",
        ),
        "inactive, with a start date to come": (
            "UPDATE integrations SET status = 'INACTIVE', "
            f"start_date = '2999-01-01 00:00:00.000000' WHERE id = '{me}'",
            f"UPDATE integrations SET status = 'ACTIVE', start_date = NULL WHERE id = '{me}'",
        ),
        "disabled, with a start date passed": (
            "UPDATE integrations SET status = 'DISABLED', "
            f"start_date = '2001-01-01 00:00:00.000000' WHERE id = '{me}'",
            f"UPDATE integrations SET status = 'ACTIVE', start_date = NULL WHERE id = '{me}'",
        ),
        "a permission taken away": (
            f"DELETE FROM integration_permissions WHERE integration_id = '{me}' "
            f"AND permission_id = {email}",
            f"INSERT INTO integration_permissions VALUES ('{me}', {email})",
        ),
        "a permission given": (
            f"INSERT INTO integration_permissions SELECT '{me}', id FROM permissions "
            "WHERE slug = 'phones:read'",
            f"DELETE FROM integration_permissions WHERE integration_id = '{me}' AND "
            "permission_id = (SELECT id FROM permissions WHERE slug = 'phones:read')",
        ),
        "the scope": (
            f"UPDATE integrations SET scope = 'SELECTED' WHERE id = '{me}'",
            f"UPDATE integrations SET scope = 'ALL' WHERE id = '{me}'",
        ),
        "the source": (
            f"UPDATE integrations SET source_id = '{other_source}' WHERE id = '{me}'",
            f"UPDATE integrations SET source_id = '{grant.source_id}' WHERE id = '{me}'",
        ),
        "the integration holding the token": (
            f"UPDATE integrations SET token_digest = 'x' WHERE id = '{me}'; "
            f"UPDATE integrations SET token_digest = '{digest(token)}' WHERE id = '{spare_id}'",
            f"UPDATE integrations SET token_digest = 'y' WHERE id = '{spare_id}'; "
            f"UPDATE integrations SET token_digest = '{digest(token)}' WHERE id = '{me}'",
        ),
        "the token": (
            f"UPDATE integrations SET token_digest = 'rotated' WHERE id = '{me}'",
            f"UPDATE integrations SET token_digest = '{digest(token)}' WHERE id = '{me}'",
        ),
    }
    wanted = {"digest": digest(token)}
    if engine == "sqlite":
        seen, read = _gate_on_sqlite(db_url, changes, gated, plain, wanted, now)
    else:
        seen, read = asyncio.run(_gate_on_postgresql(db_url, changes, gated, plain, wanted, now))
    assert all(read[name] != read["nothing"] for name in changes if name != "nothing")
    # the grant it was: ACTIVE (a start date that has passed makes it so), nothing else changed
    for name in (
        "nothing",
        "a start date, passed",
        "a start date that passes at this very moment",
        "inactive, with a start date that passed a moment ago",
    ):
        assert seen.pop(name) == ((1, 7, 8), [7, 8]), name
    assert seen.pop("the token") == (None, [])
    assert seen == {name: ((0, None, None), []) for name in seen}


Seen = dict[str, tuple[Any, list[int]]]


@dataclass
class _Driver:
    """One engine's driver as the test needs it: run a script, fetch rows, read and clear the
    probe's calls."""

    script: Callable[[str], Awaitable[Any]]
    fetch: Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]
    calls: Callable[[], Awaitable[list[int]]]
    clear: Callable[[], Awaitable[Any]]


async def _gate_after_each_change(
    driver: _Driver,
    changes: dict[str, tuple[str, str]],
    gated: Prepared,
    plain: Prepared,
    wanted: dict[str, Any],
    now: datetime,
) -> tuple[Seen, dict[str, Any]]:
    """After each change: the gated statement's row past the grant's columns and the probes
    it ran; and the grant row the plain lookup read."""
    seen: Seen = {}
    read: dict[str, Any] = {}
    for name, (change, undo) in changes.items():
        await driver.script(change)
        try:
            rows = await driver.fetch(gated.sql, gated.parameters({**wanted, "now": now}))
            alone = await driver.fetch(plain.sql, plain.parameters(wanted))
            width = len(alone[0]) if alone else len(plain.results)
            assert [row[:width] for row in rows] == alone, name
            seen[name] = (tuple(rows[0][width:]) if rows else None, await driver.calls())
            read[name] = alone
            await driver.clear()
        finally:
            await driver.script(undo)
    return seen, read


def _gate_on_sqlite(db_url: str, *args: Any) -> tuple[Seen, dict[str, Any]]:
    """`_gate_after_each_change` on SQLite's driver, with a Python probe function."""
    conn = sqlite3.connect(db_url.removeprefix("sqlite+aiosqlite:///"), isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    calls: list[int] = []
    conn.create_function("gw_probe", 1, lambda value: calls.append(value) or value)

    async def script(sql: str) -> None:
        conn.executescript(sql)

    async def fetch(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    async def taken() -> list[int]:
        return calls[:]

    async def clear() -> None:
        calls.clear()

    try:
        return asyncio.run(_gate_after_each_change(_Driver(script, fetch, taken, clear), *args))
    finally:
        conn.close()


async def _gate_on_postgresql(db_url: str, *args: Any) -> tuple[Seen, dict[str, Any]]:
    """`_gate_after_each_change` on asyncpg, as the gateway runs it (`read_alone`): the probe
    is a function that records each call in a table."""
    import asyncpg

    dsn = sa.make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE gw_probe_calls (n serial PRIMARY KEY, value integer NOT NULL); "
        "CREATE FUNCTION gw_probe(value integer) RETURNS integer VOLATILE LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO gw_probe_calls (value) VALUES (value); RETURN value; END $$"
    )

    async def fetch(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await conn.fetch(sql, *params)]

    async def taken() -> list[int]:
        return [r[0] for r in await conn.fetch("SELECT value FROM gw_probe_calls ORDER BY n")]

    async def clear() -> None:
        await conn.execute("DELETE FROM gw_probe_calls")

    try:
        return await _gate_after_each_change(_Driver(conn.execute, fetch, taken, clear), *args)
    finally:
        await conn.close()


def test_a_grant_row_makes_its_grant_once_unless_a_start_date_ties_it_to_the_time() -> None:
    """`_grant_of_row` keeps the Grant of a grant row as read: the same row gives the same
    (immutable) Grant; a change to any value of the row is another row, with its own Grant; a
    wrong digest gives none; a row with a start date is judged again at each request."""
    wanted = digest("kept-token")
    row = (
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        "ALL",
        "ACTIVE",
        None,
        wanted,
        '["emails:read","people:read"]',
        "[]",
    )
    first = _grant_of_row(wanted, [row])
    assert first is not None
    assert _grant_of_row(wanted, [row]) is first
    assert _grant_of_row(digest("another-token"), [row]) is None
    taken = _grant_of_row(wanted, [(*row[:6], '["people:read"]', row[7])])
    assert taken is not None
    assert (first.permissions, taken.permissions) == (
        frozenset({"emails:read", "people:read"}),
        frozenset({"people:read"}),
    )
    disabled = _grant_of_row(wanted, [(*row[:3], "DISABLED", *row[4:])])
    assert disabled is not None
    assert disabled.status is IntegrationStatus.DISABLED
    assert first.status is IntegrationStatus.ACTIVE
    kept = len(_GRANTS)
    soon = datetime.now(UTC) + timedelta(milliseconds=300)
    scheduled = (*row[:4], soon, *row[5:])
    before = _grant_of_row(wanted, [scheduled])
    assert before is not None
    assert before.status is IntegrationStatus.INACTIVE
    assert len(_GRANTS) == kept
    time.sleep(0.35)
    after = _grant_of_row(wanted, [scheduled])
    assert after is not None
    assert after.status is IntegrationStatus.ACTIVE


def test_an_in_memory_sqlite_url_still_makes_an_engine() -> None:
    """The pool size given to a file's engine is not given to an in-memory database's, whose
    single connection SQLAlchemy keeps itself (it refused the argument)."""

    async def body() -> int:
        engine = create_engine("sqlite+aiosqlite:///:memory:")
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(sa.select(1))).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(body()) == 1


def test_a_new_sqlite_file_waits_for_a_writer_before_it_switches_to_wal(db_url: str) -> None:
    # Another process holds the write lock on a new file still in rollback-journal mode: SQLite
    # refuses the switch to WAL at once (no busy wait), so the gateway must wait and try again.
    path = db_url.removeprefix("sqlite+aiosqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE elsewhere (x INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO elsewhere VALUES (1)")

    async def body() -> tuple[str, int, int, int]:
        asyncio.get_running_loop().call_later(0.3, writer.commit)
        async with engine_for(db_url) as engine, engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
            timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
            mapped = (await conn.exec_driver_sql("PRAGMA mmap_size")).scalar_one()
            return mode, keys, timeout, mapped

    try:
        assert asyncio.run(body()) == ("wal", 1, SQLITE_BUSY_TIMEOUT_MS, SQLITE_MMAP_BYTES)
    finally:
        writer.close()


def test_a_change_that_waits_too_long_for_another_writer_says_so(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.db, "SQLITE_BUSY_TIMEOUT_MS", 200)

    async def body() -> None:
        async with engine_for(db_url) as engine:
            path = db_url.removeprefix("sqlite+aiosqlite:///")
            writer = sqlite3.connect(path, isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")  # an import holding the write lock
            try:
                with pytest.raises(DatabaseUnavailable, match="busy with another change"):
                    async with write_transaction(engine):
                        pass
            finally:
                writer.close()
            async with write_transaction(engine) as conn:  # free again
                await conn.execute(sa.select(1))

    asyncio.run(body())


@pytest.mark.parametrize("cancels", [1, 2, 5])
def test_a_read_cancelled_in_flight_leaves_no_open_transaction_in_the_pool(
    db_url: str, monkeypatch: pytest.MonkeyPatch, cancels: int
) -> None:
    """A request cancelled while its `read` waits for the driver's thread (a server's shutdown
    timeout, a cancelled task) gives its connection back only once that call has ended: the
    thread runs it to its end (BEGIN, the statements) whatever the event loop does, and a
    connection returned before would carry the read transaction it opens into the pool, where
    the next request's BEGIN fails ("cannot start a transaction within a transaction") and a
    read without BEGIN would see that old snapshot (an integration disabled since, still
    active). So too when it is cancelled again while it waits (found by a review)."""
    import gateway.request_db as request_db

    count = Prepared.of(sa.select(sa.func.count()).select_from(TEAMS), sqlite_dialect())
    real = request_db._run_in_driver
    started = threading.Event()

    def late(*args: Any) -> Any:
        started.set()
        time.sleep(0.3)  # the driver's thread starts the call late (busy, waiting for the GIL)
        return real(*args)

    async def body() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with engine_for(db_url) as engine:
            db = RequestDB(engine, timeout=30)
            monkeypatch.setattr(request_db, "_run_in_driver", late)
            # as for a statement too long for the event loop's own thread
            monkeypatch.setattr(request_db, "_run_inline", lambda *args: None)
            task = asyncio.ensure_future(db.read([(count, None)]))
            await asyncio.to_thread(started.wait, 5)
            for _ in range(cancels):
                task.cancel()
                await asyncio.sleep(0.02)  # the read waits for the driver's call by now
            try:
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                await db.close()  # as the app's `finally` does
            monkeypatch.undo()
            await asyncio.sleep(0.5)  # the driver's call has ended by now, whatever happened
            pool: Any = engine.sync_engine.pool
            seen["open in the pool"] = [
                record.dbapi_connection.driver_connection._conn.in_transaction
                for record in list(pool._pool._queue._queue)
            ]
            seen["next"] = await _read_once(engine, count)
        return seen

    assert asyncio.run(body()) == {"open in the pool": [False], "next": [[(0,)]]}


@pytest.mark.parametrize("dialect", [sqlite_dialect(), asyncpg_dialect()], ids=["sqlite", "pg"])
def test_a_prepared_statements_parameters_are_the_ones_sqlalchemy_binds(dialect: Any) -> None:
    """`Prepared.parameters` (the fixed values in a template, each slot's value converted once
    and put wherever it recurs) gives the positional parameters of SQLAlchemy's own
    compilation, for values in the slots and for none."""
    integrations = models.table_of(models.Integration)
    now = sa.bindparam("now", type_=integrations.c.start_date.type)
    statement = sa.select(integrations.c.id).where(
        integrations.c.start_date <= now,
        integrations.c.scope == Scope.SELECTED.value,
        sa.or_(integrations.c.start_date > now, integrations.c.token_digest == sa.bindparam("d")),
        integrations.c.start_date != datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    prepared = Prepared.of(statement, dialect, ("now", "d"))
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    processors = compiled._bind_processors

    def expected(values: dict[str, Any]) -> tuple[Any, ...]:
        params = compiled.construct_params(params=values)
        return tuple(
            processors[name](params[name]) if callable(processors.get(name)) else params[name]
            for name in compiled.positiontup or ()
        )

    when = datetime(2026, 12, 7, 5, 6, 7, 890123, tzinfo=UTC)
    values = {"now": when, "d": "abc"}
    assert prepared.names.count("now") == (2 if dialect.paramstyle == "qmark" else 1)  # $1 twice
    assert prepared.parameters(values) == expected(values)
    assert prepared.parameters(None) == expected({"now": None, "d": None})


def test_a_new_sqlite_file_gets_the_larger_pages_and_an_older_file_keeps_its_own(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old)) as conn:  # as a release before made it
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE earlier (x)")

    async def page_size(engine: Any) -> int:
        async with engine.connect() as conn:
            await conn.execute(
                sa.select(sa.func.count()).select_from(models.table_of(models.Source))
            )
            return int((await conn.exec_driver_sql("PRAGMA page_size")).scalar_one())

    assert run_db(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", page_size) == SQLITE_PAGE_SIZE
    assert run_db(f"sqlite+aiosqlite:///{old}", page_size) == 4096
    with contextlib.closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
