"""Each SELECTED integration's stored view: the ids it sees, per type (DESIGN §4, "The closure
is stored").

Written here, and only here, from the closure predicates of `gateway.access.scope` (one
`INSERT … SELECT` and one `DELETE` per type, so a refresh writes only what changed), in the
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
from sqlalchemy.sql.elements import ColumnElement

from gateway import models
from gateway.access.authentication import load_grant_by_id
from gateway.access.grant import Grant, Scope
from gateway.access.scope import closure

VIEW = models.table_of(models.VisibleRow)
GRAPH_TABLES: tuple[sa.Table, ...] = tuple(models.table_of(m) for m in models.GRAPH_TABLES)
_integrations = models.table_of(models.Integration)

Predicate = ColumnElement[bool]


# ---------------------------------------------------------------- reading


def _in_view(grant: Grant, table: sa.Table, view: sa.FromClause) -> list[Predicate]:
    return [view.c.integration_id == grant.integration_id, view.c.kind == table.name]


def visible(grant: Grant, table: sa.Table) -> Predicate:
    """A per-row predicate: this row of `table` is one the grant sees (its source, and under
    SELECTED an entry of its stored view, probed by primary key)."""
    in_source = table.c.source_id == grant.source_id
    if grant.scope is Scope.ALL:
        return in_source
    view = VIEW.alias()
    entry = sa.select(sa.literal(1)).where(*_in_view(grant, table, view), view.c.id == table.c.id)
    return sa.and_(in_source, entry.exists())


@dataclass(frozen=True, slots=True)
class Rows:
    """Where a list of visible rows of one table is read from: `source` to select from, the
    `id` column to order and cut keyset pages by, and the `where` predicates that scope it.

    Under SELECTED the stored view drives the statement (its index range, in id order), joined
    to the table by primary key; under ALL the table's `(source_id, id)` index does.
    """

    source: sa.FromClause
    id: ColumnElement[Any]
    where: list[Predicate] = field(default_factory=list)


def visible_rows(grant: Grant, table: sa.Table) -> Rows:
    """The rows of `table` the grant sees, as a FROM clause to page, count or look up in."""
    in_source = table.c.source_id == grant.source_id
    if grant.scope is Scope.ALL:
        return Rows(table, table.c.id, [in_source])
    view = VIEW.alias("scope_view")
    return Rows(
        view.join(table, table.c.id == view.c.id),
        view.c.id,
        [*_in_view(grant, table, view), in_source],
    )


def count_visible(grant: Grant, table: sa.Table, filters: Sequence[Predicate]) -> sa.Select[Any]:
    """`SELECT count(*)` of the visible rows of `table` matching `filters`; with no filter a
    SELECTED count reads only the view's index range."""
    if grant.scope is not Scope.ALL and not filters:
        view = VIEW.alias("scope_view")
        return sa.select(sa.func.count()).select_from(view).where(*_in_view(grant, table, view))
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
    view = VIEW.alias()
    return sa.select(view.c.id).where(*_in_view(grant, table, view), view.c.id.in_(ids))


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
    for table in GRAPH_TABLES:
        if grant is None or grant.scope is Scope.ALL:
            removed, added = await _clear_table(conn, integration_id, table), 0
        else:
            removed, added = await _refresh_table(conn, grant, table)
        if removed:
            done.removed[table.name] = removed
        if added:
            done.added[table.name] = added
    return done


async def _clear_table(conn: AsyncConnection, integration_id: str, table: sa.Table) -> int:
    result = await conn.execute(
        VIEW.delete().where(VIEW.c.integration_id == integration_id, VIEW.c.kind == table.name)
    )
    return result.rowcount


async def _refresh_table(conn: AsyncConnection, grant: Grant, table: sa.Table) -> tuple[int, int]:
    entries = [VIEW.c.integration_id == grant.integration_id, VIEW.c.kind == table.name]
    seen = sa.select(table.c.id).where(closure(grant, table))
    removed = await conn.execute(VIEW.delete().where(*entries, VIEW.c.id.not_in(seen)))
    stored = VIEW.alias("stored")
    missing = sa.select(
        sa.literal(grant.integration_id, models.UUID),
        sa.literal(table.name, sa.String),
        table.c.id,
    ).where(
        closure(grant, table),
        ~sa.select(sa.literal(1))
        .where(*_in_view(grant, table, stored), stored.c.id == table.c.id)
        .exists(),
    )
    added = await conn.execute(VIEW.insert().from_select(["integration_id", "kind", "id"], missing))
    return removed.rowcount, added.rowcount


async def refresh_source(conn: AsyncConnection, source_id: str) -> Refreshed:
    """Refresh the stored view of every SELECTED integration of `source_id` (after its graph
    rows changed), in the caller's transaction."""
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


async def stored_ids(conn: AsyncConnection, integration_id: str, table: sa.Table) -> set[str]:
    """The ids of `table` in the stored view of `integration_id` (for checks and tests)."""
    rows = await conn.execute(
        sa.select(VIEW.c.id).where(
            VIEW.c.integration_id == integration_id, VIEW.c.kind == table.name
        )
    )
    return set(rows.scalars())


async def closure_ids(conn: AsyncConnection, grant: Grant, table: sa.Table) -> set[str]:
    """The ids of `table` that the closure predicates give `grant`, computed directly."""
    rows = await conn.execute(sa.select(table.c.id).where(closure(grant, table)))
    return set(rows.scalars())
