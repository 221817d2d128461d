"""Per-dialect SQL that builds JSON, with scalars formatted exactly as the resolver path
serializes them (dates, DateTimes, tag lists, booleans, cursors).

SQLite builds with `json_object`/`json_group_array`, PostgreSQL with
`json_build_object`/`json_agg`. A nested value is a scalar subquery's JSON; an SQLite whose
JSON subtype does not cross a scalar subquery (a value read from a view or a table column never
keeps it) would write it into its parent as a string, so there each is wrapped in `json(…)`,
which parses it again: a fifth of a nested page's SQL, a third of a three-level one's. The
SQLite this process runs is asked once (`subtype_crosses_scalar_subqueries`) with each shape
the compiler nests, and the wrapping is left out only when every one came through as JSON.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from gateway.graph.pagination import encode_cursor

Expr = ColumnElement[Any]


def sqlite_cursor(kind: str, row_id: str | None) -> str | None:
    """`encode_cursor` as an SQLite function (`gateway_cursor(kind, id)`)."""
    return None if row_id is None else encode_cursor(kind, row_id)


def sqlite_tags(value: str | None) -> str | None:
    """A `TagList` column (`,A,B,`) as JSON array text (`gateway_tags(column)`)."""
    if value is None:
        return None
    if not value:
        return "[]"
    return orjson.dumps(value.strip(",").split(",")).decode()


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Add the functions compiled statements call to one SQLite connection."""
    dbapi_connection.create_function("gateway_cursor", 2, sqlite_cursor, deterministic=True)
    dbapi_connection.create_function("gateway_tags", 1, sqlite_tags, deterministic=True)


class Dialect:
    """How one engine spells the JSON pieces a compiled statement is made of."""

    name: str
    max_keys: int  # one object-building call takes two arguments per key

    def obj(self, pairs: list[tuple[str, Expr]]) -> Expr:
        raise NotImplementedError

    def agg(self, value: Expr, order: Expr) -> Expr:
        """A JSON array of `value` over the rows, in `order` (`[]` when there is none)."""
        raise NotImplementedError

    def nested(self, value: Any) -> Expr:
        """A JSON value coming out of a subquery, embedded as JSON (not as a string)."""
        raise NotImplementedError

    def boolean(self, value: Expr) -> Expr:
        raise NotImplementedError

    def tags(self, column: Expr) -> Expr:
        raise NotImplementedError

    def json_column(self, column: Expr) -> Expr:
        raise NotImplementedError

    def datetime(self, column: Expr) -> Expr:
        raise NotImplementedError

    def date(self, column: Expr) -> Expr:
        raise NotImplementedError

    def text(self, column: Expr) -> Expr:
        """An id or other value whose JSON form is its text."""
        return column

    def string(self, text: str) -> Expr:
        """A constant string (a type name)."""
        return sa.literal_column(_quote(text))

    def cursor(self, kind: str, row_id: Expr) -> Expr:
        raise NotImplementedError


class SQLite(Dialect):
    name = "sqlite"
    max_keys = 63  # SQLITE_MAX_FUNCTION_ARG defaults to 127

    def __init__(self, *, wraps_nested: bool = True) -> None:
        self.wraps_nested = wraps_nested

    def obj(self, pairs: list[tuple[str, Expr]]) -> Expr:
        args: list[Any] = []
        for key, value in pairs:
            args += [sa.literal_column(_quote(key)), value]
        return sa.func.json_object(*args)

    def agg(self, value: Expr, order: Expr) -> Expr:
        # SQLite before 3.44 takes no ORDER BY in an aggregate: it aggregates a subquery's rows
        # in the subquery's order, and every page is one (`ORDER BY id LIMIT first`).
        return sa.func.json_group_array(value)

    def nested(self, value: Any) -> Expr:
        return sa.func.json(value) if self.wraps_nested else value

    def boolean(self, value: Expr) -> Expr:
        return sa.case(
            (value.is_(None), sa.null()),
            (value, sa.func.json(sa.literal_column("'true'"))),
            else_=sa.func.json(sa.literal_column("'false'")),
        )

    def tags(self, column: Expr) -> Expr:
        return sa.func.json(sa.func.gateway_tags(sa.type_coerce(column, sa.Text)))

    def json_column(self, column: Expr) -> Expr:
        return sa.func.json(sa.type_coerce(column, sa.Text))

    def datetime(self, column: Expr) -> Expr:
        # Stored naive in UTC as `YYYY-MM-DD HH:MM:SS.ffffff`; Python's isoformat drops
        # zero microseconds and adds the offset.
        text = sa.type_coerce(column, sa.Text)
        day = sa.func.substr(text, 1, 10)
        clock = sa.func.substr(text, 12, 8)
        micros = sa.func.substr(text, 20)
        return sa.case(
            (text.is_(None), sa.null()),
            (
                sa.or_(micros == "", micros == ".000000"),
                _cat(day, _lit("T"), clock, _lit("+00:00")),
            ),
            else_=_cat(day, _lit("T"), clock, micros, _lit("+00:00")),
        )

    def date(self, column: Expr) -> Expr:
        return sa.type_coerce(column, sa.Text)

    def cursor(self, kind: str, row_id: Expr) -> Expr:
        return sa.func.gateway_cursor(sa.literal_column(_quote(kind)), row_id)


class PostgreSQL(Dialect):
    name = "postgresql"
    max_keys = 50  # FUNC_MAX_ARGS is 100

    def obj(self, pairs: list[tuple[str, Expr]]) -> Expr:
        args: list[Any] = []
        for key, value in pairs:
            args += [sa.literal_column(_quote(key) + "::text"), value]
        return sa.func.json_build_object(*args)

    def agg(self, value: Expr, order: Expr) -> Expr:
        return sa.func.coalesce(
            sa.func.json_agg(aggregate_order_by(value, order)), sa.literal_column("'[]'::json")
        )

    def nested(self, value: Any) -> Expr:
        return sa.cast(value, _JSON_TYPE)

    def boolean(self, value: Expr) -> Expr:
        return value

    def tags(self, column: Expr) -> Expr:
        text = sa.type_coerce(column, sa.Text)
        return sa.case(
            (text.is_(None), sa.null()),
            (text == "", sa.literal_column("'[]'::json")),
            else_=sa.func.to_json(
                sa.func.string_to_array(
                    sa.func.substr(text, 2, sa.func.length(text) - 2), sa.literal_column("','")
                )
            ),
        )

    def json_column(self, column: Expr) -> Expr:
        return sa.type_coerce(column, _JSON_TYPE)

    def datetime(self, column: Expr) -> Expr:
        utc: Expr = sa.literal_column("'UTC'")
        local = sa.func.timezone(utc, column)
        micros = sa.func.extract("microseconds", column)
        return sa.case(
            (column.is_(None), sa.null()),
            else_=_cat(
                sa.func.to_char(local, sa.literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'")),
                sa.case(
                    (sa.cast(micros, sa.BigInteger) % 1000000 == 0, sa.literal_column("''")),
                    else_=sa.func.to_char(local, sa.literal_column("'.US'")),
                ),
                _lit("+00:00"),
            ),
        )

    def date(self, column: Expr) -> Expr:
        return sa.func.to_char(column, sa.literal_column("'YYYY-MM-DD'"))

    def text(self, column: Expr) -> Expr:
        return sa.cast(column, sa.Text)

    def string(self, text: str) -> Expr:
        return sa.literal_column(_quote(text) + "::text")

    def cursor(self, kind: str, row_id: Expr) -> Expr:
        raw = _cat(_lit(f"k2:{kind}:"), sa.cast(row_id, sa.Text))
        encoded = sa.func.encode(sa.func.convert_to(raw, sa.literal_column("'UTF8'")), "base64")
        encoded = sa.func.replace(encoded, sa.literal_column("E'\\n'"), sa.literal_column("''"))
        return sa.case(
            (row_id.is_(None), sa.null()),
            else_=sa.func.rtrim(
                sa.func.translate(encoded, sa.literal_column("'+/'"), sa.literal_column("'-_'")),
                sa.literal_column("'='"),
            ),
        )


class _JSON(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "json"


_JSON_TYPE = _JSON()


def _lit(text: str) -> Expr:
    return sa.literal_column(_quote(text))


def _cat(*parts: Expr) -> Expr:
    """Text concatenation (`||`) on both engines."""
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(part)
    return joined


def _quote(text: str) -> str:
    """`text` as an SQL string literal (keys and kinds come from the schema, never a client,
    but are quoted properly all the same)."""
    return "'" + text.replace("'", "''") + "'"


# The shapes the compiler nests, each a correlated scalar subquery inside `json_object`: a
# to-one edge, a connection (a page cut from an ordered subquery, its `totalCount`), and an edge
# inside a connection's nodes; run with and without indexes (a sorter, or an index's order).
_PROBE_TABLES = """
CREATE TABLE parent (id TEXT, name TEXT, child_id TEXT);
CREATE TABLE child (id TEXT, parent_id TEXT, name TEXT);
INSERT INTO parent VALUES ('p1', 'a', 'c2'), ('p2', 'b', NULL), ('p3', 'c', 'c9');
INSERT INTO child VALUES ('c2', 'p1', 'y'), ('c1', 'p1', 'x'), ('c3', 'p2', 'z');
"""
_PROBE_INDEXES = """
CREATE INDEX ix_parent_name ON parent (name, id);
CREATE INDEX ix_child_parent ON child (parent_id, id);
"""
_PROBE = """
SELECT json_object('nodes', json_group_array(json_object(
  'id', p.id,
  'one', (SELECT json_object('id', c.id) FROM child AS c WHERE c.id = p.child_id),
  'many', (
    SELECT json_object(
      'nodes', json_group_array(json_object(
        'id', k.id,
        'up', (SELECT json_object('name', q.name) FROM parent AS q WHERE q.id = k.parent_id)
      )),
      'totalCount', (SELECT count(*) FROM child AS n WHERE n.parent_id = p.id)
    )
    FROM (SELECT id, parent_id FROM child AS k WHERE k.parent_id = p.id ORDER BY k.id LIMIT ?)
      AS k
  )
))) FROM (SELECT id, child_id FROM parent ORDER BY name LIMIT ?) AS p
"""
_PROBE_ANSWER = {
    "nodes": [
        {
            "id": "p1",
            "one": {"id": "c2"},
            "many": {
                "nodes": [{"id": "c1", "up": {"name": "a"}}, {"id": "c2", "up": {"name": "a"}}],
                "totalCount": 2,
            },
        },
        {
            "id": "p2",
            "one": None,
            "many": {"nodes": [{"id": "c3", "up": {"name": "b"}}], "totalCount": 1},
        },
        {"id": "p3", "one": None, "many": {"nodes": [], "totalCount": 0}},
    ]
}


def subtype_crosses_scalar_subqueries(connect: Any = sqlite3.connect) -> bool:
    """Whether the SQLite library of `connect` writes the JSON of a scalar subquery into the
    JSON around it as JSON (not as a string) in every shape the compiler nests."""
    try:
        with contextlib.closing(connect(":memory:")) as conn:
            conn.executescript(_PROBE_TABLES)
            answers = [conn.execute(_PROBE, (10, 10)).fetchone()[0]]
            conn.executescript(_PROBE_INDEXES)
            answers.append(conn.execute(_PROBE, (10, 10)).fetchone()[0])
    except sqlite3.Error:
        return False
    return all(orjson.loads(answer) == _PROBE_ANSWER for answer in answers)


DIALECTS: dict[str, Dialect] = {
    "sqlite": SQLite(wraps_nested=not subtype_crosses_scalar_subqueries()),
    "postgresql": PostgreSQL(),
}
