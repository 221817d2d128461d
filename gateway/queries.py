"""Every SELECT of graph data. Each function takes the request's Grant and adds its scope, read
from `gateway.access.views` (the source under ALL, the stored view under SELECTED).

Pages are keyset pages ordered by id: `first + 1` rows are fetched so the caller knows whether
another page follows. Nested pages for many parents are one statement: `ROW_NUMBER()` per
parent inside SQL, never a slice in Python.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from gateway.access.grant import Grant
from gateway.access.views import Rows, count_visible, visible_rows
from gateway.coltypes import lazy_columns
from gateway.relations import TABLES, ManyEdge

Predicate = ColumnElement[bool]
# A fetched row as the resolvers see it: its columns as attributes. Plain namespaces rather
# than SQLAlchemy rows, whose failed attribute lookups (GraphQL's per-value "is this
# awaitable?" check) cost microseconds each.
Record = SimpleNamespace

# Parent ids per statement; beyond this a level is split (only queries the cost limit allows).
PARENT_CHUNK = 5000


class Executor(Protocol):
    """What runs a statement: the request's serialized connection."""

    async def execute(self, statement: sa.Executable) -> sa.CursorResult[Any]: ...


RECORD_SLICE = 2000
"""Rows turned into records between two yields to the event loop: a statement of tens of
thousands of rows (a nested level of the largest page the cost limit allows) would otherwise
hold the loop for half a second, and /healthz and every other request with it."""


async def _records(result: sa.CursorResult[Any]) -> list[Record]:
    records: list[Record] = []
    for mappings in result.mappings().partitions(RECORD_SLICE):
        if records:
            await asyncio.sleep(0)
        records.extend(Record(**mapping) for mapping in mappings)
    return records


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), PARENT_CHUNK):
        yield values[start : start + PARENT_CHUNK]


async def fetch_page(
    db: Executor,
    grant: Grant,
    table: sa.Table,
    filters: Sequence[Predicate],
    first: int,
    after: str | None,
) -> list[Record]:
    """Up to `first + 1` visible rows of `table` after id `after`, ordered by id."""
    rows = visible_rows(grant, table)
    stmt = sa.select(*lazy_columns(table)).select_from(rows.source).where(*rows.where, *filters)
    if after is not None:
        stmt = stmt.where(rows.id > after)
    stmt = stmt.order_by(rows.id).limit(first + 1)
    return await _records(await db.execute(stmt))


async def count_rows(
    db: Executor, grant: Grant, table: sa.Table, filters: Sequence[Predicate]
) -> int:
    """How many visible rows of `table` match `filters`."""
    return int((await db.execute(count_visible(grant, table, filters))).scalar_one())


def edge_rows(grant: Grant, edge: ManyEdge) -> tuple[Rows, ColumnElement[Any]]:
    """The visible rows an edge reaches, and the column holding each row's parent id."""
    table = edge.table
    if edge.parent_fk is not None:
        return visible_rows(grant, table, table), table.c[edge.parent_fk]
    assert edge.link is not None
    link = edge.link(grant.source_id)
    return visible_rows(grant, table, table.join(link, link.c.child == table.c.id)), link.c.parent


def edge_rows_of(
    grant: Grant, edge: ManyEdge, parent_id: ColumnElement[Any]
) -> tuple[Rows, list[Predicate], ColumnElement[Any]]:
    """The visible rows an edge reaches from the one parent `parent_id` (a column of an
    enclosing statement), the predicates that select them, and the column that orders them
    (equal to the rows' id).

    A foreign-key edge filters by its key. A paired edge whose table holds each (parent, child)
    pair once (its primary key) walks that key's index from the parent: its children come in
    id order, each joined by primary key, with no subquery and no sort per parent. Another
    paired edge (enrollments: a person may hold two in one class) looks its children up by
    index (`id IN (children of the parent)`) rather than joining the whole link, which a
    correlated statement would build again for every parent; any other edge joins its link as
    `edge_rows` does."""
    table = edge.table
    if edge.parent_fk is not None:
        rows = visible_rows(grant, table, table)
        return rows, [table.c[edge.parent_fk] == parent_id], table.c.id
    if edge.pairs is not None:
        pairs, parent_key, child_key = edge.pairs
        if _pair_is_key(pairs, parent_key, child_key):
            link = pairs.alias()
            child = link.c[child_key]
            rows = visible_rows(grant, table, link.join(table, table.c.id == child))
            of_parent = [link.c[parent_key] == parent_id, link.c.source_id == grant.source_id]
            return rows, of_parent, child
        children = (
            sa.select(pairs.c[child_key])
            .where(pairs.c[parent_key] == parent_id, pairs.c.source_id == grant.source_id)
            .correlate_except(pairs)
        )
        return visible_rows(grant, table, table), [table.c.id.in_(children)], table.c.id
    rows, link_parent = edge_rows(grant, edge)
    return rows, [link_parent == parent_id], table.c.id


def _pair_is_key(pairs: sa.Table, parent: str, child: str) -> bool:
    """Whether `pairs` holds each (parent, child) pair at most once: they are its primary key."""
    return {c.name for c in pairs.primary_key.columns} == {parent, child}


async def fetch_edge_pages(
    db: Executor,
    grant: Grant,
    edge: ManyEdge,
    parent_ids: Sequence[str],
    filters: Sequence[Predicate],
    first: int,
    after: str | None,
) -> dict[str, list[Record]]:
    """For each parent, up to `first + 1` visible rows of the edge after id `after`."""
    table = edge.table
    pages: dict[str, list[Record]] = defaultdict(list)
    for chunk in _chunks(parent_ids):
        rows, parent = edge_rows(grant, edge)
        conditions = [parent.in_(chunk), *rows.where, *filters]
        if after is not None:
            conditions.append(table.c.id > after)
        numbered = (
            sa.select(
                *lazy_columns(table),
                parent.label("page_parent"),
                sa.func.row_number()
                .over(partition_by=parent, order_by=table.c.id)
                .label("page_rank"),
            )
            .select_from(rows.source)
            .where(*conditions)
            .subquery("page")
        )
        stmt = (
            sa.select(numbered)
            .where(numbered.c.page_rank <= first + 1)
            .order_by(numbered.c.page_parent, numbered.c.page_rank)
        )
        for record in await _records(await db.execute(stmt)):
            pages[record.page_parent].append(record)
    return pages


async def count_edges(
    db: Executor,
    grant: Grant,
    edge: ManyEdge,
    parent_ids: Sequence[str],
    filters: Sequence[Predicate],
) -> dict[str, int]:
    """For each parent, how many visible rows of the edge match `filters`."""
    table = edge.table
    counts: dict[str, int] = {}
    for chunk in _chunks(parent_ids):
        rows, parent = edge_rows(grant, edge)
        stmt = (
            sa.select(parent, sa.func.count(sa.distinct(table.c.id)))
            .select_from(rows.source)
            .where(parent.in_(chunk), *rows.where, *filters)
            .group_by(parent)
        )
        result: Any = await db.execute(stmt)
        for parent_id, count in result:
            counts[parent_id] = int(count)
    return counts


async def fetch_by_ids(
    db: Executor, grant: Grant, table: sa.Table, ids: Sequence[str]
) -> dict[str, Record]:
    """The visible rows of `table` among `ids`, by id (invisible and missing ids are absent)."""
    found: dict[str, Record] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        rows = visible_rows(grant, table)
        stmt = (
            sa.select(*lazy_columns(table))
            .select_from(rows.source)
            .where(rows.id.in_(chunk), *rows.where)
        )
        for record in await _records(await db.execute(stmt)):
            found[record.id] = record
    return found


async def find_types(
    db: Executor, grant: Grant, ids: Sequence[str], type_names: Iterable[str]
) -> dict[str, str]:
    """Which of `type_names` each visible id among `ids` belongs to (one UNION statement)."""
    found: dict[str, str] = {}
    if not type_names:
        return found
    for chunk in _chunks(list(dict.fromkeys(ids))):
        stmt = sa.union_all(
            *(
                sa.select(sa.literal(name).label("type_name"), rows.id.label("id"))
                .select_from(rows.source)
                .where(rows.id.in_(chunk), *rows.where)
                for name in type_names
                for rows in (visible_rows(grant, TABLES[name]),)
            )
        )
        found.update((row.id, row.type_name) for row in await db.execute(stmt))
    return found
