"""Each SELECTED integration's stored view: the ids it sees, per type (DESIGN §4, "The closure
is stored").

Written here, and only here, from the closure predicates of `gateway.access.scope` (a first
materialization is one `INSERT … SELECT` per type; a refresh computes each type's closure once
into a scratch table and writes only the difference), in the
transaction of the change that can alter it: creating, re-scoping, re-targeting or destroying an
integration, and every write of graph rows into its source (imports, the demo). Read here too:
every graph statement takes its scope predicate from this module, so a scoped page reads an
index range of the view instead of deriving the closure, and a lookup of an invisible id costs
what a lookup of a missing one costs. Integrations of scope ALL store nothing and read their
source's rows directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from gateway import models
from gateway.access.authentication import load_grant_by_id
from gateway.access.grant import Grant, Scope
from gateway.access.scope import closure


class _ViewJoin(sa.sql.expression.Join):
    """A join whose left side drives the loop: rendered `CROSS JOIN … ON` on SQLite, which is
    SQLite's documented way to fix a join order (its planner, without statistics for a fresh
    view, would otherwise scan a whole view range to probe a few child rows); a plain `JOIN`
    elsewhere."""

    inherit_cache = True


@compiles(_ViewJoin, "sqlite")
def _cross_join(join: _ViewJoin, compiler: SQLCompiler, **kw: Any) -> str:
    text: str = compiler.visit_join(join, **kw)  # type: ignore[no-untyped-call]  # untyped upstream
    on = text.rindex(" ON ")
    at = text.rindex(" JOIN ", 0, on)  # the right side is a plain table alias: no JOIN in it
    return f"{text[:at]} CROSS JOIN {text[at + len(' JOIN ') :]}"


class _Unindexed(ColumnElement[Any]):
    """A column that SQLite's planner may not use an index on (`+column`, SQLite's documented
    way to say so); the column itself elsewhere. A list driven by the view finds each row by
    primary key: an index on (source_id, id) would be a second probe for the same row."""

    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012  # as SQLAlchemy's own
        ("column", InternalTraversal.dp_clauseelement)
    ]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self) -> list[sa.FromClause]:
        return self.column._from_objects


@compiles(_Unindexed)
def _as_column(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_Unindexed, "sqlite")
def _unary_plus(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.column, **kw)}"


GRAPH_TABLES: tuple[sa.Table, ...] = tuple(models.table_of(m) for m in models.GRAPH_TABLES)
VIEWS: dict[str, sa.Table] = models.VISIBLE_TABLES
"""The stored view of each graph table, by the graph table's name."""
_integrations = models.table_of(models.Integration)
_sources = models.table_of(models.Source)

Predicate = ColumnElement[bool]


# ---------------------------------------------------------------- reading


def view_of(table: sa.Table) -> sa.Table:
    """The stored view of graph table `table`."""
    return VIEWS[table.name]


def _in_view(grant: Grant, view: sa.FromClause) -> Predicate:
    return view.c.integration_id == grant.integration_id


@dataclass(frozen=True, slots=True)
class Rows:
    """Where visible rows of one table are read from: `source` to select from, the `id`
    column to order and cut keyset pages by, and the `where` predicates that scope it."""

    source: sa.FromClause
    id: ColumnElement[Any]
    where: list[Predicate] = field(default_factory=list)


def visible_rows(grant: Grant, table: sa.Table, joined: sa.FromClause | None = None) -> Rows:
    """The rows of `table` the grant sees: its source's rows, and under SELECTED only those
    with an entry in its stored view, joined by primary key (never a subquery per row).

    `joined` is a FROM clause that already holds `table` (a nested edge's link join); without
    it a SELECTED list is driven by the view's index range, in id order, so a keyset page reads
    `first + 1` entries, and a lookup of an invisible id stops where a missing one does.
    """
    in_source = table.c.source_id == grant.source_id
    if grant.scope is Scope.ALL:
        return Rows(table if joined is None else joined, table.c.id, [in_source])
    view = view_of(table).alias("scope_view")
    on = sa.and_(_in_view(grant, view), view.c.id == table.c.id)
    if joined is None:
        by_key = _Unindexed(table.c.source_id) == grant.source_id
        return Rows(_ViewJoin(view, table, on), view.c.id, [by_key])
    return Rows(_ViewJoin(joined, view, on), table.c.id, [in_source])


def count_visible(grant: Grant, table: sa.Table, filters: Sequence[Predicate]) -> sa.Select[Any]:
    """`SELECT count(*)` of the visible rows of `table` matching `filters`; with no filter a
    SELECTED count reads only the view's index range."""
    if grant.scope is not Scope.ALL and not filters:
        view = view_of(table).alias("scope_view")
        return sa.select(sa.func.count()).select_from(view).where(_in_view(grant, view))
    rows = visible_rows(grant, table)
    return sa.select(sa.func.count()).select_from(rows.source).where(*rows.where, *filters)


def visible_ids(grant: Grant, table: sa.Table, ids: list[str]) -> sa.Select[Any]:
    """Those of `ids` that name rows of `table` the grant sees.

    Filters on the ids of related objects (`schoolIds`, `classIds`…) match through this, never
    through the raw ids: otherwise which visible rows match would tell whether an invisible
    school has members or an invisible class has enrollments. The alias is fresh each time, so
    the subquery never correlates with a statement that reads the same table.
    """
    if grant.scope is Scope.ALL:
        alias = table.alias()
        return sa.select(alias.c.id).where(
            alias.c.id.in_(ids), alias.c.source_id == grant.source_id
        )
    view = view_of(table).alias()
    return sa.select(view.c.id).where(_in_view(grant, view), view.c.id.in_(ids))


# ---------------------------------------------------------------- writing


@dataclass
class Refreshed:
    """What a refresh changed in the stored views: ids added and removed, per table name."""

    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Refreshed) -> None:
        """Add `other`'s counts to these."""
        for mine, theirs in ((self.added, other.added), (self.removed, other.removed)):
            for name, count in theirs.items():
                mine[name] = mine.get(name, 0) + count


async def refresh(conn: AsyncConnection, integration_id: str) -> Refreshed:
    """Make the stored view of integration `integration_id` equal its closure, writing only the
    difference; an integration of scope ALL (or one that no longer exists) stores nothing.

    Runs on the caller's connection, inside the caller's transaction: readers see the old view
    or the new one, never a mix.
    """
    done = Refreshed()
    grant = await load_grant_by_id(conn, integration_id)
    scratch = False
    for table in GRAPH_TABLES:
        view = view_of(table)
        if grant is None or grant.scope is Scope.ALL:
            removed, added = await _clear_table(conn, integration_id, view), 0
        elif not await _holds_any(conn, integration_id, view):
            # nothing stored yet: the closure goes straight in
            removed, added = 0, await _write_table(conn, grant, table)
        else:
            if not scratch:
                await _with_scratch(conn)
                scratch = True
            removed, added = await _refresh_table(conn, grant, table)
        if removed:
            done.removed[table.name] = removed
        if added:
            done.added[table.name] = added
    return done


async def _holds_any(conn: AsyncConnection, integration_id: str, view: sa.Table) -> bool:
    stored = sa.select(view.c.id).where(view.c.integration_id == integration_id).limit(1)
    return (await conn.execute(stored)).first() is not None


async def _clear_table(conn: AsyncConnection, integration_id: str, view: sa.Table) -> int:
    result = await conn.execute(view.delete().where(view.c.integration_id == integration_id))
    return result.rowcount


async def forget(conn: AsyncConnection, integration_id: str) -> None:
    """Delete everything stored for integration `integration_id` (before it is destroyed, or
    to write it again from nothing), in the caller's transaction."""
    for view in VIEWS.values():
        await _clear_table(conn, integration_id, view)


_scratch = sa.MetaData()
FRESH = sa.Table(
    "scope_fresh",
    _scratch,
    sa.Column("id", models.UUID, primary_key=True),
    prefixes=["TEMPORARY"],
)
"""One table's closure during a refresh, computed once and then compared with the view."""


async def _with_scratch(conn: AsyncConnection) -> None:
    await conn.execute(sa.text(f"DROP TABLE IF EXISTS {FRESH.name}"))
    await conn.run_sync(_scratch.create_all)


async def _write_table(conn: AsyncConnection, grant: Grant, table: sa.Table) -> int:
    rows = sa.select(sa.literal(grant.integration_id, models.UUID), table.c.id).where(
        closure(grant, table)
    )
    view = view_of(table)
    added = await conn.execute(view.insert().from_select(["integration_id", "id"], rows))
    return added.rowcount


async def _refresh_table(conn: AsyncConnection, grant: Grant, table: sa.Table) -> tuple[int, int]:
    view = view_of(table)
    await conn.execute(FRESH.delete())
    await conn.execute(
        FRESH.insert().from_select(["id"], sa.select(table.c.id).where(closure(grant, table)))
    )
    still = sa.select(sa.literal(1)).where(FRESH.c.id == view.c.id).exists()
    removed = await conn.execute(view.delete().where(_in_view(grant, view), ~still))
    stored = view.alias("stored")
    known = sa.select(sa.literal(1)).where(_in_view(grant, stored), stored.c.id == FRESH.c.id)
    missing = sa.select(sa.literal(grant.integration_id, models.UUID), FRESH.c.id).where(
        ~known.exists()
    )
    added = await conn.execute(view.insert().from_select(["integration_id", "id"], missing))
    return removed.rowcount, added.rowcount


async def lock_source(conn: AsyncConnection, source_id: str) -> None:
    """Make the writers of one source's scope run one after another, until the caller's
    transaction ends: an import (its graph rows), and the creation or change of an integration
    (its targets, scope or permissions). Each computes views (and feeds) from the other's
    inputs: under PostgreSQL's READ COMMITTED an import could read an integration's targets,
    the administrator narrow them and commit, and the import then write the views of the wider
    targets back (found by a review). Taken before either reads anything it computes from (an
    import at its refresh, which reads the grants and the graph rows again). PostgreSQL: the
    source's row `FOR NO KEY UPDATE` (rows that refer to the source can still be written);
    SQLite's writers already run one at a time (`BEGIN IMMEDIATE`)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            sa.select(_sources.c.id)
            .where(_sources.c.id == source_id)
            .with_for_update(key_share=True)
        )


async def refresh_source(conn: AsyncConnection, source_id: str) -> Refreshed:
    """Refresh the stored view of every SELECTED integration of `source_id` (after its graph
    rows changed), in the caller's transaction (`lock_source` first)."""
    await lock_source(conn, source_id)
    done = Refreshed()
    ids = await conn.execute(
        sa.select(_integrations.c.id)
        .where(
            _integrations.c.source_id == source_id,
            _integrations.c.scope == Scope.SELECTED.value,
        )
        .order_by(_integrations.c.id)
    )
    for (integration_id,) in ids.all():
        done.merge(await refresh(conn, integration_id))
    return done


async def refresh_all(conn: AsyncConnection) -> Refreshed:
    """Refresh the stored view of every SELECTED integration (a database written before the
    views existed gets them this way when the gateway first opens it)."""
    done = Refreshed()
    sources = await conn.execute(sa.select(_integrations.c.source_id).distinct())
    for (source_id,) in sources.all():
        done.merge(await refresh_source(conn, source_id))
    return done


async def stored_ids(conn: AsyncConnection, integration_id: str, table: sa.Table) -> set[str]:
    """The ids of `table` in the stored view of `integration_id` (for checks and tests)."""
    rows = await conn.execute(
        sa.select(view_of(table).c.id).where(view_of(table).c.integration_id == integration_id)
    )
    return set(rows.scalars())


async def closure_ids(conn: AsyncConnection, grant: Grant, table: sa.Table) -> set[str]:
    """The ids of `table` that the closure predicates give `grant`, computed directly."""
    rows = await conn.execute(sa.select(table.c.id).where(closure(grant, table)))
    return set(rows.scalars())
