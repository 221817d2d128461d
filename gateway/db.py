"""The database engine, its SQLite pragmas, schema creation and the permission seed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_
from sqlmodel import SQLModel

from gateway import db_problems, models
from gateway.access import views
from gateway.access.permissions import CATALOG
from gateway.coltypes import utcnow
from gateway.compiled.sqljson import register_sqlite_functions
from gateway.events import feed
from gateway.request_db import (
    CALLS,
    DEADLINE,
    SQLITE_PROGRESS_STEPS,
    Deadline,
    DriverCalls,
    waits_for_locks_when_taken,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_POOL_SIZE = 20
# Reads go through the memory map of the file (the operating system's page cache, shared by
# every connection) instead of copying pages into each connection's own cache of 2 MiB: a
# three-level page read 30-40% faster with it at 10,000 people, a nested one 5-8%. Writes
# still go through SQLite's journal as before. Rails 8 sets 128 MiB by default.
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
# The page size of a new database file (a file keeps the size it was made with): SQLite's
# default is 4 KiB. With 16 KiB the import benchmark (20,000 users, 200,000 enrollments) took
# 6.2-6.5 s instead of 7.1-7.3 s, with a third less system time (every page written goes into
# the WAL and from there into the file, a system call each way), and the compiled path's
# statements ran 2-4% faster (fewer levels in each tree). 32 and 64 KiB were no faster.
SQLITE_PAGE_SIZE = 16 * 1024


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    # The busy timeout comes first so that it covers the pragmas after it. The journal mode is
    # not set here: it is a property of the file, set once by `create_schema` (see `_use_wal`).
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # a new file's; else no change
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()
    register_sqlite_functions(dbapi_connection)
    deadline = Deadline()
    record.info[DEADLINE] = deadline
    driver = dbapi_connection.driver_connection  # the aiosqlite connection
    record.info[CALLS] = DriverCalls.counted(driver, SQLITE_BUSY_TIMEOUT_MS)
    await_(driver.set_progress_handler(deadline.passed, SQLITE_PROGRESS_STEPS))


def _reset_sqlite(dbapi_connection: Any, record: Any, state: sa.PoolResetState) -> None:
    """Return an SQLite connection to the pool with no transaction open, rolling back only
    when one is (the pool's default rolls back every time, one call into aiosqlite's thread:
    a request that ended its read itself, `RequestDB.read(end=True)`, would pay it for
    nothing)."""
    if state.transaction_was_reset or state.terminate_only or not state.asyncio_safe:
        return
    connection = dbapi_connection.driver_connection._conn  # the sqlite3 connection
    if connection.in_transaction:
        dbapi_connection.rollback()


def _sqlite_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A connection taken from the pool waits for locks again, whatever a read on the event
    loop's thread left (`waits_for_locks_when_taken`)."""
    waits_for_locks_when_taken(record)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs: dict[str, Any] = {
        "echo": echo,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        # A database error's message would carry every bound value, the caller's input among
        # them, into the log (and `echo`); the statement alone says what failed.
        "hide_parameters": True,
    }
    if url.startswith("postgresql"):
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    elif url.startswith("sqlite"):
        kwargs.update(
            pool_reset_on_return=None,  # `_reset_sqlite` instead
            # `RequestDB.read` runs short statements from the event loop's thread too, never
            # while aiosqlite's runs one (`DriverCalls`).
            connect_args={"check_same_thread": False},
        )
        if sa.make_url(url).database not in (None, "", ":memory:"):
            # Connections to a file are cheap to keep, and opening one costs several calls
            # into its thread (pragmas, functions): keep as many as requests run at once (the
            # default, five, closed and reopened one connection in two under ten concurrent
            # requests, a fifth of the time of a compiled answer).
            # The connection given back last is taken first: at low concurrency the same few
            # serve every request, with their statements prepared (`RequestDB.read` runs
            # those on the event loop's thread) and their pages cached.
            kwargs.update(
                pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE, pool_use_lifo=True
            )
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _reset_sqlite)
        event.listen(engine.sync_engine, "checkout", _sqlite_checkout)
    return engine


# Any constant shared by every gateway process: the PostgreSQL advisory lock around `create_schema`.
_SCHEMA_LOCK_KEY = 0x6761_7465_7761_7921  # "gateway!"


async def create_schema(engine: AsyncEngine) -> None:
    """Create every table that is missing and make sure the permission catalog is present.

    Processes that start at once on one empty database (`serve --workers N`, or several machines
    on one PostgreSQL) take turns: each holds a lock while it looks for the tables and creates
    what is missing, so the later ones find the tables instead of colliding.
    """
    if engine.dialect.name == "sqlite":
        await _use_wal(engine)
    async with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
        upgrading = await conn.run_sync(_has_integrations_without_views)
        without_feeds = await conn.run_sync(_has_integrations_without_feeds)
        await conn.run_sync(SQLModel.metadata.create_all)
        indexed = await conn.run_sync(_add_missing_columns_and_indexes)
        await seed_permissions(conn)
        # Before the views are written: on PostgreSQL dropping a table waits for the
        # transactions that wrote it (an import of the release before, still running) and makes
        # the later ones fail, so the views are written from what they committed.
        await conn.run_sync(_retire_tables)
        if indexed or upgrading:
            await refresh_statistics(conn)
        if upgrading:
            # A database from before the stored views, before one table per kind, or that the
            # release before wrote since: write them, before any request (only the difference
            # where they hold rows).
            await views.refresh_all(conn)
        if without_feeds:
            # A database from before the change feed: each integration's first materialization.
            await feed.sync_all(conn)


def _add_missing_columns_and_indexes(conn: sa.Connection) -> bool:
    """Add the columns and indexes a table of an earlier version lacks (`create_all` only adds
    tables), and drop the indexes it replaced (`RETIRED_INDEXES`).

    Every column added since the first release is nullable, so an older row simply has none.
    Whether an index was created: SQLite's planner then needs statistics for it, or it keeps to
    the indexes it has statistics for.
    """
    inspector = sa.inspect(conn)
    created = False
    for table in SQLModel.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        added = [column for column in table.columns if column.name not in present]
        for column in added:
            if not column.nullable:
                raise RuntimeError(
                    f"column {table.name}.{column.name} is missing and not nullable; "
                    "an upgrade cannot add it to existing rows"
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
        indexed = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexed:  # added since, or on an added column
                index.create(conn)
                created = True
    for name in RETIRED_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    return created


# Indexes of earlier releases that a later one replaced (with another name): dropped on opening.
RETIRED_INDEXES = (
    "ix_person_schools_school_id",  # (school_id, person_id): ix_person_schools_school
    "ix_class_sessions_session_id",  # (session_id, class_id): ix_class_sessions_session
    "ix_enrollments_section_id_id",  # every row, most without a section: ..._id_set
)


def _has_integrations_without_views(conn: sa.Connection) -> bool:
    """Whether the stored views must be written: there are integrations, and a view table is
    missing or the table the release before kept them in is there (it writes only that one, so
    the views may be stale if it ran on this database since this release last opened it)."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("integrations"):
        return False
    tables = set(inspector.get_table_names())
    return not all(view.name in tables for view in models.VISIBLE_TABLES.values()) or bool(
        tables & set(RETIRED_TABLES)
    )


# Tables of earlier releases that a later one replaced, with the columns they had: each is
# dropped on opening and an empty read-only SQL view takes its name, in a new database too
# (`_retire_tables`).
RETIRED_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    # (integration_id, kind, id): one table per kind since, models.VISIBLE_TABLES
    "visible_rows": (
        ("integration_id", "VARCHAR(36)"),
        ("kind", "VARCHAR(16)"),
        ("id", "VARCHAR(36)"),
    ),
}


def _retire_tables(conn: sa.Connection) -> None:
    """Drop each retired table and leave in its place (or in a new database, put under its
    name) an SQL view of the same columns that holds no row and takes no write. A process of
    the release before still running on this database (a rolling deploy, a rollback) then
    fails closed: its scoped reads find nothing and its writes of the old table fail (with the
    rest of their transaction), instead of leaving this release's tables stale. Its
    `create_all` finds the name taken and makes nothing."""
    inspector = sa.inspect(conn)
    tables, sql_views = set(inspector.get_table_names()), set(inspector.get_view_names())
    for name, columns in RETIRED_TABLES.items():
        if name in sql_views:
            continue
        if name in tables:
            conn.exec_driver_sql(f"DROP TABLE {name}")
        empty = ", ".join(f"CAST(NULL AS {kind}) AS {column}" for column, kind in columns)
        conn.exec_driver_sql(f"CREATE VIEW {name} AS SELECT {empty} WHERE 1 = 0")


def _has_integrations_without_feeds(conn: sa.Connection) -> bool:
    inspector = sa.inspect(conn)
    return inspector.has_table("integrations") and not inspector.has_table(
        models.table_of(models.EventFeed).name
    )


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction for a read-then-write change, committed on exit (rolled back on error).

    On SQLite it holds the write lock from its first statement (`BEGIN IMMEDIATE`), waiting up
    to the busy timeout for another writer: the driver otherwise starts the transaction only at
    the first write, so what was read before it could be stale, and two administrators'
    concurrent changes could silently undo each other. PostgreSQL needs nothing here: the
    changes lock the rows they read (`FOR UPDATE`).
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            try:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            except sa.exc.OperationalError as error:
                if "locked" not in str(error.orig) and "busy" not in str(error.orig):
                    raise
                raise db_problems.DatabaseUnavailable(
                    f"the database is busy with another change (an import, or another "
                    f"administrator's change) for more than {SQLITE_BUSY_TIMEOUT_MS // 1000} s; "
                    "try again when it has finished"
                ) from error
        yield conn


async def _use_wal(engine: AsyncEngine) -> None:
    """Put the SQLite file in WAL mode (readers never wait for the writer); it stays so.

    Switching needs the file to itself, and SQLite answers "database is locked" at once, without
    waiting out the busy timeout, when the switching connection would otherwise deadlock with a
    writer (several processes starting on one new file). So it waits here, asynchronously, and
    tries again until the busy timeout has passed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            try:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                if mode not in ("wal", "memory"):
                    await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                return
            except sa.exc.OperationalError as error:
                if "locked" not in str(error.orig) and "busy" not in str(error.orig):
                    raise
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)


async def seed_permissions(conn: AsyncConnection) -> None:
    """Insert or refresh the fixed permission catalog rows."""
    table = models.table_of(models.Permission)
    existing = set((await conn.execute(sa.select(table.c.id))).scalars())
    for spec in CATALOG:
        values = {"slug": spec.slug, "name": spec.name, "description": spec.description}
        if str(spec.id) in existing:
            await conn.execute(table.update().where(table.c.id == str(spec.id)).values(**values))
        else:
            await conn.execute(
                table.insert().values(
                    id=str(spec.id), created_date=utcnow(), updated_date=utcnow(), **values
                )
            )


SQLITE_ANALYSIS_LIMIT = 1000
"""Rows of each index that SQLite's ANALYZE samples (an approximate analysis, fast on any size)."""


async def refresh_statistics(conn: AsyncConnection) -> None:
    """Let the query planner know the tables' sizes again, after a bulk write (an import, the
    demo), in the writer's transaction.

    Without statistics SQLite takes `source_id = ?` for a selective condition and derives a
    scope closure by scanning a district's enrollments instead of a few classes' (seconds
    instead of milliseconds at 100,000 people). PostgreSQL's autovacuum would catch up later;
    the stored views are written right after the import, so it is told now.
    """
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        await conn.exec_driver_sql("ANALYZE")
    elif conn.dialect.name == "postgresql":
        for model in models.GRAPH_TABLES:
            await conn.exec_driver_sql(f"ANALYZE {models.table_of(model).name}")


async def ping(engine: AsyncEngine) -> None:
    """Raise when the database cannot answer a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


@asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with the schema in place, disposed of on exit (for commands and tests).

    Raises DatabaseUnavailable, saying why and what to set instead, when `url` cannot be read,
    names a driver that cannot be used, or the database cannot be opened.
    """
    try:
        engine = create_engine(url)
    except db_problems.URL_ERRORS as error:
        raise db_problems.open_problem(url, error) from error
    try:
        workers_before = _aiosqlite_workers()
        try:
            await create_schema(engine)
        except db_problems.CONNECT_ERRORS as error:
            await _ended(_aiosqlite_workers() - workers_before)
            raise db_problems.open_problem(url, error) from error
        yield engine
    finally:
        await engine.dispose()


def _aiosqlite_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


async def _ended(threads: set[threading.Thread]) -> None:
    """Wait, a second at most each, until `threads` have ended, with the event loop open.

    After a failed connect aiosqlite stops its worker thread without waiting for it; when the
    event loop closes first, the thread dies printing "RuntimeError: Event loop is closed" under
    our one-line error (an upstream fix, omnilib/aiosqlite#389, is not released).
    """
    for thread in threads:
        await asyncio.to_thread(thread.join, 1.0)
