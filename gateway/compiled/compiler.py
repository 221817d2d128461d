"""From a validated operation to one SQL statement per root field that builds its JSON.

The operation is read as graphql-core executes it: variables coerced, fragments spread,
`@skip`/`@include` applied and same-keyed fields merged (`collect_fields`), so the compiled
answer has the keys, in the order, that the resolver path gives. Scope and joins come from the
same declarations the resolvers use (`visible_rows`, `count_visible`, `queries.edge_rows`,
`gateway.relations`): nothing here spells a join or a scope rule again.

Whatever the compiler does not support raises `Unsupported`, and the resolver path answers the
whole operation; so does any argument the resolver would refuse (a bad cursor, `first` out of
range, a malformed id), so bad input gets the resolver path's errors, word for word.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from graphql import (
    DocumentNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationType,
    get_named_type,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import (
    FieldDetailsList,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import get_argument_values
from sqlalchemy.sql.elements import ColumnElement

from gateway import relations
from gateway.access.grant import Grant
from gateway.access.views import count_visible, visible_rows
from gateway.coltypes import TagList, UTCDateTime
from gateway.compiled.sqljson import Dialect
from gateway.errors import GatewayError
from gateway.graph.pagination import page_args
from gateway.queries import edge_rows_of
from gateway.relations import TABLES, ManyEdge, OneEdge
from gateway.request_db import Prepared

Expr = ColumnElement[Any]


MANY_EDGES: dict[tuple[str, str], ManyEdge] = {}
ONE_EDGES: dict[tuple[str, str], OneEdge] = {}
for _value in vars(relations).values():
    if isinstance(_value, ManyEdge):
        MANY_EDGES[tuple(_value.name.split("."))] = _value  # type: ignore[index]  # two parts
    elif isinstance(_value, OneEdge):
        ONE_EDGES[tuple(_value.name.split("."))] = _value  # type: ignore[index]  # two parts

# Root connections and lookups, by field name: the GraphQL type they return.
ROOT_LISTS = {table.name: type_name for type_name, table in TABLES.items()}
ROOT_LOOKUPS = {type_name.lower(): type_name for type_name in TABLES}

# Scalar output types whose JSON form the compiler spells (see `_scalar`).
_PLAIN_SCALARS = frozenset({"String", "Int", "Boolean", "ID", "Date", "DateTime", "JSON"})


class Unsupported(Exception):
    """The operation needs something the compiler does not do: the resolver path answers."""


@dataclass(frozen=True, slots=True)
class Page:
    """Page settings of the request."""

    default: int
    maximum: int


@dataclass(frozen=True, slots=True)
class RootPlan:
    """What answers one root field: a statement giving one JSON value, or a constant."""

    key: str
    statement: sa.Select[Any] | None
    constant: Any = None
    # On SQLite, the statement compiled once to run on the driver (`RequestDB.read`).
    prepared: Prepared | None = None
    # Whether its JSON may go into a response as SQLite wrote it (`dispatch._data`): not when
    # it passes a stored JSON column through (`properties`), which a writer other than the
    # gateway may have stored in a form orjson does not write (`1.50`, `1e2`, `"\u00e9"`,
    # `"\/"`): such JSON is parsed and written again, as the resolvers write it.
    verbatim: bool = True


class Compiler:
    """Compiles one operation for one grant on one engine."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        grant: Grant,
        dialect: Dialect,
        page: Page,
    ) -> None:
        built = Executor.build(
            schema,
            document,
            raw_variable_values=dict(variables or {}),
            operation_name=operation_name,
        )
        if isinstance(built, list):
            raise Unsupported("variables or operation refused")  # the resolver path says why
        if built.operation.operation is not OperationType.QUERY:
            raise Unsupported("not a query")
        self.schema = schema
        self.executor = built
        self.grant = grant
        self.d = dialect
        self.page = page
        self._aliases = 0
        self._edges_above = 0  # edges between the root list (or lookup) and the current row
        self._stored_json = False  # the root field being compiled passes a JSON column through

    def compile(self) -> list[RootPlan]:
        """One plan per response key of the operation's root, in response order."""
        query_type = self.schema.query_type
        assert query_type is not None
        ex = self.executor
        grouped = collect_fields(
            self.schema, ex.fragments, ex.variable_values, query_type, ex.operation
        ).grouped_field_set
        return [self._root(key, details, query_type) for key, details in grouped.items()]

    # ------------------------------------------------------------------ helpers

    def _obj(self, pairs: list[tuple[str, Expr]]) -> Expr:
        if len(pairs) > self.d.max_keys:
            # the statement would fail (and be logged) before the resolvers answered anyway
            raise Unsupported("more keys than one JSON function call takes")
        return self.d.obj(pairs)

    def _alias(self) -> str:
        self._aliases += 1
        return f"gw_p{self._aliases}"

    def _args(self, field: GraphQLField, details: FieldDetailsList) -> dict[str, Any]:
        first = details[0]
        return get_argument_values(
            field, first.node, self.executor.variable_values, first.fragment_variable_values
        )

    def _subfields(self, type_: GraphQLObjectType, details: FieldDetailsList) -> Any:
        ex = self.executor
        return collect_subfields(
            self.schema, ex.fragments, ex.variable_values, ex.operation, type_, details
        ).grouped_field_set.items()

    def _page_args(self, kind: str, args: Mapping[str, Any]) -> tuple[int, str | None]:
        if args.get("filter") is not None:
            raise Unsupported("filters are answered by the resolvers")
        try:
            parsed = page_args(
                kind, args.get("first"), args.get("after"), self.page.default, self.page.maximum
            )
        except GatewayError as error:
            raise Unsupported("bad page arguments") from error
        return parsed.first, parsed.after

    # ------------------------------------------------------------------ root

    def _root(self, key: str, details: FieldDetailsList, query: GraphQLObjectType) -> RootPlan:
        self._stored_json = False
        plan = self._root_plan(key, details, query)
        return replace(plan, verbatim=False) if self._stored_json else plan

    def _root_plan(self, key: str, details: FieldDetailsList, query: GraphQLObjectType) -> RootPlan:
        name = details[0].node.name.value
        if name == "__typename":
            return RootPlan(key, None, query.name)
        if name not in query.fields:  # __schema and __type: introspection stays with Strawberry
            raise Unsupported(f"{name} is answered by the resolvers")
        field = query.fields[name]
        args = self._args(field, details)
        if name in ROOT_LISTS:
            type_name = ROOT_LISTS[name]
            table = TABLES[type_name]
            first, after = self._page_args(table.name, args)
            rows = visible_rows(self.grant, table)
            base = sa.select(*table.columns).select_from(rows.source).where(*rows.where)
            if after is not None:
                base = base.where(rows.id > after)
            count = count_visible(self.grant, table, [])
            conn_type = _object(field.type)
            return RootPlan(
                key,
                self._connection(conn_type, details, type_name, base, rows.id, first, count),
            )
        if name in ROOT_LOOKUPS:
            type_name = ROOT_LOOKUPS[name]
            table = TABLES[type_name]
            try:
                wanted = str(uuid.UUID(args["id"]))
            except ValueError as error:
                raise Unsupported("malformed id") from error
            rows = visible_rows(self.grant, table)
            node = self._object(_object(field.type), details, type_name, table)
            statement = (
                sa.select(node).select_from(rows.source).where(rows.id == wanted, *rows.where)
            )
            return RootPlan(key, statement)
        raise Unsupported(f"root field {name}")

    # ------------------------------------------------------------------ connections

    def _connection(
        self,
        conn_type: GraphQLObjectType,
        details: FieldDetailsList,
        type_name: str,
        base: sa.Select[Any],
        order: Expr,
        first: int,
        count: sa.Select[Any],
    ) -> sa.Select[Any]:
        """A SELECT of the connection's JSON object over `base` (the visible, scoped rows
        before paging), cut to `first` rows in id order.

        The page is a plain `ORDER BY id LIMIT first` (no window numbering the rows: SQLite
        materializes a windowed subquery, which cost four times the rest of a nested page);
        `hasNextPage` looks for one more row past the page, only when asked.
        """
        table = TABLES[type_name]
        kind = table.name
        d = self.d
        # only the columns the selection reads: SQLite runs the page as a co-routine that reads
        # every column it selects (the JSON of `identifiers` and `properties` of every row of
        # a three-level page cost more than the rest of it)
        used = self._page_columns(conn_type, details, type_name)
        kept = [c for c in base.selected_columns if c.key in used]
        page = base.with_only_columns(*kept).order_by(order).limit(first).subquery(self._alias())
        pairs: list[tuple[str, Expr]] = []
        aggregated = False
        for key, sub in self._subfields(conn_type, details):
            name = sub[0].node.name.value
            if name == "__typename":
                pairs.append((key, self.d.string(conn_type.name)))
            elif name == "nodes":
                node_type = _object(conn_type.fields[name].type)
                node = self._object(node_type, sub, type_name, page)
                pairs.append((key, d.agg(node, page.c.id)))
                aggregated = True
            elif name == "edges":
                edge_type = _object(conn_type.fields[name].type)
                edge = self._edge(edge_type, sub, type_name, page)
                pairs.append((key, d.agg(edge, page.c.id)))
                aggregated = True
            elif name == "pageInfo":
                info_type = _object(conn_type.fields[name].type)
                ids = [c for c in base.selected_columns if c.key == "id"]
                more = base.with_only_columns(*ids).order_by(order).offset(first).limit(1)
                pairs.append((key, self._page_info(info_type, sub, kind, page, more, first)))
            elif name == "totalCount":
                pairs.append((key, count.scalar_subquery()))
            else:
                raise Unsupported(f"connection field {name}")
        body = self._obj(pairs)
        if not aggregated:
            # count(*) makes it an aggregate: one row even when the page is empty
            body = sa.case((sa.func.count() >= 0, body))
        return sa.select(body).select_from(page)

    def _page_columns(
        self, conn_type: GraphQLObjectType, details: FieldDetailsList, type_name: str
    ) -> set[str]:
        """The columns of `type_name`'s page that the connection's selection reads: its id
        (order, cursors, nested connections), and what `_object` reads of each node."""
        used = {"id"}
        for _, sub in self._subfields(conn_type, details):
            name = sub[0].node.name.value
            if name == "nodes":
                used |= self._row_columns(_object(conn_type.fields[name].type), sub, type_name)
            elif name == "edges":
                edge_type = _object(conn_type.fields[name].type)
                for _, edge_sub in self._subfields(edge_type, sub):
                    if edge_sub[0].node.name.value == "node":
                        node_type = _object(edge_type.fields["node"].type)
                        used |= self._row_columns(node_type, edge_sub, type_name)
        return used

    def _row_columns(
        self, object_type: GraphQLObjectType, details: FieldDetailsList, type_name: str
    ) -> set[str]:
        """The columns `_object` reads of a row for this selection (the same cases)."""
        used = set()
        for _, sub in self._subfields(object_type, details):
            name = sub[0].node.name.value
            if name == "__typename":
                continue
            one = ONE_EDGES.get((type_name, name))
            if (type_name, name) in MANY_EDGES:
                used.add("id")
            elif one is not None:
                used.add(one.fk)
            else:
                used.add(_column_name(object_type.fields[name]) or name)
        return used

    def _edge(
        self,
        edge_type: GraphQLObjectType,
        details: FieldDetailsList,
        type_name: str,
        page: sa.Subquery,
    ) -> Expr:
        pairs: list[tuple[str, Expr]] = []
        for key, sub in self._subfields(edge_type, details):
            name = sub[0].node.name.value
            if name == "__typename":
                pairs.append((key, self.d.string(edge_type.name)))
            elif name == "cursor":
                pairs.append((key, self.d.cursor(TABLES[type_name].name, page.c.id)))
            elif name == "node":
                node_type = _object(edge_type.fields[name].type)
                pairs.append((key, self._object(node_type, sub, type_name, page)))
            else:
                raise Unsupported(f"edge field {name}")
        return self._obj(pairs)

    def _page_info(
        self,
        info_type: GraphQLObjectType,
        details: FieldDetailsList,
        kind: str,
        page: sa.Subquery,
        more: sa.Select[Any],
        first: int,
    ) -> Expr:
        """The page's `pageInfo`: its cursors from its least and greatest ids (it is in id
        order), `hasNextPage` from `more` (the row after the page, if any)."""
        d = self.d
        ids = d.text(page.c.id)
        pairs: list[tuple[str, Expr]] = []
        for key, sub in self._subfields(info_type, details):
            name = sub[0].node.name.value
            if name == "__typename":
                pairs.append((key, d.string(info_type.name)))
            elif name == "hasNextPage":
                pairs.append((key, d.boolean(sa.exists(more))))
            elif name == "hasPreviousPage":
                pairs.append((key, d.boolean(sa.false())))
            elif name == "startCursor":
                pairs.append((key, d.cursor(kind, sa.func.min(ids)) if first > 0 else sa.null()))
            elif name == "endCursor":
                pairs.append((key, d.cursor(kind, sa.func.max(ids)) if first > 0 else sa.null()))
            else:
                raise Unsupported(f"pageInfo field {name}")
        return self._obj(pairs)

    # ------------------------------------------------------------------ objects

    def _object(
        self,
        object_type: GraphQLObjectType,
        details: FieldDetailsList,
        type_name: str,
        row: sa.FromClause,
    ) -> Expr:
        """The JSON object of one row of `type_name` read from `row` (a page or the table)."""
        table = TABLES[type_name]
        pairs: list[tuple[str, Expr]] = []
        for key, sub in self._subfields(object_type, details):
            name = sub[0].node.name.value
            if name == "__typename":
                pairs.append((key, self.d.string(object_type.name)))
                continue
            field = object_type.fields[name]
            many = MANY_EDGES.get((type_name, name))
            one = ONE_EDGES.get((type_name, name))
            if many is not None:
                pairs.append((key, self._many(field, sub, many, row)))
            elif one is not None:
                pairs.append((key, self._one(field, sub, one, row)))
            else:
                pairs.append((key, self._scalar(field, table, row)))
        return self._obj(pairs)

    def _many(
        self, field: GraphQLField, details: FieldDetailsList, edge: ManyEdge, row: sa.FromClause
    ) -> Expr:
        target = _type_name_of(edge.table)
        if self._edges_above and self._counts(_object(field.type), details):
            # below another edge the parent rows repeat (every person's one district), and a
            # correlated count would run once per repetition: the resolvers count each once
            raise Unsupported("totalCount below a nested edge")
        first, after = self._page_args(edge.table.name, self._args(field, details))
        rows, of_parent, order = edge_rows_of(self.grant, edge, row.c.id)
        table = edge.table
        base = (
            sa.select(*table.columns)
            .select_from(rows.source)
            .where(*of_parent, *rows.where)
            .correlate(row)
        )
        if after is not None:
            base = base.where(order > after)
        count = (
            sa.select(sa.func.count(sa.distinct(table.c.id)))
            .select_from(rows.source)
            .where(*of_parent, *rows.where)
            .correlate(row)
        )
        conn_type = _object(field.type)
        self._edges_above += 1
        try:
            statement = self._connection(conn_type, details, target, base, order, first, count)
        finally:
            self._edges_above -= 1
        return self.d.nested(statement.correlate(row).scalar_subquery())

    def _counts(self, conn_type: GraphQLObjectType, details: FieldDetailsList) -> bool:
        """Whether the connection's selection asks for `totalCount`."""
        return any(
            sub[0].node.name.value == "totalCount" for _, sub in self._subfields(conn_type, details)
        )

    def _one(
        self, field: GraphQLField, details: FieldDetailsList, edge: OneEdge, row: sa.FromClause
    ) -> Expr:
        target = _type_name_of(edge.table)
        rows = visible_rows(self.grant, edge.table)
        self._edges_above += 1
        try:
            node = self._object(_object(field.type), details, target, edge.table)
        finally:
            self._edges_above -= 1
        statement = (
            sa.select(node)
            .select_from(rows.source)
            .where(rows.id == row.c[edge.fk], *rows.where)
            .correlate(row)
        )
        return self.d.nested(statement.scalar_subquery())

    def _scalar(self, field: GraphQLField, table: sa.Table, row: sa.FromClause) -> Expr:
        python_name = _column_name(field)
        if python_name is None or python_name not in table.c:
            raise Unsupported("field without a column")
        named = get_named_type(field.type)
        if not isinstance(named, GraphQLScalarType) and named.name not in _ENUMS:
            raise Unsupported(f"object field {named.name}")
        if isinstance(named, GraphQLScalarType) and named.name not in _PLAIN_SCALARS:
            raise Unsupported(f"scalar {named.name}")
        column_type = table.c[python_name].type
        value: Expr = row.c[python_name]
        d = self.d
        if isinstance(column_type, TagList):
            return d.tags(value)
        if isinstance(column_type, sa.JSON):
            if named.name == "JSON" or (named.name == "String" and _is_list(field.type)):
                self._stored_json = True
                return d.json_column(value)
            raise Unsupported("structured JSON column")
        if isinstance(column_type, UTCDateTime):
            return d.datetime(value)
        if isinstance(column_type, sa.Date):
            return d.date(value)
        if isinstance(column_type, sa.Boolean):
            return d.boolean(value)
        if named.name == "ID":
            return d.text(value)
        return value


def _column_name(field: GraphQLField) -> str | None:
    """The Python name of a Strawberry field: its column's name, when it has one."""
    definition = (field.extensions or {}).get("strawberry-definition")
    return getattr(definition, "python_name", None)


_ENUMS = frozenset(
    {
        "Role",
        "SessionState",
        "SessionType",
        "ClassState",
        "SectionState",
        "EnrollmentState",
        "AgentRelationship",
    }
)
_TYPE_OF_TABLE = {table.name: type_name for type_name, table in TABLES.items()}


def _type_name_of(table: sa.Table) -> str:
    return _TYPE_OF_TABLE[table.name]


def _object(type_: GraphQLOutputType) -> GraphQLObjectType:
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        raise Unsupported(f"abstract type {named.name}")
    return named


def _is_list(type_: GraphQLOutputType) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)
