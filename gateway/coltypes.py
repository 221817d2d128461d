"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement


class TagList(sa.types.TypeDecorator[list[str]]):
    """A list of enum-like strings stored as `,A,B,` so `LIKE '%,A,%'` filters it on any engine."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Sequence[str] | None, dialect: Dialect) -> str:
        items = list(value or ())
        for item in items:
            if "," in item:
                raise ValueError(f"list item {item!r} may not contain a comma")
        return "," + ",".join(items) + "," if items else ""

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[str]:
        if not value:
            return []
        return value.strip(",").split(",")


def escape_like(value: str) -> str:
    """`value` with the LIKE wildcards (and the escape character) escaped by a backslash."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tag_contains_any(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """A predicate: the TagList column holds at least one of `values` (matched literally)."""
    text = sa.type_coerce(column, sa.Text)
    wanted = dict.fromkeys(v for v in values if "," not in v)
    matches = [text.like(f"%,{escape_like(v)},%", escape="\\") for v in wanted]
    return any_of(matches) if matches else sa.false()


def any_of(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """`conditions` joined by OR as a balanced tree of parenthesised halves. A flat chain of
    `a OR b OR …` is parsed by SQLite as a tree as deep as it is long, and SQLite refuses one
    deeper than 1000 ("Expression tree is too large"); halves keep it about 2·log2(n) deep."""
    if len(conditions) <= 8:
        return sa.or_(*conditions).self_group()
    middle = len(conditions) // 2
    # `or_` would flatten nested ORs back into one chain; a plain binary OR keeps the halves.
    left, right = any_of(conditions[:middle]), any_of(conditions[middle:])
    return left.bool_op("OR")(right).self_group()


class UUIDString(sa.types.TypeDecorator[str]):
    """A UUID kept as its canonical string: native `uuid` on PostgreSQL, the 36-character
    text on other engines (no conversion per value, and text order equals UUID order)."""

    impl = sa.String(36)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Uuid(as_uuid=False))
        return dialect.type_descriptor(sa.String(36))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or dialect.name == "postgresql":
            return value  # type: ignore[no-any-return]  # the Uuid impl converts it
        return str(value).lower()


class JSONText(str):
    """JSON text read from the database and not decoded yet (see `LazyJSON`)."""

    __slots__ = ()


class LazyJSON(sa.types.TypeDecorator[Any]):
    """Reads a JSON column as `JSONText`, so rows whose JSON is never served are not decoded;
    the graph's field resolver decodes it on first use."""

    impl = sa.Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        # asyncpg hands PostgreSQL's json over already decoded: a str there is a JSON string.
        if value is None or not isinstance(value, str) or dialect.name == "postgresql":
            return value
        return JSONText(value)


def lazy_columns(table: sa.Table) -> list[Any]:
    """`table`'s columns for a SELECT whose JSON columns arrive undecoded (`JSONText`)."""
    return [
        sa.type_coerce(column, LazyJSON).label(column.name)
        if isinstance(column.type, sa.JSON)
        else column
        for column in table.columns
    ]


def as_utc(value: datetime) -> datetime:
    """`value` in UTC, a time without an offset taken as UTC (as the database stores it).

    Raises OverflowError when the UTC moment falls before year 1 or after year 9999.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, also on SQLite (which stores it naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)
