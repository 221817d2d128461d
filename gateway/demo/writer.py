"""Writing the demo's rows fast: batched executemany, each distinct value converted once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from gateway import models
from gateway.coltypes import TagList

_BATCH = 5000
_YIELD_EVERY = 250
_SQLITE_CACHE_KIB = 256 * 1024


class _Inserter:
    """An INSERT of one table for `executemany`, with the values already in database form.

    SQLAlchemy would run every column's bind processor on every value of every row, and that
    costs more than building the rows (a timestamp alone takes microseconds on SQLite). Demo rows
    repeat most values (the source, a class, a person, a timestamp from a small table), so each
    distinct value is processed once here. The statement and the processors come from the
    connection's dialect, exactly as SQLAlchemy would use them, so any engine works.
    """

    def __init__(self, table: sa.Table, dialect: Dialect) -> None:
        compiled = table.insert().compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.names = list(compiled.positiontup or compiled.binds)
        self.columns: list[tuple[str, Callable[[Any], Any] | None, dict[Any, Any] | None]] = []
        for name in self.names:
            column = table.c[compiled.binds[name].key]
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            # Unique (ids) or unhashable (JSON, lists) values gain nothing from a memo.
            repeats = not column.primary_key and not isinstance(column.type, (sa.JSON, TagList))
            self.columns.append((column.key, process, {} if repeats and process else None))

    def values(self, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """`row` (column key -> Python value) as the driver's parameters."""
        out = []
        for key, process, memo in self.columns:
            value = row[key]
            if value is not None and process is not None:
                if memo is None:
                    value = process(value)
                elif value in memo:
                    value = memo[value]
                else:
                    memo[value] = processed = process(value)
                    value = processed
            out.append(value)
        return tuple(out) if self.positional else dict(zip(self.names, out, strict=True))


async def insert(
    conn: AsyncConnection,
    model: type[SQLModel],
    rows: Iterable[dict[str, Any]],
    counts: Counter[str],
) -> None:
    """Bulk-insert `rows` with one executemany per batch of `_BATCH` rows.

    The next batch is built while the database writes the previous one: the async driver waits
    on another thread (aiosqlite) or a socket, so handing the event loop back every few hundred
    rows lets the pending statement move on.
    """
    table = models.table_of(model)
    inserter = _Inserter(table, conn.dialect)
    writing: asyncio.Task[Any] | None = None
    batch: list[Any] = []
    try:
        for row in rows:
            batch.append(inserter.values(row))
            if len(batch) % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if len(batch) >= _BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.create_task(conn.exec_driver_sql(inserter.sql, batch))
                counts[table.name] += len(batch)
                batch = []
        if writing is not None:
            await writing
        if batch:
            await conn.exec_driver_sql(inserter.sql, batch)
            counts[table.name] += len(batch)
    finally:
        if writing is not None and not writing.done():
            # Building a row failed while a batch was being written: let the write finish
            # before the transaction rolls back; the build error is the one to report.
            await asyncio.wait([writing])


@asynccontextmanager
async def sqlite_page_cache(conn: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, a page cache that holds the indexes being filled, for as long as the load runs.

    Random UUID keys land all over every index; with SQLite's 2 MB default cache each insert
    rereads and rewrites index pages, which makes a large demo three times slower.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
    await conn.commit()
    try:
        yield
    finally:
        await conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
        await conn.commit()
