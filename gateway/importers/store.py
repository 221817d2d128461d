"""The database side of an import: batched writes that leave unchanged rows alone, deletions,
and the temporary tables that remember what this import has seen and staged.

Memory stays flat however large the files are: what the import must remember across batches
(the sourcedIds it has seen, for duplicates and bulk deletion; the roles and demographics
waiting for their users) lives in temporary tables of the import's own connection.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.coltypes import TagList, UUIDString
from gateway.events.data import LINKED
from gateway.models import UUID  # the graph tables' id type, so that ids compare in SQL

_temp = sa.MetaData()

SEEN = sa.Table(
    "oneroster_import_seen",
    _temp,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("id", UUID, primary_key=True),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,  # one tree, by (kind, id), instead of a table and its key's index
)
"""Every row of a file this import has read: `live` when it was written, not when deleted."""

STAGED_ROLES = sa.Table(
    "oneroster_import_roles",
    _temp,
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("person_id", UUID, nullable=False, index=True),
    sa.Column("user_sid", sa.Text, nullable=False),
    sa.Column("sourced_id", sa.Text, nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("entry", sa.JSON, nullable=False),
    prefixes=["TEMPORARY"],
)
"""roles.csv rows (1.2), waiting for the users pass that folds them into Person.roles."""

STAGED_DEMOGRAPHICS = sa.Table(
    "oneroster_import_demographics",
    _temp,
    sa.Column("person_id", UUID, primary_key=True),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("user_sid", sa.Text, nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("demographics", sa.JSON, nullable=True),
    prefixes=["TEMPORARY"],
)
"""demographics.csv rows, waiting for the users pass that folds them into Person.demographics."""

_SKIP_COMPARE = frozenset({"id", "source_id", "created_date", "updated_date"})


@functools.cache
def _nulled_by(table: sa.Table) -> tuple[tuple[sa.Table, sa.Column[Any]], ...]:
    """The graph tables' columns that the database sets to null when a row of `table` they
    refer to is deleted (`ON DELETE SET NULL`), each with its table; read from the metadata
    once per table (its dependency sort is not free)."""
    return tuple(
        (dependent, key.parent)
        for dependent in table.metadata.sorted_tables
        if "updated_date" in dependent.c and "source_id" in dependent.c  # a source's rows
        for key in dependent.foreign_keys
        if key.ondelete == "SET NULL" and key.column.table is table
    )


@functools.cache
def _linked_by(table: sa.Table) -> tuple[tuple[sa.Column[Any], sa.Column[Any]], ...]:
    """The links that the database deletes with a row of `table` they refer to (`ON DELETE
    CASCADE`) and that are part of the row owning them (a person's schools, a class's sessions,
    as the change feed serves them: `LINKED`): (the link's column referring to `table`, its
    owner's column), for a school or a session being deleted."""
    return tuple(
        (link.c[other], link.c[owner])
        for _, link, owner, other, _ in LINKED.values()
        if any(key.column.table is table for key in link.c[other].foreign_keys)
    )


def _referred(column: sa.Column[Any]) -> sa.Table:
    """The table a link's column refers to (its owner's, or the other end's)."""
    return next(iter(column.foreign_keys)).column.table


class Store:
    """Reads and writes of one import, inside its transaction."""

    def __init__(self, conn: AsyncConnection, source_id: str, now: datetime) -> None:
        # Rows written per table name: graph rows inserted, updated and deleted, and owners
        # whose links (class sessions, person schools) were replaced.
        self.conn = conn
        self.source_id = source_id
        self.now = now
        self.inserted: dict[str, int] = {}
        self.updated: dict[str, int] = {}
        self.deleted: dict[str, int] = {}
        self.relinked: dict[str, int] = {}
        self._updates: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._inserts: dict[tuple[str, tuple[str, ...]], Inserter | None] = {}
        self.empty: set[str] = set()
        """Tables that held no row of this source before the import (see `note_empty`)."""

    async def note_empty(self, tables: Iterable[sa.Table]) -> None:
        """Remember which of `tables` hold no row of this source yet (call before any write):
        a first import then need not look for existing rows (see `fetch_existing`)."""
        for table in tables:
            query = sa.select(table.c.id).where(table.c.source_id == self.source_id).limit(1)
            if (await self.conn.execute(query)).first() is None:
                self.empty.add(table.name)

    async def fetch_existing(
        self, table: sa.Table, ids: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        """`fetch` for rows that this import has not written before (their ids were checked
        against the seen rows): nothing, without a query, when the table held no row of this
        source before the import."""
        if table.name in self.empty:
            return {}
        return await self.fetch(table, ids)

    async def insert(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` (all with the same keys) as one executemany.

        On SQLite the statement is rendered once and the values go to the driver as plain
        tuples, each converted by its column's own bind processor, so the database holds exactly
        what SQLAlchemy's `insert()` would write; SQLAlchemy's per-row parameter machinery was
        the largest part of an import's time. Elsewhere, or when a column the rows leave out has
        a Python-side default, SQLAlchemy's `insert()` runs as usual."""
        if not rows:
            return
        columns = tuple(rows[0])
        key = (table.name, columns)
        if key not in self._inserts:
            self._inserts[key] = Inserter.of(self.conn.dialect, table, columns)
        inserter = self._inserts[key]
        if inserter is None:
            await self.conn.execute(table.insert(), list(rows))
        else:
            await self.conn.exec_driver_sql(inserter.sql, inserter.tuples(rows))

    def among(self, column: ColumnElement[Any], ids: Iterable[str]) -> ColumnElement[bool]:
        """`column IN ids`. On SQLite the ids travel as one JSON parameter (`json_each`): a
        batch of thousands of ids then costs one bind instead of a rendered list of thousands,
        which is a good part of an import's time."""
        if self.conn.dialect.name != "sqlite":
            return column.in_(list(ids))
        process = _processor(column.type, self.conn.dialect)
        values = [process(i) for i in ids] if process is not None else list(ids)
        each = sa.func.json_each(sa.bindparam(None, json.dumps(values), type_=sa.Text))
        return column.in_(sa.select(each.table_valued("value").c.value))

    async def create_temp_tables(self) -> None:
        """Create the import's temporary tables (dropping leftovers of a failed import)."""
        for table in reversed(_temp.sorted_tables):
            await self.conn.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))
        await self.conn.run_sync(_temp.create_all)

    async def drop_temp_tables(self) -> None:
        """Drop the import's temporary tables."""
        await self.conn.run_sync(_temp.drop_all)

    # ------------------------------------------------------------------ seen rows

    async def seen_lines(self, kind: str, ids: Collection[str]) -> dict[str, int]:
        """The line at which each of `ids` was seen before, for those that were."""
        if not ids:
            return {}
        rows = await self.conn.execute(
            sa.select(SEEN.c.id, SEEN.c.line).where(SEEN.c.kind == kind, self.among(SEEN.c.id, ids))
        )
        return {row.id: row.line for row in rows}

    async def mark_seen(self, kind: str, rows: Sequence[tuple[str, int, bool]]) -> None:
        """Remember `(id, line, live)` rows of `kind`."""
        if rows:
            await self.insert(
                SEEN,
                [{"kind": kind, "id": i, "line": line, "live": live} for i, line, live in rows],
            )

    async def missing(
        self, kind: str, table: sa.Table, ids: Collection[str], *, bulk: bool
    ) -> set[str]:
        """Which of `ids` do not exist after this import: in bulk mode, the rows its file did not
        have; else the rows the source's table does not have (it already holds this import's
        earlier writes). A count answers the usual case, where none is missing."""
        if not ids:
            return set()
        if bulk:
            where = [SEEN.c.kind == kind, SEEN.c.live.is_(True), self.among(SEEN.c.id, ids)]
            column = SEEN.c.id
        else:
            where = [table.c.source_id == self.source_id, self.among(table.c.id, ids)]
            column = table.c.id
        count = sa.select(sa.func.count()).select_from(column.table).where(*where)
        if (await self.conn.execute(count)).scalar_one() == len(ids):
            return set()
        found = set((await self.conn.execute(sa.select(column).where(*where))).scalars())
        return set(ids) - found

    async def deleted_here(self, kind: str, id_: str) -> bool:
        """Whether this import's file of `kind` lists the row `id_` as `tobedeleted`."""
        query = sa.select(SEEN.c.id).where(
            SEEN.c.kind == kind, SEEN.c.id == id_, SEEN.c.live.is_(False)
        )
        return (await self.conn.execute(query.limit(1))).first() is not None

    # ------------------------------------------------------------------ graph rows

    async def fetch(self, table: sa.Table, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The current rows with `ids`, by id."""
        if not ids:
            return {}
        rows = await self.conn.execute(sa.select(table).where(self.among(table.c.id, ids)))
        return {row["id"]: dict(row) for row in rows.mappings()}

    async def write(
        self,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        existing: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Insert new rows and update changed ones; an unchanged row keeps its updated date.

        Every row has the same keys: `id`, `source_id` and the content columns.
        """
        if not rows:
            return
        columns = tuple(c for c in rows[0] if c not in _SKIP_COMPARE)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in rows:
            current = existing.get(row["id"])
            if current is None:
                inserts.append({**row, "created_date": self.now, "updated_date": self.now})
            elif any(row[c] != current[c] for c in columns):
                values = {f"v_{c}": row[c] for c in columns}
                updates.append({"v_id": row["id"], "v_updated_date": self.now, **values})
        if inserts:
            await self.insert(table, inserts)
            self.inserted[table.name] = self.inserted.get(table.name, 0) + len(inserts)
        if updates:
            await self.conn.execute(self._update(table, columns), updates)
            self.updated[table.name] = self.updated.get(table.name, 0) + len(updates)

    def _update(self, table: sa.Table, columns: tuple[str, ...]) -> Any:
        key = (table.name, columns)
        if key not in self._updates:
            values = {c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}
            values["updated_date"] = sa.bindparam("v_updated_date", type_=table.c.updated_date.type)
            self._updates[key] = (
                table.update()
                .where(table.c.id == sa.bindparam("v_id", type_=table.c.id.type))
                .values(values)
            )
        return self._updates[key]

    async def delete(self, table: sa.Table, ids: Collection[str]) -> int:
        """Delete this source's rows with `ids` (foreign keys cascade); return how many."""
        if not ids:
            return 0
        return await self.delete_where(table, self.among(table.c.id, ids))

    async def delete_where(self, table: sa.Table, *conditions: ColumnElement[bool]) -> int:
        """Delete this source's rows that meet `conditions`; return how many."""
        where = [table.c.source_id == self.source_id, *conditions]
        await self._touch_nulled(table, where)
        await self._touch_unlinked(table, where)
        result = await self.conn.execute(table.delete().where(*where))
        return self._count_deleted(table, result.rowcount)

    async def _touch_nulled(self, table: sa.Table, where: Sequence[ColumnElement[bool]]) -> None:
        """Before rows of `table` that meet `where` are deleted: give the rows whose reference to
        one of them the database will set to null (`ON DELETE SET NULL`: a class's course, a
        course's school year, an enrollment's section) this import's `updated_date`, and count
        them as updated. They change, and an application that syncs by `updatedAfter` must see
        it (found by a review); those this import wrote already are not counted twice."""
        for dependent, column in _nulled_by(table):
            doomed = sa.select(table.c.id).where(*where)
            await self._touch(
                dependent, dependent.c.source_id == self.source_id, column.in_(doomed)
            )

    async def _touch_unlinked(self, table: sa.Table, where: Sequence[ColumnElement[bool]]) -> None:
        """Before rows of `table` that meet `where` are deleted: give the rows that lose a link
        to one of them (a person whose school is deleted loses it from `schools`) this import's
        `updated_date`, and count them as updated, as `_touch_owners` does for links an import
        replaces (found by a review); those this import wrote already are not counted twice."""
        for column, owner in _linked_by(table):
            target = _referred(owner)
            losing = sa.select(owner).where(column.in_(sa.select(table.c.id).where(*where)))
            await self._touch(target, target.c.source_id == self.source_id, target.c.id.in_(losing))

    async def _touch(self, table: sa.Table, *conditions: ColumnElement[bool]) -> None:
        """Give the rows of `table` that meet `conditions` this import's `updated_date`, and
        count them as updated, but those this import wrote already (counted once)."""
        result = await self.conn.execute(
            table.update()
            .where(*conditions, table.c.updated_date != self.now)
            .values(updated_date=self.now)
        )
        if result.rowcount:
            self.updated[table.name] = self.updated.get(table.name, 0) + result.rowcount

    async def delete_unseen(self, table: sa.Table, kind: str) -> int:
        """Delete this source's rows that this import did not write (bulk mode)."""
        live = [SEEN.c.kind == kind, SEEN.c.live.is_(True)]
        total = sa.select(sa.func.count()).select_from(table)
        written = sa.select(sa.func.count()).select_from(SEEN).where(*live)
        total = total.where(table.c.source_id == self.source_id)
        if (await self.conn.execute(total)).scalar_one() == (
            await self.conn.execute(written)
        ).scalar_one():
            return 0  # every row was written by this import (the usual case): nothing to scan
        seen = sa.select(SEEN.c.id).where(*live, SEEN.c.id == table.c.id)
        return await self.delete_where(table, ~seen.exists())

    def _count_deleted(self, table: sa.Table, count: int) -> int:
        if count:
            self.deleted[table.name] = self.deleted.get(table.name, 0) + count
        return count

    async def replace_links(
        self,
        table: sa.Table,
        owner: str,
        other: str,
        wanted: Mapping[str, Iterable[str]],
        *,
        new: bool = False,
    ) -> None:
        """Make the link rows `(owner, other)` of each owner in `wanted` exactly `wanted[owner]`
        (class → sessions, person → schools); owners whose links are unchanged are not touched.

        `new` when the owners are rows this import has just inserted: they have no links yet
        (the links go with their owner, `ON DELETE CASCADE`), so none are read or deleted."""
        if not wanted:
            return
        current: dict[str, set[str]] = {key: set() for key in wanted}
        if not new:
            rows = await self.conn.execute(
                sa.select(table.c[owner], table.c[other]).where(self.among(table.c[owner], wanted))
            )
            for owner_id, other_id in rows:
                current[owner_id].add(other_id)
        changed = [key for key, others in wanted.items() if set(others) != current[key]]
        if not changed:
            return
        self.relinked[table.name] = self.relinked.get(table.name, 0) + len(changed)
        if not new:
            await self._touch_owners(table, owner, changed)
            await self.conn.execute(table.delete().where(self.among(table.c[owner], changed)))
        inserts = [
            {owner: key, other: other_id, "source_id": self.source_id}
            for key in changed
            for other_id in dict.fromkeys(wanted[key])
        ]
        if inserts:
            await self.insert(table, inserts)

    async def _touch_owners(self, table: sa.Table, owner: str, changed: Sequence[str]) -> None:
        """Give the owners `changed` of link rows in `table` (a person whose schools, a class
        whose sessions change) this import's `updated_date`, and count them as updated: the
        links are part of the object served (`Person.schools`), and an application that syncs
        by `updatedAfter` must see them change (found by a review); those this import wrote
        already are not counted twice."""
        owners = _referred(table.c[owner])
        await self._touch(owners, self.among(owners.c.id, changed))

    async def count(self, table: sa.Table) -> int:
        """How many rows of this source `table` holds."""
        query = sa.select(sa.func.count()).select_from(table)
        return int(
            (await self.conn.execute(query.where(table.c.source_id == self.source_id))).scalar_one()
        )


class Inserter:
    """A rendered `INSERT` of some columns of a table, and the bind processor of each column."""

    def __init__(
        self, sql: str, columns: tuple[str, ...], processors: list[Callable[[Any], Any] | None]
    ) -> None:
        self.sql = sql
        self.columns = columns
        self.processors = processors

    @classmethod
    def of(cls, dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> Inserter | None:
        """The inserter of `columns`, or None where the driver path does not apply (not SQLite,
        an unknown column, or a left-out column whose default Python computes)."""
        if dialect.name != "sqlite" or any(c not in table.c for c in columns):
            return None
        if any(c.default is not None for c in table.columns if c.name not in columns):
            return None
        compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
        order = tuple(compiled.positiontup or ())
        if sorted(order) != sorted(columns):
            return None
        processors = [_processor(table.c[c].type, dialect) for c in order]
        return cls(str(compiled), order, processors)

    def tuples(self, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as the driver's parameter tuples."""
        converting = [(i, p) for i, p in enumerate(self.processors) if p is not None]
        # itemgetter reads a row's values in C; of one column it gives the value, not a tuple
        get = operator.itemgetter(*self.columns)
        values_of = get if len(self.columns) > 1 else lambda row: (get(row),)
        tuples: list[tuple[Any, ...]] = []
        for row in rows:
            values = list(values_of(row))
            for i, process in converting:
                values[i] = process(values[i])
            tuples.append(tuple(values))
        return tuples


def _processor(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy would do to a value of `type_` on its way to the driver, made cheaper:
    an id is lowered directly (UUIDString's own conversion, without SQLAlchemy's layers), and
    the conversion of an immutable value remembers its last one (an import's timestamps are one
    object on every row)."""
    if isinstance(type_, UUIDString):
        return _uuid_text
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if (
        process is not None
        and isinstance(type_, sa.JSON)
        and type_._str_impl.bind_processor(dialect) is None  # the text goes to the driver as is
    ):
        return _json_text(process, dialect)
    if process is None or isinstance(type_, TagList):
        return process  # a list or dict may change between two rows: converted every time
    convert = process
    last: list[Any] = [object(), None]

    def remembering(value: Any) -> Any:
        if value is last[0]:
            return last[1]
        last[0], last[1] = value, convert(value)
        return last[1]

    return remembering


def _json_text(process: Callable[[Any], Any], dialect: sa.Dialect) -> Callable[[Any], Any]:
    """A JSON column's conversion: a list or dict (every value an import writes but None) goes
    straight to the engine's serializer, the one SQLAlchemy's own conversion calls; anything
    else (None, SQLAlchemy's null markers) takes SQLAlchemy's way."""
    serialize: Callable[[Any], str] = dialect._json_serializer or json.dumps

    def convert(value: Any) -> Any:
        if type(value) is dict or type(value) is list:
            return serialize(value)
        return process(value)

    return convert


def _uuid_text(value: Any) -> str | None:
    """UUIDString's value on SQLite: the canonical lower-case text."""
    if type(value) is str:  # the usual case: an id the import derived (`Run.id`)
        return value.lower()
    return None if value is None else str(value).lower()
