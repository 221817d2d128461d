"""The Graph API's root query and the Strawberry schema object."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, cast

import orjson
import strawberry
from graphql import GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from gateway import queries
from gateway.access.gates import TYPE_PERMISSIONS
from gateway.coltypes import JSONText
from gateway.compiled.dispatch import CompiledExecution
from gateway.errors import BadUserInput
from gateway.graph import events as ev
from gateway.graph import types as t
from gateway.graph.context import Context
from gateway.graph.directives import gate
from gateway.graph.errors import ErrorShaping, QuietSchema
from gateway.graph.guard import Guard, PermissionMap
from gateway.graph.integration import Integration, load_integration
from gateway.graph.pacing import PacedExecutionContext
from gateway.graph.pagination import Connection, connection, page_args
from gateway.inputs import OperationInputs
from gateway.limits import Limits, RequestLimits
from gateway.logs import OperationLog
from gateway.relations import TABLES

Ctx = Info[Context, Any]
First = t.First
After = t.After


def _uuid(value: str, argument: str = "id") -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadUserInput(
            f"`{argument}` {value[:64]!r} is not a UUID "
            "(ids look like 3f2b8c1e-0d5a-4c6e-9b7a-1e2d3c4b5a69)",
            argument=argument,
        ) from None


async def _root(
    info: Ctx,
    type_name: str,
    first: int | None,
    after: str | None,
    filter: Any,
) -> Connection[Any]:
    ctx = info.context
    grant = ctx.require_grant()
    table = TABLES[type_name]
    args = page_args(
        table.name, first, after, ctx.settings.default_page_size, ctx.settings.max_page_size
    )
    predicates: Sequence[Any] = filter.predicates(grant) if filter is not None else []
    rows = await queries.fetch_page(ctx.db, grant, table, predicates, args.first, args.after)

    async def count() -> int:
        return await queries.count_rows(ctx.db, grant, table, predicates)

    return connection(table.name, rows, args.first, count)


async def _lookup(info: Ctx, type_name: str, id: str) -> Any:
    return await info.context.loaders.by_id(TABLES[type_name]).load(_uuid(id))


IdArg = Annotated[strawberry.ID, strawberry.argument(description="The object's UUID.")]


def _list_description(what: str) -> str:
    return f"Every visible {what}, one page at a time, ordered by id."


def _get_description(what: str) -> str:
    return f"One {what} by id; null when it does not exist or is outside the integration's scope."


def _list_field(type_name: str, what: str) -> Any:
    """The root connection of `type_name` (named like its table: `schools`, `people`)."""
    field = TABLES[type_name].name

    async def resolve(
        root: Any, info: Ctx, first: Any = None, after: Any = None, filter: Any = None
    ) -> Any:
        return await _root(info, type_name, first, after, filter)

    resolve.__annotations__ = {
        "root": Any,
        "info": Ctx,
        "first": First,
        "after": After,
        "filter": getattr(t, f"{type_name}FilterArg"),
        "return": cast(Any, Connection)[t.GRAPH_CLASSES[type_name]] | None,
    }
    return strawberry.field(
        resolver=resolve,
        name=field,
        description=_list_description(what),
        directives=gate("Query", field, type_name),
    )


def _get_field(type_name: str, what: str) -> Any:
    """The root lookup by id of `type_name` (`school(id:)`, `class(id:)`)."""

    async def resolve(root: Any, info: Ctx, id: Any) -> Any:
        return await _lookup(info, type_name, id)

    resolve.__annotations__ = {
        "root": Any,
        "info": Ctx,
        "id": IdArg,
        "return": t.GRAPH_CLASSES[type_name] | None,
    }
    return strawberry.field(
        resolver=resolve,
        name=what,
        description=_get_description(what),
        directives=gate("Query", what, type_name),
    )


@strawberry.type(description="The Graph API: everything the calling integration may read.")
class Query:
    @strawberry.field(
        description="The calling integration (answers in every status, with no permission)."
    )
    async def integration(self, info: Ctx) -> Integration:
        ctx = info.context
        assert ctx.token is not None
        return await load_integration(ctx.db, ctx.require_grant(), ctx.token)

    districts = _list_field("District", "district")
    schools = _list_field("School", "school")
    sessions = _list_field("Session", "session")
    courses = _list_field("Course", "course")
    classes = _list_field("Class", "class")
    sections = _list_field("Section", "section")
    people = _list_field("Person", "person")
    enrollments = _list_field("Enrollment", "enrollment")
    agents = _list_field("Agent", "agent")
    district = _get_field("District", "district")
    school = _get_field("School", "school")
    session = _get_field("Session", "session")
    course = _get_field("Course", "course")
    class_ = _get_field("Class", "class")
    section = _get_field("Section", "section")
    person = _get_field("Person", "person")
    enrollment = _get_field("Enrollment", "enrollment")
    agent = _get_field("Agent", "agent")

    @strawberry.field(
        description=(
            "The integration's change feed: CREATED, UPDATED and DELETED events of the objects "
            "it sees (including objects entering or leaving its view), oldest first; of a type "
            "its permissions no longer cover, only the DELETED events (id only), so that an "
            "app drops what it may no longer hold. Sync by reading every list once, then "
            "follow `events` from the last `endCursor`."
        )
    )
    async def events(
        self,
        info: Ctx,
        first: ev.EventsFirst = None,
        after: ev.EventsAfter = None,
        filter: ev.EventFilterArg = None,
    ) -> ev.EventConnection | None:
        return await ev.resolve_events(info, first, after, filter)

    @strawberry.field(
        description=(
            "Any visible object by id, whatever its type; null when it does not exist, is "
            "outside the integration's scope, or its type needs a permission not granted."
        )
    )
    async def node(self, info: Ctx, id: IdArg) -> t.Node | None:
        ctx = info.context
        grant = ctx.require_grant()
        wanted = _uuid(id)
        readable = tuple(name for name, slug in TYPE_PERMISSIONS.items() if grant.allows(slug))
        type_name = await ctx.loaders.node_types(readable).load(wanted)
        if type_name is None:
            return None
        row = await ctx.loaders.by_id(TABLES[type_name]).load(wanted)
        return _Typed(row, type_name) if row is not None else None  # type: ignore[return-value]  # a row stands in for the Node


class _Typed:
    """A row tagged with its GraphQL type name, so the `Node` interface can resolve it."""

    __slots__ = ("_row", "type_name")

    def __init__(self, row: Any, type_name: str) -> None:
        self._row = row
        self.type_name = type_name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


_CAMEL: dict[str, str] = {}


def _camel(name: str) -> str:
    found = _CAMEL.get(name)
    if found is None:
        head, *rest = name.split("_")
        found = _CAMEL[name] = head + "".join(part.title() for part in rest)
    return found


def resolve_attribute(source: Any, name: str) -> Any:
    """Default field resolver: row attributes (JSON decoded on first use), or camelCase keys
    of JSON objects."""
    if type(source) is dict:
        return source.get(_camel(name))
    value = getattr(source, name)
    if type(value) is JSONText:
        return orjson.loads(str(value))  # orjson takes only exact str
    return value


class CachedValidation(ValidationCache):
    """Strawberry's validation cache, which leaves alone a document an extension before it has
    refused already (the guard refuses a request without a token before validation)."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is not None:
            yield
            return
        yield from super().on_validate()


def build_schema(*, introspection: bool = True, limits: Limits | None = None) -> strawberry.Schema:
    """The Graph API schema; the guard, the limits and error shaping run on every operation.

    Extensions are factories, never shared instances (DESIGN §8). `OperationInputs` refuses bad
    variables, conditions and over-long lists before the guard decides anything (the guard's
    401 still wins). `RequestLimits` parses the
    document (with its own cache, so `ParserCache` is not used) and adds the depth and alias
    rules that `CachedValidation` then caches with the document.
    """
    from strawberry.extensions import DisableIntrospection

    request_limits = limits or Limits.defaults()
    extensions: list[Any] = [
        ErrorShaping,
        lambda: OperationInputs(request_limits.max_list_length),
        Guard,
        lambda: RequestLimits(request_limits),
        lambda: CachedValidation(maxsize=256),
        OperationLog,
        CompiledExecution,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    built = QuietSchema(
        query=Query,
        types=list(t.GRAPH_CLASSES.values()),
        extensions=extensions,
        execution_context_class=PacedExecutionContext,
        config=StrawberryConfig(
            default_resolver=resolve_attribute,
            disable_field_suggestions=not introspection,
        ),
    )
    _describe_permissions(built._schema)
    return built


def _needs(slugs: Sequence[str]) -> str:
    return " and ".join(f"`{slug}`" for slug in slugs)


def _describe_permissions(graphql_schema: GraphQLSchema) -> None:
    """Say in each gated type's and field's description which permission it needs.

    Introspection (GraphiQL, codegen from a live endpoint) cannot show where a directive is
    applied, only the SDL can; the descriptions carry the same facts, read from the same
    directives the guard enforces.
    """
    permissions = PermissionMap(graphql_schema)
    for type_ in graphql_schema.type_map.values():
        if isinstance(type_, GraphQLObjectType) and type_.name in TYPE_PERMISSIONS:
            type_.description = _with(type_.description, _needs([TYPE_PERMISSIONS[type_.name]]))
    for (type_name, field_name), slugs in permissions.fields.items():
        own = TYPE_PERMISSIONS.get(type_name)
        extra = [slug for slug in slugs if slug != own]
        if extra:
            object_type = graphql_schema.type_map[type_name]
            assert isinstance(object_type, GraphQLObjectType)
            field = object_type.fields[field_name]
            field.description = _with(field.description, _needs(extra))
    for (type_name, field_name), slugs in permissions.inputs.items():
        input_type = graphql_schema.type_map[type_name]
        assert isinstance(input_type, GraphQLInputObjectType)
        input_field = input_type.fields[field_name]
        input_field.description = _with(
            input_field.description, f"Filtering by it requires {_needs(slugs)}"
        )


def _with(description: str | None, needs: str) -> str:
    sentence = (needs if needs.startswith("Filtering") else f"Requires {needs}") + "."
    text = (description or "").rstrip()
    return text if text.endswith(sentence) else f"{text} {sentence}".lstrip()


schema = build_schema()
